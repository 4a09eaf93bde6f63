//! The publish seam: what the hub tells the parts above it (the
//! Pusher↔Supabase bridge today, a Redis scale adapter next) about every
//! message published through [`AppHub::publish`](super::AppHub::publish).
//!
//! Owns: the [`Observer`] trait and the structured [`Message`] observers
//! receive — channel, event name, data (a shared [`Bytes`], never copied),
//! how to read the data ([`DataKind`]), the excluded socket, where the
//! message came from ([`Origin`]) and the frames already encoded for local
//! delivery. Receives: nothing; the hub holds a list of observers fixed when
//! it is built ([`Hub::new`](super::Hub::new)). Hands on: every
//! [`AppHub::publish`](super::AppHub::publish) to every observer, in order,
//! before local delivery and without holding any hub lock.
//!
//! Protocol-internal frames (subscription counts, presence diffs, member
//! added/removed) go through [`AppHub::deliver`](super::AppHub::deliver),
//! which observers never see.
//!
//! # Exactly once
//!
//! An observer acts on a message where it entered the system and only
//! there, so each node and each front applies it once:
//!
//! - [`Origin::Socket`] and [`Origin::Rest`] messages entered on this node;
//!   the bridge maps them to the other front, a scale adapter sends them on.
//! - [`Origin::Bridge`] messages are the bridge's own republishes: the bridge
//!   ignores them (no echo loop); a scale adapter sends them on like any
//!   local message, and no other node bridges them again.
//! - [`Origin::Node`] messages came from another node: they are delivered
//!   here and every observer ignores them (the other node already bridged
//!   and sent them).
//!
//! The message never needs parsing: [`Message::frames`] is only for
//! re-delivery (e.g. on another node), the meaning is in the other fields.

use bytes::Bytes;

use super::Frames;

/// Where a published message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A local client's event; the protocol-level id of its socket.
    Socket(&'a str),
    /// A publish through a front's REST/HTTP API.
    Rest,
    /// Republished by the bridge from the other front.
    Bridge,
    /// Another node, by its id (a scale adapter's injection).
    Node(&'a str),
}

impl Origin<'_> {
    /// Whether the message entered the system on this node from a client or
    /// an API call (not a republish, not another node).
    pub fn is_entry(&self) -> bool {
        matches!(self, Origin::Socket(_) | Origin::Rest)
    }
}

/// How a message's `data` is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// UTF-8 text, not necessarily JSON (a Pusher REST event's data string).
    Text,
    /// JSON text.
    Json,
    /// Opaque bytes.
    Binary,
}

/// One published message, as the fronts describe it to the hub.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The hub channel (in the namespace of the app it is published on).
    pub channel: &'a str,
    /// The application event name (empty when the message has none).
    pub event: &'a str,
    /// The event's data; clone it (a reference count) to keep it.
    pub data: &'a Bytes,
    /// How `data` is to be read.
    pub kind: DataKind,
    /// The socket that must not receive it, if any.
    pub except: Option<&'a str>,
    /// Where it came from.
    pub origin: Origin<'a>,
    /// The message serialised once per encoding, for local delivery.
    pub frames: &'a Frames,
}

/// Sees every [`AppHub::publish`](super::AppHub::publish).
pub trait Observer: Send + Sync {
    /// `msg` was published in the namespace of `app`. Called before local
    /// delivery and without hub locks held; must not block (queue and
    /// return). Publishing from here is allowed: the nested publish is seen
    /// by every observer again, so mark it ([`Origin::Bridge`]) and ignore
    /// what you marked.
    fn published(&self, app: &str, msg: &Message<'_>);
}
