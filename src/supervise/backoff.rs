//! The restart delay: exponential between the process's bounds, reset
//! once a run has stayed up long enough to count as healthy. Pure.

use std::time::Duration;

/// A run at least this long resets the delay to its first value.
pub(super) const STABLE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// The delay before restarting a process that ran for `ran`.
    pub(super) fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE_AFTER {
            self.next = self.first;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// New bounds (a reload changed them); the sequence starts over.
    pub(super) fn reset(&mut self, first: Duration, max: Duration) {
        *self = Backoff::new(first, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_and_resets_after_a_stable_run() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let quick = ms(5);
        let got: Vec<_> = (0..5).map(|_| b.after_run(quick)).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(b.after_run(STABLE_AFTER), ms(100));
        assert_eq!(b.after_run(quick), ms(200));
        b.reset(ms(50), ms(60));
        assert_eq!(b.after_run(quick), ms(50));
        assert_eq!(b.after_run(quick), ms(60));
    }
}
