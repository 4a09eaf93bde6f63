//! The channel registry of one app: hashed shards of `name → Channel`.
//!
//! Owns: each channel's subscriber list (a dense `Vec` for cache-friendly
//! fan-out plus an index for O(1) removal) and its presence members.
//! Receives: subscribe/unsubscribe/publish calls from `AppHub`. Hands on:
//! frames to subscriber queues, and [`Joined`]/[`Left`] transition values.
//!
//! Lock order is always shard → channel. Subscribe and unsubscribe hold the
//! shard write lock so a channel is never removed while someone joins it;
//! publish holds the shard read lock only to clone the channel's `Arc`, then
//! the channel's read lock while it `try_send`s, never across an await.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::presence::{Member, MemberJoin, Presence};
use super::{ConnId, ConnRef, Frames};
use crate::ws::SendError;

const SHARDS: usize = 64;

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The connection is already subscribed to that channel.
    #[error("already subscribed")]
    AlreadySubscribed,
    /// The presence channel already has its maximum of distinct members.
    #[error("presence channel is full ({max} members)")]
    PresenceFull {
        /// The member limit.
        max: usize,
    },
}

/// Presence members: (user id, raw user info), sorted by id.
pub type Members = Vec<(Arc<str>, Bytes)>;

type Shard = RwLock<HashMap<Arc<str>, Arc<Channel>>>;

/// What a successful subscribe changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// This was the first subscriber: the channel became occupied.
    pub occupied: bool,
    /// Local subscribers after the join.
    pub subscription_count: usize,
    /// For presence channels: whether this was the user's first connection,
    /// and the member list as of the join (for `subscription_succeeded`).
    pub presence: Option<(MemberJoin, Members)>,
}

/// What an unsubscribe changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The last subscriber left: the channel was vacated.
    pub vacated: bool,
    /// Local subscribers after the leave.
    pub subscription_count: usize,
    /// For presence channels: the user id whose last connection left.
    pub member_removed: Option<Arc<str>>,
}

/// Counts for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Channel name.
    pub name: Arc<str>,
    /// Local subscribers.
    pub subscription_count: usize,
    /// Distinct presence members (0 for other channels).
    pub user_count: usize,
}

/// Result of one publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Sockets the frame was queued for.
    pub delivered: usize,
    /// Sockets evicted because their queue was full.
    pub evicted: usize,
}

#[derive(Default)]
struct State {
    subs: Vec<ConnRef>,
    index: HashMap<ConnId, usize>,
    presence: Presence,
}

struct Channel {
    name: Arc<str>,
    state: RwLock<State>,
}

pub(super) struct Shards {
    hasher: RandomState,
    shards: Box<[Shard]>,
}

impl Shards {
    pub(super) fn new() -> Shards {
        Shards {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, name: &str) -> &Shard {
        let i = self.hasher.hash_one(name) as usize % SHARDS;
        &self.shards[i]
    }

    fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.shard(name).read().get(name).cloned()
    }

    pub(super) fn subscribe(
        &self,
        name: &str,
        conn: &ConnRef,
        member: Option<(Member, Option<usize>)>,
    ) -> Result<Joined, SubscribeError> {
        let mut shard = self.shard(name).write();
        let channel = match shard.get(name) {
            Some(c) => c.clone(),
            None => {
                let name: Arc<str> = Arc::from(name);
                let c = Arc::new(Channel {
                    name: name.clone(),
                    state: RwLock::new(State::default()),
                });
                shard.insert(name, c.clone());
                c
            }
        };
        let mut st = channel.state.write();
        let presence = if st.index.contains_key(&conn.id) {
            Err(SubscribeError::AlreadySubscribed)
        } else {
            match member {
                Some((member, max)) => match st.presence.join(conn.id, member, max) {
                    Ok(join) => Ok(Some((join, st.presence.snapshot()))),
                    Err(max) => Err(SubscribeError::PresenceFull { max }),
                },
                None => Ok(None),
            }
        };
        let result = presence.map(|presence| {
            let idx = st.subs.len();
            st.subs.push(conn.clone());
            st.index.insert(conn.id, idx);
            Joined {
                occupied: idx == 0,
                subscription_count: st.subs.len(),
                presence,
            }
        });
        if st.subs.is_empty() {
            drop(st);
            shard.remove(name);
        }
        result
    }

    pub(super) fn unsubscribe(&self, name: &str, conn: ConnId) -> Option<Left> {
        let mut shard = self.shard(name).write();
        let channel = shard.get(name)?.clone();
        let mut st = channel.state.write();
        let idx = st.index.remove(&conn)?;
        st.subs.swap_remove(idx);
        if let Some(moved) = st.subs.get(idx) {
            let moved = moved.id;
            st.index.insert(moved, idx);
        }
        let member_removed = st.presence.leave(conn);
        let left = Left {
            vacated: st.subs.is_empty(),
            subscription_count: st.subs.len(),
            member_removed,
        };
        if left.vacated {
            drop(st);
            shard.remove(name);
        } else if st.subs.capacity() > 64 && st.subs.len() < st.subs.capacity() / 4 {
            let keep = st.subs.len() * 2;
            st.subs.shrink_to(keep);
        }
        Some(left)
    }

    pub(super) fn publish(&self, name: &str, frames: &Frames, except: Option<&str>) -> Delivery {
        let Some(channel) = self.get(name) else {
            return Delivery::default();
        };
        let st = channel.state.read();
        let mut d = Delivery::default();
        for conn in &st.subs {
            if except.is_some_and(|e| *conn.socket_id == *e) {
                continue;
            }
            let Some(frame) = frames.for_codec(conn.codec) else {
                continue;
            };
            match conn.tx.try_send(frame.clone()) {
                Ok(()) => d.delivered += 1,
                Err(SendError::Full { .. }) => {
                    conn.tx.evict_slow();
                    d.evicted += 1;
                }
                Err(SendError::Closed) => {}
            }
        }
        d
    }

    pub(super) fn info(&self, name: &str) -> Option<ChannelInfo> {
        let channel = self.get(name)?;
        let st = channel.state.read();
        Some(ChannelInfo {
            name: channel.name.clone(),
            subscription_count: st.subs.len(),
            user_count: st.presence.user_count(),
        })
    }

    pub(super) fn list(&self, prefix: &str) -> Vec<ChannelInfo> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let channels: Vec<Arc<Channel>> = shard
                .read()
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, c)| c.clone())
                .collect();
            for c in channels {
                let st = c.state.read();
                if !st.subs.is_empty() {
                    out.push(ChannelInfo {
                        name: c.name.clone(),
                        subscription_count: st.subs.len(),
                        user_count: st.presence.user_count(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub(super) fn members(&self, name: &str) -> Vec<(Arc<str>, Bytes)> {
        self.get(name)
            .map(|c| c.state.read().presence.snapshot())
            .unwrap_or_default()
    }

    pub(super) fn subscribers(&self, name: &str) -> Vec<ConnRef> {
        self.get(name)
            .map(|c| c.state.read().subs.clone())
            .unwrap_or_default()
    }

    pub(super) fn presence_conns(&self, user_id: &str) -> Vec<ConnRef> {
        let mut out: Vec<ConnRef> = Vec::new();
        for shard in self.shards.iter() {
            let channels: Vec<Arc<Channel>> = shard.read().values().cloned().collect();
            for c in channels {
                let st = c.state.read();
                for id in st.presence.conns_of(user_id) {
                    if let Some(&i) = st.index.get(&id)
                        && !out.iter().any(|o| o.id == id)
                    {
                        out.push(st.subs[i].clone());
                    }
                }
            }
        }
        out
    }
}
