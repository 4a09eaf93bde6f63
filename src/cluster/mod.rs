//! Horizontal scaling: several portico nodes sharing one Redis are one hub
//! (`[cluster]`, off by default).
//!
//! Owns: this node's id (random at start), its link to Redis and the link's
//! counters ([`LinkStats`]), and the cross-node copy of every published
//! hub message. Receives: every [`AppHub::publish`](crate::hub::AppHub::publish)
//! through the hub's observer seam ([`Observer`]), and the other nodes'
//! messages from Redis. Hands on: each message that entered this node — a
//! client event, a REST publish (either front), a bridge republish — as
//! one binary [`envelope`] queued in the [`outbox`] (never waiting: local
//! delivery goes on at once whatever Redis does) and sent by the one
//! [`publisher`] task as one `PUBLISH {prefix}:events` (so one node's
//! messages keep their order); the other nodes' envelopes, by the
//! [`subscriber`] task, to the local hub with `Origin::Node`.
//!
//! Protocol-agnostic: it carries the hub's [`Message`] fields and the
//! frames each front already encoded, and imports no front. It sits above
//! the hub (layer table in `tests/layering.rs`) and below the fronts.
//!
//! # Exactly once
//!
//! A message is sent on only where it entered (not `Origin::Node`), and
//! a node ignores its own envelopes (by node id) and repeats of another
//! node's (by its sequence number, so a batch re-sent after a failure is
//! not delivered twice). The receiving node publishes with
//! `Origin::Node`, which no observer acts on: neither sent on again nor
//! bridged again (the entry node bridged it and sent both copies).
//!
//! # Redis down
//!
//! Envelopes wait in the outbox ([`outbox::Bound::DEFAULT`]: 20,000
//! messages / 32 MiB), past it they are dropped and counted; both
//! connections reconnect with [`backoff`] (≤ 2 s); one log line per
//! transition of the link ([`link`]).
//!
//! # Next: cluster-wide presence, counts and node death (design)
//!
//! All keys start with `{prefix}:` and are per app (`{a}` = app id,
//! `{c}` = hub channel, `{n}` = node id):
//!
//! - `{prefix}:node:{n}` — the node's lease: `SET … PX 15000`, refreshed
//!   every 5 s. Absent = the node is dead; the first node to take
//!   `{prefix}:reap:{n}` (`SET NX PX`) reaps it: deletes its fields below
//!   and publishes the resulting removals once.
//! - `{prefix}:presence:{a}:{c}` — a hash, field `{n}|{user_id}` → the
//!   user's info and that node's socket count for the user. A user is a
//!   member while any field of theirs exists, so `member_added` goes out
//!   when the first field for the user appears anywhere and
//!   `member_removed` when the last one goes (HSET/HDEL + HSCAN in one Lua
//!   script, so the decision is atomic and taken exactly once).
//! - `{prefix}:subs:{a}:{c}` — a hash `{n}` → subscription count on that
//!   node: REST `subscription_count`/`occupied`, and the
//!   occupied/vacated webhooks at 0 → 1 and 1 → 0 of the sum (also one
//!   script).
//! - `{prefix}:channels:{a}` — a set of occupied channels for REST
//!   `channels`; `{prefix}:cache:{a}:{c}` — the cache channel's last
//!   event, with the app's TTL.
//! - On reconnect after an outage a node rewrites its own fields (they are
//!   keyed by node id, so this is idempotent) and the presence changes
//!   are published as ordinary envelopes carrying protocol frames.

pub mod backoff;
pub mod envelope;
pub mod link;
pub mod outbox;
mod publisher;
mod subscriber;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};

pub use link::{Link, LinkStats};

use crate::config::cluster::Cluster as ClusterConfig;
use crate::hub::{Hub, Message, Observer};
use crate::shutdown::Shutdown;
use outbox::{Bound, Outbox};

/// The Redis channel every node publishes to and subscribes.
pub fn events_channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// Why the cluster could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cluster: Redis URL {redis}: {source}")]
pub struct ClusterError {
    redis: String,
    source: redis::RedisError,
}

/// This node's part of the cluster; installed as a hub observer.
pub struct Cluster {
    node: Arc<str>,
    settings: Arc<ClusterConfig>,
    client: redis::Client,
    channel: Arc<str>,
    outbox: Arc<Outbox>,
    link: Arc<Link>,
    hub: OnceLock<Weak<Hub>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// This node's part, with a fresh random node id; nothing runs until
    /// [`Cluster::start`].
    pub fn new(settings: Arc<ClusterConfig>) -> Result<Cluster, ClusterError> {
        Self::with_bound(settings, Bound::DEFAULT)
    }

    /// Like [`Cluster::new`] with another outbox bound.
    pub fn with_bound(settings: Arc<ClusterConfig>, bound: Bound) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(&*settings.redis).map_err(|source| ClusterError {
            redis: settings.redis_display(),
            source,
        })?;
        Ok(Cluster {
            node: Arc::from(format!("{:016x}", rand::random::<u64>())),
            channel: Arc::from(events_channel(&settings.prefix)),
            link: Arc::new(Link::new(settings.redis_display())),
            settings,
            client,
            outbox: Arc::new(Outbox::new(bound)),
            hub: OnceLock::new(),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The settings the cluster was started with (a reload keeps them).
    pub fn settings(&self) -> &Arc<ClusterConfig> {
        &self.settings
    }

    /// The link's state and counters now.
    pub fn stats(&self) -> LinkStats {
        self.link.stats(self.outbox.len())
    }

    /// Starts the publishing and subscribing tasks for `hub` (the hub this
    /// cluster observes; held weakly). They stop at the drain signal.
    pub fn start(&self, hub: &Arc<Hub>, shutdown: &Shutdown) {
        let _ = self.hub.set(Arc::downgrade(hub));
        tracing::info!(
            node = %self.node,
            redis = %self.settings.redis_display(),
            channel = %self.channel,
            "cluster: connecting"
        );
        let publisher = publisher::Publisher::new(
            self.client.clone(),
            self.channel.clone(),
            self.outbox.clone(),
            self.link.clone(),
            shutdown.clone(),
        );
        shutdown.spawn(publisher.run());
        let subscriber = subscriber::Subscriber {
            client: self.client.clone(),
            channel: self.channel.clone(),
            node: self.node.clone(),
            hub: Arc::downgrade(hub),
            link: self.link.clone(),
            shutdown: shutdown.clone(),
            seen: Default::default(),
        };
        shutdown.spawn(subscriber.run());
    }
}

impl Observer for Cluster {
    fn published(&self, app: &str, msg: &Message<'_>) {
        // Another node's message: delivered here, sent on by no one.
        if matches!(msg.origin, crate::hub::Origin::Node(_)) {
            return;
        }
        let queued = self
            .outbox
            .push_with(|seq| envelope::encode(&self.node, seq, app, msg))
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, channel = msg.channel, "cluster: not sent");
                false
            });
        if !queued {
            self.link.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
