//! Last-message store of cache channels, with a TTL.
//!
//! Owns: channel name → (frames of the last published event, expiry). It is
//! independent of subscribers, so a message published while nobody listens is
//! still served to the next subscriber (unlike Reverb). Receives: puts from the
//! publish path, gets on subscribe and from the REST channel info. Hands on:
//! the cached [`Frames`] for replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Frames;

#[derive(Default)]
pub(super) struct CacheStore {
    entries: HashMap<Arc<str>, (Frames, Instant)>,
}

impl CacheStore {
    pub(super) fn put(&mut self, channel: &str, frames: Frames, ttl: Duration) {
        let expires = Instant::now() + ttl;
        match self.entries.get_mut(channel) {
            Some(e) => *e = (frames, expires),
            None => {
                self.entries.insert(Arc::from(channel), (frames, expires));
            }
        }
    }

    pub(super) fn get(&mut self, channel: &str) -> Option<Frames> {
        let (frames, expires) = self.entries.get(channel)?;
        if *expires <= Instant::now() {
            self.entries.remove(channel);
            return None;
        }
        Some(frames.clone())
    }

    pub(super) fn sweep(&mut self) -> usize {
        let now = Instant::now();
        let before = self.entries.len();
        self.entries.retain(|_, (_, exp)| *exp > now);
        before - self.entries.len()
    }
}
