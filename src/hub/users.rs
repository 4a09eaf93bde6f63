//! Signed-in users and watchlists of one app.
//!
//! Owns: user id → connections signed in as that user, and user id →
//! connections watching that user. Receives: bind/unbind on sign-in and
//! disconnect, watch/unwatch from the front. Hands on: online/offline
//! transitions ([`UserChange`]) — first connection of a user and last one
//! leaving — plus who to tell about them and who to terminate.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ConnId, ConnRef};

/// What a bind or unbind meant for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// First connection of the user: it is now online.
    Online,
    /// The last connection of the user left: it is now offline.
    Offline,
    /// Nothing changed for watchers.
    Unchanged,
}

/// What a new watcher learns at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStart {
    /// The watched user ids that are online now.
    pub online: Vec<Arc<str>>,
}

#[derive(Default)]
pub(super) struct Users {
    signed_in: HashMap<Arc<str>, Vec<ConnRef>>,
    watched_by: HashMap<Arc<str>, Vec<ConnRef>>,
}

impl Users {
    pub(super) fn bind(&mut self, user_id: &Arc<str>, conn: &ConnRef) -> UserChange {
        let conns = self.signed_in.entry(user_id.clone()).or_default();
        if conns.iter().any(|c| c.id == conn.id) {
            return UserChange::Unchanged;
        }
        conns.push(conn.clone());
        if conns.len() == 1 {
            UserChange::Online
        } else {
            UserChange::Unchanged
        }
    }

    pub(super) fn unbind(&mut self, user_id: &str, conn: ConnId) -> UserChange {
        let Some(conns) = self.signed_in.get_mut(user_id) else {
            return UserChange::Unchanged;
        };
        let before = conns.len();
        conns.retain(|c| c.id != conn);
        if conns.is_empty() {
            self.signed_in.remove(user_id);
            if before > 0 {
                return UserChange::Offline;
            }
        }
        UserChange::Unchanged
    }

    pub(super) fn conns(&self, user_id: &str) -> Vec<ConnRef> {
        self.signed_in.get(user_id).cloned().unwrap_or_default()
    }

    pub(super) fn watch(&mut self, conn: &ConnRef, ids: &[Arc<str>]) -> WatchStart {
        let mut online = Vec::new();
        for id in ids {
            let w = self.watched_by.entry(id.clone()).or_default();
            if !w.iter().any(|c| c.id == conn.id) {
                w.push(conn.clone());
            }
            if self.signed_in.contains_key(id) {
                online.push(id.clone());
            }
        }
        WatchStart { online }
    }

    pub(super) fn unwatch(&mut self, conn: ConnId, ids: &[Arc<str>]) {
        for id in ids {
            if let Some(w) = self.watched_by.get_mut(id) {
                w.retain(|c| c.id != conn);
                if w.is_empty() {
                    self.watched_by.remove(id);
                }
            }
        }
    }

    pub(super) fn watchers(&self, user_id: &str) -> Vec<ConnRef> {
        self.watched_by.get(user_id).cloned().unwrap_or_default()
    }
}
