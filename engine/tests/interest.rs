//! The cross-shard interest table: flips only at 0↔1, and replicas fed those flips in order
//! always know exactly which other shards want a subject.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use std::collections::BTreeSet;

mod common;

use proptest::prelude::*;
use shardbus_engine::routing::{InterestReplica, LocalInterest, ShardId};
use shardbus_protocol::topic::matches;

#[test]
fn only_the_first_and_the_last_subscription_are_announced() {
    let mut local = LocalInterest::new();
    let first = local.subscribe(0, b"orders.>", None).unwrap();
    assert!(first.gained);
    assert!(local.subscribe(0, b"orders.>", None).is_none());
    assert!(local.subscribe(0, b"orders.>", None).is_none());
    assert_eq!(local.count(b"orders.>", None), 3);
    assert!(local.unsubscribe(0, b"orders.>", None).is_none());
    assert!(local.unsubscribe(0, b"orders.>", None).is_none());
    let last = local.unsubscribe(0, b"orders.>", None).unwrap();
    assert!(!last.gained);
    assert!(
        local.unsubscribe(0, b"orders.>", None).is_none(),
        "nothing left to uncount"
    );
}

#[test]
fn a_queue_group_is_its_own_interest() {
    let mut local = LocalInterest::new();
    assert!(local.subscribe(1, b"jobs", None).is_some());
    let grouped = local.subscribe(1, b"jobs", Some("workers")).unwrap();
    assert_eq!(grouped.queue.as_deref(), Some("workers"));
    let mut replica = InterestReplica::new(16);
    replica.apply(&grouped);
    let wanted = replica.shards_for(b"jobs");
    assert!(wanted.plain.is_empty());
    assert_eq!(wanted.queues.len(), 1);
    assert_eq!(&*wanted.queues[0].0, "workers");
    assert_eq!(wanted.queues[0].1, vec![1]);
}

#[test]
fn a_snapshot_rebuilds_a_replica() {
    let mut local = LocalInterest::new();
    local.subscribe(2, b"a.*", None);
    local.subscribe(2, b"a.*", None);
    local.subscribe(2, b"b", Some("g"));
    let mut replica = InterestReplica::new(16);
    for change in local.snapshot(2) {
        replica.apply(&change);
    }
    assert_eq!(replica.shards_for(b"a.x").plain, vec![2]);
    assert_eq!(replica.shards_for(b"b").queues[0].1, vec![2]);
    assert!(replica.shards_for(b"c").is_empty());
}

const SHARDS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Subscribe {
        shard: usize,
        pattern: String,
        queue: Option<String>,
    },
    Unsubscribe {
        index: usize,
    },
    Publish {
        subject: String,
    },
}

const TOKENS: &[&str] = &["a", "b", "c"];

fn step() -> impl Strategy<Value = Step> {
    let pattern = common::pattern(TOKENS, 2);
    prop_oneof![
        3 => (0..SHARDS, pattern, prop::option::weighted(0.3, Just("q".to_owned())))
            .prop_map(|(shard, pattern, queue)| Step::Subscribe { shard, pattern, queue }),
        2 => any::<usize>().prop_map(|index| Step::Unsubscribe { index }),
        3 => common::subject(TOKENS, 3).prop_map(|subject| Step::Publish { subject }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn replicas_fed_flips_in_order_know_exactly_which_shards_want_a_subject(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        let mut locals: Vec<LocalInterest> = (0..SHARDS).map(|_| LocalInterest::new()).collect();
        let mut replicas: Vec<InterestReplica> = (0..SHARDS).map(|_| InterestReplica::new(4)).collect();
        let mut live: Vec<(usize, String, Option<String>)> = Vec::new();
        for step in steps {
            let flip = match &step {
                Step::Subscribe { shard, pattern, queue } => {
                    live.push((*shard, pattern.clone(), queue.clone()));
                    locals[*shard].subscribe(*shard as ShardId, pattern.as_bytes(), queue.as_deref())
                }
                Step::Unsubscribe { index } => {
                    if live.is_empty() {
                        continue;
                    }
                    let (shard, pattern, queue) = live.swap_remove(index % live.len());
                    locals[shard].unsubscribe(shard as ShardId, pattern.as_bytes(), queue.as_deref())
                }
                Step::Publish { subject } => {
                    for (me, replica) in replicas.iter_mut().enumerate() {
                        let wanted = replica.shards_for(subject.as_bytes());
                        let got_plain: BTreeSet<ShardId> = wanted.plain.iter().copied().collect();
                        let got_queued: BTreeSet<ShardId> =
                            wanted.queues.iter().flat_map(|(_, s)| s.iter().copied()).collect();
                        let expected = |grouped: bool| -> BTreeSet<ShardId> {
                            live.iter()
                                .filter(|(s, p, q)| *s != me && q.is_some() == grouped && matches(p, subject))
                                .map(|(s, _, _)| *s as ShardId)
                                .collect()
                        };
                        prop_assert_eq!(got_plain, expected(false), "shard {} plain, {}", me, subject);
                        prop_assert_eq!(got_queued, expected(true), "shard {} queued, {}", me, subject);
                    }
                    None
                }
            };
            if let Some(change) = flip {
                for (other, replica) in replicas.iter_mut().enumerate() {
                    if other != usize::from(change.shard) {
                        replica.apply(&change);
                    }
                }
            }
        }
    }
}
