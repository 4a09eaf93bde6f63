//! Presence membership of one channel, de-duplicated by user id.
//!
//! Owns: user id → (user info, number of this channel's connections joined as
//! that user) and connection → user id. Receives: joins and leaves from the
//! channel registry. Hands on: whether a join was the user's first connection
//! ([`MemberJoin::Added`]) and whether a leave was the last (the removed user
//! id), so one user with several tabs is one member.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::ConnId;

/// A presence member as the front parsed it from `channel_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user id (Pusher allows numbers; the front stringifies them).
    pub user_id: Arc<str>,
    /// The user info exactly as the front wants to echo it (raw JSON for
    /// Pusher); the hub never looks inside.
    pub info: Bytes,
}

/// What a presence join meant for the member list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberJoin {
    /// First connection of this user: announce `member_added`.
    Added,
    /// The user was already present through another connection.
    AlreadyPresent,
}

#[derive(Default)]
pub(super) struct Presence {
    members: HashMap<Arc<str>, (Bytes, u32)>,
    by_conn: HashMap<ConnId, Arc<str>>,
}

impl Presence {
    /// Adds `conn` as `member`; `Err(max)` if a new user would exceed `max`.
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        member: Member,
        max: Option<usize>,
    ) -> Result<MemberJoin, usize> {
        let join = match self.members.get_mut(&member.user_id) {
            Some((_, n)) => {
                *n += 1;
                MemberJoin::AlreadyPresent
            }
            None => {
                if let Some(max) = max
                    && self.members.len() >= max
                {
                    return Err(max);
                }
                self.members
                    .insert(member.user_id.clone(), (member.info, 1));
                MemberJoin::Added
            }
        };
        self.by_conn.insert(conn, member.user_id);
        Ok(join)
    }

    /// Removes `conn`; returns the user id if that was its last connection.
    pub(super) fn leave(&mut self, conn: ConnId) -> Option<Arc<str>> {
        let user = self.by_conn.remove(&conn)?;
        let (_, n) = self.members.get_mut(&user)?;
        *n -= 1;
        if *n == 0 {
            self.members.remove(&user);
            Some(user)
        } else {
            None
        }
    }

    pub(super) fn user_count(&self) -> usize {
        self.members.len()
    }

    pub(super) fn snapshot(&self) -> Vec<(Arc<str>, Bytes)> {
        let mut v: Vec<_> = self
            .members
            .iter()
            .map(|(k, (info, _))| (k.clone(), info.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub(super) fn conns_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = ConnId> + 'a {
        self.by_conn
            .iter()
            .filter(move |(_, u)| ***u == *user_id)
            .map(|(c, _)| *c)
    }
}
