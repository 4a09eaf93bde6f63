//! A latency histogram that a request updates without a lock.
//!
//! `prometheus-client`'s `Histogram` takes a mutex on every observation;
//! with every core proxying requests, that one lock per route is shared by
//! all of them. [`Latency`] keeps one set of bucket counters per shard
//! instead, each on its own cache line, and a thread always writes the same
//! shard: an observation is two relaxed atomic adds on a line no other core
//! writes. A scrape sums the shards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Finite bucket bounds: 1 ms, 2 ms, 4 ms, … 2^(BOUNDS-1) ms (about 33 s).
const BOUNDS: usize = 16;
/// Shards per histogram: more than the cores portico usually runs on, so
/// threads rarely share one.
const SHARDS: usize = 8;

/// One thread's counters: a count per finite bucket and one past the last
/// bound, and the sum of observations in nanoseconds.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    buckets: [AtomicU64; BOUNDS + 1],
    sum_nanos: AtomicU64,
}

/// A latency histogram with the bounds above; clones share the counters.
#[derive(Clone)]
pub struct Latency {
    shards: Arc<[Shard; SHARDS]>,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            shards: Arc::new(std::array::from_fn(|_| Shard::default())),
        }
    }
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (_, count, _) = self.totals();
        f.debug_struct("Latency").field("count", &count).finish()
    }
}

/// The shard this thread writes, picked round-robin at its first use.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// The bucket `nanos` falls in: the first bound it does not exceed, or
/// `BOUNDS` past the last one.
fn bucket(nanos: u64) -> usize {
    if nanos <= 1_000_000 {
        return 0;
    }
    // Bound i is 2^i ms: the smallest i with (nanos - 1) / 1 ms < 2^i.
    let ms = (nanos - 1) / 1_000_000;
    ((u64::BITS - ms.leading_zeros()) as usize).min(BOUNDS)
}

impl Latency {
    /// Records one request that took `took`.
    pub fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[shard_index()];
        shard.buckets[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative), the total count and the sum in
    /// seconds, over every shard.
    fn totals(&self) -> ([u64; BOUNDS + 1], u64, f64) {
        let mut buckets = [0u64; BOUNDS + 1];
        let mut sum = 0u64;
        for shard in self.shards.iter() {
            for (total, b) in buckets.iter_mut().zip(&shard.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            sum = sum.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        let count = buckets.iter().sum();
        (buckets, count, sum as f64 / 1e9)
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (counts, count, sum) = self.totals();
        let mut buckets = [(0.0, 0u64); BOUNDS + 1];
        for (i, (slot, n)) in buckets.iter_mut().zip(counts).enumerate() {
            let bound = if i < BOUNDS {
                0.001 * f64::from(1u32 << i)
            } else {
                f64::INFINITY
            };
            *slot = (bound, n);
        }
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_powers_of_two_milliseconds() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1_000_000), 0);
        assert_eq!(bucket(1_000_001), 1);
        assert_eq!(bucket(2_000_000), 1);
        assert_eq!(bucket(2_000_001), 2);
        assert_eq!(bucket(4_000_000), 2);
        assert_eq!(bucket(1_000_000 << 15), 15);
        assert_eq!(bucket((1_000_000 << 15) + 1), BOUNDS);
        assert_eq!(bucket(u64::MAX), BOUNDS);
    }

    #[test]
    fn totals_add_every_thread() {
        let l = Latency::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        l.observe(Duration::from_micros(1500));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        l.observe(Duration::from_secs(100));
        let (buckets, count, sum) = l.totals();
        assert_eq!(count, 4001);
        assert_eq!(buckets[1], 4000);
        assert_eq!(buckets[BOUNDS], 1);
        assert!((sum - 106.0).abs() < 1e-6, "{sum}");
    }
}
