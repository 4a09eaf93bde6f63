//! The subscribing task of a node: envelopes from the other nodes, out of
//! Redis and into the local hub.
//!
//! Owns: the subscribed connection (`SUBSCRIBE {prefix}:events`), its
//! health check (a `PING` every [`PING_EVERY`]: a subscription that went
//! silent without the socket closing is noticed and redone, never left
//! deaf) and its reconnects, and the last sequence number seen per node.
//! Receives: Redis messages. Hands on: each other node's envelope, once,
//! to [`AppHub::publish`](crate::hub::AppHub::publish) with
//! [`Origin::Node`](crate::hub::Origin::Node), which delivers it to the
//! local subscribers (except the excluded socket) and which every observer
//! ignores — so it is never sent on again. This node's own envelopes are
//! ignored by node id; a repeated or older sequence number of a node (a
//! batch sent again after a failure) is ignored too.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::Client;

use super::backoff::Backoff;
use super::envelope;
use super::link::{Conn, Link};
use super::publisher::TIMEOUT;
use super::transitions::Transitions;
use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// How often the subscribed connection is checked.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A node not heard from for this long is forgotten (its sequence).
const FORGET: Duration = Duration::from_secs(600);

/// The last sequence number seen per sending node.
#[derive(Debug, Default)]
pub(super) struct Seen {
    nodes: HashMap<Box<str>, (u64, Instant)>,
}

/// What to do with a received envelope.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// New: deliver; `missed` envelopes of that node were skipped before it.
    Deliver { missed: u64 },
    /// Seen already (or older): ignore.
    Repeat,
}

impl Seen {
    pub(super) fn check(&mut self, node: &str, seq: u64, now: Instant) -> Verdict {
        if self.nodes.len() > 64 {
            self.nodes
                .retain(|_, (_, at)| now.duration_since(*at) < FORGET);
        }
        match self.nodes.get_mut(node) {
            Some((last, at)) => {
                if seq <= *last {
                    return Verdict::Repeat;
                }
                let missed = seq - *last - 1;
                (*last, *at) = (seq, now);
                Verdict::Deliver { missed }
            }
            None => {
                self.nodes.insert(node.into(), (seq, now));
                Verdict::Deliver { missed: 0 }
            }
        }
    }
}

pub(super) struct Subscriber {
    pub(super) client: Client,
    pub(super) channel: Arc<str>,
    pub(super) node: Arc<str>,
    pub(super) hub: Weak<Hub>,
    pub(super) link: Arc<Link>,
    pub(super) shutdown: Shutdown,
    pub(super) seen: Seen,
    pub(super) transitions: Arc<OnceLock<Arc<dyn Transitions>>>,
}

impl Subscriber {
    /// Runs until the drain signal, resubscribing with backoff.
    pub(super) async fn run(mut self) {
        let mut backoff = Backoff::default();
        let sd = self.shutdown.clone();
        loop {
            let sub = async {
                let mut ps = self.client.get_async_pubsub().await?;
                ps.subscribe(&*self.channel).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            let sub = tokio::select! {
                s = tokio::time::timeout(TIMEOUT, sub) => s,
                _ = sd.draining() => return,
            };
            let why = match sub {
                Ok(Ok(ps)) => {
                    backoff.reset();
                    self.link.up(Conn::Subscribe);
                    let (mut sink, mut stream) = ps.split();
                    let mut ping = tokio::time::interval(PING_EVERY);
                    loop {
                        tokio::select! {
                            m = stream.next() => match m {
                                Some(m) => self.receive(Bytes::copy_from_slice(m.get_payload_bytes())),
                                None => break "connection closed".to_string(),
                            },
                            _ = ping.tick() => {
                                match tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await {
                                    Ok(Ok(_)) => {}
                                    Ok(Err(e)) => break e.to_string(),
                                    Err(_) => break "no answer to PING".to_string(),
                                }
                            }
                            _ = sd.draining() => return,
                        }
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connect or SUBSCRIBE timed out".to_string(),
            };
            self.link.down(Conn::Subscribe, &why);
            tokio::select! {
                _ = tokio::time::sleep(backoff.delay()) => {}
                _ = sd.draining() => return,
            }
        }
    }

    /// One Redis message.
    fn receive(&mut self, buf: Bytes) {
        let env = match envelope::decode(&buf) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "cluster: not an envelope; ignored");
                return;
            }
        };
        if env.node == &*self.node {
            return;
        }
        match self.seen.check(env.node, env.seq, Instant::now()) {
            Verdict::Repeat => return,
            Verdict::Deliver { missed: 0 } => {}
            Verdict::Deliver { missed } => {
                self.link.missed.fetch_add(missed, Ordering::Relaxed);
                tracing::debug!(
                    node = env.node,
                    missed,
                    "cluster: messages of a node were missed"
                );
            }
        }
        self.link.received.fetch_add(1, Ordering::Relaxed);
        if env.channel == super::TERMINATE {
            if let Some(t) = self.transitions.get() {
                t.terminate(env.app, env.event);
            }
            return;
        }
        let msg = env.message();
        // Protocol-internal frames (presence changes) have no event.
        if !msg.event.is_empty()
            && let Some(t) = self.transitions.get()
        {
            t.remote_published(env.app, &msg);
        }
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        // No local namespace: nobody here is subscribed to anything of it.
        if let Some(app) = hub.existing_app(env.app) {
            app.publish(&msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_ignored_and_gaps_counted() {
        let mut s = Seen::default();
        let t = Instant::now();
        assert_eq!(s.check("a", 5, t), Verdict::Deliver { missed: 0 });
        assert_eq!(s.check("a", 6, t), Verdict::Deliver { missed: 0 });
        assert_eq!(s.check("a", 6, t), Verdict::Repeat);
        assert_eq!(s.check("a", 3, t), Verdict::Repeat);
        assert_eq!(s.check("b", 1, t), Verdict::Deliver { missed: 0 });
        assert_eq!(s.check("a", 9, t), Verdict::Deliver { missed: 2 });
    }
}
