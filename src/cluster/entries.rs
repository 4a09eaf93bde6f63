//! The seam through which a front shares per-socket presence entries
//! across nodes (Phoenix presence: one meta per tracking socket).
//!
//! Owns: the [`Entries`] trait and the shape of an entry: an id unique on
//! its node and opaque bytes the front alone reads. Receives: nothing; the
//! front installs itself ([`Cluster::set_entries`](super::Cluster::set_entries)).
//! Hands on: the cluster asks the front for this node's entries of a
//! channel (the local truth), and for the frames that announce entries
//! that appeared or went on any node; it stores every node's entries in
//! Redis (`entries:{a}:{c}`, field `{node}|{id}`) and answers a joining
//! socket with all of them ([`Cluster::entries_state`](super::Cluster::entries_state)).
//!
//! Unlike Pusher members, entries are never merged across nodes: each one
//! belongs to one socket, so there is no first-join / last-leave decision,
//! only "these appeared, these went" — announced by the node that wrote
//! them, or by the node that reaped a dead one.

use std::sync::Arc;

use bytes::Bytes;

use crate::hub::Frames;

/// One entry of this node: (id unique on this node, the front's bytes).
pub type Entry = (Arc<str>, Bytes);

/// What the cluster answers a joining socket with: every node's entries of
/// the channel, or `None` while Redis is away (the front then answers with
/// this node's own).
pub type EntriesAnswer = Box<dyn FnOnce(Option<Vec<Bytes>>) + Send>;

/// A front whose presence is a set of per-socket entries.
pub trait Entries: Send + Sync {
    /// This node's entries of the channel now.
    fn local(&self, app: &str, channel: &str) -> Vec<Entry>;
    /// `joins` appeared and `leaves` went (on any node): the frames for the
    /// channel's subscribers, if the front has any.
    fn diff(&self, app: &str, channel: &str, joins: &[Bytes], leaves: &[Bytes]) -> Option<Frames>;
}
