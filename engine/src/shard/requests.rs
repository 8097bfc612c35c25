//! `Requests`: the requests this shard's connections have in flight, each with its deadline.
//! One timer task per shard sleeps until the earliest deadline (no task or thread per request);
//! a response or the deadline removes the entry, whichever comes first, so each request gets
//! exactly one answer.
//!
//! The reply token a responder sees is `(origin shard + 1) << 48 | key`: non-zero, and it tells
//! any shard where to send the response without a lookup. The key is a keyed hash (SipHash
//! with this shard's random keys) of a counter, so a client cannot guess the token of a request
//! it was not sent and answer it in the responder's place.

use crate::fast_map::FastMap;
use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Instant;

use crate::routing::ShardId;

/// Keys are below 2^48 so the token can carry the shard above them.
const KEY_BITS: u32 = 48;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

/// A request waiting for its response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) conn: u64,
    pub(crate) request_id: u64,
    pub(crate) op_id: u32,
    /// When the request arrived, for the latency histogram.
    pub(crate) started: Instant,
    deadline: Instant,
}

/// One shard's in-flight requests.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    counter: u64,
    keyer: RandomState,
    pending: FastMap<u64, Pending>,
    deadlines: BTreeSet<(Instant, u64)>,
}

/// The reply token for `key` of `shard`.
pub(crate) fn token(shard: ShardId, key: u64) -> u64 {
    ((u64::from(shard) + 1) << KEY_BITS) | (key & KEY_MASK)
}

/// The shard and key a reply token names; `None` for a token no shard issued.
pub(crate) fn parse_token(token: u64) -> Option<(ShardId, u64)> {
    let shard = (token >> KEY_BITS).checked_sub(1)?;
    Some((ShardId::try_from(shard).ok()?, token & KEY_MASK))
}

impl Requests {
    /// Records a request; returns its key.
    pub(crate) fn insert(
        &mut self,
        conn: u64,
        request_id: u64,
        op_id: u32,
        started: Instant,
        deadline: Instant,
    ) -> u64 {
        let key = loop {
            self.counter = self.counter.wrapping_add(1);
            let key = self.keyer.hash_one(self.counter) & KEY_MASK;
            if key != 0 && !self.pending.contains_key(&key) {
                break key;
            }
        };
        self.pending.insert(
            key,
            Pending {
                conn,
                request_id,
                op_id,
                started,
                deadline,
            },
        );
        self.deadlines.insert((deadline, key));
        key
    }

    /// Ends request `key` (its response arrived); `None` when it already ended.
    pub(crate) fn take(&mut self, key: u64) -> Option<Pending> {
        let pending = self.pending.remove(&key)?;
        self.deadlines.remove(&(pending.deadline, key));
        Some(pending)
    }

    /// Ends and returns the requests whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Pending> {
        let mut expired = Vec::new();
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            expired.extend(self.pending.remove(&key));
        }
        expired
    }

    /// The earliest deadline, if any request is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn keys_are_unpredictable_and_unique_while_pending() {
        let mut requests = Requests::default();
        let now = Instant::now();
        let keys: Vec<u64> = (0..1000)
            .map(|i| requests.insert(1, i, 0, now, now))
            .collect();
        let unique: BTreeSet<u64> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len());
        assert!(keys.windows(2).all(|w| w[1] != w[0] + 1), "sequential keys");
        let other = Requests::default().insert(1, 0, 0, now, now);
        assert_ne!(other, keys[0], "each shard keys its tokens differently");
        assert_eq!(parse_token(token(3, keys[7])), Some((3, keys[7])));
    }
}
