//! `Requests`: the requests this shard's connections have in flight, each with its deadline.
//! One timer task per shard sleeps until the earliest deadline (no task or thread per request);
//! a response or the deadline removes the entry, whichever comes first, so each request gets
//! exactly one answer. A requester that goes away ends its requests with it
//! ([`Requests::end_conn`]), and the shard caps what is in flight per identity and in all, so
//! reconnecting does not get round the per-connection cap.
//!
//! The reply token a responder sees is `(origin shard + 1) << 48 | key`: non-zero, and it tells
//! any shard where to send the response without a lookup. The key is a keyed hash (SipHash
//! with this shard's random keys) of a counter, so a client cannot guess the token of a request
//! it was not sent and answer it in the responder's place.

use crate::fast_map::FastMap;
use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use crate::routing::ShardId;

/// Keys are below 2^48 so the token can carry the shard above them.
const KEY_BITS: u32 = 48;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

/// A request waiting for its response.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) conn: u64,
    /// The requester's identity, whose in-flight count this request holds.
    identity: Arc<str>,
    /// The shard that delivered it to its responder, which holds the reply token's binding.
    pub(crate) responder_shard: ShardId,
    pub(crate) request_id: u64,
    pub(crate) op_id: u32,
    /// When the request arrived, for the latency histogram.
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    /// The instance and endpoint a service's request went to, for its figures.
    pub(crate) service: Option<ServiceLeg>,
}

/// Which instance a request to a service endpoint went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceLeg {
    pub(crate) instance: u64,
    pub(crate) endpoint: u16,
    /// Already sent again once, after its first instance vanished.
    pub(crate) retried: bool,
    /// Passed (or waiting at) its service's gate (`services/flow.rs`).
    pub(crate) gated: bool,
}

/// One shard's in-flight requests.
#[derive(Debug)]
pub(crate) struct Requests {
    counter: u64,
    keyer: RandomState,
    pending: FastMap<u64, Pending>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// `(connection, key)` of every pending request, to end a connection's requests with it.
    by_conn: BTreeSet<(u64, u64)>,
    /// In-flight requests per identity, on this shard.
    by_identity: FastMap<Arc<str>, u32>,
    max_per_identity: u32,
    max_per_shard: usize,
}

/// Why a request was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The identity has `limits.max_inflight_requests_per_identity` in flight on this shard.
    Identity,
    /// The shard has `limits.max_inflight_requests_per_shard` in flight.
    Shard,
}

impl Full {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Full::Identity => "max_inflight_requests_per_identity reached on this shard",
            Full::Shard => "max_inflight_requests_per_shard reached",
        }
    }
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
    /// No requests yet, with these caps.
    pub(crate) fn new(max_per_identity: u32, max_per_shard: usize) -> Requests {
        Requests {
            counter: 0,
            keyer: RandomState::new(),
            pending: FastMap::default(),
            deadlines: BTreeSet::new(),
            by_conn: BTreeSet::new(),
            by_identity: FastMap::default(),
            max_per_identity,
            max_per_shard,
        }
    }

    /// Requests in flight.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }

    /// Records a request of `conn` (of `identity`); returns its key, or which cap is full.
    #[allow(clippy::too_many_arguments)] // one request's facts, each from the REQ or its route
    pub(crate) fn insert(
        &mut self,
        conn: u64,
        identity: &Arc<str>,
        responder_shard: ShardId,
        request_id: u64,
        op_id: u32,
        started: Instant,
        deadline: Instant,
    ) -> Result<u64, Full> {
        if self.pending.len() >= self.max_per_shard {
            return Err(Full::Shard);
        }
        let held = self.by_identity.get(identity).copied().unwrap_or(0);
        if held >= self.max_per_identity {
            return Err(Full::Identity);
        }
        let key = loop {
            self.counter = self.counter.wrapping_add(1);
            let key = self.keyer.hash_one(self.counter) & KEY_MASK;
            if key != 0 && !self.pending.contains_key(&key) {
                break key;
            }
        };
        self.by_identity.insert(Arc::clone(identity), held + 1);
        self.by_conn.insert((conn, key));
        self.pending.insert(
            key,
            Pending {
                conn,
                identity: Arc::clone(identity),
                responder_shard,
                request_id,
                op_id,
                started,
                deadline,
                service: None,
            },
        );
        self.deadlines.insert((deadline, key));
        Ok(key)
    }

    /// Request `key`, while it is pending.
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut Pending> {
        self.pending.get_mut(&key)
    }

    /// Ends request `key` (its response arrived); `None` when it already ended.
    pub(crate) fn take(&mut self, key: u64) -> Option<Pending> {
        let pending = self.pending.remove(&key)?;
        self.deadlines.remove(&(pending.deadline, key));
        self.forget(key, &pending);
        Some(pending)
    }

    /// Ends every request of connection `conn` (it went away); returns each one's key and
    /// entry (whose `responder_shard` holds its reply token's binding). Their responses, when
    /// they come, find nothing and are counted late.
    pub(crate) fn end_conn(&mut self, conn: u64) -> Vec<(u64, Pending)> {
        let keys: Vec<u64> = self
            .by_conn
            .range((conn, 0)..=(conn, u64::MAX))
            .map(|&(_, key)| key)
            .collect();
        keys.into_iter()
            .filter_map(|key| self.take(key).map(|p| (key, p)))
            .collect()
    }

    /// Drops what indexes `key` besides `pending` and `deadlines`.
    fn forget(&mut self, key: u64, pending: &Pending) {
        self.by_conn.remove(&(pending.conn, key));
        if let Some(held) = self.by_identity.get_mut(&pending.identity) {
            *held -= 1;
            if *held == 0 {
                self.by_identity.remove(&pending.identity);
            }
        }
    }

    /// Ends and returns the requests whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(u64, Pending)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(pending) = self.pending.remove(&key) {
                self.forget(key, &pending);
                expired.push((key, pending));
            }
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

    fn requests() -> Requests {
        Requests::new(u32::MAX, usize::MAX)
    }

    #[test]
    fn keys_are_unpredictable_and_unique_while_pending() {
        let mut requests = requests();
        let now = Instant::now();
        let who: Arc<str> = Arc::from("a");
        let keys: Vec<u64> = (0..1000)
            .map(|i| requests.insert(1, &who, 0, i, 0, now, now).unwrap())
            .collect();
        let unique: BTreeSet<u64> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len());
        assert!(keys.windows(2).all(|w| w[1] != w[0] + 1), "sequential keys");
        let other = requests.insert(1, &who, 0, 0, 0, now, now).unwrap();
        assert_ne!(other, keys[0], "each shard keys its tokens differently");
        assert_eq!(parse_token(token(3, keys[7])), Some((3, keys[7])));
    }

    #[test]
    fn a_connection_that_goes_ends_its_requests_and_frees_its_identitys_share() {
        let mut requests = Requests::new(3, 5);
        let now = Instant::now();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        for i in 0..3 {
            requests.insert(7, &a, 0, i, 0, now, now).unwrap();
        }
        assert_eq!(
            requests.insert(8, &a, 0, 9, 0, now, now),
            Err(Full::Identity)
        );
        requests.insert(8, &b, 0, 1, 0, now, now).unwrap();
        requests.insert(8, &b, 0, 2, 0, now, now).unwrap();
        assert_eq!(requests.insert(9, &b, 0, 3, 0, now, now), Err(Full::Shard));
        assert_eq!(requests.end_conn(7).len(), 3);
        assert_eq!(requests.len(), 2);
        assert!(requests.insert(9, &a, 0, 4, 0, now, now).is_ok());
        assert_eq!(requests.expire(now).len(), 3);
        assert!(requests.by_conn.is_empty() && requests.by_identity.is_empty());
    }
}
