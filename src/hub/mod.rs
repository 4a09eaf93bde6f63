//! Protocol-agnostic fan-out core shared by every realtime front.
//!
//! Owns: per-app namespaces ([`AppHub`]) holding the channel registry
//! (`Arc<str>` name → subscribers), presence membership de-duplicated by user
//! id, signed-in users and watchlists, cache-channel last messages with a TTL,
//! connection counts, and the publish seam ([`observe::Observer`]) the
//! bridge and, later, other nodes hang on.
//! Receives: subscribe/unsubscribe/publish calls from fronts (Pusher,
//! Supabase) and their REST APIs, with payloads the front already serialised
//! once ([`Frames`]) and, for publishes, described as a structured
//! [`Message`]. Hands on: every published [`Message`] to the observers, the
//! same `Frame` (a shared `Bytes`) to every
//! subscriber's bounded queue with `try_send`, evicting slow consumers, and
//! *values* describing transitions (occupied/vacated, member added/removed,
//! user online/offline) which the front turns into protocol messages and
//! webhooks.
//!
//! It never parses or produces JSON and never awaits: every lock is a short
//! `parking_lot` lock, channels live in hashed shards, and the publish path
//! allocates nothing per subscriber.

mod cache;
mod channels;
pub mod observe;
mod presence;
mod users;

pub use channels::{ChannelInfo, Delivery, Joined, Left, Members, SubscribeError};
pub use observe::{DataKind, Message, Observer, Origin};
pub use presence::{Member, MemberJoin};
pub use users::{UserChange, WatchStart};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::ws::{Frame, OutboundTx};
use cache::CacheStore;
use channels::Shards;
use users::Users;

/// In-process identity of one connection, unique for the process lifetime.
pub type ConnId = u64;

/// One local connection as the hub sees it.
#[derive(Debug)]
pub struct Conn {
    /// Unique in this process.
    pub id: ConnId,
    /// The protocol-level socket id (Pusher `"123.456"`), used for
    /// "everyone except this socket" publishes.
    pub socket_id: Arc<str>,
    /// Which encoding of a [`Frames`] this socket takes (0 for fronts with one).
    pub codec: u8,
    /// The socket's bounded outbound queue.
    pub tx: OutboundTx,
}

/// A shared connection handle.
pub type ConnRef = Arc<Conn>;

/// A message serialised once per encoding, shared by every subscriber.
#[derive(Clone, Debug)]
pub enum Frames {
    /// The same frame for every codec.
    One(Frame),
    /// One frame per codec index; `None` means that codec skips the message.
    PerCodec(Arc<[Option<Frame>]>),
}

impl Frames {
    /// The frame a socket with `codec` gets.
    pub fn for_codec(&self, codec: u8) -> Option<&Frame> {
        match self {
            Frames::One(f) => Some(f),
            Frames::PerCodec(v) => v.get(usize::from(codec)).and_then(Option::as_ref),
        }
    }
}

impl From<Frame> for Frames {
    fn from(f: Frame) -> Self {
        Frames::One(f)
    }
}

/// The app's connection count is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("app is at its connection limit of {max}")]
pub struct OverQuota {
    /// The limit.
    pub max: usize,
}

/// All apps' namespaces. Cheap to share (`Arc<Hub>`).
pub struct Hub {
    apps: RwLock<HashMap<Arc<str>, Arc<AppHub>>>,
    next_conn: AtomicU64,
    observers: Observers,
}

/// Everything that sees publishes: the Pusher↔Supabase bridge today, a
/// Redis scale adapter next. Fixed when the hub is built.
type Observers = Arc<[Arc<dyn Observer>]>;

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("apps", &self.apps.read().len())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(Vec::new())
    }
}

impl Hub {
    /// A hub; each of `observers` sees every publish, in order.
    pub fn new(observers: Vec<Arc<dyn Observer>>) -> Hub {
        Hub {
            apps: RwLock::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            observers: observers.into(),
        }
    }

    /// The namespace of app `id`, created on first use.
    pub fn app(&self, id: &str) -> Arc<AppHub> {
        if let Some(app) = self.apps.read().get(id) {
            return app.clone();
        }
        let mut apps = self.apps.write();
        apps.entry(Arc::from(id))
            .or_insert_with_key(|k| {
                Arc::new(AppHub {
                    id: k.clone(),
                    channels: Shards::new(),
                    connections: AtomicUsize::new(0),
                    counts: Counts::default(),
                    users: Mutex::new(Users::default()),
                    cache: Mutex::new(CacheStore::default()),
                    observers: self.observers.clone(),
                })
            })
            .clone()
    }

    /// Every app namespace used so far (for metrics and status).
    pub fn apps(&self) -> Vec<Arc<AppHub>> {
        let mut v: Vec<_> = self.apps.read().values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The namespace of app `id` if it was ever used.
    pub fn existing_app(&self, id: &str) -> Option<Arc<AppHub>> {
        self.apps.read().get(id).cloned()
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// One app's namespace: channel "x" of app A is not channel "x" of app B.
pub struct AppHub {
    id: Arc<str>,
    channels: Shards,
    connections: AtomicUsize,
    counts: Counts,
    users: Mutex<Users>,
    cache: Mutex<CacheStore>,
    observers: Observers,
}

impl std::fmt::Debug for AppHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHub")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Message counters of one app, added to once per publish (not per
/// subscriber), read at scrape time.
#[derive(Debug, Default)]
struct Counts {
    published: AtomicU64,
    delivered: AtomicU64,
    evicted: AtomicU64,
}

impl Counts {
    fn add(&self, d: Delivery) -> Delivery {
        if d.delivered > 0 {
            self.delivered
                .fetch_add(d.delivered as u64, Ordering::Relaxed);
        }
        if d.evicted > 0 {
            self.evicted.fetch_add(d.evicted as u64, Ordering::Relaxed);
        }
        d
    }
}

/// An app's message counters since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages published into the app (client events, REST, bridged,
    /// other nodes').
    pub published: u64,
    /// Frames queued for a subscriber (application messages and protocol
    /// frames such as presence changes).
    pub delivered: u64,
    /// Frames dropped because a subscriber's queue was full (the
    /// subscriber is closed as a slow consumer).
    pub evicted: u64,
}

/// Holds one slot of an app's connection count; releases it on drop.
#[derive(Debug)]
pub struct ConnSlot {
    app: Arc<AppHub>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.app.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl AppHub {
    /// The app id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// Takes a connection slot, refusing past `max` (None = unlimited).
    pub fn connect(self: &Arc<Self>, max: Option<usize>) -> Result<ConnSlot, OverQuota> {
        let prev = self.connections.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = max
            && prev >= max
        {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(OverQuota { max });
        }
        Ok(ConnSlot { app: self.clone() })
    }

    /// Connections currently holding a slot.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Subscribes `conn` to a plain (non-presence) channel.
    pub fn subscribe(&self, channel: &str, conn: &ConnRef) -> Result<Joined, SubscribeError> {
        self.channels.subscribe(channel, conn, None)
    }

    /// Subscribes `conn` to a presence channel as `member`; at most
    /// `max_members` distinct users (None = unlimited).
    pub fn subscribe_member(
        &self,
        channel: &str,
        conn: &ConnRef,
        member: Member,
        max_members: Option<usize>,
    ) -> Result<Joined, SubscribeError> {
        self.channels
            .subscribe(channel, conn, Some((member, max_members)))
    }

    /// Removes `conn` from `channel`; `None` if it was not subscribed.
    pub fn unsubscribe(&self, channel: &str, conn: ConnId) -> Option<Left> {
        self.channels.unsubscribe(channel, conn)
    }

    /// Tells every observer about `msg`, then delivers its frames to every
    /// local subscriber of its channel except the socket `msg.except`.
    pub fn publish(&self, msg: &Message<'_>) -> Delivery {
        for o in self.observers.iter() {
            o.published(&self.id, msg);
        }
        self.counts.published.fetch_add(1, Ordering::Relaxed);
        self.counts
            .add(self.channels.publish(msg.channel, msg.frames, msg.except))
    }

    /// Message counters since the process started.
    pub fn message_counts(&self) -> MessageCounts {
        MessageCounts {
            published: self.counts.published.load(Ordering::Relaxed),
            delivered: self.counts.delivered.load(Ordering::Relaxed),
            evicted: self.counts.evicted.load(Ordering::Relaxed),
        }
    }

    /// Delivers `frames` to every local subscriber of `channel` except the
    /// socket `except`, unseen by observers: for protocol-internal frames
    /// (subscription counts, presence changes) that are not application
    /// messages.
    pub fn deliver(&self, channel: &str, frames: &Frames, except: Option<&str>) -> Delivery {
        self.counts
            .add(self.channels.publish(channel, frames, except))
    }

    /// Counts of one channel, `None` when nobody is subscribed here.
    pub fn channel_info(&self, channel: &str) -> Option<ChannelInfo> {
        self.channels.info(channel)
    }

    /// Occupied channels whose name starts with `prefix`.
    pub fn channels(&self, prefix: &str) -> Vec<ChannelInfo> {
        self.channels.list(prefix)
    }

    /// Presence members (user id, raw user info) of a channel.
    pub fn members(&self, channel: &str) -> Vec<(Arc<str>, bytes::Bytes)> {
        self.channels.members(channel)
    }

    /// Local connections subscribed to `channel`.
    pub fn subscribers(&self, channel: &str) -> Vec<ConnRef> {
        self.channels.subscribers(channel)
    }

    /// Connections that joined any presence channel as `user_id`.
    pub fn presence_conns(&self, user_id: &str) -> Vec<ConnRef> {
        self.channels.presence_conns(user_id)
    }

    /// Records `conn` as signed in as `user_id`.
    pub fn bind_user(&self, user_id: &Arc<str>, conn: &ConnRef) -> UserChange {
        self.users.lock().bind(user_id, conn)
    }

    /// Forgets that `conn` was signed in as `user_id`.
    pub fn unbind_user(&self, user_id: &str, conn: ConnId) -> UserChange {
        self.users.lock().unbind(user_id, conn)
    }

    /// Connections signed in as `user_id`.
    pub fn user_conns(&self, user_id: &str) -> Vec<ConnRef> {
        self.users.lock().conns(user_id)
    }

    /// Registers `conn` as watching `ids`; returns which of them are online.
    pub fn watch(&self, conn: &ConnRef, ids: &[Arc<str>]) -> WatchStart {
        self.users.lock().watch(conn, ids)
    }

    /// Stops `conn` watching `ids`.
    pub fn unwatch(&self, conn: ConnId, ids: &[Arc<str>]) {
        self.users.lock().unwatch(conn, ids)
    }

    /// Connections watching `user_id`.
    pub fn watchers(&self, user_id: &str) -> Vec<ConnRef> {
        self.users.lock().watchers(user_id)
    }

    /// Stores the last message of a cache channel for `ttl`.
    pub fn cache_put(&self, channel: &str, frames: Frames, ttl: Duration) {
        self.cache.lock().put(channel, frames, ttl);
    }

    /// The cached last message of a cache channel, if still fresh.
    pub fn cache_get(&self, channel: &str) -> Option<Frames> {
        self.cache.lock().get(channel)
    }

    /// Drops expired cache entries; returns how many.
    pub fn cache_sweep(&self) -> usize {
        self.cache.lock().sweep()
    }
}

#[cfg(test)]
mod tests;
