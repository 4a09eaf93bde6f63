//! The Pusher ↔ Supabase mapping (`[supabase] pusher_app`), off by default.
//!
//! Owns: which Pusher app is bridged, and the channel mapping — Pusher
//! channel `X` ↔ Supabase public `realtime:X`, Pusher `private-X` ↔ Supabase
//! private `realtime:X` (still subject to the Supabase rule table);
//! `presence-…` and `private-encrypted-…` channels are never bridged.
//! Receives: every hub publish as a structured message ([`Observer`], which
//! keeps the hub protocol-agnostic), and Supabase broadcasts from
//! [`super::state::Shared::broadcast`]. Hands on: a Pusher publish on app A
//! channel `X` as a Supabase broadcast (event = the Pusher event, payload =
//! `data` as JSON when it is JSON), and a Supabase broadcast as a Pusher
//! event (`data` = the payload's JSON text). Only messages that entered here
//! ([`Origin::is_entry`]) are bridged; republished ones carry
//! [`Origin::Bridge`], so they are never bridged back.

use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwapOption;
use serde_json::Value;

use super::codec::Encoding;
use super::fanout::Broadcast;
use super::state::Shared;
use crate::hub::{DataKind, Message, Observer, Origin};

/// Maps a Pusher channel to (Supabase sub-topic, private); `None` when the
/// channel is not bridged.
pub fn from_pusher(channel: &str) -> Option<(&str, bool)> {
    if channel.starts_with("presence-") || channel.starts_with("private-encrypted-") {
        return None;
    }
    match channel.strip_prefix("private-") {
        Some(x) if !x.is_empty() => Some((x, true)),
        Some(_) => None,
        None if channel.is_empty() => None,
        None => Some((channel, false)),
    }
}

/// Maps a Supabase sub-topic to its Pusher channel.
pub fn to_pusher(sub_topic: &str, private: bool) -> String {
    if private {
        format!("private-{sub_topic}")
    } else {
        sub_topic.to_string()
    }
}

/// Pusher `data` (usually a JSON-encoded string) as a Supabase payload.
pub fn payload_from_pusher_data(data: Option<&Value>) -> String {
    match data {
        None => "{}".to_string(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(_) => s.clone(),
            Err(_) => Value::String(s.clone()).to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// A Pusher message's data as a Supabase payload: a data string (REST) is
/// taken as JSON when it is JSON, else as a JSON string; a client event's
/// JSON value is read as the `data` field of its frame would be.
fn payload_from(kind: DataKind, data: &[u8]) -> Option<String> {
    let v = match kind {
        DataKind::Text => Value::String(std::str::from_utf8(data).ok()?.to_owned()),
        DataKind::Json => serde_json::from_slice(data).ok()?,
        // Pusher has no binary events.
        DataKind::Binary => return None,
    };
    Some(payload_from_pusher_data(Some(&v)))
}

/// The bridge; installed as a hub observer whether or not a mapping is
/// configured (then it only checks and returns).
#[derive(Default)]
pub struct Bridge {
    pusher_app: ArcSwapOption<String>,
    supabase: OnceLock<Weak<Shared>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("pusher_app", &self.pusher_app.load())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Sets (or clears) the bridged Pusher app.
    pub fn set_app(&self, app: Option<&str>) {
        self.pusher_app.store(app.map(|a| Arc::new(a.to_string())));
    }

    /// The bridged Pusher app, if any.
    pub fn app(&self) -> Option<Arc<String>> {
        self.pusher_app.load_full()
    }

    pub(crate) fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.supabase.set(Arc::downgrade(shared));
    }
}

impl Observer for Bridge {
    fn published(&self, app: &str, msg: &Message<'_>) {
        if !msg.origin.is_entry() {
            return;
        }
        let bridged = self.pusher_app.load();
        let Some(bridged) = bridged.as_deref() else {
            return;
        };
        if app != bridged.as_str() {
            return;
        }
        let Some((sub_topic, private)) = from_pusher(msg.channel) else {
            return;
        };
        if msg.event.starts_with("pusher:") || msg.event.starts_with("pusher_internal:") {
            return;
        }
        let Some(payload) = payload_from(msg.kind, msg.data) else {
            return;
        };
        let Some(shared) = self.supabase.get().and_then(Weak::upgrade) else {
            return;
        };
        let b = Broadcast::User {
            event: msg.event,
            encoding: Encoding::Json,
            meta: None,
            data: payload.as_bytes(),
        };
        if let Err(e) = shared.broadcast(sub_topic, private, b, None, Origin::Bridge) {
            tracing::debug!(channel = msg.channel, error = %e, "pusher→supabase bridge: not deliverable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn channel_mapping() {
        assert_eq!(from_pusher("orders"), Some(("orders", false)));
        assert_eq!(from_pusher("private-orders.1"), Some(("orders.1", true)));
        assert_eq!(from_pusher("presence-room"), None);
        assert_eq!(from_pusher("private-encrypted-x"), None);
        assert_eq!(from_pusher("private-"), None);
        assert_eq!(to_pusher("orders", false), "orders");
        assert_eq!(to_pusher("orders.1", true), "private-orders.1");
    }

    #[test]
    fn data_becomes_json_payload() {
        assert_eq!(
            payload_from_pusher_data(Some(&json!("{\"a\":1}"))),
            "{\"a\":1}"
        );
        assert_eq!(payload_from_pusher_data(Some(&json!("hello"))), "\"hello\"");
        assert_eq!(payload_from_pusher_data(Some(&json!({"a":1}))), "{\"a\":1}");
        assert_eq!(payload_from_pusher_data(None), "{}");
    }

    #[test]
    fn structured_data_becomes_json_payload() {
        assert_eq!(
            payload_from(DataKind::Text, b"{\"a\":1}").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            payload_from(DataKind::Text, b"hello").as_deref(),
            Some("\"hello\"")
        );
        assert_eq!(
            payload_from(DataKind::Json, b"\"{\\\"a\\\":1}\"").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            payload_from(DataKind::Json, b"{\"a\": 1}").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(payload_from(DataKind::Binary, b"\x01").as_deref(), None);
    }
}
