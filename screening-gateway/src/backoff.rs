//! Exponential backoff with jitter, so many gateways recovering at once do not retry in lockstep.

use std::time::Duration;

/// Retry timing: `base * 2^(attempt-1)`, capped at `max`, each delay scaled by a random 50–100 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (1 = the first retry), with `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let uncapped = self.base.saturating_mul(1u32 << exponent);
        let capped = uncapped.min(self.max);
        capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// [`Backoff::delay`] with fresh randomness.
    pub fn delay_with_jitter(&self, attempt: u32) -> Duration {
        self.delay(attempt, crate::random::fraction())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(backoff.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(4, 1.0), Duration::from_millis(800));
        assert_eq!(backoff.delay(5, 1.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(60, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_scales_between_half_and_all_of_the_delay() {
        let backoff = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(backoff.delay(1, 0.0), Duration::from_secs(1));
        for _ in 0..100 {
            let delay = backoff.delay_with_jitter(1);
            assert!(
                delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2),
                "{delay:?}"
            );
        }
    }
}
