//! REST broadcast: `POST /api/broadcast` and
//! `POST /api/broadcast/{topic}/events/{event}` (realtime's
//! `BroadcastController`), on the same fan-out as the sockets.
//!
//! Owns: request auth (`Authorization: Bearer`, else the `apikey` header),
//! body validation and Supabase's status codes (202, 401, 403, 415, 422).
//! Receives: the method, headers, path remainder, query and collected body.
//! Hands on: broadcasts to [`Shared::broadcast`] and a [`RestReply`].

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::codec::Encoding;
use super::fanout::Broadcast;
use super::handshake::query_param;
use super::jwt::Claims;
use super::policy::Policy;
use super::state::{Shared, unix_now};
use crate::hub::Origin;

/// Status and JSON body (empty for 202).
#[derive(Debug, PartialEq, Eq)]
pub struct RestReply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response body.
    pub body: String,
}

/// Why a REST broadcast was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// No or an invalid token.
    #[error("Unauthorized")]
    Unauthorized,
    /// A private per-event broadcast without write permission.
    #[error("You do not have permissions to write to this Channel topic: {0}")]
    Forbidden(String),
    /// Neither JSON nor octet-stream.
    #[error("Content-Type must be application/json or application/octet-stream")]
    UnsupportedMediaType,
    /// The body is not what the endpoint takes.
    #[error("{0}")]
    Unprocessable(String),
    /// No such endpoint.
    #[error("not found")]
    NotFound,
    /// More messages per second than `max_events_per_second`.
    #[error("You have exceeded your rate limit")]
    RateLimited,
    /// Realtime is not configured.
    #[error("Supabase Realtime is not configured on this server")]
    NotConfigured,
}

impl RestError {
    /// The status, from one exhaustive match.
    pub const fn status(&self) -> StatusCode {
        match self {
            RestError::Unauthorized => StatusCode::UNAUTHORIZED,
            RestError::Forbidden(_) => StatusCode::FORBIDDEN,
            RestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RestError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RestError::NotFound => StatusCode::NOT_FOUND,
            RestError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            RestError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn reply(&self) -> RestReply {
        let body = match self {
            RestError::Unprocessable(m) => serde_json::json!({ "errors": { "messages": [m] } }),
            other => serde_json::json!({ "message": other.to_string() }),
        };
        RestReply {
            status: self.status(),
            body: body.to_string(),
        }
    }
}

fn accepted() -> RestReply {
    RestReply {
        status: StatusCode::ACCEPTED,
        body: String::new(),
    }
}

fn auth(shared: &Shared, headers: &HeaderMap) -> Result<Claims, RestError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let apikey = headers.get("apikey").and_then(|v| v.to_str().ok());
    let token = bearer.or(apikey).ok_or(RestError::Unauthorized)?;
    let v = shared.verifier().ok_or(RestError::NotConfigured)?;
    v.verify(token, unix_now())
        .map_err(|_| RestError::Unauthorized)
}

#[derive(Deserialize)]
struct Batch {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    topic: String,
    event: String,
    payload: Box<RawValue>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    id: Option<String>,
}

fn can_write(policy: &Policy, claims: &Claims, topic: &str, private: bool) -> bool {
    !private || policy.grants(topic, claims).broadcast_write
}

fn meta_for(id: Option<&str>) -> Option<String> {
    id.map(|id| serde_json::json!({ "id": id }).to_string())
}

/// Serves a REST call whose path (below the Realtime prefix) is `rest`.
pub(crate) fn handle(
    shared: &Shared,
    headers: &HeaderMap,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> RestReply {
    match serve(shared, headers, rest, query, body) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(path = rest, error = %e, "supabase REST broadcast refused");
            e.reply()
        }
    }
}

fn serve(
    shared: &Shared,
    headers: &HeaderMap,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<RestReply, RestError> {
    let config = shared.config().ok_or(RestError::NotConfigured)?;
    let policy = Policy::from(&config.policy);
    let max = config.limits.max_payload;
    if rest == "/api/broadcast" {
        let claims = auth(shared, headers)?;
        let batch: Batch = serde_json::from_slice(body)
            .map_err(|e| RestError::Unprocessable(format!("invalid body: {e}")))?;
        for m in &batch.messages {
            if m.payload.get().len() > max {
                return Err(RestError::Unprocessable(format!(
                    "payload of `{}` exceeds the limit of {max} bytes",
                    m.topic
                )));
            }
            if m.topic.is_empty() || m.event.is_empty() {
                return Err(RestError::Unprocessable(
                    "topic and event are required".into(),
                ));
            }
        }
        if !shared.rest_allowed(batch.messages.len(), config.limits.max_events_per_second) {
            return Err(RestError::RateLimited);
        }
        for m in &batch.messages {
            if !can_write(&policy, &claims, &m.topic, m.private) {
                continue; // Supabase skips these silently.
            }
            let meta = meta_for(m.id.as_deref());
            let b = Broadcast::User {
                event: &m.event,
                encoding: Encoding::Json,
                meta: meta.as_deref(),
                data: m.payload.get().as_bytes(),
            };
            shared
                .broadcast(&m.topic, m.private, b, None, Origin::Rest)
                .map_err(|e| RestError::Unprocessable(e.to_string()))?;
        }
        return Ok(accepted());
    }
    let Some(tail) = rest.strip_prefix("/api/broadcast/") else {
        return Err(RestError::NotFound);
    };
    let Some((topic, event)) = tail.split_once("/events/") else {
        return Err(RestError::NotFound);
    };
    let (topic, event) = (decode(topic), decode(event));
    if topic.is_empty() || event.is_empty() || event.contains('/') {
        return Err(RestError::NotFound);
    }
    let claims = auth(shared, headers)?;
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let encoding = match ctype.as_deref() {
        Some("application/json") => Encoding::Json,
        Some("application/octet-stream") => Encoding::Raw,
        _ => return Err(RestError::UnsupportedMediaType),
    };
    if encoding == Encoding::Json && serde_json::from_slice::<&RawValue>(body).is_err() {
        return Err(RestError::Unprocessable("the body is not JSON".into()));
    }
    if body.len() > max {
        return Err(RestError::Unprocessable(format!(
            "payload exceeds the limit of {max} bytes"
        )));
    }
    if !shared.rest_allowed(1, config.limits.max_events_per_second) {
        return Err(RestError::RateLimited);
    }
    let private = query_param(query, "private").is_some_and(|v| v == "true");
    if !can_write(&policy, &claims, &topic, private) {
        return Err(RestError::Forbidden(topic));
    }
    let b = Broadcast::User {
        event: &event,
        encoding,
        meta: None,
        data: body,
    };
    shared
        .broadcast(&topic, private, b, None, Origin::Rest)
        .map_err(|e| RestError::Unprocessable(e.to_string()))?;
    Ok(accepted())
}

fn decode(s: &str) -> String {
    query_param(Some(&format!("x={}", s.replace('+', "%2B"))), "x").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_from_one_match() {
        for (e, s) in [
            (RestError::Unauthorized, 401),
            (RestError::Forbidden("t".into()), 403),
            (RestError::UnsupportedMediaType, 415),
            (RestError::Unprocessable("x".into()), 422),
            (RestError::NotFound, 404),
            (RestError::NotConfigured, 503),
            (RestError::RateLimited, 429),
        ] {
            assert_eq!(e.status().as_u16(), s, "{e:?}");
        }
        assert_eq!(
            RestError::Unauthorized.reply().body,
            r#"{"message":"Unauthorized"}"#
        );
    }

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(decode("room%3A1"), "room:1");
        assert_eq!(decode("a+b"), "a+b");
    }
}
