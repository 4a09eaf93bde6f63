//! The bounded queue between the hub's publish path and the one publishing
//! task of this node.
//!
//! Owns: the encoded envelopes not yet sent to Redis, in publish order, and
//! the bound on them (messages and bytes). Receives: envelopes from
//! [`Outbox::push`], called on the hub's publish path, which never waits
//! (a short lock, no I/O). Hands on: batches, oldest first, to the publisher,
//! which puts a batch back at the front when Redis failed under it. Past
//! the bound a new envelope is dropped and counted, so a Redis outage costs
//! memory up to the bound and nothing else.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// How many envelopes a batch (one Redis pipeline) holds at most.
pub const MAX_BATCH: usize = 256;

/// The bound: messages and bytes buffered at most.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub messages: usize,
    pub bytes: usize,
}

impl Bound {
    /// A few seconds of a busy node's publishes while Redis is away.
    pub const DEFAULT: Bound = Bound {
        messages: 20_000,
        bytes: 32 << 20,
    };
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// The sequence number of the last envelope queued.
    seq: u64,
}

/// The queue; shared by the observer and the publisher.
#[derive(Debug)]
pub struct Outbox {
    bound: Bound,
    queue: Mutex<Queue>,
    ready: Notify,
}

impl Outbox {
    pub fn new(bound: Bound) -> Outbox {
        Outbox {
            bound,
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
        }
    }

    /// Queues the envelope `encode` makes with the next sequence number;
    /// `Ok(false)` (not queued, the number not used) past the bound. The
    /// number is taken and the envelope queued under one lock, so numbers
    /// are in queue order whichever thread publishes.
    pub fn push_with<E>(&self, encode: impl FnOnce(u64) -> Result<Bytes, E>) -> Result<bool, E> {
        let mut q = self.queue.lock();
        if q.items.len() >= self.bound.messages {
            return Ok(false);
        }
        let env = encode(q.seq + 1)?;
        if q.bytes + env.len() > self.bound.bytes {
            return Ok(false);
        }
        q.seq += 1;
        q.bytes += env.len();
        q.items.push_back(env);
        drop(q);
        self.ready.notify_one();
        Ok(true)
    }

    /// Up to [`MAX_BATCH`] envelopes, oldest first; empty when none wait.
    pub fn take(&self) -> Vec<Bytes> {
        let mut q = self.queue.lock();
        let n = q.items.len().min(MAX_BATCH);
        let batch: Vec<Bytes> = q.items.drain(..n).collect();
        q.bytes -= batch.iter().map(Bytes::len).sum::<usize>();
        batch
    }

    /// Puts a batch that could not be sent back in front, in its order.
    /// The bound may be passed by this batch: it was already counted in.
    pub fn put_back(&self, batch: Vec<Bytes>) {
        let mut q = self.queue.lock();
        q.bytes += batch.iter().map(Bytes::len).sum::<usize>();
        for b in batch.into_iter().rev() {
            q.items.push_front(b);
        }
    }

    /// Envelopes waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().items.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when something may have been pushed since the last take.
    pub async fn ready(&self) {
        self.ready.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    impl Outbox {
        fn push(&self, env: Bytes) -> bool {
            self.push_with(|_| Ok::<_, ()>(env)).unwrap()
        }
    }

    #[test]
    fn numbers_follow_the_queue_and_skip_nothing() {
        let o = Outbox::new(Bound {
            messages: 2,
            bytes: 100,
        });
        let mut seen = Vec::new();
        for _ in 0..3 {
            let _ = o.push_with(|seq| {
                seen.push(seq);
                Ok::<_, ()>(b("x"))
            });
        }
        // The third was refused before encoding: no number used.
        assert_eq!(seen, vec![1, 2]);
        o.take();
        assert_eq!(o.push_with(Err::<Bytes, u64>), Err(3));
        o.push_with(|seq| {
            assert_eq!(seq, 3);
            Ok::<_, ()>(b("y"))
        })
        .unwrap();
    }

    #[test]
    fn keeps_order_and_puts_back_in_front() {
        let o = Outbox::new(Bound::DEFAULT);
        for s in ["1", "2", "3"] {
            assert!(o.push(b(s)));
        }
        let first = o.take();
        assert_eq!(first, vec![b("1"), b("2"), b("3")]);
        assert!(o.push(b("4")));
        o.put_back(first);
        assert_eq!(o.take(), vec![b("1"), b("2"), b("3"), b("4")]);
        assert!(o.is_empty());
    }

    #[test]
    fn drops_past_the_message_and_byte_bounds() {
        let o = Outbox::new(Bound {
            messages: 2,
            bytes: 100,
        });
        assert!(o.push(b("a")) && o.push(b("b")));
        assert!(!o.push(b("c")));
        assert_eq!(o.len(), 2);
        let o = Outbox::new(Bound {
            messages: 100,
            bytes: 5,
        });
        assert!(o.push(b("abc")));
        assert!(!o.push(b("def")));
        assert!(o.push(b("gh")));
        assert_eq!(o.take(), vec![b("abc"), b("gh")]);
        // Taking frees the byte budget.
        assert!(o.push(b("defgh")));
    }

    #[test]
    fn batches_are_bounded() {
        let o = Outbox::new(Bound::DEFAULT);
        for _ in 0..MAX_BATCH + 3 {
            assert!(o.push(b("x")));
        }
        assert_eq!(o.take().len(), MAX_BATCH);
        assert_eq!(o.take().len(), 3);
        assert!(o.take().is_empty());
    }
}
