//! The Pusher ↔ Supabase bridge (`[supabase] pusher_app`), off by default:
//! a part above both fronts, hung on the hub's publish seam.
//!
//! Owns: which Pusher app is bridged (set by the edge from the config, on
//! start and on reload), and the channel mapping — Pusher channel `X` ↔
//! Supabase public `realtime:X`, Pusher `private-X` ↔ Supabase private
//! `realtime:X` (still subject to the Supabase rule table for clients);
//! `presence-…` and `private-encrypted-…` Pusher channels are never bridged.
//! Receives: every hub publish as a structured [`Message`] ([`Observer`]),
//! acting only on messages that entered here ([`Origin::is_entry`]: a
//! socket's event or a REST publish). Hands on: an event of the bridged
//! Pusher app on channel `X` as a Supabase broadcast through
//! [`SupabaseFront::publish_event`] (event = the Pusher event, payload =
//! `data` as JSON when it is JSON), and a Supabase broadcast as a Pusher
//! event through [`PusherFront::publish_event`] (`data` = the payload's
//! JSON text). Both are republished with [`Origin::Bridge`], which the
//! bridge ignores, so nothing is bridged back.

use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwapOption;
use serde_json::Value;

use crate::hub::{DataKind, Message, Observer, Origin};
use crate::phoenix::{self, SupabaseFront};
use crate::pusher::PusherFront;

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

/// The fronts the bridge republishes through; held weakly, since the hub
/// holds the bridge and the fronts hold the hub.
struct Fronts {
    pusher: Weak<PusherFront>,
    supabase: Weak<SupabaseFront>,
}

/// The bridge; installed as a hub observer whether or not a mapping is
/// configured (then it only checks and returns).
#[derive(Default)]
pub struct Bridge {
    pusher_app: ArcSwapOption<String>,
    fronts: OnceLock<Fronts>,
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

    /// Connects the bridge to the fronts of the hub it observes (once; later
    /// calls are ignored).
    pub fn attach(&self, pusher: &Arc<PusherFront>, supabase: &Arc<SupabaseFront>) {
        let _ = self.fronts.set(Fronts {
            pusher: Arc::downgrade(pusher),
            supabase: Arc::downgrade(supabase),
        });
    }

    /// A Pusher app event as a Supabase broadcast.
    fn to_supabase(&self, msg: &Message<'_>) {
        let Some((sub_topic, private)) = from_pusher(msg.channel) else {
            return;
        };
        if msg.event.starts_with("pusher:") || msg.event.starts_with("pusher_internal:") {
            return;
        }
        let Some(payload) = payload_from(msg.kind, msg.data) else {
            return;
        };
        let Some(supabase) = self.fronts.get().and_then(|f| f.supabase.upgrade()) else {
            return;
        };
        let r = supabase.publish_event(sub_topic, private, msg.event, &payload, Origin::Bridge);
        if let Err(e) = r {
            tracing::debug!(channel = msg.channel, error = %e, "pusher→supabase bridge: not deliverable");
        }
    }

    /// A Supabase broadcast as an event of the bridged Pusher app.
    fn to_pusher(&self, app: &str, msg: &Message<'_>) {
        let Some((sub_topic, private)) = phoenix::topic_of(msg.channel) else {
            return;
        };
        if msg.event.is_empty() {
            return;
        }
        let data = match msg.kind {
            DataKind::Json | DataKind::Text => String::from_utf8_lossy(msg.data).into_owned(),
            // Pusher has no binary events.
            DataKind::Binary => return,
        };
        let Some(pusher) = self.fronts.get().and_then(|f| f.pusher.upgrade()) else {
            return;
        };
        let channel = to_pusher(sub_topic, private);
        pusher.publish_event(app, &channel, msg.event, data, Origin::Bridge);
    }
}

impl Observer for Bridge {
    fn published(&self, app: &str, msg: &Message<'_>) {
        // Only where a message entered: never its own republishes
        // (`Origin::Bridge`), never another node's (bridged there).
        if !msg.origin.is_entry() {
            return;
        }
        let bridged = self.pusher_app.load();
        let Some(bridged) = bridged.as_deref() else {
            return;
        };
        if app == bridged.as_str() {
            self.to_supabase(msg);
        } else if app == phoenix::NAMESPACE {
            self.to_pusher(bridged, msg);
        }
    }
}

#[cfg(test)]
mod tests;
