//! Rate limits: token buckets, all shard-local and lock-free — per connection
//! (messages and payload bytes per second), per identity and per topic pattern on this shard,
//! one for the whole shard, and one on accepting connections (reconnect storms). A publish or
//! request over a limit answers `RATE_LIMITED` with the time until it would fit, or closes the
//! connection, as `rate_limits.policy` says.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use shardbus_protocol::topic::matches;

use crate::config::{RateLimitPolicy, RateLimitsConfig};
use crate::fast_map::FastMap;

/// `rate` tokens a second, holding at most one second's worth.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate as f64,
            tokens: rate as f64,
            last: now,
        }
    }

    /// Takes `n` tokens, or says how long until they would be there.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(n));
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        let missing = n - self.tokens;
        Err(Duration::from_secs_f64(
            missing / self.rate.max(f64::MIN_POSITIVE),
        ))
    }
}

/// One connection's buckets.
#[derive(Debug)]
pub(crate) struct ConnBuckets {
    msgs: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

/// What a message over a limit gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) retry_after: Duration,
    pub(crate) disconnect: bool,
}

/// A shard's limits and its shared buckets.
#[derive(Debug)]
pub(crate) struct RateLimits {
    config: RateLimitsConfig,
    /// Whether any message limit is set, worked out once: every publish asks.
    any: bool,
    shard: RefCell<Option<TokenBucket>>,
    accept: RefCell<Option<TokenBucket>>,
    identities: RefCell<FastMap<String, TokenBucket>>,
    topics: RefCell<Vec<TokenBucket>>,
}

fn bucket(rate: u64, now: Instant) -> Option<TokenBucket> {
    (rate > 0).then(|| TokenBucket::new(rate, now))
}

impl RateLimits {
    pub(crate) fn new(config: &RateLimitsConfig) -> RateLimits {
        let now = Instant::now();
        RateLimits {
            shard: RefCell::new(bucket(config.shard_msgs_per_sec, now)),
            accept: RefCell::new(bucket(config.accept_per_sec, now)),
            identities: RefCell::new(FastMap::default()),
            topics: RefCell::new(
                config
                    .topics
                    .iter()
                    .map(|t| TokenBucket::new(t.msgs_per_sec.max(1), now))
                    .collect(),
            ),
            any: config.conn_msgs_per_sec > 0
                || config.conn_bytes_per_sec > 0
                || config.identity_msgs_per_sec > 0
                || config.shard_msgs_per_sec > 0
                || !config.topics.is_empty(),
            config: config.clone(),
        }
    }

    /// Whether any message limit is set (else publishing pays nothing for them).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.any
    }

    /// A new connection's buckets (`None` when no per-connection limit is set).
    pub(crate) fn conn_buckets(&self) -> Option<ConnBuckets> {
        let now = Instant::now();
        let buckets = ConnBuckets {
            msgs: bucket(self.config.conn_msgs_per_sec, now),
            bytes: bucket(self.config.conn_bytes_per_sec, now),
        };
        (buckets.msgs.is_some() || buckets.bytes.is_some()).then_some(buckets)
    }

    /// Whether a connection may be accepted now.
    pub(crate) fn accept(&self) -> bool {
        self.accept
            .borrow_mut()
            .as_mut()
            .is_none_or(|b| b.take(1.0, Instant::now()).is_ok())
    }

    /// Charges one message of `payload` bytes on `subject` from `identity`, with the
    /// connection's own buckets; the first limit it exceeds decides.
    pub(crate) fn charge(
        &self,
        conn: Option<&mut ConnBuckets>,
        identity: &str,
        subject: &str,
        payload: usize,
    ) -> Result<(), Limited> {
        let now = Instant::now();
        let limited = |retry_after| Limited {
            retry_after,
            disconnect: self.config.policy == RateLimitPolicy::Disconnect,
        };
        if let Some(conn) = conn {
            if let Some(msgs) = conn.msgs.as_mut() {
                msgs.take(1.0, now).map_err(limited)?;
            }
            if let Some(bytes) = conn.bytes.as_mut() {
                bytes.take(payload as f64, now).map_err(limited)?;
            }
        }
        if self.config.identity_msgs_per_sec > 0 {
            let mut identities = self.identities.borrow_mut();
            if identities.len() >= MAX_IDENTITY_BUCKETS && !identities.contains_key(identity) {
                identities.clear();
            }
            let rate = self.config.identity_msgs_per_sec;
            identities
                .entry(identity.to_owned())
                .or_insert_with(|| TokenBucket::new(rate, now))
                .take(1.0, now)
                .map_err(limited)?;
        }
        for (limit, topic_bucket) in self
            .config
            .topics
            .iter()
            .zip(self.topics.borrow_mut().iter_mut())
        {
            if matches(&limit.pattern, subject) {
                topic_bucket.take(1.0, now).map_err(limited)?;
            }
        }
        if let Some(shard) = self.shard.borrow_mut().as_mut() {
            shard.take(1.0, now).map_err(limited)?;
        }
        Ok(())
    }
}

/// Identities a shard keeps buckets for before it starts them afresh (names are unbounded).
const MAX_IDENTITY_BUCKETS: usize = 64 * 1024;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_one_second_and_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, start);
        for _ in 0..10 {
            assert!(bucket.take(1.0, start).is_ok());
        }
        let wait = bucket.take(1.0, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(bucket.take(1.0, start + Duration::from_millis(100)).is_ok());
        assert!(
            bucket
                .take(1.0, start + Duration::from_millis(100))
                .is_err()
        );
        // A long pause refills to the burst, no more.
        let later = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(bucket.take(1.0, later).is_ok());
        }
        assert!(bucket.take(1.0, later).is_err());
    }
}
