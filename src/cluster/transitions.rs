//! The seam through which the cluster's cluster-wide decisions reach the
//! front that speaks the protocol.
//!
//! Owns: the [`Transitions`] trait. The cluster decides (in Redis, once
//! for the whole cluster) that a channel became occupied or vacated and
//! that a user became or stopped being a presence member; it knows no
//! protocol, so it asks the front, through this trait, for the webhooks
//! and for the frames to deliver on every node.

use crate::hub::{ConnRef, Frames, Member, Members, Message};

/// What a front does with the cluster's decisions. Called on the one node
/// that took the decision (so each happens once cluster-wide), from the
/// cluster's state task; must not block.
pub trait Transitions: Send + Sync {
    /// The channel's first subscriber anywhere joined.
    fn occupied(&self, app: &str, channel: &str);
    /// The channel's last subscriber anywhere left.
    fn vacated(&self, app: &str, channel: &str);
    /// `member` became a member of the channel (its first socket anywhere
    /// joined). Returns the frames for the channel's subscribers on every
    /// node, if the front has any.
    fn member_added(&self, app: &str, channel: &str, member: &Member) -> Option<Frames>;
    /// `user_id` stopped being a member (its last socket anywhere left, or
    /// its node died). Returns the frames for every node's subscribers.
    fn member_removed(&self, app: &str, channel: &str, user_id: &str) -> Option<Frames>;
    /// `conn` joined the presence channel; `members` is the cluster-wide
    /// membership (it included). The front answers the socket.
    fn presence_state(&self, app: &str, channel: &str, conn: &ConnRef, members: &Members);
    /// Another node was asked to close every connection of `user_id`
    /// ([`Cluster::terminate_user`](super::Cluster::terminate_user)): close
    /// this node's.
    fn terminate(&self, app: &str, user_id: &str);
    /// Another node's application message arrived (before it is delivered
    /// here): the front keeps what it keeps of its own publishes (a cache
    /// channel's last event). Called for every received message; must be
    /// cheap.
    fn remote_published(&self, app: &str, msg: &Message<'_>);
}
