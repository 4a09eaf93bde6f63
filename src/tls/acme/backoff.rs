//! Retry intervals after a failed order, copied from certmagic (async.go):
//! 1m, 2m, 2m, 5m, 10m×3, 20m×4, 30m×6, 1h×3, 2h×2, 3h×2, then 6h.
//!
//! Owns: the schedule only (pure, no clock). Receives: the number of
//! consecutive failures. Hands on: how long the domain's task waits before
//! the next attempt. A success resets the count.

use std::time::Duration;

const M: u64 = 60;
const H: u64 = 3600;

/// certmagic's retry schedule, in seconds.
const CERTMAGIC: [u64; 25] = [
    M,
    2 * M,
    2 * M,
    5 * M,
    10 * M,
    10 * M,
    10 * M,
    20 * M,
    20 * M,
    20 * M,
    20 * M,
    30 * M,
    30 * M,
    30 * M,
    30 * M,
    30 * M,
    30 * M,
    H,
    H,
    H,
    2 * H,
    2 * H,
    3 * H,
    3 * H,
    6 * H,
];

/// The default schedule as durations (the last one repeats forever).
pub fn default_intervals() -> Vec<Duration> {
    CERTMAGIC.iter().map(|s| Duration::from_secs(*s)).collect()
}

/// The wait after `failures` consecutive failures (1 = the first failure).
/// An empty schedule means one minute.
pub fn delay(intervals: &[Duration], failures: u32) -> Duration {
    let i = (failures.max(1) - 1) as usize;
    intervals
        .get(i)
        .or(intervals.last())
        .copied()
        .unwrap_or(Duration::from_secs(M))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_like_certmagic_then_stays_at_six_hours() {
        let s = default_intervals();
        assert_eq!(delay(&s, 1), Duration::from_secs(60));
        assert_eq!(delay(&s, 2), Duration::from_secs(120));
        assert_eq!(delay(&s, 4), Duration::from_secs(300));
        assert_eq!(delay(&s, 5), Duration::from_secs(600));
        assert_eq!(delay(&s, 8), Duration::from_secs(1200));
        assert_eq!(delay(&s, 12), Duration::from_secs(1800));
        assert_eq!(delay(&s, 18), Duration::from_secs(3600));
        assert_eq!(delay(&s, 25), Duration::from_secs(6 * 3600));
        assert_eq!(delay(&s, 1000), Duration::from_secs(6 * 3600));
        // never shrinks
        for f in 1..60 {
            assert!(delay(&s, f + 1) >= delay(&s, f));
        }
        assert_eq!(delay(&[], 3), Duration::from_secs(60));
        assert_eq!(delay(&s, 0), Duration::from_secs(60));
    }
}
