//! `Router`: one shard's whole routing state — its subscriptions (trie and cache), its interest
//! counts, its replica of the other shards' interest — and the decisions made from them: who
//! gets a published message, which one member of each queue group, which one responder gets a
//! request. Queue groups and requests rotate over every member on every shard: the replica
//! holds a shard once per remote member, so a rotation over local members followed by remote
//! entries is a rotation over all members. A share of requests (`[routing]
//! request_local_share`) may stay with a responder on the requester's own shard instead.

use crate::fast_map::FastMap;
use std::rc::Rc;

use super::SubscriptionTrie;
use super::{
    InterestChange, InterestReplica, LocalInterest, MatchCache, Matches, ShardId, SubjectCache,
};

/// Queue groups whose rotation is remembered at once.
const MAX_GROUP_TURNS: usize = 4096;

/// What the router needs of a local subscription: which connection holds it (for echo
/// suppression). The shard's own type carries the subscription's state with it, so a delivery
/// needs no lookup; [`SubKey`] is the plain form (tests, benches).
pub trait Subscriber: Clone + PartialEq {
    /// The id of the connection that holds the subscription.
    fn conn_id(&self) -> u64;
}

/// One subscription of one connection, by ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubKey {
    /// The connection's id.
    pub conn: u64,
    /// The subscription id the client chose.
    pub sid: u64,
}

impl Subscriber for SubKey {
    fn conn_id(&self) -> u64 {
        self.conn
    }
}

/// Where a published message goes. Reused between publishes, so routing allocates nothing
/// once its vectors have grown.
#[derive(Debug)]
pub struct Route<V = SubKey> {
    /// Local subscriptions to deliver to.
    pub local: Vec<V>,
    /// Other shards, each with `None` (its plain subscribers) or `Some(i)` (one member of
    /// group `i` of [`Route::remote_groups`]); sorted by shard, no duplicates.
    pub remote: Vec<(ShardId, Option<usize>)>,
    remote_matches: Option<Rc<Matches<ShardId>>>,
}

impl<V> Default for Route<V> {
    fn default() -> Route<V> {
        Route {
            local: Vec::new(),
            remote: Vec::new(),
            remote_matches: None,
        }
    }
}

impl<V> Route<V> {
    /// The name of remote group `index`.
    pub fn group_name(&self, index: usize) -> &str {
        self.remote_matches
            .as_deref()
            .and_then(|m| m.queues.get(index))
            .map_or("", |(name, _)| name)
    }

    fn clear(&mut self) {
        self.local.clear();
        self.remote.clear();
        self.remote_matches = None;
    }
}

/// Who subscribes to a subject here, and which other shards do.
type PublishMatches<V> = (Rc<Matches<V>>, Rc<Matches<ShardId>>);

/// Who gets a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Responder<V = SubKey> {
    /// A subscription on this shard.
    Local(V),
    /// Some subscription on that shard (it picks).
    Remote(ShardId),
    /// Nobody is subscribed.
    None,
}

/// One shard's routing state.
#[derive(Debug)]
pub struct Router<V = SubKey> {
    shard: ShardId,
    trie: SubscriptionTrie<V>,
    cache: MatchCache<V>,
    /// A publish's two answers, local subscribers and other shards, under one lookup: the
    /// two separate lookups were a quarter of a publishing shard's time (perf/RESULTS.md).
    publish_cache: SubjectCache<PublishMatches<V>>,
    interest: LocalInterest,
    replica: InterestReplica,
    group_turns: FastMap<Box<str>, usize>,
    request_turn: usize,
    /// Percent of requests kept on this shard when it has a responder (`[routing]`).
    local_share: u8,
    /// Accumulates `local_share` per request: past 100, the request stays here. Spreads the
    /// kept requests evenly among the others rather than in runs.
    local_credit: u16,
    local_turn: usize,
    /// The pseudo shard that stands for the other nodes of a cluster in the replica.
    other_nodes: ShardId,
}

impl<V: Subscriber> Router<V> {
    /// Keeps `share` percent of requests on this shard when it has a responder.
    pub fn with_request_local_share(mut self, share: u8) -> Router<V> {
        self.local_share = share.min(100);
        self
    }

    /// Names the pseudo shard that stands for the other nodes of a cluster: requests go to it
    /// only when no shard of this node has a responder, and what arrives from other nodes is
    /// never routed back to it.
    pub fn with_other_nodes(mut self, id: ShardId) -> Router<V> {
        self.other_nodes = id;
        self
    }

    /// Empty state for `shard`, with caches of `cache_capacity` subjects.
    pub fn new(shard: ShardId, cache_capacity: usize) -> Router<V> {
        Router {
            shard,
            trie: SubscriptionTrie::new(),
            cache: MatchCache::new(cache_capacity),
            publish_cache: SubjectCache::new(cache_capacity),
            interest: LocalInterest::new(),
            replica: InterestReplica::new(cache_capacity),
            group_turns: FastMap::default(),
            request_turn: 0,
            local_share: 0,
            local_credit: 0,
            local_turn: 0,
            other_nodes: ShardId::MAX,
        }
    }

    /// Adds a local subscription; returns the interest change to tell the other shards.
    pub fn subscribe(
        &mut self,
        pattern: &[u8],
        queue: Option<&str>,
        key: V,
    ) -> Option<InterestChange> {
        self.trie.insert(pattern, queue, key);
        self.cache.invalidate(pattern);
        self.publish_cache.invalidate(pattern);
        self.interest.subscribe(self.shard, pattern, queue)
    }

    /// Removes a local subscription; returns the interest change to tell the other shards.
    pub fn unsubscribe(
        &mut self,
        pattern: &[u8],
        queue: Option<&str>,
        key: &V,
    ) -> Option<InterestChange> {
        if !self.trie.remove(pattern, queue, key) {
            return None;
        }
        self.cache.invalidate(pattern);
        self.publish_cache.invalidate(pattern);
        self.interest.unsubscribe(self.shard, pattern, queue)
    }

    /// Applies another shard's interest change.
    pub fn apply(&mut self, change: &InterestChange) {
        self.replica.apply(change);
        self.publish_cache.invalidate(&change.pattern);
    }

    /// This shard's subscription counts per (pattern, queue group).
    pub fn local_interest(&self) -> &LocalInterest {
        &self.interest
    }

    /// Everything this shard has interest in, for a peer that joins.
    pub fn snapshot(&self) -> Vec<InterestChange> {
        self.interest.snapshot(self.shard)
    }

    fn next_turn(&mut self, group: &str) -> usize {
        if self.group_turns.len() >= MAX_GROUP_TURNS && !self.group_turns.contains_key(group) {
            // Clients choose group names: keep the table bounded. Restarting every rotation
            // costs one uneven pick per group, nothing more.
            self.group_turns.clear();
        }
        let turn = match self.group_turns.get_mut(group) {
            Some(turn) => turn,
            None => self.group_turns.entry(group.into()).or_insert(0),
        };
        *turn = turn.wrapping_add(1);
        *turn
    }

    /// Routes a message published here by connection `publisher`: every plain subscriber on
    /// every shard, and one member of each queue group across all shards. `echo`: whether the
    /// publisher's own subscriptions may receive it.
    pub fn route_publish(
        &mut self,
        subject: &[u8],
        publisher: u64,
        echo: bool,
        route: &mut Route<V>,
    ) {
        route.clear();
        let (cache, trie, replica) = (&mut self.cache, &self.trie, &mut self.replica);
        let (local, remote) = self.publish_cache.get_or_insert_with(subject, || {
            (cache.get(trie, subject), replica.shards_for(subject))
        });
        let eligible = |key: &&V| echo || key.conn_id() != publisher;
        route
            .local
            .extend(local.plain.iter().filter(eligible).cloned());
        route
            .remote
            .extend(remote.plain.iter().map(|&shard| (shard, None)));
        for (name, members) in &local.queues {
            let remote_group = remote.queues.iter().position(|(n, _)| n == name);
            let remote_members = remote_group
                .and_then(|i| remote.queues.get(i))
                .map_or(&[][..], |(_, m)| m.as_slice());
            let local_count = members.iter().filter(eligible).count();
            let total = local_count + remote_members.len();
            if total == 0 {
                continue;
            }
            let pick = self.next_turn(name) % total;
            if pick < local_count {
                route
                    .local
                    .extend(members.iter().filter(eligible).nth(pick).cloned());
            } else if let Some(&shard) = remote_members.get(pick - local_count) {
                route.remote.push((shard, remote_group));
            }
        }
        for (index, (name, members)) in remote.queues.iter().enumerate() {
            if members.is_empty() || local.queues.iter().any(|(n, _)| n == name) {
                continue;
            }
            let pick = self.next_turn(name) % members.len();
            if let Some(&shard) = members.get(pick) {
                route.remote.push((shard, Some(index)));
            }
        }
        route.remote.sort_unstable();
        route.remote.dedup();
        route.remote_matches = Some(remote);
    }

    /// Whether anyone on any shard is subscribed to `subject` (a cached lookup: what a system
    /// event asks before it is built, so events nobody wants cost nothing more).
    pub fn has_interest(&mut self, subject: &[u8]) -> bool {
        let (cache, trie, replica) = (&mut self.cache, &self.trie, &mut self.replica);
        let (local, remote) = self.publish_cache.get_or_insert_with(subject, || {
            (cache.get(trie, subject), replica.shards_for(subject))
        });
        !local.is_empty() || !remote.is_empty()
    }

    /// Routes a message another shard forwarded: every local plain subscriber if `plain`, and
    /// one local member of each group in `groups` (space-separated names).
    pub fn route_forwarded(
        &mut self,
        subject: &[u8],
        plain: bool,
        groups: &[u8],
        route: &mut Route<V>,
    ) {
        route.clear();
        let local = self.cache.get(&self.trie, subject);
        if plain {
            route.local.extend_from_slice(&local.plain);
        }
        for group in groups.split(|&b| b == b' ').filter(|g| !g.is_empty()) {
            let Some((name, members)) = local.queues.iter().find(|(n, _)| n.as_bytes() == group)
            else {
                continue;
            };
            if members.is_empty() {
                continue;
            }
            let pick = self.next_turn(name) % members.len();
            route.local.extend(members.get(pick).cloned());
        }
    }

    /// Routes a publication another node sent: every plain subscriber on this node's shards if
    /// `plain`, and one member of each group in `groups` among this node's members; never
    /// back to other nodes.
    pub fn route_arrived(
        &mut self,
        subject: &[u8],
        plain: bool,
        groups: &[u8],
        route: &mut Route<V>,
    ) {
        route.clear();
        let not_to = self.other_nodes;
        let (cache, trie, replica) = (&mut self.cache, &self.trie, &mut self.replica);
        let (local, remote) = self.publish_cache.get_or_insert_with(subject, || {
            (cache.get(trie, subject), replica.shards_for(subject))
        });
        if plain {
            route.local.extend_from_slice(&local.plain);
            route.remote.extend(
                remote
                    .plain
                    .iter()
                    .filter(|&&shard| shard != not_to)
                    .map(|&shard| (shard, None)),
            );
        }
        for group in groups.split(|&b| b == b' ').filter(|g| !g.is_empty()) {
            // Group names are single ASCII tokens (the decoder checked them where they came in).
            let Ok(name) = std::str::from_utf8(group) else {
                continue;
            };
            let members = local
                .queues
                .iter()
                .find(|(n, _)| n.as_bytes() == group)
                .map_or(&[][..], |(_, m)| m.as_slice());
            let remote_group = remote
                .queues
                .iter()
                .position(|(n, _)| n.as_bytes() == group);
            let shards = remote_group
                .and_then(|i| remote.queues.get(i))
                .map_or(&[][..], |(_, m)| m.as_slice());
            let others = || shards.iter().filter(|&&shard| shard != not_to);
            let total = members.len() + others().count();
            if total == 0 {
                continue;
            }
            let pick = self.next_turn(name) % total;
            if pick < members.len() {
                route.local.extend(members.get(pick).cloned());
            } else if let Some(&shard) = others().nth(pick - members.len()) {
                route.remote.push((shard, remote_group));
            }
        }
        route.remote.sort_unstable();
        route.remote.dedup();
        route.remote_matches = Some(remote);
    }

    /// Picks one responder for a request from `requester` among every subscription of
    /// `subject` on every shard, plain or in a group, rotating. Other nodes (their pseudo
    /// shard) get it only when this node has no responder at all, and only with
    /// `other_nodes` (a request that came from another node is never sent on to a third).
    pub fn route_request(
        &mut self,
        subject: &[u8],
        requester: u64,
        echo: bool,
        other_nodes: bool,
    ) -> Responder<V> {
        let local = self.cache.get(&self.trie, subject);
        let remote = self.replica.shards_for(subject);
        let eligible = |key: &&V| echo || key.conn_id() != requester;
        let local_all = || {
            local
                .plain
                .iter()
                .chain(local.queues.iter().flat_map(|(_, m)| m.iter()))
                .filter(eligible)
        };
        // This node's shards first: other nodes are asked only when none of them can answer.
        let nodes = self.other_nodes;
        let real = |shard: &&ShardId| **shard != nodes;
        let remote_all = || {
            remote
                .plain
                .iter()
                .chain(remote.queues.iter().flat_map(|(_, m)| m.iter()))
                .filter(real)
        };
        let local_count = local_all().count();
        let total = local_count + remote_all().count();
        if total == 0 {
            let elsewhere = remote.plain.contains(&nodes)
                || remote.queues.iter().any(|(_, m)| m.contains(&nodes));
            return if other_nodes && elsewhere {
                Responder::Remote(nodes)
            } else {
                Responder::None
            };
        }
        if local_count > 0 && self.keeps_here() {
            self.local_turn = self.local_turn.wrapping_add(1);
            return local_all()
                .nth(self.local_turn % local_count)
                .map_or(Responder::None, |k| Responder::Local(k.clone()));
        }
        self.request_turn = self.request_turn.wrapping_add(1);
        let pick = self.request_turn % total;
        if pick < local_count {
            local_all()
                .nth(pick)
                .map_or(Responder::None, |k| Responder::Local(k.clone()))
        } else {
            remote_all()
                .nth(pick - local_count)
                .map_or(Responder::None, |&s| Responder::Remote(s))
        }
    }

    /// Whether this request stays on this shard (`local_share` percent of them).
    fn keeps_here(&mut self) -> bool {
        self.local_credit += u16::from(self.local_share);
        if self.local_credit >= 100 {
            self.local_credit -= 100;
            return true;
        }
        false
    }

    /// Whether another node has a responder for `subject` (a plain or queue subscription).
    pub fn other_nodes_serve(&mut self, subject: &[u8]) -> bool {
        let nodes = self.other_nodes;
        let remote = self.replica.shards_for(subject);
        remote.plain.contains(&nodes) || remote.queues.iter().any(|(_, m)| m.contains(&nodes))
    }

    /// Picks one local subscription for a request another shard forwarded here.
    pub fn local_responder(&mut self, subject: &[u8]) -> Option<V> {
        let local = self.cache.get(&self.trie, subject);
        let count = local.plain.len() + local.queues.iter().map(|(_, m)| m.len()).sum::<usize>();
        if count == 0 {
            return None;
        }
        self.request_turn = self.request_turn.wrapping_add(1);
        let pick = self.request_turn % count;
        local
            .plain
            .iter()
            .chain(local.queues.iter().flat_map(|(_, m)| m.iter()))
            .nth(pick)
            .cloned()
    }
}
