//! Encoders of every Pusher server message; each returns a ready [`Frame`]
//! serialised once.
//!
//! Owns: the exact JSON shapes (see `shared/docs/pusher-protocol.md`).
//! Receives: typed values. Hands on: frames for the writer or the hub.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::ws::Frame;

#[derive(Serialize)]
struct Out<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize>(
    event: &str,
    channel: Option<&str>,
    data: Option<D>,
    user_id: Option<&str>,
) -> Frame {
    let out = Out {
        event,
        channel,
        data,
        user_id,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    Frame::from(serde_json::to_string(&out).unwrap_or_default())
}

/// JSON-encodes `v` as a string (Pusher puts most `data` as encoded JSON).
fn json_string<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `pusher:connection_established`.
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> Frame {
    #[derive(Serialize)]
    struct D<'a> {
        socket_id: &'a str,
        activity_timeout: u64,
    }
    let d = json_string(&D {
        socket_id,
        activity_timeout,
    });
    encode("pusher:connection_established", None, Some(d), None)
}

/// `pusher_internal:subscription_succeeded` of a non-presence channel.
pub fn subscription_succeeded(channel: &str) -> Frame {
    encode(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Some("{}"),
        None,
    )
}

/// `pusher_internal:subscription_succeeded` of a presence channel;
/// `members` carry raw user-info JSON.
pub fn presence_subscription_succeeded(channel: &str, members: &[(Arc<str>, Bytes)]) -> Frame {
    let mut ids = String::from("[");
    let mut hash = String::from("{");
    for (i, (id, info)) in members.iter().enumerate() {
        if i > 0 {
            ids.push(',');
            hash.push(',');
        }
        let id = json_string(&id.as_ref());
        ids.push_str(&id);
        hash.push_str(&id);
        hash.push(':');
        hash.push_str(std::str::from_utf8(info).unwrap_or("null"));
    }
    ids.push(']');
    hash.push('}');
    let d = format!(
        "{{\"presence\":{{\"ids\":{ids},\"hash\":{hash},\"count\":{}}}}}",
        members.len()
    );
    encode(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Some(d),
        None,
    )
}

/// `pusher_internal:member_added`; `user_info` is raw JSON.
pub fn member_added(channel: &str, user_id: &str, user_info: &[u8]) -> Frame {
    let d = format!(
        "{{\"user_id\":{},\"user_info\":{}}}",
        json_string(&user_id),
        std::str::from_utf8(user_info).unwrap_or("null")
    );
    encode("pusher_internal:member_added", Some(channel), Some(d), None)
}

/// `pusher_internal:member_removed`.
pub fn member_removed(channel: &str, user_id: &str) -> Frame {
    let d = format!("{{\"user_id\":{}}}", json_string(&user_id));
    encode(
        "pusher_internal:member_removed",
        Some(channel),
        Some(d),
        None,
    )
}

/// `pusher:error` with `data` as an object (`code` may be null).
pub fn error(code: Option<u16>, message: &str) -> Frame {
    #[derive(Serialize)]
    struct D<'a> {
        code: Option<u16>,
        message: &'a str,
    }
    encode("pusher:error", None, Some(D { code, message }), None)
}

/// `pusher:subscription_error` (see the module doc for why this shape).
pub fn subscription_error(channel: &str, kind: &str, message: &str, status: u16) -> Frame {
    #[derive(Serialize)]
    struct D<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: &'a str,
        status: u16,
    }
    let d = D {
        kind,
        error: message,
        status,
    };
    encode("pusher:subscription_error", Some(channel), Some(d), None)
}

/// `pusher:cache_miss`.
pub fn cache_miss(channel: &str) -> Frame {
    encode::<()>("pusher:cache_miss", Some(channel), None, None)
}

/// `pusher_internal:subscription_count`.
pub fn subscription_count(channel: &str, count: usize) -> Frame {
    let d = format!("{{\"subscription_count\":{count}}}");
    encode(
        "pusher_internal:subscription_count",
        Some(channel),
        Some(d),
        None,
    )
}

/// `pusher:signin_success` echoing the signed `user_data` string.
pub fn signin_success(user_data: &str) -> Frame {
    #[derive(Serialize)]
    struct D<'a> {
        user_data: &'a str,
    }
    encode("pusher:signin_success", None, Some(D { user_data }), None)
}

/// Whether a watchlist event announces users coming online or going offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// `online`.
    Online,
    /// `offline`.
    Offline,
}

/// `pusher_internal:watchlist_events` with one event.
pub fn watchlist_event<S: AsRef<str>>(what: Watch, user_ids: &[S]) -> Frame {
    #[derive(Serialize)]
    struct E<'a> {
        name: &'a str,
        user_ids: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct D<'a> {
        events: [E<'a>; 1],
    }
    let name = match what {
        Watch::Online => "online",
        Watch::Offline => "offline",
    };
    let d = D {
        events: [E {
            name,
            user_ids: user_ids.iter().map(AsRef::as_ref).collect(),
        }],
    };
    encode("pusher_internal:watchlist_events", None, Some(d), None)
}

/// `pusher:pong`.
pub fn pong() -> Frame {
    Frame::from(r#"{"event":"pusher:pong","data":"{}"}"#)
}

/// `pusher:ping` (server-initiated liveness check).
pub fn ping() -> Frame {
    Frame::from(r#"{"event":"pusher:ping","data":"{}"}"#)
}

/// An app event published through the REST API: `data` is the string as
/// published.
pub fn event(channel: &str, event: &str, data: &str, user_id: Option<&str>) -> Frame {
    encode(event, Some(channel), Some(data), user_id)
}

/// A client event relayed to the other subscribers, `data` as the client
/// sent it, with `user_id` on presence channels.
pub fn client_event(channel: &str, event: &str, data: &str, user_id: Option<&str>) -> Frame {
    // `data` is the JSON text the client sent (the parser checked it):
    // relayed as is. Anything else goes as a JSON string.
    match serde_json::from_str::<&RawValue>(data) {
        Ok(raw) => encode(event, Some(channel), Some(raw), user_id),
        Err(_) => encode(event, Some(channel), Some(data), user_id),
    }
}
