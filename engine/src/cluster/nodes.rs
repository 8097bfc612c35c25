//! The other nodes as `cluster-out` knows them: each one's interest (patterns with their
//! queue groups) and when it was last heard, one trie over all of them for picking where a
//! publication goes, and how many nodes hold each pattern — what the shards' replicas are told
//! as the pseudo shard `REMOTE` (plain interest when the count flips 0↔1, a queue group once
//! per node that has it, so a group is balanced across nodes as across shards).

use std::rc::Rc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::fast_map::FastMap;
use crate::routing::{InterestChange, MatchCache, Matches, ShardId, SubscriptionTrie};

/// A pattern and its queue group.
pub(crate) type Key = (Box<[u8]>, Option<Box<str>>);

/// What a message from a node means for its view.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Apply it.
    Apply,
    /// Already seen (an older sequence number).
    Stale,
    /// Unknown node, or a change was missed: read its whole interest.
    Resync,
}

#[derive(Debug)]
struct Node {
    index: u32,
    /// Which start of the node its numbers belong to.
    incarnation: u64,
    seq: u64,
    heard: Instant,
    keys: FastMap<Key, ()>,
}

/// Every other node's interest.
#[derive(Debug)]
pub(super) struct Nodes {
    nodes: FastMap<Box<str>, Node>,
    names: FastMap<u32, Box<str>>,
    next_index: u32,
    trie: SubscriptionTrie<u32>,
    cache: MatchCache<u32>,
    /// Nodes holding each key.
    counts: FastMap<Key, u32>,
    turns: FastMap<Box<str>, usize>,
    request_turn: usize,
    /// The pseudo shard the changes for the shards name.
    remote: ShardId,
    /// Nodes that came (`true`: new, or a new incarnation) or went since the shards were last
    /// told, in order: the shards keep other nodes' room members by them.
    pub(super) notices: Vec<(Box<str>, bool)>,
}

/// One node a publication goes to: whether its plain subscribers get it, and the groups (by
/// index into the matches) it serves.
#[derive(Debug)]
pub(super) struct Pick {
    pub(super) node: u32,
    pub(super) plain: bool,
    pub(super) groups: SmallVec<[u16; 2]>,
}

impl Nodes {
    /// No nodes yet; changes for the shards name pseudo shard `remote`.
    pub(super) fn new(remote: ShardId) -> Nodes {
        Nodes {
            nodes: FastMap::default(),
            names: FastMap::default(),
            next_index: 0,
            trie: SubscriptionTrie::new(),
            cache: MatchCache::new(4096),
            counts: FastMap::default(),
            turns: FastMap::default(),
            request_turn: 0,
            remote,
            notices: Vec::new(),
        }
    }

    /// How a change or heartbeat numbered `seq` from `node` is to be taken (heartbeats carry
    /// the last change's number: a higher one means a change was missed).
    pub(super) fn verdict(
        &mut self,
        node: &str,
        incarnation: u64,
        seq: u64,
        change: bool,
        now: Instant,
    ) -> Verdict {
        let Some(known) = self.nodes.get_mut(node) else {
            return Verdict::Resync;
        };
        known.heard = now;
        if known.incarnation != incarnation {
            return Verdict::Resync;
        }
        let next = known.seq + u64::from(change);
        match seq.cmp(&next) {
            std::cmp::Ordering::Less => Verdict::Stale,
            std::cmp::Ordering::Equal if change => Verdict::Apply,
            std::cmp::Ordering::Equal => Verdict::Stale,
            std::cmp::Ordering::Greater => Verdict::Resync,
        }
    }

    /// Applies one change of `node`'s interest (its sequence number `seq`).
    pub(super) fn apply(
        &mut self,
        node: &str,
        seq: u64,
        gained: bool,
        key: Key,
        out: &mut Vec<InterestChange>,
    ) {
        let Some(known) = self.nodes.get_mut(node) else {
            return;
        };
        known.seq = seq;
        let index = known.index;
        let had = known.keys.contains_key(&key);
        if gained && !had {
            known.keys.insert(key.clone(), ());
            self.add(index, key, out);
        } else if !gained && had {
            known.keys.remove(&key);
            self.remove(index, &key, out);
        }
    }

    /// Makes `node`'s interest `keys` (as read in its `incarnation` at number `seq`).
    pub(super) fn replace(
        &mut self,
        node: &str,
        incarnation: u64,
        seq: u64,
        keys: Vec<Key>,
        now: Instant,
        out: &mut Vec<InterestChange>,
    ) {
        match self.nodes.get(node) {
            None => self.notices.push((node.into(), true)),
            Some(known) if known.incarnation != incarnation => {
                self.notices.push((node.into(), false));
                self.notices.push((node.into(), true));
            }
            Some(_) => {}
        }
        if !self.nodes.contains_key(node) {
            let index = self.next_index;
            self.next_index = self.next_index.wrapping_add(1);
            self.names.insert(index, node.into());
            let fresh = Node {
                index,
                incarnation,
                seq: 0,
                heard: now,
                keys: FastMap::default(),
            };
            self.nodes.insert(node.into(), fresh);
        }
        let Some(known) = self.nodes.get_mut(node) else {
            return;
        };
        known.incarnation = incarnation;
        known.seq = seq;
        known.heard = now;
        let index = known.index;
        let wanted: FastMap<Key, ()> = keys.into_iter().map(|k| (k, ())).collect();
        let gone: Vec<Key> = known
            .keys
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        let new: Vec<Key> = wanted
            .keys()
            .filter(|k| !known.keys.contains_key(*k))
            .cloned()
            .collect();
        known.keys = wanted;
        for key in gone {
            self.remove(index, &key, out);
        }
        for key in new {
            self.add(index, key, out);
        }
    }

    /// Forgets `node` and its interest (it said goodbye, or fell silent).
    pub(super) fn forget(&mut self, node: &str, out: &mut Vec<InterestChange>) {
        let Some(known) = self.nodes.remove(node) else {
            return;
        };
        self.notices.push((node.into(), false));
        self.names.remove(&known.index);
        for key in known.keys.into_keys() {
            self.remove(known.index, &key, out);
        }
    }

    /// The nodes silent for `timeout`.
    pub(super) fn silent(&self, now: Instant, timeout: Duration) -> Vec<Box<str>> {
        self.nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.heard) >= timeout)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn add(&mut self, index: u32, key: Key, out: &mut Vec<InterestChange>) {
        self.trie.insert(&key.0, key.1.as_deref(), index);
        self.cache.invalidate(&key.0);
        let count = self.counts.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count == 1 || key.1.is_some() {
            out.push(change(self.remote, key, true));
        }
    }

    fn remove(&mut self, index: u32, key: &Key, out: &mut Vec<InterestChange>) {
        self.trie.remove(&key.0, key.1.as_deref(), &index);
        self.cache.invalidate(&key.0);
        let Some(count) = self.counts.get_mut(key) else {
            return;
        };
        *count -= 1;
        let last = *count == 0;
        if last {
            self.counts.remove(key);
        }
        if last || key.1.is_some() {
            out.push(change(self.remote, key.clone(), false));
        }
    }

    /// Where a publication to `subject` goes, into `picks` (emptied first): every node with
    /// plain interest if `plain`, and for each group in `groups` (space-separated) one node that
    /// has it, rotating. Group indexes in the picks are into the returned matches' `queues`.
    pub(super) fn route(
        &mut self,
        subject: &[u8],
        plain: bool,
        groups: &[u8],
        picks: &mut Vec<Pick>,
    ) -> Rc<Matches<u32>> {
        picks.clear();
        let matches = self.cache.get(&self.trie, subject);
        if plain {
            for &node in &matches.plain {
                if !picks.iter().any(|p| p.node == node) {
                    picks.push(Pick {
                        node,
                        plain: true,
                        groups: SmallVec::new(),
                    });
                }
            }
        }
        for group in groups.split(|&b| b == b' ').filter(|g| !g.is_empty()) {
            let Some(at) = matches
                .queues
                .iter()
                .position(|(n, _)| n.as_bytes() == group)
            else {
                continue;
            };
            let Some((name, members)) = matches.queues.get(at) else {
                continue;
            };
            if members.is_empty() {
                continue;
            }
            if self.turns.len() >= 4096 && !self.turns.contains_key(name) {
                self.turns.clear();
            }
            let turn = self.turns.entry(name.clone()).or_insert(0);
            *turn = turn.wrapping_add(1);
            let Some(&node) = members.get(*turn % members.len()) else {
                continue;
            };
            let at = at as u16;
            match picks.iter_mut().find(|p| p.node == node) {
                Some(pick) => pick.groups.push(at),
                None => picks.push(Pick {
                    node,
                    plain: false,
                    groups: smallvec::smallvec![at],
                }),
            }
        }
        matches
    }

    /// One node with any interest in `subject`, for a request (rotating over them).
    pub(super) fn pick_responder(&mut self, subject: &[u8]) -> Option<u32> {
        let matches = self.cache.get(&self.trie, subject);
        let count =
            matches.plain.len() + matches.queues.iter().map(|(_, m)| m.len()).sum::<usize>();
        if count == 0 {
            return None;
        }
        self.request_turn = self.request_turn.wrapping_add(1);
        matches
            .plain
            .iter()
            .chain(matches.queues.iter().flat_map(|(_, m)| m.iter()))
            .nth(self.request_turn % count)
            .copied()
    }

    /// Every known node's index.
    pub(super) fn indexes(&self) -> Vec<u32> {
        self.nodes.values().map(|n| n.index).collect()
    }

    /// A node's index by its name.
    pub(super) fn index_of(&self, node: &[u8]) -> Option<u32> {
        let node = std::str::from_utf8(node).ok()?;
        self.nodes.get(node).map(|n| n.index)
    }

    /// A node's name by its index.
    pub(super) fn name(&self, index: u32) -> Option<&str> {
        self.names.get(&index).map(|n| &**n)
    }

    /// The nodes for `/api/v1/cluster`.
    pub(super) fn view(&self, now: Instant) -> Vec<super::NodeView> {
        let mut view: Vec<super::NodeView> = self
            .nodes
            .iter()
            .map(|(name, node)| super::NodeView {
                node: name.to_string(),
                interest: node.keys.len(),
                last_heard_ms: now.saturating_duration_since(node.heard).as_millis() as u64,
            })
            .collect();
        view.sort_by(|a, b| a.node.cmp(&b.node));
        view
    }
}

fn change(remote: ShardId, (pattern, queue): Key, gained: bool) -> InterestChange {
    InterestChange {
        shard: remote,
        pattern,
        queue,
        gained,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn key(pattern: &str, queue: Option<&str>) -> Key {
        (pattern.as_bytes().into(), queue.map(Into::into))
    }

    fn flips(out: &mut Vec<InterestChange>) -> Vec<(String, Option<String>, bool)> {
        out.drain(..)
            .map(|c| {
                let pattern = String::from_utf8(c.pattern.to_vec()).unwrap();
                (pattern, c.queue.map(|q| q.to_string()), c.gained)
            })
            .collect()
    }

    #[test]
    fn changes_apply_in_order_and_a_gap_or_a_new_start_reads_the_node_again() {
        let now = Instant::now();
        let mut nodes = Nodes::new(2);
        let mut out = Vec::new();
        assert_eq!(nodes.verdict("east", 1, 1, true, now), Verdict::Resync);
        nodes.replace("east", 1, 1, vec![key("a.*", None)], now, &mut out);
        assert_eq!(flips(&mut out), vec![("a.*".into(), None, true)]);
        assert_eq!(nodes.verdict("east", 1, 2, true, now), Verdict::Apply);
        nodes.apply("east", 2, true, key("b.>", Some("w")), &mut out);
        assert_eq!(nodes.verdict("east", 1, 2, true, now), Verdict::Stale);
        assert_eq!(
            nodes.verdict("east", 1, 2, false, now),
            Verdict::Stale,
            "heartbeat, nothing missed"
        );
        assert_eq!(
            nodes.verdict("east", 1, 4, true, now),
            Verdict::Resync,
            "3 was missed"
        );
        assert_eq!(
            nodes.verdict("east", 2, 1, true, now),
            Verdict::Resync,
            "restarted"
        );
        // A second node with the same plain pattern: no flip; a queue group: one per node.
        flips(&mut out);
        nodes.replace(
            "west",
            9,
            1,
            vec![key("a.*", None), key("b.>", Some("w"))],
            now,
            &mut out,
        );
        assert_eq!(
            flips(&mut out),
            vec![("b.>".into(), Some("w".into()), true)]
        );
        nodes.forget("east", &mut out);
        assert_eq!(
            flips(&mut out),
            vec![("b.>".into(), Some("w".into()), false)]
        );
        nodes.forget("west", &mut out);
        let mut gone = flips(&mut out);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                ("a.*".into(), None, false),
                ("b.>".into(), Some("w".into()), false)
            ]
        );
    }

    #[test]
    fn plain_interest_reaches_every_node_and_a_group_one_node_in_turn() {
        let now = Instant::now();
        let mut nodes = Nodes::new(2);
        let mut out = Vec::new();
        nodes.replace(
            "east",
            1,
            1,
            vec![key("jobs.*", Some("w")), key("jobs.>", None)],
            now,
            &mut out,
        );
        nodes.replace("west", 1, 1, vec![key("jobs.*", Some("w"))], now, &mut out);
        let mut picks = Vec::new();
        let mut to_group = Vec::new();
        for _ in 0..10 {
            nodes.route(b"jobs.run", true, b"w", &mut picks);
            let plain: Vec<u32> = picks.iter().filter(|p| p.plain).map(|p| p.node).collect();
            assert_eq!(plain.len(), 1, "east's plain subscribers, once");
            let grouped: Vec<u32> = picks
                .iter()
                .filter(|p| !p.groups.is_empty())
                .map(|p| p.node)
                .collect();
            assert_eq!(grouped.len(), 1, "one node per group");
            to_group.push(grouped[0]);
        }
        to_group.sort_unstable();
        to_group.dedup();
        assert_eq!(to_group.len(), 2, "the group rotates over both nodes");
        assert!(nodes.pick_responder(b"jobs.run").is_some());
        assert!(nodes.pick_responder(b"other").is_none());
        assert_eq!(
            nodes
                .silent(now + Duration::from_secs(5), Duration::from_secs(3))
                .len(),
            2
        );
    }
}
