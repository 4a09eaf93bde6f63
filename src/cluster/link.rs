//! The state of this node's link to Redis and its counters, for logs and
//! for the ops surface (`portico status`, `/metrics`).
//!
//! Owns: whether each of the two Redis connections (publishing,
//! subscribed) is up, the one log line per transition of the link as a
//! whole (up when both are), and the counters. Receives: `up`/`down` calls
//! from the publishing and subscribing tasks, counts from them and from
//! the publish path. Hands on: [`LinkStats`] snapshots to whoever asks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

/// One of the node's two Redis connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Publish,
    Subscribe,
}

impl Conn {
    fn name(self) -> &'static str {
        match self {
            Conn::Publish => "publish",
            Conn::Subscribe => "subscribe",
        }
    }
}

/// A snapshot of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Both connections are up.
    pub up: bool,
    /// Envelopes sent to Redis.
    pub published: u64,
    /// Envelopes from other nodes delivered here.
    pub received: u64,
    /// Envelopes not sent: the buffer was full (or one could not be encoded).
    pub dropped: u64,
    /// Envelopes from other nodes that were missing (a gap in a node's
    /// sequence: it dropped them, or Redis lost them).
    pub missed: u64,
    /// Times the link came back up after being down.
    pub reconnects: u64,
    /// Envelopes waiting to be sent.
    pub buffered: u64,
}

/// The link; shared by the tasks and the publish path.
#[derive(Debug)]
pub struct Link {
    redis: String,
    /// (publish up, subscribe up, the link was ever up).
    state: Mutex<(bool, bool, bool)>,
    up: AtomicBool,
    pub(super) published: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) missed: AtomicU64,
    reconnects: AtomicU64,
}

impl Link {
    /// A link to `redis` (as printed: no password), down until connected.
    pub fn new(redis: String) -> Link {
        Link {
            redis,
            state: Mutex::new((false, false, false)),
            up: AtomicBool::new(false),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    /// Whether both connections are up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// `conn` connected.
    pub fn up(&self, conn: Conn) {
        self.set(conn, true, None);
    }

    /// `conn` failed with `error`.
    pub fn down(&self, conn: Conn, error: &dyn std::fmt::Display) {
        self.set(conn, false, Some(error));
    }

    fn set(&self, conn: Conn, now: bool, error: Option<&dyn std::fmt::Display>) {
        let mut s = self.state.lock();
        let was = s.0 && s.1;
        match conn {
            Conn::Publish => s.0 = now,
            Conn::Subscribe => s.1 = now,
        }
        let is = s.0 && s.1;
        if was == is {
            return;
        }
        self.up.store(is, Ordering::Release);
        if is {
            if s.2 {
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(redis = %self.redis, "cluster link up again: cross-node delivery resumes");
            } else {
                tracing::info!(redis = %self.redis, "cluster link up");
            }
            s.2 = true;
        } else if let Some(e) = error {
            tracing::warn!(
                redis = %self.redis,
                connection = conn.name(),
                error = %e,
                "cluster link down: local delivery continues, cross-node messages are buffered"
            );
        }
    }

    /// A snapshot; `buffered` is filled in by the caller that knows it.
    pub fn stats(&self, buffered: usize) -> LinkStats {
        LinkStats {
            up: self.is_up(),
            published: self.published.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            buffered: buffered as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_when_both_connections_are_and_counts_reconnects() {
        let l = Link::new("redis://h".into());
        l.up(Conn::Publish);
        assert!(!l.is_up());
        l.up(Conn::Subscribe);
        assert!(l.is_up());
        assert_eq!(l.stats(0).reconnects, 0);
        l.down(Conn::Subscribe, &"reset");
        l.down(Conn::Publish, &"reset");
        assert!(!l.is_up());
        l.up(Conn::Publish);
        l.up(Conn::Subscribe);
        assert!(l.is_up());
        assert_eq!(l.stats(3).reconnects, 1);
        assert_eq!(l.stats(3).buffered, 3);
    }
}
