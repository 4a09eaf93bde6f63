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
//! # Cluster-wide state: counts, presence, node death
//!
//! All keys start with `{prefix}:` ([`keys`]; `{a}` = app id, `{c}` = hub
//! channel, `{n}` = node id):
//!
//! - `node:{n}` — the node's lease: `SET … PX lease` (`[cluster] lease`,
//!   15 s), renewed every `heartbeat` (5 s); `nodes` — the set of node ids
//!   holding state. At each heartbeat a node looks for ids whose lease is
//!   gone; the first to take `reap:{n}` (`SET NX PX`) reaps that node:
//!   removes its fields below (one script per channel) and announces the
//!   resulting `member_removed`s and vacated channels once. A draining
//!   node gives up its lease and reaps itself, unless it hands over to a
//!   new process of the same node id (binary upgrade): that one keeps
//!   the lease and writes its own fields over the old ones.
//! - `subs:{a}:{c}` — hash `{n}` → that node's subscription count: REST
//!   `subscription_count`/`occupied`; the occupied/vacated webhooks at
//!   0 → 1 and 1 → 0 of the sum, decided by one script.
//! - `presence:{a}:{c}` — hash `{n}|{user}` → user info, one field per
//!   node holding the user; `users:{a}:{c}` — hash user → how many nodes
//!   hold the user (REST `user_count`). `member_added` when a user's first
//!   field appears, `member_removed` when the last goes, each decided by a
//!   script ([`scripts`]), so exactly once whichever nodes race.
//! - `channels:{a}` — occupied channels (REST `channels`); `held:{n}` —
//!   the `{a}\n{c}` a node has fields in (what a reaper removes).
//! - `entries:{a}:{c}` — hash `{n}|{id}` → a front's per-socket presence
//!   entry ([`entries`]; Supabase: one Phoenix meta per tracking socket).
//!   The node holding the socket writes its entries as a diff, then sends
//!   the other nodes the front's frames for it (a `presence_diff`); a
//!   joining socket is answered with every node's; a reaper removes a dead
//!   node's and announces them gone.
//! - `reaped:{n}` — left by the reaper of `{n}` (100 leases). A node that
//!   finds its own at a heartbeat was reaped while alive (stopped past its
//!   lease, or cut off from Redis that long): it writes everything it holds
//!   again as new, so its members are announced again (`member_added`,
//!   `channel_occupied`, presence joins) after the reaper's removals.
//!
//! A front's application messages received from another node pass its
//! [`Transitions::remote_published`] first (a cache channel's last event
//! is kept on every node).
//!
//! The front notes which channel changed ([`Cluster::changed`],
//! [`Cluster::presence_joined`]); the [`state`] task reads the local truth
//! from the hub, writes the difference, and hands the scripts' decisions
//! to the front through [`Transitions`] (the cluster knows no protocol),
//! delivering the frames the front makes on every node. On reconnect after
//! an outage a node writes its fields again (idempotent: keyed by node id).

pub mod backoff;
pub mod entries;
pub mod envelope;
mod keys;
pub mod link;
pub mod outbox;
mod publisher;
mod scripts;
mod state;
mod subscriber;
pub mod transitions;
mod view;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};

pub use entries::{Entries, EntriesAnswer, Entry};
pub use link::{Link, LinkStats};
pub use transitions::Transitions;

use crate::config::cluster::Cluster as ClusterConfig;
use crate::hub::{ConnRef, DataKind, Frames, Hub, Members, Message, Observer, Origin};
use crate::shutdown::Shutdown;
use keys::Keys;
use outbox::{Bound, Outbox};
use parking_lot::Mutex;
use state::Pending;

/// The Redis channel every node publishes to and subscribes.
pub fn events_channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// The hub channel of the control message "close this user's
/// connections" between nodes: no front's channel can have this name (a
/// NUL byte), so it never reaches a subscriber. Its event is the user id.
const TERMINATE: &str = "\0terminate";

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
    keys: Keys,
    pending: Arc<Pending>,
    transitions: Arc<OnceLock<Arc<dyn Transitions>>>,
    entries: Arc<OnceLock<Arc<dyn Entries>>>,
    /// The state task's connection while it is up (for the REST views).
    state_conn: Arc<Mutex<Option<redis::aio::MultiplexedConnection>>>,
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
            keys: Keys::new(settings.prefix.clone()),
            settings,
            client,
            outbox: Arc::new(Outbox::new(bound)),
            hub: OnceLock::new(),
            pending: Default::default(),
            transitions: Default::default(),
            entries: Default::default(),
            state_conn: Default::default(),
        })
    }

    /// The same, with the node id `node` instead of a fresh one: the id
    /// of the process this one replaces (binary upgrade), so the other
    /// nodes see one node throughout and presence does not flap.
    pub fn with_node_id(mut self, node: &str) -> Cluster {
        self.node = Arc::from(node);
        self
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
        let state_done = tokio_util::sync::CancellationToken::new();
        let publisher = publisher::Publisher::new(
            self.client.clone(),
            self.channel.clone(),
            self.outbox.clone(),
            self.link.clone(),
            shutdown.clone(),
            state_done.clone(),
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
            transitions: self.transitions.clone(),
        };
        shutdown.spawn(subscriber.run());
        let state = state::State::new(
            self.client.clone(),
            self.node.clone(),
            self.keys.clone(),
            (self.settings.lease, self.settings.heartbeat),
            Arc::downgrade(hub),
            self.outbox.clone(),
            self.pending.clone(),
            self.transitions.clone(),
            self.state_conn.clone(),
            shutdown.clone(),
            self.entries.clone(),
        );
        shutdown.spawn(async move {
            state.run().await;
            state_done.cancel();
        });
    }

    /// Sets the front that turns the cluster's decisions into protocol
    /// frames and webhooks (once; later calls are ignored).
    pub fn set_transitions(&self, t: Arc<dyn Transitions>) {
        let _ = self.transitions.set(t);
    }

    /// Sets the front whose presence is per-socket entries (once; later
    /// calls are ignored).
    pub fn set_entries(&self, e: Arc<dyn Entries>) {
        let _ = self.entries.set(e);
    }

    /// This node's presence entries of `channel` changed: they are written
    /// to Redis and the other nodes hear the difference (never waits).
    pub fn entries_changed(&self, app: &Arc<str>, channel: &Arc<str>) {
        self.pending.entries_changed(app, channel);
    }

    /// A socket joined `channel`: `answer` is called, from the cluster's
    /// state task, with every node's entries (this node's written first),
    /// or with `None` while Redis is away.
    pub fn entries_state(&self, app: &Arc<str>, channel: &Arc<str>, answer: EntriesAnswer) {
        self.pending.entries_state(app, channel, answer);
    }

    /// The local subscriptions or members of `channel` changed: the node's
    /// share in Redis is brought up to date (never waits).
    pub fn changed(&self, app: &Arc<str>, channel: &Arc<str>) {
        self.pending.changed(app, channel);
    }

    /// Asks every other node to close the connections of `user_id` in
    /// `app` ([`Transitions::terminate`] there); the caller closes this
    /// node's.
    pub fn terminate_user(&self, app: &str, user_id: &str) {
        let (data, frames) = (bytes::Bytes::new(), Frames::PerCodec(Arc::from([])));
        let msg = Message {
            channel: TERMINATE,
            event: user_id,
            data: &data,
            kind: DataKind::Binary,
            except: None,
            origin: Origin::Rest,
            frames: &frames,
        };
        let _ = self
            .outbox
            .push_with(|seq| envelope::encode(&self.node, seq, app, &msg));
    }

    /// `conn` joined the presence `channel`: like [`Cluster::changed`],
    /// then the front is asked to answer it with every node's members
    /// ([`Transitions::presence_state`]).
    pub fn presence_joined(&self, app: &Arc<str>, channel: &Arc<str>, conn: &ConnRef) {
        self.pending.joined(app, channel, conn);
    }
}

/// Delivers protocol-internal `frames` to the channel's subscribers here
/// and, as an envelope, on every other node (except the socket `except`).
fn broadcast(
    hub: &Hub,
    node: &str,
    outbox: &Outbox,
    (app, channel): (&str, &str),
    frames: &Frames,
    except: Option<&str>,
) {
    if let Some(a) = hub.existing_app(app) {
        a.deliver(channel, frames, except);
    }
    remote_except(node, outbox, (app, channel), frames, except);
}

/// Delivers protocol-internal `frames` to the channel's subscribers on
/// every other node (this node's heard them already).
fn remote(node: &str, outbox: &Outbox, ch: (&str, &str), frames: &Frames) {
    remote_except(node, outbox, ch, frames, None);
}

fn remote_except(
    node: &str,
    outbox: &Outbox,
    (app, channel): (&str, &str),
    frames: &Frames,
    except: Option<&str>,
) {
    let data = bytes::Bytes::new();
    let msg = Message {
        channel,
        event: "",
        data: &data,
        kind: DataKind::Binary,
        except,
        origin: Origin::Rest,
        frames,
    };
    let _ = outbox.push_with(|seq| envelope::encode(node, seq, app, &msg));
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
