//! Jittered exponential backoff for reconnects, so that many clients cut off at once do not
//! come back in lock-step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small xorshift generator: jitter needs spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct Backoff {
    state: u64,
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff seeded from the clock and this value's address.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let seed = nanos ^ ((&raw const local) as u64).rotate_left(32);
        Backoff::with_seed(base, max, seed)
    }

    /// A backoff with a fixed seed (for tests).
    pub fn with_seed(base: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            state: seed | 1,
            base,
            max,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The delay before attempt `attempt` (0-based): uniformly random in `[d/2, d]` where
    /// `d = min(base · 2^attempt, max)`.
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        let half = ceiling_us / 2;
        let spread = self.next_random() % (ceiling_us - half + 1);
        Duration::from_micros(half + spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_stay_within_jitter_bounds() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(500);
        let mut b = Backoff::with_seed(base, max, 42);
        for attempt in 0..30 {
            let ceiling = base.saturating_mul(1 << attempt.min(20)).min(max);
            let d = b.delay(attempt);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn different_seeds_spread_clients_apart() {
        let base = Duration::from_millis(100);
        let delays: std::collections::HashSet<_> = (0..16u64)
            .map(|seed| Backoff::with_seed(base, base * 64, seed * 7919).delay(5))
            .collect();
        assert!(
            delays.len() > 8,
            "jitter gave {} distinct delays",
            delays.len()
        );
    }
}
