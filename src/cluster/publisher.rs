//! The one publishing task of a node: envelopes from the [`Outbox`] to
//! Redis, in order, one `PUBLISH` per message, pipelined in batches.
//!
//! Owns: the publishing connection and its reconnects. Receives: batches
//! from the outbox. Hands on: `PUBLISH {prefix}:events <envelope>` to
//! Redis; a batch that failed goes back to the front of the outbox and is
//! sent again on the next connection.
//!
//! Pub/sub keeps nothing for a node that is not subscribed at that moment,
//! so after an outage the buffered messages are held back until the
//! channel has as many subscribers as before it (every node's subscribing
//! connection is back), for at most [`SETTLE`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use super::backoff::Backoff;
use super::link::{Conn, Link};
use super::outbox::Outbox;
use crate::shutdown::Shutdown;

/// Deadline of a connection attempt and of every command.
pub(super) const TIMEOUT: Duration = Duration::from_secs(3);
/// How often the channel's subscriber count is read while connected.
const PEERS_EVERY: Duration = Duration::from_secs(1);
/// How long buffered messages wait for the other nodes to resubscribe.
const SETTLE: Duration = Duration::from_secs(5);
/// On drain, how long what is still queued gets to go out.
const FLUSH: Duration = Duration::from_secs(1);

pub(super) struct Publisher {
    pub(super) client: Client,
    pub(super) channel: Arc<str>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) link: Arc<Link>,
    pub(super) shutdown: Shutdown,
    /// Cancelled when the state task has finished (on drain it queues the
    /// removals of this node's members, which go out with the last flush).
    pub(super) state_done: tokio_util::sync::CancellationToken,
    /// Subscribers of the channel when last read (every node's one), by
    /// `PUBSUB NUMSUB` when idle and from each `PUBLISH`'s answer.
    peers: u64,
}

impl Publisher {
    pub(super) fn new(
        client: Client,
        channel: Arc<str>,
        outbox: Arc<Outbox>,
        link: Arc<Link>,
        shutdown: Shutdown,
        state_done: tokio_util::sync::CancellationToken,
    ) -> Publisher {
        Publisher {
            client,
            channel,
            outbox,
            link,
            shutdown,
            state_done,
            peers: 0,
        }
    }

    /// Runs until the drain signal, reconnecting with backoff.
    pub(super) async fn run(mut self) {
        let mut backoff = Backoff::default();
        let sd = self.shutdown.clone();
        loop {
            let cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            let conn = tokio::select! {
                c = self.client.get_multiplexed_async_connection_with_config(&cfg) => c,
                _ = sd.draining() => return,
            };
            let e = match conn {
                Ok(mut conn) => {
                    backoff.reset();
                    self.link.up(Conn::Publish);
                    match self.serve(&mut conn).await {
                        Ok(()) => return,
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            self.link.down(Conn::Publish, &e);
            tokio::select! {
                _ = tokio::time::sleep(backoff.delay()) => {}
                _ = sd.draining() => return,
            }
        }
    }

    /// Sends until the connection fails (`Err`) or the drain (`Ok`).
    async fn serve(&mut self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        if !self.outbox.is_empty() {
            self.settle(conn).await?;
        }
        let mut measured = Instant::now();
        self.peers = self.peers.max(self.numsub(conn).await?);
        loop {
            if measured.elapsed() >= PEERS_EVERY {
                self.peers = self.numsub(conn).await?;
                measured = Instant::now();
            }
            let batch = self.outbox.take();
            if batch.is_empty() {
                tokio::select! {
                    _ = self.outbox.ready() => {}
                    _ = tokio::time::sleep(PEERS_EVERY) => {}
                    _ = self.shutdown.draining() => {
                        let _ = tokio::time::timeout(FLUSH, async {
                            self.state_done.cancelled().await;
                            self.flush(conn).await
                        })
                        .await;
                        return Ok(());
                    }
                }
                continue;
            }
            self.peers = self.send(conn, batch).await?;
        }
    }

    /// One pipeline of `PUBLISH`es; on failure the batch goes back. Returns
    /// how many subscribers (nodes) the last one reached.
    async fn send(
        &self,
        conn: &mut MultiplexedConnection,
        batch: Vec<Bytes>,
    ) -> Result<u64, RedisError> {
        let mut pipe = redis::pipe();
        for env in &batch {
            pipe.cmd("PUBLISH").arg(&*self.channel).arg(env.as_ref());
        }
        match pipe.query_async::<Vec<u64>>(conn).await {
            Ok(reached) => {
                self.link
                    .published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(reached.last().copied().unwrap_or(self.peers))
            }
            Err(e) => {
                self.outbox.put_back(batch);
                Err(e)
            }
        }
    }

    /// Sends what is queued (on drain).
    async fn flush(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        loop {
            let batch = self.outbox.take();
            if batch.is_empty() {
                return Ok(());
            }
            self.send(conn, batch).await?;
        }
    }

    /// Subscribers of the channel now.
    async fn numsub(&self, conn: &mut MultiplexedConnection) -> Result<u64, RedisError> {
        let (_, n): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&*self.channel)
            .query_async::<Vec<(String, u64)>>(conn)
            .await?
            .pop()
            .unwrap_or_default();
        Ok(n)
    }

    /// Waits (at most [`SETTLE`]) until the channel has as many
    /// subscribers as before the outage.
    async fn settle(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let until = Instant::now() + SETTLE;
        while Instant::now() < until && !self.shutdown.is_draining() {
            if self.numsub(conn).await? >= self.peers {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::debug!(
            expected = self.peers,
            "cluster: not every node resubscribed in time; sending buffered messages anyway"
        );
        Ok(())
    }
}
