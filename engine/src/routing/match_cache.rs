//! Caches keyed by subject: `SubjectCache` remembers any answer computed for a subject, and
//! `MatchCache` is the one for trie matches, so a stream of publishes to the same subjects
//! costs one hash lookup each and no allocation. Bounded; a subscription change drops exactly
//! the entries whose subject its pattern matches.

use crate::fast_map::FastMap;
use std::rc::Rc;

use shardbus_protocol::topic::{is_wildcard, matches};

use super::trie::{Matches, SubscriptionTrie};

/// A bounded map from subject to an answer about it.
#[derive(Debug)]
pub struct SubjectCache<T> {
    entries: FastMap<Box<[u8]>, T>,
    capacity: usize,
}

impl<T: Clone> SubjectCache<T> {
    /// A cache of at most `capacity` subjects.
    pub fn new(capacity: usize) -> SubjectCache<T> {
        SubjectCache {
            entries: FastMap::with_capacity_and_hasher(capacity.min(4096), Default::default()),
            capacity: capacity.max(1),
        }
    }

    /// Subjects cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer for `subject`, from the cache or from `compute` (then cached).
    pub fn get_or_insert_with(&mut self, subject: &[u8], compute: impl FnOnce() -> T) -> T {
        if let Some(hit) = self.entries.get(subject) {
            return hit.clone();
        }
        let answer = compute();
        if self.entries.len() >= self.capacity {
            // Dropping an arbitrary entry keeps this O(1); a subject that is hot comes back on
            // its next publish. nats-server's sublist cache evicts the same way.
            if let Some(victim) = self.entries.keys().next().cloned() {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(subject.into(), answer.clone());
        answer
    }

    /// Forgets every cached subject that `pattern` matches: call on each subscribe and
    /// unsubscribe.
    pub fn invalidate(&mut self, pattern: &[u8]) {
        let Ok(text) = std::str::from_utf8(pattern) else {
            self.entries.clear();
            return;
        };
        if !is_wildcard(text) {
            // A literal pattern matches one subject: one removal, not a pass over the cache
            // (ten thousand devices subscribing each to its own subject would otherwise cost
            // ten thousand passes over up to 16k entries).
            self.entries.remove(pattern);
            return;
        }
        let pattern = text;
        self.entries.retain(|subject, _| {
            std::str::from_utf8(subject).is_ok_and(|subject| !matches(pattern, subject))
        });
    }
}

/// A bounded cache of one trie's answers.
#[derive(Debug)]
pub struct MatchCache<V>(SubjectCache<Rc<Matches<V>>>);

impl<V: Clone + PartialEq> MatchCache<V> {
    /// A cache of at most `capacity` subjects.
    pub fn new(capacity: usize) -> MatchCache<V> {
        MatchCache(SubjectCache::new(capacity))
    }

    /// Subjects cached.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The matches of `subject`, from the cache or from `trie` (then cached).
    pub fn get(&mut self, trie: &SubscriptionTrie<V>, subject: &[u8]) -> Rc<Matches<V>> {
        self.0
            .get_or_insert_with(subject, || trie.matches_shared(subject))
    }

    /// Forgets every cached subject that `pattern` matches.
    pub fn invalidate(&mut self, pattern: &[u8]) {
        self.0.invalidate(pattern);
    }
}
