//! The node's share of the cluster-wide state in Redis: its lease, its
//! per-channel subscription counts and presence members, and the reaping
//! of dead nodes.
//!
//! Owns: the state connection (one multiplexed connection, also lent to
//! the REST views), the queue of channels whose local state changed
//! ([`Pending`]), and the mirror of what this node last wrote for each
//! channel. Receives: "channel changed" and "socket joined a presence
//! channel" notes from the front ([`Cluster::changed`](super::Cluster::changed),
//! [`Cluster::presence_joined`](super::Cluster::presence_joined)), which
//! never wait; the local truth is read from the hub. Hands on: the
//! decisions of the scripts ([`super::scripts`]) to the front through
//! [`Transitions`], and the frames the front makes for them to every node.
//!
//! Writes are diffs against the mirror, one channel at a time, in the
//! order removals, count, additions (so `member_removed` comes before
//! `channel_vacated` and `channel_occupied` before `member_added`). After
//! an outage the node first writes its mirror again (its fields are keyed
//! by node id, so this is idempotent, and silent), then goes on with what
//! changed meanwhile. Every heartbeat renews the lease and looks for
//! nodes whose lease is gone; on drain the node reaps itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::Notify;

use super::backoff::Backoff;
use super::entries::{Entries, EntriesAnswer};
use super::keys::{self, Keys};
use super::outbox::Outbox;
use super::publisher::TIMEOUT;
use super::scripts::{self, Occupancy};
use super::transitions::Transitions;
use super::{Members, broadcast, remote};
use crate::hub::{ConnRef, Hub, Member};
use crate::shutdown::Shutdown;

/// How many leases a reaped node's tombstone outlives the reaping (a node
/// stopped longer than this comes back without knowing it was reaped).
const REAPED_FOR: u64 = 100;

/// An (app, hub channel) pair.
pub(crate) type ChanKey = (Arc<str>, Arc<str>);

/// One note from the front.
enum Op {
    /// The channel's local state changed.
    Changed(ChanKey),
    /// `conn` joined the presence channel and waits for its member list.
    Joined(ChanKey, ConnRef),
    /// The channel's local presence entries changed.
    Entries(ChanKey),
    /// A socket joined the channel and waits for every node's entries.
    EntriesState(ChanKey, EntriesAnswer),
}

/// Notes not yet handled; a channel is queued once however often it
/// changed.
#[derive(Default)]
pub(crate) struct Pending {
    queue: Mutex<(VecDeque<Op>, HashSet<ChanKey>)>,
    /// Channels with an [`Op::Entries`] queued.
    entries: Mutex<HashSet<ChanKey>>,
    ready: Notify,
}

impl Pending {
    pub(crate) fn changed(&self, app: &Arc<str>, channel: &Arc<str>) {
        let key = (app.clone(), channel.clone());
        let mut q = self.queue.lock();
        if q.1.insert(key.clone()) {
            q.0.push_back(Op::Changed(key));
            drop(q);
            self.ready.notify_one();
        }
    }

    pub(crate) fn joined(&self, app: &Arc<str>, channel: &Arc<str>, conn: &ConnRef) {
        let key = (app.clone(), channel.clone());
        let mut q = self.queue.lock();
        q.1.insert(key.clone());
        q.0.push_back(Op::Joined(key, conn.clone()));
        drop(q);
        self.ready.notify_one();
    }

    pub(crate) fn entries_changed(&self, app: &Arc<str>, channel: &Arc<str>) {
        let key = (app.clone(), channel.clone());
        if self.entries.lock().insert(key.clone()) {
            self.queue.lock().0.push_back(Op::Entries(key));
            self.ready.notify_one();
        }
    }

    pub(crate) fn entries_state(&self, app: &Arc<str>, channel: &Arc<str>, answer: EntriesAnswer) {
        let key = (app.clone(), channel.clone());
        self.entries.lock().insert(key.clone());
        self.queue.lock().0.push_back(Op::EntriesState(key, answer));
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Op> {
        self.queue.lock().0.pop_front()
    }

    /// Whether the channel still has a note; clears it.
    fn clear(&self, key: &ChanKey) -> bool {
        self.queue.lock().1.remove(key)
    }

    /// Queues the channel's entries again (their write failed).
    fn retry_entries(&self, key: ChanKey) {
        if self.entries.lock().insert(key.clone()) {
            self.queue.lock().0.push_front(Op::Entries(key));
        }
    }

    /// Queues the channel again (its write failed).
    fn retry(&self, key: ChanKey) {
        let mut q = self.queue.lock();
        if q.1.insert(key.clone()) {
            q.0.push_front(Op::Changed(key));
        }
    }
}

/// What this node last wrote for one channel.
#[derive(Default, Clone)]
struct Written {
    count: usize,
    users: HashMap<Arc<str>, Bytes>,
}

/// The state task and what it shares.
pub(crate) struct State {
    pub(crate) client: Client,
    pub(crate) node: Arc<str>,
    pub(crate) keys: Keys,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) hub: Weak<Hub>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) pending: Arc<Pending>,
    pub(crate) transitions: Arc<OnceLock<Arc<dyn Transitions>>>,
    /// The connection while it is up, for the REST views.
    pub(crate) conn: Arc<Mutex<Option<MultiplexedConnection>>>,
    pub(crate) shutdown: Shutdown,
    /// The front whose presence is per-socket entries, if any.
    pub(crate) entries: Arc<OnceLock<Arc<dyn Entries>>>,
    mirror: HashMap<ChanKey, Written>,
    /// What this node last wrote of each channel's entries: id → bytes.
    entry_mirror: HashMap<ChanKey, HashMap<Arc<str>, Bytes>>,
}

/// The local subscription count and members of a channel.
fn local(hub: &Hub, (app, channel): &ChanKey) -> (usize, Members) {
    match hub.existing_app(app) {
        Some(a) => (
            a.channel_info(channel).map_or(0, |c| c.subscription_count),
            a.members(channel),
        ),
        None => (0, Vec::new()),
    }
}

impl State {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: Client,
        node: Arc<str>,
        keys: Keys,
        (lease, heartbeat): (Duration, Duration),
        hub: Weak<Hub>,
        outbox: Arc<Outbox>,
        pending: Arc<Pending>,
        transitions: Arc<OnceLock<Arc<dyn Transitions>>>,
        conn: Arc<Mutex<Option<MultiplexedConnection>>>,
        shutdown: Shutdown,
        entries: Arc<OnceLock<Arc<dyn Entries>>>,
    ) -> State {
        State {
            client,
            node,
            keys,
            lease,
            heartbeat,
            hub,
            outbox,
            pending,
            transitions,
            conn,
            shutdown,
            entries,
            mirror: HashMap::new(),
            entry_mirror: HashMap::new(),
        }
    }

    /// Runs until the drain signal (then reaps this node), reconnecting
    /// with backoff.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::default();
        let sd = self.shutdown.clone();
        loop {
            let cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            let conn = tokio::select! {
                c = self.client.get_multiplexed_async_connection_with_config(&cfg) => c,
                _ = sd.draining() => return,
            };
            let e = match conn {
                Ok(mut conn) => {
                    backoff.reset();
                    *self.conn.lock() = Some(conn.clone());
                    match self.serve(&mut conn).await {
                        // A hand-over (binary upgrade) leaves the node's
                        // state to the new process of the same node id.
                        Ok(()) if self.shutdown.is_handover() => {
                            *self.conn.lock() = None;
                            return;
                        }
                        Ok(()) => {
                            let _ = tokio::time::timeout(TIMEOUT, self.leave(&mut conn)).await;
                            *self.conn.lock() = None;
                            return;
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            *self.conn.lock() = None;
            tracing::debug!(error = %e, "cluster: state connection lost");
            // Sockets joining meanwhile get the local members at once.
            let wait = tokio::time::sleep(backoff.delay());
            tokio::pin!(wait);
            loop {
                self.answer_locally();
                tokio::select! {
                    _ = &mut wait => break,
                    _ = self.pending.ready.notified() => {}
                    _ = sd.draining() => return,
                }
            }
        }
    }

    /// Answers queued presence joins with the local members (Redis is
    /// away); their channels stay queued.
    fn answer_locally(&self) {
        let (Some(hub), Some(t)) = (self.hub.upgrade(), self.transitions.get()) else {
            return;
        };
        let mut q = self.pending.queue.lock();
        let ops: Vec<Op> = q.0.drain(..).collect();
        for op in ops {
            match op {
                Op::Joined(key, conn) => {
                    let members = hub
                        .existing_app(&key.0)
                        .map(|a| a.members(&key.1))
                        .unwrap_or_default();
                    t.presence_state(&key.0, &key.1, &conn, &members);
                    q.0.push_back(Op::Changed(key));
                }
                Op::EntriesState(key, answer) => {
                    answer(None);
                    q.0.push_back(Op::Entries(key));
                }
                op => q.0.push_back(op),
            }
        }
    }

    /// Serves until the connection fails (`Err`) or the drain (`Ok`).
    async fn serve(&mut self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        if self.heartbeat(conn).await? {
            self.announce_again();
        }
        self.rewrite(conn).await?;
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.reset();
        loop {
            while let Some(op) = self.pending.take() {
                self.handle(conn, op).await?;
            }
            tokio::select! {
                _ = self.pending.ready.notified() => {}
                _ = tick.tick() => if self.heartbeat(conn).await? {
                    self.announce_again();
                },
                _ = self.shutdown.draining() => return Ok(()),
            }
        }
    }

    /// This node was reaped while alive (its lease ran out, e.g. it was
    /// stopped): the others announced its members gone, so everything it
    /// holds is written again as new, announced like fresh joins.
    fn announce_again(&mut self) {
        tracing::warn!(node = %self.node, "cluster: this node was reaped while alive (its lease ran out); announcing its members again");
        for (app, channel) in std::mem::take(&mut self.mirror).into_keys() {
            self.pending.changed(&app, &channel);
        }
        for (app, channel) in std::mem::take(&mut self.entry_mirror).into_keys() {
            self.pending.entries_changed(&app, &channel);
        }
    }

    async fn handle(&mut self, conn: &mut MultiplexedConnection, op: Op) -> Result<(), RedisError> {
        let (key, joined) = match op {
            Op::Changed(key) => (key, None),
            Op::Joined(key, c) => (key, Some(c)),
            Op::Entries(key) => return self.handle_entries(conn, key, None).await,
            Op::EntriesState(key, a) => return self.handle_entries(conn, key, Some(a)).await,
        };
        let dirty = self.pending.clear(&key);
        if dirty || joined.is_some() {
            let except = joined.as_ref().map(|c| c.socket_id.clone());
            if let Err(e) = self.flush(conn, &key, except.as_deref()).await {
                self.pending.retry(key.clone());
                if let Some(c) = joined {
                    self.pending.joined(&key.0, &key.1, &c);
                }
                return Err(e);
            }
        }
        if let Some(c) = joined {
            let members = match members(conn, &self.keys, &key.0, &key.1).await {
                Ok(m) => m,
                Err(e) => {
                    self.pending.joined(&key.0, &key.1, &c);
                    return Err(e);
                }
            };
            if let Some(t) = self.transitions.get() {
                t.presence_state(&key.0, &key.1, &c, &members);
            }
        }
        Ok(())
    }

    /// Writes the channel's entries if they changed; answers a waiting
    /// socket with every node's.
    async fn handle_entries(
        &mut self,
        conn: &mut MultiplexedConnection,
        key: ChanKey,
        answer: Option<EntriesAnswer>,
    ) -> Result<(), RedisError> {
        let dirty = self.pending.entries.lock().remove(&key);
        if dirty && let Err(e) = self.flush_entries(conn, &key).await {
            self.requeue_entries(key, answer);
            return Err(e);
        }
        if let Some(answer) = answer {
            match scripts::all_entries(conn, &self.keys, (&key.0, &key.1)).await {
                Ok(all) => answer(Some(all.into_iter().map(Bytes::from).collect())),
                Err(e) => {
                    self.requeue_entries(key, Some(answer));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn requeue_entries(&self, key: ChanKey, answer: Option<EntriesAnswer>) {
        match answer {
            Some(a) => self.pending.entries_state(&key.0, &key.1, a),
            None => self.pending.retry_entries(key),
        }
    }

    /// Writes the channel's local entries as a diff against the mirror and
    /// sends the other nodes the frames announcing it (this node's
    /// subscribers heard it from the front already).
    async fn flush_entries(
        &mut self,
        conn: &mut MultiplexedConnection,
        key: &ChanKey,
    ) -> Result<(), RedisError> {
        let Some(front) = self.entries.get() else {
            return Ok(());
        };
        let now: HashMap<Arc<str>, Bytes> = front.local(&key.0, &key.1).into_iter().collect();
        let w = self.entry_mirror.entry(key.clone()).or_default();
        let leaves: Vec<(Arc<str>, Bytes)> = w
            .iter()
            .filter(|(id, _)| !now.contains_key(*id))
            .map(|(id, b)| (id.clone(), b.clone()))
            .collect();
        let joins: Vec<(Arc<str>, Bytes)> = now
            .iter()
            .filter(|(id, _)| !w.contains_key(*id))
            .map(|(id, b)| (id.clone(), b.clone()))
            .collect();
        if leaves.is_empty() && joins.is_empty() {
            if w.is_empty() {
                self.entry_mirror.remove(key);
            }
            return Ok(());
        }
        let ch = (&*key.0, &*key.1);
        let new: Vec<(&str, &[u8])> = joins.iter().map(|(i, b)| (&**i, &b[..])).collect();
        let gone: Vec<&str> = leaves.iter().map(|(i, _)| &**i).collect();
        scripts::entries(
            conn,
            &self.keys,
            &self.node,
            ch,
            (&new, &gone),
            now.is_empty(),
        )
        .await?;
        let (jb, lb): (Vec<Bytes>, Vec<Bytes>) = (
            joins.into_iter().map(|(_, b)| b).collect(),
            leaves.into_iter().map(|(_, b)| b).collect(),
        );
        if now.is_empty() {
            self.entry_mirror.remove(key);
        } else {
            *w = now;
        }
        if let Some(f) = front.diff(ch.0, ch.1, &jb, &lb) {
            remote(&self.node, &self.outbox, ch, &f);
        }
        Ok(())
    }

    /// Writes the channel's local state as a diff against the mirror and
    /// announces what the scripts decided.
    async fn flush(
        &mut self,
        conn: &mut MultiplexedConnection,
        key: &ChanKey,
        except: Option<&str>,
    ) -> Result<(), RedisError> {
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        let (count, now) = local(&hub, key);
        let now: HashMap<Arc<str>, Bytes> = now.into_iter().collect();
        let ch = (&*key.0, &*key.1);
        let w = self.mirror.entry(key.clone()).or_default();
        let gone: Vec<Arc<str>> = w
            .users
            .keys()
            .filter(|u| !now.contains_key(*u))
            .cloned()
            .collect();
        for u in gone {
            let removed = scripts::leave(conn, &self.keys, &self.node, ch, &u).await?;
            w.users.remove(&u);
            if removed {
                removed_member(&self.transitions, &hub, &self.node, &self.outbox, ch, &u);
            }
        }
        if count != w.count {
            let occ = scripts::count(conn, &self.keys, &self.node, ch, count).await?;
            w.count = count;
            occupancy(&self.transitions, ch, occ);
        }
        for (u, info) in now {
            if w.users.contains_key(&u) {
                continue;
            }
            let added = scripts::join(conn, &self.keys, &self.node, ch, (&*u, &info[..])).await?;
            w.users.insert(u.clone(), info.clone());
            if added && let Some(t) = self.transitions.get() {
                let m = Member { user_id: u, info };
                if let Some(f) = t.member_added(ch.0, ch.1, &m) {
                    broadcast(&hub, &self.node, &self.outbox, ch, &f, except);
                }
            }
        }
        if w.count == 0 && w.users.is_empty() {
            self.mirror.remove(key);
        }
        Ok(())
    }

    /// After a (re)connect: writes the mirror again, silently.
    async fn rewrite(&mut self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        for ((app, channel), w) in &self.mirror {
            let ch = (&**app, &**channel);
            scripts::count(conn, &self.keys, &self.node, ch, w.count).await?;
            for (u, info) in &w.users {
                scripts::join(conn, &self.keys, &self.node, ch, (&**u, &info[..])).await?;
            }
        }
        for ((app, channel), w) in &self.entry_mirror {
            let new: Vec<(&str, &[u8])> = w.iter().map(|(i, b)| (&**i, &b[..])).collect();
            let ch = (&**app, &**channel);
            scripts::entries(conn, &self.keys, &self.node, ch, (&new, &[]), false).await?;
        }
        Ok(())
    }

    /// Renews the lease and reaps the nodes whose lease is gone; true when
    /// another node had reaped this one.
    async fn heartbeat(&mut self, conn: &mut MultiplexedConnection) -> Result<bool, RedisError> {
        let ms = self.lease.as_millis() as u64;
        let (reaped, nodes): (i64, Vec<String>) = redis::pipe()
            .cmd("DEL")
            .arg(self.keys.reaped(&self.node))
            .cmd("SET")
            .arg(self.keys.lease(&self.node))
            .arg(1)
            .arg("PX")
            .arg(ms)
            .ignore()
            .cmd("SADD")
            .arg(self.keys.nodes())
            .arg(&*self.node)
            .ignore()
            .cmd("SMEMBERS")
            .arg(self.keys.nodes())
            .query_async(conn)
            .await?;
        for other in nodes.iter().filter(|n| **n != *self.node) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.keys.lease(other))
                .query_async(conn)
                .await?;
            if alive {
                continue;
            }
            let locked: Option<String> = redis::cmd("SET")
                .arg(self.keys.reap(other))
                .arg(&*self.node)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(conn)
                .await?;
            if locked.is_some() {
                tracing::info!(node = %other, reaper = %self.node, "cluster: a node's lease expired; reaping its members and subscriptions");
                redis::cmd("SET")
                    .arg(self.keys.reaped(other))
                    .arg(&*self.node)
                    .arg("PX")
                    .arg(ms.saturating_mul(REAPED_FOR))
                    .query_async::<()>(conn)
                    .await?;
                self.reap(conn, other).await?;
            }
        }
        Ok(reaped > 0)
    }

    /// Removes every field of `node` and announces what that changed.
    async fn reap(&self, conn: &mut MultiplexedConnection, node: &str) -> Result<(), RedisError> {
        let held: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.held(node))
            .query_async(conn)
            .await?;
        let hub = self.hub.upgrade();
        for entry in &held {
            let Some(ch) = keys::split_held(entry) else {
                continue;
            };
            let (vacated, users) = scripts::reap(conn, &self.keys, node, ch).await?;
            if let Some(hub) = &hub {
                for u in &users {
                    removed_member(&self.transitions, hub, &self.node, &self.outbox, ch, u);
                }
            }
            if vacated {
                occupancy(&self.transitions, ch, Occupancy::Vacated);
            }
            let gone = scripts::reap_entries(conn, &self.keys, node, ch).await?;
            if !gone.is_empty()
                && let (Some(hub), Some(front)) = (&hub, self.entries.get())
            {
                let gone: Vec<Bytes> = gone.into_iter().map(Bytes::from).collect();
                if let Some(f) = front.diff(ch.0, ch.1, &[], &gone) {
                    broadcast(hub, &self.node, &self.outbox, ch, &f, None);
                }
            }
        }
        redis::pipe()
            .cmd("DEL")
            .arg(self.keys.held(node))
            .ignore()
            .cmd("SREM")
            .arg(self.keys.nodes())
            .arg(node)
            .ignore()
            .query_async::<()>(conn)
            .await
    }

    /// On drain: gives up the lease and reaps this node's own fields, so
    /// the others hear the removals at once instead of after the lease.
    async fn leave(&mut self, conn: &mut MultiplexedConnection) {
        let r = async {
            redis::cmd("DEL")
                .arg(self.keys.lease(&self.node))
                .query_async::<()>(conn)
                .await?;
            self.reap(conn, &self.node).await
        };
        if let Err(e) = r.await {
            tracing::debug!(error = %e, "cluster: could not remove this node's state; the others reap it after the lease");
        }
        self.mirror.clear();
        self.entry_mirror.clear();
    }
}

fn occupancy(t: &OnceLock<Arc<dyn Transitions>>, (app, channel): (&str, &str), o: Occupancy) {
    let Some(t) = t.get() else { return };
    match o {
        Occupancy::Occupied => t.occupied(app, channel),
        Occupancy::Vacated => t.vacated(app, channel),
        Occupancy::Unchanged => {}
    }
}

fn removed_member(
    t: &OnceLock<Arc<dyn Transitions>>,
    hub: &Hub,
    node: &str,
    outbox: &Outbox,
    ch: (&str, &str),
    user: &str,
) {
    if let Some(t) = t.get()
        && let Some(f) = t.member_removed(ch.0, ch.1, user)
    {
        broadcast(hub, node, outbox, ch, &f, None);
    }
}

/// The cluster-wide members of a channel, sorted by user id.
pub(crate) async fn members(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    app: &str,
    channel: &str,
) -> Result<Members, RedisError> {
    let all: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(k.presence(app, channel))
        .query_async(conn)
        .await?;
    let mut by_user: HashMap<String, Vec<u8>> = HashMap::new();
    for (f, info) in all {
        if let Some(u) = keys::field_user(&f) {
            by_user.entry(u.to_string()).or_insert(info);
        }
    }
    let mut out: Members = by_user
        .into_iter()
        .map(|(u, i)| (Arc::from(u), Bytes::from(i)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
