//! The cross-shard interest table (ARCHITECTURE.md, "The interest table and routing"). Each shard counts its own
//! subscriptions per (pattern, queue group) in [`LocalInterest`] and tells the other shards
//! only when a plain count flips between 0 and 1, so subscribe churn on a busy pattern costs
//! nothing across shards. Queue-group members are the exception: every member joining or
//! leaving is told, so each replica holds a shard once per member and a publisher can balance
//! a group across all its members, not just across shards (group churn is rare). Each shard applies the others' flips to its [`InterestReplica`], a trie of
//! shard ids, and a publish asks the replica, once per subject thanks to its cache, which shards
//! to forward to.

use crate::fast_map::FastMap;
use std::rc::Rc;

use super::match_cache::MatchCache;
use super::trie::{Matches, SubscriptionTrie};

/// A shard's index, as WELCOME reports it.
pub type ShardId = u16;

/// A flip in one shard's interest, to be sent to every other shard over the mesh. The mesh is
/// FIFO per pair of shards, so a shard applies another's flips in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterestChange {
    /// The shard whose interest changed.
    pub shard: ShardId,
    /// The pattern.
    pub pattern: Box<[u8]>,
    /// The queue group, if the subscriptions are in one.
    pub queue: Option<Box<str>>,
    /// `true`: the first subscription arrived; `false`: the last one left.
    pub gained: bool,
}

/// A pattern and its queue group: the unit interest is counted in.
type InterestKey = (Box<[u8]>, Option<Box<str>>);

fn key(pattern: &[u8], queue: Option<&str>) -> InterestKey {
    (pattern.into(), queue.map(Into::into))
}

/// One shard's subscription counts per (pattern, queue group).
#[derive(Debug, Default)]
pub struct LocalInterest {
    counts: FastMap<InterestKey, u32>,
}

impl LocalInterest {
    /// An empty table.
    pub fn new() -> LocalInterest {
        LocalInterest::default()
    }

    /// Counts a new local subscription. Returns the change to broadcast: for a plain
    /// subscription when it is the first of its pattern, for a queue member always.
    pub fn subscribe(
        &mut self,
        shard: ShardId,
        pattern: &[u8],
        queue: Option<&str>,
    ) -> Option<InterestChange> {
        let count = self.counts.entry(key(pattern, queue)).or_insert(0);
        *count += 1;
        (*count == 1 || queue.is_some()).then(|| change(shard, pattern, queue, true))
    }

    /// Uncounts a local subscription. Returns the change to broadcast: for a plain subscription
    /// when it was the last, for a queue member always; `None` when the pair was not counted.
    pub fn unsubscribe(
        &mut self,
        shard: ShardId,
        pattern: &[u8],
        queue: Option<&str>,
    ) -> Option<InterestChange> {
        let key = key(pattern, queue);
        let count = self.counts.get_mut(&key)?;
        *count -= 1;
        if *count == 0 {
            self.counts.remove(&key);
        } else if queue.is_none() {
            return None;
        }
        Some(change(shard, pattern, queue, false))
    }

    /// Local subscriptions counted for the pair.
    pub fn count(&self, pattern: &[u8], queue: Option<&str>) -> u32 {
        self.counts.get(&key(pattern, queue)).copied().unwrap_or(0)
    }

    /// Every (pattern, queue group) counted, with its count.
    pub fn counts(&self) -> impl Iterator<Item = (&[u8], Option<&str>, u32)> {
        self.counts
            .iter()
            .map(|((pattern, queue), count)| (&**pattern, queue.as_deref(), *count))
    }

    /// Every pair this shard has interest in, as "gained" changes (one per queue member): what
    /// a shard that (re)joins the mesh must be told.
    pub fn snapshot(&self, shard: ShardId) -> Vec<InterestChange> {
        self.counts
            .iter()
            .flat_map(|((pattern, queue), count)| {
                let times = if queue.is_some() { *count } else { 1 };
                (0..times).map(move |_| change(shard, pattern, queue.as_deref(), true))
            })
            .collect()
    }
}

fn change(shard: ShardId, pattern: &[u8], queue: Option<&str>, gained: bool) -> InterestChange {
    InterestChange {
        shard,
        pattern: pattern.into(),
        queue: queue.map(Into::into),
        gained,
    }
}

/// What one shard knows of the other shards' interest.
#[derive(Debug)]
pub struct InterestReplica {
    trie: SubscriptionTrie<ShardId>,
    cache: MatchCache<ShardId>,
}

impl InterestReplica {
    /// An empty replica whose cache holds `cache_capacity` subjects.
    pub fn new(cache_capacity: usize) -> InterestReplica {
        InterestReplica {
            trie: SubscriptionTrie::new(),
            cache: MatchCache::new(cache_capacity),
        }
    }

    /// Applies another shard's flip.
    pub fn apply(&mut self, change: &InterestChange) {
        let queue = change.queue.as_deref();
        if change.gained {
            self.trie.insert(&change.pattern, queue, change.shard);
        } else {
            self.trie.remove(&change.pattern, queue, &change.shard);
        }
        self.cache.invalidate(&change.pattern);
    }

    /// Which shards want `subject`: `plain` lists shards with plain subscribers (a shard may
    /// appear more than once, once per matching pattern: deduplicate before forwarding), and
    /// `queues` lists, per group, each shard once per member.
    pub fn shards_for(&mut self, subject: &[u8]) -> Rc<Matches<ShardId>> {
        self.cache.get(&self.trie, subject)
    }
}
