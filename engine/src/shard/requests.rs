//! `Requests`: the requests this shard's connections have in flight, each with its deadline.
//! One timer task per shard sleeps until the earliest deadline (no task or thread per request);
//! a response or the deadline removes the entry, whichever comes first, so each request gets
//! exactly one answer.
//!
//! The reply token a responder sees is `(origin shard + 1) << 48 | key`: non-zero, and it tells
//! any shard where to send the response without a lookup.

use crate::fast_map::FastMap;
use std::collections::BTreeSet;
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
    deadline: Instant,
}

/// One shard's in-flight requests.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    next_key: u64,
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
        deadline: Instant,
    ) -> u64 {
        self.next_key = (self.next_key + 1) & KEY_MASK;
        let key = self.next_key;
        self.pending.insert(
            key,
            Pending {
                conn,
                request_id,
                op_id,
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
