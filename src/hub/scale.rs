//! The seam to other nodes (a future Redis scale adapter) and to the other
//! front (the Pusher↔Supabase bridge): the hub holds a list of these
//! observers, fixed at build time.
//!
//! Owns: nothing yet. Receives: every local publish through
//! [`ScaleAdapter::local_publish`] (called before local delivery, without
//! holding any hub lock). Hands on: remote publishes are injected by the
//! adapter with `AppHub::publish_remote`, which delivers locally and does not
//! echo back to the adapter.

use super::Frames;

/// Receives local publishes so they can be sent to other nodes.
pub trait ScaleAdapter: Send + Sync {
    /// A publish was made on this node. Must not block: queue and return.
    fn local_publish(&self, app: &str, channel: &str, frames: &Frames, except: Option<&str>);
}
