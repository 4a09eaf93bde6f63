//! State shared by every Supabase socket and REST call.
//!
//! Owns: the hub namespace the front publishes in, the current `[supabase]`
//! config and its verifier (swapped on reload), Phoenix presence, and the
//! front-wide presence rate window. Receives: publish and presence requests
//! from sessions, the REST API and the parts above the front (the bridge,
//! through [`super::SupabaseFront::publish_event`]). Hands on: broadcasts to
//! the hub as structured messages with frames serialised once per vsn
//! ([`super::fanout`]), presence diffs as local-only deliveries.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::fanout::{self, Broadcast};
use super::jwks::Jwks;
use super::jwt::Verifier;
use super::presence::{Diff, Presences, entries_diff};
use crate::cluster::{Cluster, Entries, Entry};
use crate::config::supabase::Supabase;
use crate::hub::{AppHub, Delivery, Frames, Hub, Message, Origin};
use crate::shutdown::Shutdown;

/// The hub namespace of the Supabase front (not a valid Pusher app id in
/// practice: it starts with a NUL byte, so it never collides with `[[apps]]`).
pub const NAMESPACE: &str = "\u{0}supabase";

/// The hub channel of a topic: public and private channels of the same
/// name are separate, as in Supabase (`tenant:topic` vs `tenant-private:topic`).
pub(crate) fn hub_channel(sub_topic: &str, private: bool) -> String {
    if private {
        format!("x:{sub_topic}")
    } else {
        format!("p:{sub_topic}")
    }
}

/// The topic (without `realtime:`) and privacy of a hub channel of
/// [`NAMESPACE`]; the inverse of [`hub_channel`].
pub fn topic_of(hub_channel: &str) -> Option<(&str, bool)> {
    if let Some(t) = hub_channel.strip_prefix("x:") {
        Some((t, true))
    } else {
        hub_channel.strip_prefix("p:").map(|t| (t, false))
    }
}

/// Seconds since the Unix epoch, for token expiry.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fixed one-second window counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    pub(crate) fn new() -> Window {
        Window {
            start: Instant::now(),
            count: 0,
        }
    }

    /// Counts one event; false when it is over `limit` in this second.
    pub(crate) fn hit(&mut self, now: Instant, limit: u32) -> bool {
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= limit
    }
}

/// A call budget over a window that opens at the first call after the
/// previous one closed (Supabase's per-channel presence limit: 5 calls,
/// then nothing until 30 s after the first).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Budget {
    /// When the current window closes; `None` before the first call.
    closes: Option<Instant>,
    used: u32,
}

impl Budget {
    /// Spends one call; false when `max` were already spent in this window
    /// (the refused call is not counted).
    pub(crate) fn spend(&mut self, now: Instant, max: u32, window: Duration) -> bool {
        match self.closes {
            Some(c) if now < c => {
                if self.used >= max {
                    return false;
                }
                self.used += 1;
                true
            }
            _ => {
                self.closes = Some(now + window);
                self.used = 1;
                max >= 1
            }
        }
    }
}

/// Shared by all sessions and REST calls.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) app: Arc<AppHub>,
    config: ArcSwapOption<Supabase>,
    verifier: ArcSwapOption<Verifier>,
    pub(crate) presences: Presences,
    presence_window: parking_lot::Mutex<Window>,
    rest_window: parking_lot::Mutex<Window>,
    pub(crate) shutdown: Shutdown,
    /// This node's part of the cluster (`[cluster]`): presence entries are
    /// then every node's ([`ClusterEntries`]).
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
}

fn verifier_for(c: &Supabase) -> Verifier {
    Verifier::new(
        &c.jwt_secrets,
        c.api_keys.clone(),
        c.claim_validators.clone(),
    )
    .with_jwks(c.jwks.as_deref().map(|j| Arc::new(Jwks::from(j))))
}

impl Shared {
    pub(crate) fn new(hub: Arc<Hub>, config: Option<Arc<Supabase>>, shutdown: Shutdown) -> Shared {
        let s = Shared {
            app: hub.app(NAMESPACE),
            hub,
            config: ArcSwapOption::empty(),
            verifier: ArcSwapOption::empty(),
            presences: Presences::default(),
            presence_window: parking_lot::Mutex::new(Window::new()),
            rest_window: parking_lot::Mutex::new(Window::new()),
            shutdown,
            cluster: OnceLock::new(),
        };
        s.reload(config);
        s
    }

    /// Swaps in a reloaded config; live sockets keep their limits.
    pub(crate) fn reload(&self, config: Option<Arc<Supabase>>) {
        self.verifier
            .store(config.as_deref().map(|c| Arc::new(verifier_for(c))));
        self.config.store(config);
    }

    pub(crate) fn config(&self) -> Option<Arc<Supabase>> {
        self.config.load_full()
    }

    pub(crate) fn verifier(&self) -> Option<Arc<Verifier>> {
        self.verifier.load_full()
    }

    /// Counts one presence event front-wide.
    pub(crate) fn presence_allowed(&self, limit: u32) -> bool {
        self.presence_window.lock().hit(Instant::now(), limit)
    }

    /// Counts `n` REST messages front-wide against `limit` per second.
    pub(crate) fn rest_allowed(&self, n: usize, limit: u32) -> bool {
        let mut w = self.rest_window.lock();
        let now = Instant::now();
        (0..n.max(1)).all(|_| w.hit(now, limit))
    }

    /// Publishes a broadcast on `sub_topic`: the hub's observers see it
    /// (with `origin`), then its subscribers get it, except the socket
    /// `except`.
    pub(crate) fn broadcast(
        &self,
        sub_topic: &str,
        private: bool,
        b: Broadcast<'_>,
        except: Option<&str>,
        origin: Origin<'_>,
    ) -> Result<Delivery, super::codec::CodecError> {
        let topic = format!("realtime:{sub_topic}");
        let frames = fanout::broadcast(&topic, b)?;
        let d = fanout::describe(b, &frames);
        Ok(self.app.publish(&Message {
            channel: &hub_channel(sub_topic, private),
            event: &d.event,
            data: &d.data,
            kind: d.kind,
            except,
            origin,
            frames: &frames,
        }))
    }

    /// This node's presence on `hub_channel` changed: in a cluster, the
    /// other nodes hear it (never waits).
    pub(crate) fn presence_changed(&self, hub_channel: &Arc<str>) {
        if let Some(c) = self.cluster.get() {
            c.entries_changed(self.app.id(), hub_channel);
        }
    }

    /// Fans a presence diff out to the topic's subscribers.
    pub(crate) fn presence_diff(&self, topic: &str, hub_channel: &str, diff: &Diff) {
        if let Ok(p) = RawValue::from_string(diff.json.to_string()) {
            let frames = fanout::push(topic, "presence_diff", &p);
            self.app.deliver(hub_channel, &frames, None);
        }
    }
}

/// The Supabase front's side of the cluster's presence entries: one per
/// tracking socket (a Phoenix meta), on whichever node it is.
pub(crate) struct ClusterEntries {
    pub(crate) shared: Weak<Shared>,
}

impl Entries for ClusterEntries {
    fn local(&self, app: &str, channel: &str) -> Vec<Entry> {
        match self.shared.upgrade() {
            Some(s) if app == NAMESPACE => s.presences.with(channel, |p| p.entries()),
            _ => Vec::new(),
        }
    }

    fn diff(&self, app: &str, channel: &str, joins: &[Bytes], leaves: &[Bytes]) -> Option<Frames> {
        if app != NAMESPACE {
            return None;
        }
        let (t, _) = topic_of(channel)?;
        let d = entries_diff(joins, leaves);
        let p = RawValue::from_string(d.json.to_string()).ok()?;
        Some(fanout::push(&format!("realtime:{t}"), "presence_diff", &p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_resets_each_second() {
        let mut w = Window::new();
        let t0 = Instant::now();
        assert!(w.hit(t0, 2));
        assert!(w.hit(t0, 2));
        assert!(!w.hit(t0, 2));
        assert!(w.hit(t0 + Duration::from_secs(1), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_window_opens_at_the_first_call() {
        let w = Duration::from_secs(30);
        let mut b = Budget::default();
        let t0 = Instant::now() + Duration::from_secs(100);
        for i in 0..3 {
            assert!(b.spend(t0 + Duration::from_secs(i), 3, w), "call {i}");
        }
        assert!(!b.spend(t0 + Duration::from_secs(5), 3, w));
        assert!(!b.spend(t0 + Duration::from_millis(29_999), 3, w));
        // The window closes 30 s after its first call, not after the last.
        assert!(b.spend(t0 + w, 3, w));
        assert!(b.spend(t0 + w, 3, w));
        assert!(b.spend(t0 + w, 3, w));
        assert!(!b.spend(t0 + w, 3, w));
    }

    #[test]
    fn channels_are_namespaced() {
        assert_ne!(hub_channel("room", true), hub_channel("room", false));
        for private in [true, false] {
            assert_eq!(
                topic_of(&hub_channel("a:b", private)),
                Some(("a:b", private))
            );
        }
        assert_eq!(topic_of("room"), None);
    }
}
