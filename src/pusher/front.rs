//! Entry point the router calls for every request routed to `"pusher"`.
//!
//! Owns: the [`PusherFront`] (shared state, app registry swaps on reload;
//! the registry and front settings are built here from `config::apps`)
//! and the HTTP side of both surfaces: WebSocket handshake checks and the
//! 101 upgrade for `/app/{key}`, body collection for `/apps/{id}/...`.
//! Receives: hyper requests plus the [`RequestCtx`] (route prefix, TLS,
//! shutdown). Hands on: upgraded sockets to `session::run`, spawned on the
//! edge's shutdown tracker; REST calls to `rest::handle`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, ORIGIN, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::app::{App, AppRegistry};
use super::protocol::{self, SessionError};
use super::rest::{self, Call, RestError};
use super::session;
use super::state::{ClusterTransitions, FrontSettings, Shared};
use super::webhooks::{HttpPoster, Webhooks};
use crate::cluster::Cluster;
use crate::config::apps::{Apps, PusherSettings};
use crate::http::RequestCtx;
use crate::http::body::{Body, full};
use crate::hub::{DataKind, Delivery, Frames, Hub, Message, Origin};
use crate::shutdown::Shutdown;

/// Largest REST request body.
pub(crate) const MAX_REST_BODY: usize = 1 << 20;
/// Message size limit used before the app is known (refused handshakes).
const DEFAULT_MAX_MESSAGE: usize = 10_000;

/// The Pusher front: owns the hub and the apps.
pub struct PusherFront {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PusherFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PusherFront")
            .field("apps", &self.shared.apps.load().len())
            .finish_non_exhaustive()
    }
}

/// The runtime apps of a validated `[[apps]]` set.
fn registry(apps: &Apps) -> AppRegistry {
    AppRegistry::new(apps.apps.iter().map(|a| App::from(&**a)))
}

impl From<&PusherSettings> for FrontSettings {
    fn from(p: &PusherSettings) -> FrontSettings {
        FrontSettings {
            drain_spread: p.drain_spread,
            path_prefix: p.path_prefix.clone(),
        }
    }
}

impl PusherFront {
    /// A front serving `apps`; sockets obey `shutdown`.
    pub fn new(apps: &Apps, shutdown: Shutdown) -> PusherFront {
        Self::with_hub(apps, Arc::new(Hub::default()), shutdown)
    }

    /// Like [`new`](Self::new) on a hub shared with the other fronts (the
    /// Supabase front and its Pusher mapping).
    pub fn with_hub(apps: &Apps, hub: Arc<Hub>, shutdown: Shutdown) -> PusherFront {
        let webhooks = match (tokio::runtime::Handle::try_current(), HttpPoster::new()) {
            (Ok(_), Ok(poster)) => Webhooks::spawn(Arc::new(poster), shutdown.drain_token()),
            (_, Err(e)) => {
                tracing::warn!(error = %e, "webhooks disabled: no TLS roots");
                Webhooks::disabled()
            }
            (Err(_), _) => Webhooks::disabled(),
        };
        PusherFront {
            shared: Arc::new(Shared {
                hub,
                apps: ArcSwap::from_pointee(registry(apps)),
                settings: ArcSwap::from_pointee(FrontSettings::from(&apps.front)),
                webhooks,
                shutdown,
                counts: Default::default(),
                rest_windows: Default::default(),
                cluster: Default::default(),
                removals: Default::default(),
            }),
        }
    }

    /// Makes this front cluster-aware: presence, occupancy and their
    /// webhooks are decided cluster-wide by `cluster`, and the REST
    /// channel queries answer for every node. Set once, at start.
    pub fn attach_cluster(&self, cluster: Arc<Cluster>) {
        cluster.set_transitions(Arc::new(ClusterTransitions {
            shared: Arc::downgrade(&self.shared),
        }));
        let _ = self.shared.cluster.set(cluster);
    }

    /// Applies a reloaded `[[apps]]` set. Live sockets keep the settings
    /// they connected with; channels and members are kept. The sockets of
    /// an app no longer in the set (by id) close with 4200, spread at
    /// random over `[pusher] drain_spread`; the other apps' stay open.
    pub fn reload(&self, apps: &Apps) {
        let registry = Arc::new(registry(apps));
        self.shared
            .settings
            .store(Arc::new(FrontSettings::from(&apps.front)));
        self.shared.apps.store(registry.clone());
        self.shared.retire_removed(&registry);
    }

    /// Publishes `event` with the data string `data` on `channel` of app
    /// `app`, as the parts above the front (the bridge) do: encoded as a
    /// REST event would be, seen by the hub's observers with `origin`, not
    /// stored as a cache channel's last message.
    pub fn publish_event(
        &self,
        app: &str,
        channel: &str,
        event: &str,
        data: String,
        origin: Origin<'_>,
    ) -> Delivery {
        let frames = Frames::One(protocol::event(channel, event, &data, None));
        let data = Bytes::from(data);
        self.shared.hub.app(app).publish(&Message {
            channel,
            event,
            data: &data,
            kind: DataKind::Text,
            except: None,
            origin,
            frames: &frames,
        })
    }

    /// Serves a WebSocket upgrade or a REST call.
    pub async fn answer(&self, req: Request<Incoming>, ctx: RequestCtx) -> Response<Body> {
        let settings = self.shared.settings.load_full();
        let path = pusher_path(
            req.uri().path(),
            &ctx.route_path,
            settings.path_prefix.as_deref(),
        )
        .to_owned();
        if let Some(key) = path
            .strip_prefix("/app/")
            .filter(|k| !k.is_empty() && !k.contains('/'))
        {
            return self.websocket(req, key, &ctx);
        }
        if path.starts_with("/apps/") {
            return self.rest(req, &path).await;
        }
        json_response(StatusCode::NOT_FOUND, RestError::NotFound.body())
    }

    fn websocket(&self, mut req: Request<Incoming>, key: &str, ctx: &RequestCtx) -> Response<Body> {
        let accept = match crate::ws::upgrade_accept(req.method(), req.headers()) {
            Ok(accept) => accept,
            Err(e) => {
                let msg = match e {
                    crate::ws::UpgradeError::NotUpgrade => {
                        "this is a Pusher WebSocket endpoint: connect with a WebSocket client"
                            .to_owned()
                    }
                    e => e.to_string(),
                };
                tracing::debug!(peer = %ctx.peer, error = %e, "pusher upgrade refused");
                crate::metrics::handshake_failed("pusher", "bad_upgrade");
                let mut resp =
                    json_response(e.status(), serde_json::json!({ "error": msg }).to_string());
                crate::ws::mark_refusal(&mut resp);
                return resp;
            }
        };
        let query = req.uri().query().unwrap_or("");
        let protocol_param = super::auth::parse_query(query)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|(k, _)| k == "protocol")
            .map(|(_, v)| v);
        let origin = req
            .headers()
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let apps = self.shared.apps.load();
        let app = apps.by_key(key).cloned();
        let max_message = app
            .as_ref()
            .map_or(DEFAULT_MAX_MESSAGE, |a| a.max_message_size);
        let pre = check_handshake(app, protocol_param.as_deref(), origin.as_deref());
        if let Err(e) = &pre {
            tracing::debug!(peer = %ctx.peer, error = %e, "pusher handshake refused");
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        let shared = self.shared.clone();
        let peer = ctx.peer;
        ctx.shutdown.spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    session::run(shared, TokioIo::new(upgraded), pre, max_message).await
                }
                Err(e) => tracing::debug!(%peer, error = %e, "websocket upgrade failed"),
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "Upgrade")
            .header(SEC_WEBSOCKET_ACCEPT, accept)
            .body(crate::http::body::empty())
            .unwrap_or_else(|_| Response::new(crate::http::body::empty()))
    }

    async fn rest(&self, req: Request<Incoming>, path: &str) -> Response<Body> {
        let method = req.method().clone();
        let query = req.uri().query().unwrap_or("").to_owned();
        let body = match Limited::new(req.into_body(), MAX_REST_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let e = RestError::TooLarge {
                    size: MAX_REST_BODY + 1,
                    max: MAX_REST_BODY,
                };
                crate::metrics::rest_call(
                    "pusher",
                    crate::metrics::http_status::Code(e.status().as_u16()),
                );
                return json_response(e.status(), e.body());
            }
        };
        let call = Call {
            method: &method,
            path,
            query: &query,
            body: &body,
        };
        let resp = self.rest_answer(&call).await;
        crate::metrics::rest_call(
            "pusher",
            crate::metrics::http_status::Code(resp.status().as_u16()),
        );
        resp
    }

    /// The answer to a REST call whose body was read (cluster-wide when
    /// `[cluster]` is on).
    async fn rest_answer(&self, call: &Call<'_>) -> Response<Body> {
        let path = call.path;
        let answer = match self.shared.cluster.get() {
            Some(c) => rest::handle_clustered(&self.shared, call, c).await,
            None => rest::handle(&self.shared, call),
        };
        match answer {
            Ok(json) => json_response(StatusCode::OK, json),
            Err(e) => {
                tracing::debug!(path, error = %e, "pusher REST call refused");
                let mut resp = json_response(e.status(), e.body());
                if let Some(secs) = e.retry_after() {
                    resp.headers_mut()
                        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
                }
                resp
            }
        }
    }
}

/// The handshake rules, in Pusher's order: app, enabled, protocol, origin.
fn check_handshake(
    app: Option<Arc<App>>,
    protocol_param: Option<&str>,
    origin: Option<&str>,
) -> Result<Arc<App>, SessionError> {
    let app = app.ok_or(SessionError::AppNotFound)?;
    if !app.enabled {
        return Err(SessionError::AppDisabled);
    }
    protocol::check_protocol(protocol_param)?;
    if !app.origin_allowed(origin) {
        return Err(SessionError::OriginNotAllowed);
    }
    Ok(app)
}

/// The path without any prefix in front of `/app` or `/apps`: the
/// configured `path_prefix` (Reverb's `REVERB_SERVER_PATH`), or the route's
/// own path when the route is mounted elsewhere (e.g. `/reverb/`).
fn pusher_path<'a>(path: &'a str, route_path: &str, prefix: Option<&str>) -> &'a str {
    let strip = |p: &str| -> Option<&'a str> {
        let p = p.trim_end_matches('/');
        if p.is_empty() {
            return None;
        }
        path.strip_prefix(p).filter(|rest| rest.starts_with("/app"))
    };
    if let Some(rest) = prefix.and_then(strip) {
        return rest;
    }
    let rp = route_path.trim_end_matches('/');
    if rp != "/app"
        && rp != "/apps"
        && let Some(rest) = strip(rp)
    {
        return rest;
    }
    path
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(crate::http::body::empty()))
}

impl crate::http::Front for PusherFront {
    fn handle(&self, req: Request<Incoming>, ctx: RequestCtx) -> crate::http::FrontFuture<'_> {
        Box::pin(self.answer(req, ctx))
    }
}

impl crate::http::Publish for PusherFront {
    fn publish(&self, app_id: &str, channel: &str, event: &str, data: String) -> usize {
        self.publish_event(app_id, channel, event, data, Origin::Rest)
            .delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_stripped_for_signatures() {
        assert_eq!(
            pusher_path("/apps/1/events", "/apps/", None),
            "/apps/1/events"
        );
        assert_eq!(pusher_path("/app/key", "/app/", None), "/app/key");
        assert_eq!(
            pusher_path("/reverb/apps/1/events", "/reverb/", None),
            "/apps/1/events"
        );
        assert_eq!(pusher_path("/ws/app/key", "/", Some("/ws")), "/app/key");
        assert_eq!(
            pusher_path("/ws/apps/1/events", "/ws/apps/", Some("/ws/")),
            "/apps/1/events"
        );
        assert_eq!(pusher_path("/other", "/", None), "/other");
    }

    #[test]
    fn handshake_order() {
        let mut app = App::new("1", "k", "s");
        app.allowed_origins = vec![super::super::app::OriginPattern(Arc::from("ok.test"))];
        let app = Arc::new(app);
        assert_eq!(
            check_handshake(None, Some("7"), None).unwrap_err(),
            SessionError::AppNotFound
        );
        assert_eq!(
            check_handshake(Some(app.clone()), None, None).unwrap_err(),
            SessionError::NoProtocol
        );
        assert_eq!(
            check_handshake(Some(app.clone()), Some("7"), Some("https://evil.test")).unwrap_err(),
            SessionError::OriginNotAllowed
        );
        assert!(check_handshake(Some(app.clone()), Some("7"), Some("https://ok.test")).is_ok());
        let mut disabled = App::clone(&app);
        disabled.enabled = false;
        assert_eq!(
            check_handshake(Some(Arc::new(disabled)), Some("7"), None).unwrap_err(),
            SessionError::AppDisabled
        );
    }
}
