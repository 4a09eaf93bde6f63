//! The Pusher REST API under `/apps/{app_id}/...`.
//!
//! Owns: request routing, signature checks (prefix-safe: the signed path is
//! the route path without any proxy prefix), body limits, and the JSON
//! response and error shapes. Receives: method, signed path, raw query and
//! the collected body from the front. Hands on: publishes to the hub (one
//! frame per channel, shared by all its subscribers), channel and user
//! queries, connection terminations; returns a status and a JSON body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::app::App;
use super::auth::{self, RestAuthError, RestRequest};
use super::channel::{self, Access, ChannelKind};
use super::protocol;
use super::state::Shared;
use crate::cluster::Cluster;
use crate::hub::{AppHub, ChannelInfo, DataKind, Frames, Members, Message, Origin};

/// Most channels in one publish.
pub const MAX_CHANNELS: usize = 100;
/// Most events in one batch.
pub const MAX_BATCH: usize = 10;
/// Longest event name.
pub const MAX_EVENT_NAME: usize = 200;

/// Why a REST call failed. [`RestError::status`] is the one status mapping.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// No app with that id.
    #[error("Unknown app {0}")]
    UnknownApp(String),
    /// The signature check failed.
    #[error("{0}")]
    Auth(#[from] RestAuthError),
    /// No such endpoint.
    #[error("Not found")]
    NotFound,
    /// Known endpoint, wrong method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Body is not the expected JSON.
    #[error("Invalid request body: {0}")]
    BadBody(String),
    /// A field breaks a rule (too many channels, bad name, ...).
    #[error("{0}")]
    Invalid(String),
    /// Over the app's `api_rate_limit`.
    #[error(
        "Too many requests: this app allows {max} API calls per {per:?}; retry in {retry_after} s"
    )]
    RateLimited {
        /// The limit.
        max: u32,
        /// Its window.
        per: std::time::Duration,
        /// Whole seconds until the window ends (`Retry-After`).
        retry_after: u64,
    },
    /// The event data or the body is too large.
    #[error("Payload too large: {size} bytes, the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl RestError {
    /// The HTTP status. Exhaustive on purpose.
    pub fn status(&self) -> StatusCode {
        match self {
            RestError::UnknownApp(_) => StatusCode::NOT_FOUND,
            RestError::Auth(_) => StatusCode::UNAUTHORIZED,
            RestError::NotFound => StatusCode::NOT_FOUND,
            RestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RestError::BadBody(_) => StatusCode::BAD_REQUEST,
            RestError::Invalid(_) => StatusCode::BAD_REQUEST,
            RestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Seconds for a `Retry-After` header, on a 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            RestError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> String {
        json!({ "error": self.to_string() }).to_string()
    }
}

/// One REST call as the front hands it over.
#[derive(Debug)]
pub struct Call<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as signed: `/apps/{id}/...` without any prefix.
    pub path: &'a str,
    /// Raw query string.
    pub query: &'a str,
    /// The body.
    pub body: &'a [u8],
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A call past its checks: the app, its query parameters and the path
/// after `/apps/{id}/`.
struct Checked<'c> {
    app: Arc<App>,
    params: Vec<(String, String)>,
    tail: &'c str,
}

impl Checked<'_> {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Handles one call; `Ok` carries the JSON body of a 200.
pub(crate) fn handle(shared: &Shared, call: &Call<'_>) -> Result<String, RestError> {
    let checked = check(shared, call)?;
    dispatch(shared, call, &checked)
}

/// Like [`handle`] on a node of a cluster: the channel queries answer for
/// every node.
pub(crate) async fn handle_clustered(
    shared: &Shared,
    call: &Call<'_>,
    cluster: &Cluster,
) -> Result<String, RestError> {
    let c = check(shared, call)?;
    let segs: Vec<&str> = c.tail.split('/').collect();
    if call.method != Method::GET {
        let answer = dispatch(shared, call, &c)?;
        return Ok(match segs.as_slice() {
            ["events"] | ["batch_events"] => {
                clustered_info(answer, call.body, cluster, &c.app.id).await
            }
            _ => answer,
        });
    }
    match segs.as_slice() {
        ["channels"] => {
            let (prefix, want_users) =
                channels_query(c.param("filter_by_prefix"), c.param("info"))?;
            let list = cluster.channels(&c.app.id, prefix).await;
            Ok(channels(list, want_users))
        }
        ["channels", name] => {
            let name = decode(name)?;
            let kind = channel_kind(&name)?;
            let ci = cluster.channel_info(&c.app.id, &name).await;
            let hub = shared.app_hub(&c.app);
            channel_info(&hub, &name, kind, ci, c.param("info"))
        }
        ["channels", name, "users"] => {
            let name = decode(name)?;
            presence_only(&name)?;
            Ok(users(cluster.members(&c.app.id, &name).await))
        }
        _ => dispatch(shared, call, &c),
    }
}

/// A publish's answer with the counts it asked for (`info`) replaced by
/// the cluster-wide ones.
async fn clustered_info(answer: String, body: &[u8], cluster: &Cluster, app: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(&answer) else {
        return answer;
    };
    let fix = |o: &mut Map<String, Value>, ci: Option<ChannelInfo>| {
        for (k, n) in [
            (
                "subscription_count",
                ci.as_ref().map_or(0, |c| c.subscription_count),
            ),
            ("user_count", ci.as_ref().map_or(0, |c| c.user_count)),
        ] {
            if let Some(slot) = o.get_mut(k) {
                *slot = n.into();
            }
        }
    };
    if let Some(Value::Object(chans)) = v.get_mut("channels") {
        for (name, o) in chans.iter_mut() {
            if let Value::Object(o) = o {
                fix(o, cluster.channel_info(app, name).await);
            }
        }
    } else if let Some(Value::Array(items)) = v.get_mut("batch") {
        let names: Vec<Option<String>> = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| {
                b["batch"].as_array().map(|a| {
                    a.iter()
                        .map(|e| e["channel"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        for (o, name) in items.iter_mut().zip(names) {
            if let (Value::Object(o), Some(name)) = (o, name)
                && !o.is_empty()
            {
                fix(o, cluster.channel_info(app, &name).await);
            }
        }
    }
    v.to_string()
}

/// The app, signature and rate-limit checks.
fn check<'c>(shared: &Shared, call: &Call<'c>) -> Result<Checked<'c>, RestError> {
    let rest = call
        .path
        .strip_prefix("/apps/")
        .ok_or(RestError::NotFound)?;
    let (app_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let apps = shared.apps.load();
    let app = apps
        .by_id(app_id)
        .ok_or_else(|| RestError::UnknownApp(app_id.to_owned()))?
        .clone();
    let req = RestRequest {
        method: call.method.as_str(),
        path: call.path,
        query: call.query,
        body: call.body,
    };
    auth::verify_rest(app.creds(), req, now())?;
    // Counted after the signature check: only the app's own backend spends
    // its budget, and forged calls cannot lock it out.
    if let (Err(left), Some(rl)) = (shared.rest_call_allowed(&app), app.api_rate_limit) {
        return Err(RestError::RateLimited {
            max: rl.max,
            per: rl.per,
            retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        });
    }
    let params = auth::parse_query(call.query).unwrap_or_default();
    Ok(Checked { app, params, tail })
}

/// Routes a checked call, answering from this node's hub.
fn dispatch(shared: &Shared, call: &Call<'_>, c: &Checked<'_>) -> Result<String, RestError> {
    let (app, param) = (&c.app, |k: &str| c.param(k));
    let segs: Vec<&str> = c.tail.split('/').collect();
    let get = call.method == Method::GET;
    let post = call.method == Method::POST;
    match segs.as_slice() {
        ["events"] if post => events(shared, app, call.body),
        ["batch_events"] if post => batch(shared, app, call.body),
        ["channels"] if get => {
            let (prefix, want_users) = channels_query(param("filter_by_prefix"), param("info"))?;
            Ok(channels(shared.app_hub(app).channels(prefix), want_users))
        }
        ["channels", name] if get => {
            let name = decode(name)?;
            let kind = channel_kind(&name)?;
            let hub = shared.app_hub(app);
            let ci = hub.channel_info(&name);
            channel_info(&hub, &name, kind, ci, param("info"))
        }
        ["channels", name, "users"] if get => {
            let name = decode(name)?;
            presence_only(&name)?;
            Ok(users(shared.app_hub(app).members(&name)))
        }
        ["users", uid, "terminate_connections"] if post => {
            shared.terminate_user(app, &decode(uid)?);
            Ok("{}".into())
        }
        ["connections"] if get => {
            Ok(json!({"connections": shared.app_hub(app).connection_count()}).to_string())
        }
        ["events"]
        | ["batch_events"]
        | ["channels"]
        | ["channels", _]
        | ["channels", _, "users"]
        | ["users", _, "terminate_connections"]
        | ["connections"] => Err(RestError::MethodNotAllowed),
        _ => Err(RestError::NotFound),
    }
}

fn decode(seg: &str) -> Result<String, RestError> {
    auth::url_decode(&seg.replace('+', "%2B"))
        .ok_or_else(|| RestError::Invalid("bad path encoding".into()))
}

#[derive(Deserialize)]
struct EventBody {
    name: String,
    data: Value,
    channels: Option<Vec<String>>,
    channel: Option<String>,
    socket_id: Option<String>,
    info: Option<String>,
}

fn data_string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        v => v.to_string(),
    }
}

/// Publishes one event; returns the `channels` info object if asked.
fn publish(
    shared: &Shared,
    app: &Arc<App>,
    ev: EventBody,
    max_channels: usize,
) -> Result<Value, RestError> {
    let mut channels = ev.channels.unwrap_or_default();
    if let Some(c) = ev.channel {
        channels.push(c);
    }
    if channels.is_empty() {
        return Err(RestError::Invalid("channels or channel is required".into()));
    }
    if channels.len() > max_channels {
        return Err(RestError::Invalid(format!(
            "too many channels: {}, the limit is {max_channels}",
            channels.len()
        )));
    }
    if ev.name.is_empty() || ev.name.len() > MAX_EVENT_NAME {
        return Err(RestError::Invalid(format!(
            "event name must be 1 to {MAX_EVENT_NAME} characters"
        )));
    }
    if let Some(sid) = &ev.socket_id
        && !auth::is_socket_id(sid)
    {
        return Err(RestError::Invalid(format!("invalid socket_id {sid:?}")));
    }
    let data = data_string(ev.data);
    if data.len() > app.max_event_size {
        return Err(RestError::TooLarge {
            size: data.len(),
            max: app.max_event_size,
        });
    }
    let kinds = channels
        .iter()
        .map(|c| {
            channel::classify(c)
                .map_err(|e| RestError::Invalid(format!("invalid channel {c:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hub = shared.app_hub(app);
    // Moved into shared bytes once for every channel's message; it came
    // from a `String`, so it reads back as text.
    let data = Bytes::from(data);
    let text = std::str::from_utf8(&data).unwrap_or_default();
    for (c, kind) in channels.iter().zip(&kinds) {
        let frames = Frames::One(protocol::event(c, &ev.name, text, None));
        let msg = Message {
            channel: c,
            event: &ev.name,
            data: &data,
            kind: DataKind::Text,
            except: ev.socket_id.as_deref(),
            origin: Origin::Rest,
            frames: &frames,
        };
        shared.publish(app, &hub, *kind, &msg);
    }
    let Some(info) = ev.info else {
        return Ok(Value::Null);
    };
    let want_subs = info.split(',').any(|i| i == "subscription_count");
    let want_users = info.split(',').any(|i| i == "user_count");
    let mut out = Map::new();
    for (c, kind) in channels.iter().zip(&kinds) {
        let ci = hub.channel_info(c);
        let mut o = Map::new();
        if want_subs {
            o.insert(
                "subscription_count".into(),
                ci.as_ref().map_or(0, |i| i.subscription_count).into(),
            );
        }
        if want_users && kind.access == Access::Presence {
            o.insert(
                "user_count".into(),
                ci.as_ref().map_or(0, |i| i.user_count).into(),
            );
        }
        out.insert(c.clone(), Value::Object(o));
    }
    Ok(Value::Object(out))
}

fn events(shared: &Shared, app: &Arc<App>, body: &[u8]) -> Result<String, RestError> {
    let ev: EventBody =
        serde_json::from_slice(body).map_err(|e| RestError::BadBody(e.to_string()))?;
    let info = publish(shared, app, ev, MAX_CHANNELS)?;
    Ok(match info {
        Value::Null => "{}".into(),
        channels => json!({ "channels": channels }).to_string(),
    })
}

fn batch(shared: &Shared, app: &Arc<App>, body: &[u8]) -> Result<String, RestError> {
    #[derive(Deserialize)]
    struct Batch {
        batch: Vec<EventBody>,
    }
    let b: Batch = serde_json::from_slice(body).map_err(|e| RestError::BadBody(e.to_string()))?;
    if b.batch.len() > MAX_BATCH {
        return Err(RestError::Invalid(format!(
            "batch of {} events, the limit is {MAX_BATCH}",
            b.batch.len()
        )));
    }
    // Validate everything before publishing anything.
    for ev in &b.batch {
        let len = match &ev.data {
            Value::String(s) => s.len(),
            v => v.to_string().len(),
        };
        if len > app.max_event_size {
            return Err(RestError::TooLarge {
                size: len,
                max: app.max_event_size,
            });
        }
    }
    let mut out = Vec::new();
    let mut any_info = false;
    for ev in b.batch {
        any_info |= ev.info.is_some();
        let channel = ev.channel.clone();
        let info = publish(shared, app, ev, 1)?;
        out.push(match (info, channel) {
            (Value::Object(mut m), Some(c)) => m.remove(&c).unwrap_or(json!({})),
            _ => json!({}),
        });
    }
    Ok(if any_info {
        json!({ "batch": out }).to_string()
    } else {
        "{}".into()
    })
}

/// `filter_by_prefix` and whether `info` asks for user counts.
fn channels_query<'a>(
    prefix: Option<&'a str>,
    info: Option<&str>,
) -> Result<(&'a str, bool), RestError> {
    let prefix = prefix.unwrap_or("");
    let want_users = info.is_some_and(|i| i.split(',').any(|x| x == "user_count"));
    if want_users && !prefix.starts_with("presence-") {
        return Err(RestError::Invalid(
            "info=user_count is only allowed with filter_by_prefix=presence-".into(),
        ));
    }
    Ok((prefix, want_users))
}

fn channels(list: Vec<ChannelInfo>, want_users: bool) -> String {
    let mut out = BTreeMap::new();
    for ci in list {
        if channel::kind_of(&ci.name).access == Access::ServerToUser {
            continue;
        }
        let v = if want_users {
            json!({ "user_count": ci.user_count })
        } else {
            json!({})
        };
        out.insert(ci.name.to_string(), v);
    }
    json!({ "channels": out }).to_string()
}

fn channel_kind(name: &str) -> Result<ChannelKind, RestError> {
    channel::classify(name)
        .map_err(|e| RestError::Invalid(format!("invalid channel {name:?}: {e}")))
}

/// `ci`: the channel's counts (`None`: not occupied), from this node or
/// the cluster.
fn channel_info(
    hub: &AppHub,
    name: &str,
    kind: ChannelKind,
    ci: Option<ChannelInfo>,
    info: Option<&str>,
) -> Result<String, RestError> {
    let mut o = Map::new();
    o.insert("occupied".into(), ci.is_some().into());
    for what in info.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        match what {
            "user_count" => {
                if kind.access != Access::Presence {
                    return Err(RestError::Invalid(
                        "info=user_count is only allowed for presence channels".into(),
                    ));
                }
                o.insert(
                    "user_count".into(),
                    ci.as_ref().map_or(0, |c| c.user_count).into(),
                );
            }
            "subscription_count" => {
                o.insert(
                    "subscription_count".into(),
                    ci.as_ref().map_or(0, |c| c.subscription_count).into(),
                );
            }
            "cache" if kind.cache => {
                if let Some(frames) = hub.cache_get(name)
                    && let Some(f) = frames.for_codec(0)
                    && let Ok(Value::Object(mut ev)) = serde_json::from_slice::<Value>(f.as_bytes())
                {
                    let data = ev.remove("data").unwrap_or(Value::Null);
                    let event = ev.remove("event").unwrap_or(Value::Null);
                    o.insert("cache".into(), json!({ "event": event, "data": data }));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(o).to_string())
}

fn presence_only(name: &str) -> Result<(), RestError> {
    if channel::classify(name).map(|k| k.access) != Ok(Access::Presence) {
        return Err(RestError::Invalid(
            "users are only available for presence channels".into(),
        ));
    }
    Ok(())
}

fn users(members: Members) -> String {
    let users: Vec<Value> = members
        .into_iter()
        .map(|(id, _)| json!({ "id": &*id }))
        .collect();
    json!({ "users": users }).to_string()
}

mod check;

pub(crate) use check::check_call;

#[cfg(test)]
mod tests;
