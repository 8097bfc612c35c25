//! `LatencyHistogram`: durations counted into fixed buckets, written by one shard and read by
//! anyone (the `/metrics` scrape) without a lock — the same single-writer relaxed stores as
//! `ShardMetrics`. prometheus-client's own histogram takes a lock per observation, which the
//! request path must not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets in seconds (Prometheus `le`), from 25 µs (a same-shard request on
/// loopback) to 10 s; slower observations land in `+Inf` only.
pub const BOUNDS_SECONDS: [f64; 16] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 10.0,
];

/// Bucket bounds in nanoseconds, for the comparison an observation makes.
const BOUNDS_NANOS: [u64; 16] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// A histogram of durations. Only the owning shard calls `observe`.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; 17],
    sum_nanos: AtomicU64,
}

/// A histogram read at one moment, in the form prometheus-client's encoder takes.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// The sum of every observation, in seconds.
    pub sum_seconds: f64,
    /// How many observations.
    pub count: u64,
    /// `(upper bound in seconds, observations in this bucket)`, not cumulative (the encoder
    /// accumulates); the last bucket's bound is `f64::MAX`, which it writes as `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// Counts one observation of `elapsed`.
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let index = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(cell) = self.buckets.get(index) {
            bump(cell, 1);
        }
        bump(&self.sum_nanos, nanos);
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> LatencySnapshot {
        let bounds = BOUNDS_SECONDS.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(self.buckets.iter())
            .map(|(bound, cell)| (bound, cell.load(Ordering::Relaxed)))
            .collect();
        LatencySnapshot {
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: buckets.iter().map(|&(_, n)| n).sum(),
            buckets,
        }
    }
}

/// Single-writer add: a load and a store, no read-modify-write.
fn bump(cell: &AtomicU64, n: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for (seconds, nanos) in BOUNDS_SECONDS.iter().zip(BOUNDS_NANOS) {
            assert_eq!((seconds * 1e9).round() as u64, nanos);
        }
    }

    #[test]
    fn observations_land_at_or_below_their_bound_and_accumulate() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(25)); // exactly on the first bound
        histogram.observe(Duration::from_micros(26));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60)); // +Inf only
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.buckets.len(), BOUNDS_SECONDS.len() + 1);
        assert_eq!(snapshot.buckets[0], (0.000_025, 1));
        assert_eq!(snapshot.buckets[1], (0.000_05, 1));
        assert_eq!(snapshot.buckets[7], (0.005, 1));
        assert_eq!(*snapshot.buckets.last().unwrap(), (f64::MAX, 1));
        assert!((snapshot.sum_seconds - 60.003_051).abs() < 1e-9);
    }
}
