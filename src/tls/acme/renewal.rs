//! When a certificate is renewed: pure functions over validity times.
//!
//! Owns: the renewal rule. Receives: a certificate's `not_before` /
//! `not_after`, optionally the CA's ARI `suggestedWindow`, and `now`.
//! Hands on: the instant the domain's task should order a new certificate.
//!
//! The rule (certbot 4 / nginx-acme / certmagic):
//! - no ARI: renew when one third of the lifetime is left (one half for
//!   certificates shorter than 10 days), so it keeps working as Let's
//!   Encrypt shortens lifetimes from 90 to 64 and 45 days;
//! - ARI: a uniformly random point inside the suggested window (a window
//!   already open means now);
//! - always: no later than when 1/20 of the lifetime is left (the emergency
//!   override, in case the ARI window is wrong or far away).

use std::time::{Duration, SystemTime};

/// Lifetimes shorter than this renew at half-life instead of one third.
const SHORT_LIVED: Duration = Duration::from_secs(10 * 24 * 3600);

fn lifetime(not_before: SystemTime, not_after: SystemTime) -> Duration {
    not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO)
}

/// The ratio rule: 1/3 of the lifetime left, 1/2 for short-lived certs.
pub fn ratio_renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = lifetime(not_before, not_after);
    let left = if life < SHORT_LIVED {
        life / 2
    } else {
        life / 3
    };
    not_after - left
}

/// The emergency override: 1/20 of the lifetime left.
pub fn emergency_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    not_after - lifetime(not_before, not_after) / 20
}

/// A point in the ARI window `[start, end]`; `unit` in `[0, 1)` picks it
/// (pass a random number). A window already (partly) past starts at `now`.
pub fn pick_in_window(
    start: SystemTime,
    end: SystemTime,
    now: SystemTime,
    unit: f64,
) -> SystemTime {
    let start = start.max(now);
    if end <= start {
        return start;
    }
    let span = end.duration_since(start).unwrap_or(Duration::ZERO);
    start + span.mul_f64(unit.clamp(0.0, 1.0))
}

/// When to renew: the ARI pick when there is one, else the ratio rule;
/// never later than the emergency override.
pub fn renew_at(
    not_before: SystemTime,
    not_after: SystemTime,
    ari_pick: Option<SystemTime>,
) -> SystemTime {
    let planned = ari_pick.unwrap_or_else(|| ratio_renew_at(not_before, not_after));
    planned.min(emergency_at(not_before, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    fn t(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + days * DAY)
    }

    #[test]
    fn one_third_left_for_90_64_and_45_day_certs() {
        assert_eq!(ratio_renew_at(t(0), t(90)), t(60));
        // 64 days: renew with 21.33 days left
        let at = ratio_renew_at(t(0), t(64));
        assert_eq!(
            t(64).duration_since(at).unwrap(),
            Duration::from_secs(64 * DAY / 3)
        );
        assert_eq!(ratio_renew_at(t(0), t(45)), t(30));
    }

    #[test]
    fn short_lived_certs_renew_at_half_life() {
        assert_eq!(ratio_renew_at(t(0), t(6)), t(3));
        let nb = t(0);
        let na = nb + Duration::from_secs(30);
        assert_eq!(ratio_renew_at(nb, na), nb + Duration::from_secs(15));
    }

    #[test]
    fn ari_window_is_used_but_emergency_wins() {
        // window in the future: a point inside it
        let pick = pick_in_window(t(50), t(52), t(10), 0.5);
        assert_eq!(pick, t(51));
        assert_eq!(renew_at(t(0), t(90), Some(pick)), t(51));
        // a window later than the emergency point is overridden
        let late = pick_in_window(t(89), t(90), t(10), 0.0);
        assert_eq!(renew_at(t(0), t(90), Some(late)), emergency_at(t(0), t(90)));
        assert_eq!(emergency_at(t(0), t(100)), t(95));
        // a window already open means now
        assert_eq!(pick_in_window(t(5), t(7), t(20), 0.9), t(20));
        assert_eq!(pick_in_window(t(5), t(25), t(20), 0.0), t(20));
    }

    #[test]
    fn degenerate_validity_renews_immediately() {
        assert_eq!(ratio_renew_at(t(5), t(5)), t(5));
        assert_eq!(renew_at(t(5), t(1), None), t(1));
    }
}
