//! Entry point the router calls for every request routed to `"supabase"`.
//!
//! Owns: the [`SupabaseFront`] and the HTTP side of its surfaces — the
//! WebSocket handshake and 101 upgrade for `…/websocket` (both
//! `/realtime/v1/websocket` and `/socket/websocket`, the path behind Kong's
//! rewrite), REST broadcast under `…/api/broadcast`, and CORS for browsers.
//! Receives: hyper requests plus the [`RequestCtx`]. Hands on: upgraded
//! sockets to `session::run`, spawned on the edge's shutdown tracker; REST
//! calls to `rest::handle`. Every refused handshake is an HTTP error with
//! `{"error": reason}` and an info log line naming the peer and the reason,
//! because a browser shows the client nothing but close code 1006. Auth and
//! capacity refusals are answered after `handshake_error_delay`, as Supabase
//! delays its `connect` errors to damp reconnect storms.

use std::sync::Arc;
use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, UPGRADE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::codec::{CodecError, Encoding};
use super::fanout::Broadcast;
use super::handshake::{self, HandshakeError};
use super::rest;
use super::session;
use super::state::{Shared, unix_now};
use crate::config::supabase::Supabase;
use crate::http::RequestCtx;
use crate::http::body::{Body, empty, full};
use crate::hub::{Delivery, Hub, Origin};
use crate::shutdown::Shutdown;

/// Headroom over `max_payload` for a REST batch's envelope.
const REST_SLACK: usize = 64 * 1024;

/// The Supabase Realtime front.
pub struct SupabaseFront {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SupabaseFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseFront")
            .field("configured", &self.shared.config().is_some())
            .finish_non_exhaustive()
    }
}

/// The path below the Realtime prefix: `/websocket`, `/api/broadcast…`.
fn realtime_path<'a>(path: &'a str, route_path: &str) -> &'a str {
    let mut rest = path;
    let rp = route_path.trim_end_matches('/');
    if !rp.is_empty()
        && let Some(r) = rest.strip_prefix(rp)
    {
        rest = r;
    }
    for p in ["/realtime/v1", "/socket"] {
        if let Some(r) = rest.strip_prefix(p)
            && r.starts_with('/')
        {
            return r;
        }
    }
    rest
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(if body.is_empty() { empty() } else { full(body) });
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn cors(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        http::HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        http::HeaderValue::from_static(
            "authorization, x-client-info, apikey, content-type, x-api-key",
        ),
    );
    h.insert(
        ACCESS_CONTROL_MAX_AGE,
        http::HeaderValue::from_static("86400"),
    );
    r
}

impl SupabaseFront {
    /// A front publishing into `hub`, configured by `config` (`None` when
    /// `[supabase]` is absent: every request gets a 503 saying so).
    pub fn new(hub: Arc<Hub>, config: Option<Arc<Supabase>>, shutdown: Shutdown) -> SupabaseFront {
        SupabaseFront {
            shared: Arc::new(Shared::new(hub, config, shutdown)),
        }
    }

    /// Makes this front cluster-aware: a joining socket's
    /// `presence_state` holds every node's metas, and each track/untrack
    /// reaches every node's subscribers. Set once, at start.
    pub fn attach_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        cluster.set_entries(Arc::new(super::state::ClusterEntries {
            shared: Arc::downgrade(&self.shared),
        }));
        let _ = self.shared.cluster.set(cluster);
    }

    /// Broadcasts `event` with the JSON `payload` on `realtime:{sub_topic}`
    /// (public or private), as the parts above the front (the bridge) do:
    /// every subscriber gets it, the hub's observers see it with `origin`.
    /// Private-channel rules are not consulted (they govern clients).
    pub fn publish_event(
        &self,
        sub_topic: &str,
        private: bool,
        event: &str,
        payload: &str,
        origin: Origin<'_>,
    ) -> Result<Delivery, CodecError> {
        let b = Broadcast::User {
            event,
            encoding: Encoding::Json,
            meta: None,
            data: payload.as_bytes(),
        };
        self.shared.broadcast(sub_topic, private, b, None, origin)
    }

    /// Applies a reloaded `[supabase]`; live sockets keep their limits.
    pub fn reload(&self, config: Option<Arc<Supabase>>) {
        self.shared.reload(config);
    }

    /// Serves a WebSocket upgrade or a REST call.
    pub async fn answer(&self, req: Request<Incoming>, ctx: RequestCtx) -> Response<Body> {
        let path = realtime_path(req.uri().path(), &ctx.route_path).to_string();
        if path == "/websocket" {
            return match self.websocket(req, &ctx) {
                Ok(r) => r,
                Err(refusal) => refusal.send(&ctx).await,
            };
        }
        if path == "/api/broadcast" || path.starts_with("/api/broadcast/") {
            return cors(self.rest(req, &path).await);
        }
        json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found: Supabase Realtime serves /websocket and /api/broadcast"}).to_string(),
        )
    }

    /// The 101 upgrade, or the refusal to send (after its delay).
    fn websocket(
        &self,
        mut req: Request<Incoming>,
        ctx: &RequestCtx,
    ) -> Result<Response<Body>, Refusal> {
        let Some(config) = self.shared.config() else {
            // Said first: no other answer helps before `[supabase]` exists.
            return Err(refused(HandshakeError::NotConfigured, Duration::ZERO, ctx));
        };
        let delay = config.limits.handshake_error_delay;
        let verifier = self.shared.verifier();
        let query = req.uri().query().map(str::to_string);
        let mut checked = handshake::check(
            req.method(),
            req.headers(),
            query.as_deref(),
            verifier.as_deref(),
            unix_now(),
        );
        if checked.is_ok() && self.shared.shutdown.is_draining() {
            checked = Err(HandshakeError::Draining);
        }
        let acc = checked.map_err(|e| refused(e, delay, ctx))?;
        let slot = match self
            .shared
            .app
            .connect(Some(config.limits.max_concurrent_users))
        {
            Ok(s) => s,
            Err(_) => return Err(refused(HandshakeError::TooManyConnections, delay, ctx)),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let shared = self.shared.clone();
        let peer = ctx.peer;
        let accept = acc.accept.clone();
        ctx.shutdown.spawn(async move {
            match on_upgrade.await {
                Ok(up) => session::run(shared, config, TokioIo::new(up), acc, slot, peer).await,
                Err(e) => tracing::debug!(%peer, error = %e, "supabase websocket upgrade failed"),
            }
        });
        Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "Upgrade")
            .header(SEC_WEBSOCKET_ACCEPT, accept)
            .body(empty())
            .unwrap_or_else(|_| Response::new(empty())))
    }

    async fn rest(&self, req: Request<Incoming>, path: &str) -> Response<Body> {
        if req.method() == Method::OPTIONS {
            return json(StatusCode::NO_CONTENT, String::new());
        }
        if req.method() != Method::POST {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"message": "use POST"}).to_string(),
            );
        }
        let max = self
            .shared
            .config()
            .map_or(1 << 20, |c| c.limits.max_payload + REST_SLACK);
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                crate::metrics::rest_call(
                    "supabase",
                    crate::metrics::http_status::Code(StatusCode::PAYLOAD_TOO_LARGE.as_u16()),
                );
                return json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    serde_json::json!({"message": format!("body exceeds {max} bytes")}).to_string(),
                );
            }
        };
        let r = rest::handle(&self.shared, &parts.headers, path, parts.uri.query(), &body);
        crate::metrics::rest_call(
            "supabase",
            crate::metrics::http_status::Code(r.status.as_u16()),
        );
        json(r.status, r.body)
    }
}

/// A refused handshake, logged when it was decided and answered after its
/// delay.
struct Refusal {
    error: HandshakeError,
    delay: Duration,
}

/// Logs the refusal now and says how long its answer waits.
fn refused(error: HandshakeError, delay: Duration, ctx: &RequestCtx) -> Refusal {
    let status = error.status();
    tracing::info!(peer = %ctx.peer, status = status.as_u16(), reason = %error, "supabase realtime handshake refused");
    crate::metrics::handshake_failed("supabase", error.reason());
    if matches!(error, HandshakeError::Auth(_)) {
        crate::metrics::auth_failed("supabase", error.reason());
    }
    let delay = if error.delayed() {
        delay
    } else {
        Duration::ZERO
    };
    Refusal { error, delay }
}

impl Refusal {
    /// Waits out the delay (Supabase's `connect_error` damping of reconnect
    /// storms), then answers `{"error": reason}`. Only this request waits:
    /// nothing shared is held (the upgrade never started and no connection
    /// slot was taken), and a drain cuts the wait short.
    async fn send(self, ctx: &RequestCtx) -> Response<Body> {
        if !self.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(self.delay) => {}
                () = ctx.shutdown.draining() => {}
            }
        }
        let mut r = json(self.error.status(), self.error.body());
        crate::ws::mark_refusal(&mut r);
        r
    }
}

impl crate::http::Front for SupabaseFront {
    fn handle(&self, req: Request<Incoming>, ctx: RequestCtx) -> crate::http::FrontFuture<'_> {
        Box::pin(self.answer(req, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_the_realtime_prefix() {
        assert_eq!(
            realtime_path("/realtime/v1/websocket", "/realtime/v1/"),
            "/websocket"
        );
        assert_eq!(realtime_path("/socket/websocket", "/socket/"), "/websocket");
        assert_eq!(realtime_path("/socket/websocket", "/"), "/websocket");
        assert_eq!(
            realtime_path("/realtime/v1/api/broadcast", "/"),
            "/api/broadcast"
        );
        assert_eq!(
            realtime_path("/realtime/v1/api/broadcast/room/events/e", "/realtime/v1/"),
            "/api/broadcast/room/events/e"
        );
        assert_eq!(realtime_path("/rt/websocket", "/rt/"), "/websocket");
    }
}
