//! Reconnect delays: doubling from 100 ms to at most 2 s, with jitter so
//! nodes that lost Redis together do not come back in lockstep. Short,
//! because pub/sub keeps nothing for a node that is not subscribed: the
//! sooner every node is back, the fewer cross-node messages it misses.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub const MAX: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The delay before the next attempt (±20 %).
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(MAX);
        let jitter = rand::random_range(0.8..1.2);
        d.mul_f64(jitter).min(MAX)
    }

    /// Connected: the next failure starts again from the first delay.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let first = b.delay();
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        for _ in 0..10 {
            assert!(b.delay() <= MAX);
        }
        assert!(b.delay() >= MAX.mul_f64(0.8));
        b.reset();
        assert!(b.delay() <= Duration::from_millis(120));
    }
}
