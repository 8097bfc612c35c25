//! The subscription trie and its cache against the protocol's reference matcher: whatever mix
//! of subscribes, unsubscribes and queue groups, the trie returns exactly the subscriptions
//! whose pattern matches, and the cache never returns a stale answer.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

mod common;

use proptest::prelude::*;
use shardbus_engine::routing::{MatchCache, Matches, SubscriptionTrie};
use shardbus_protocol::topic::matches;

type Sub = (String, Option<String>, u32); // pattern, queue group, subscriber id

const TOKENS: &[&str] = &["a", "b", "c", "dd"];

fn subject() -> impl Strategy<Value = String> {
    common::subject(TOKENS, 4)
}

fn pattern() -> impl Strategy<Value = String> {
    common::pattern(TOKENS, 3)
}

fn sub() -> impl Strategy<Value = Sub> {
    (
        pattern(),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec!["q1", "q2"]).prop_map(str::to_owned),
        ),
        0u32..20,
    )
}

/// Sorted so the trie's order (which does not matter to routing) does not matter here.
fn normalised(m: &Matches<u32>) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
    let mut plain = m.plain.clone();
    plain.sort_unstable();
    let mut queues: Vec<(String, Vec<u32>)> = m
        .queues
        .iter()
        .map(|(g, members)| {
            let mut members = members.clone();
            members.sort_unstable();
            (g.to_string(), members)
        })
        .collect();
    queues.sort();
    (plain, queues)
}

fn reference(live: &[Sub], subject: &str) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
    let mut plain = Vec::new();
    let mut queues: Vec<(String, Vec<u32>)> = Vec::new();
    for (pattern, queue, id) in live {
        if !matches(pattern, subject) {
            continue;
        }
        match queue {
            None => plain.push(*id),
            Some(group) => match queues.iter_mut().find(|(g, _)| g == group) {
                Some((_, members)) => members.push(*id),
                None => queues.push((group.clone(), vec![*id])),
            },
        }
    }
    plain.sort_unstable();
    for (_, members) in &mut queues {
        members.sort_unstable();
    }
    queues.sort();
    (plain, queues)
}

#[derive(Debug, Clone)]
enum Step {
    Subscribe(Sub),
    /// Unsubscribe the live subscription at this index (modulo the count), if any.
    Unsubscribe(usize),
    Publish(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => sub().prop_map(Step::Subscribe),
        1 => any::<usize>().prop_map(Step::Unsubscribe),
        3 => subject().prop_map(Step::Publish),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn trie_and_cache_agree_with_the_reference_matcher(steps in prop::collection::vec(step(), 1..60)) {
        let mut trie = SubscriptionTrie::new();
        let mut cache = MatchCache::new(8);
        let mut live: Vec<Sub> = Vec::new();
        for step in steps {
            match step {
                Step::Subscribe((pattern, queue, id)) => {
                    trie.insert(pattern.as_bytes(), queue.as_deref(), id);
                    cache.invalidate(pattern.as_bytes());
                    live.push((pattern, queue, id));
                }
                Step::Unsubscribe(index) => {
                    if live.is_empty() {
                        continue;
                    }
                    let (pattern, queue, id) = live.swap_remove(index % live.len());
                    prop_assert!(trie.remove(pattern.as_bytes(), queue.as_deref(), &id));
                    cache.invalidate(pattern.as_bytes());
                }
                Step::Publish(subject) => {
                    let want = reference(&live, &subject);
                    prop_assert_eq!(normalised(&trie.matches(subject.as_bytes())), want.clone(), "trie, {}", subject);
                    prop_assert_eq!(normalised(&cache.get(&trie, subject.as_bytes())), want, "cache, {}", subject);
                }
            }
            prop_assert_eq!(trie.len(), live.len());
        }
    }
}

#[test]
fn removing_every_subscription_leaves_an_empty_trie() {
    let mut trie = SubscriptionTrie::new();
    let subs = [
        ("a.b.c", None),
        ("a.*.c", Some("q")),
        ("a.>", None),
        ("*", None),
        (">", Some("q")),
    ];
    for (i, (p, q)) in subs.iter().enumerate() {
        trie.insert(p.as_bytes(), *q, i);
    }
    assert_eq!(trie.len(), 5);
    for (i, (p, q)) in subs.iter().enumerate() {
        assert!(trie.remove(p.as_bytes(), *q, &i), "{p}");
        assert!(!trie.remove(p.as_bytes(), *q, &i), "{p} twice");
    }
    assert!(trie.is_empty());
    assert!(trie.matches(b"a.b.c").is_empty());
}

#[test]
fn queue_group_members_merge_across_patterns_as_in_nats() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(b"orders.*", Some("billing"), 1);
    trie.insert(b"orders.new", Some("billing"), 2);
    trie.insert(b"orders.>", Some("audit"), 3);
    trie.insert(b"orders.new", None, 4);
    let (plain, queues) = normalised(&trie.matches(b"orders.new"));
    assert_eq!(plain, vec![4]);
    assert_eq!(
        queues,
        vec![
            ("audit".to_owned(), vec![3]),
            ("billing".to_owned(), vec![1, 2])
        ]
    );
}

#[test]
fn the_cache_stays_within_its_capacity() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(b">", None, 0u32);
    let mut cache = MatchCache::new(4);
    for i in 0..100 {
        let subject = format!("s.{i}");
        assert_eq!(cache.get(&trie, subject.as_bytes()).plain, vec![0]);
        assert!(cache.len() <= 4);
    }
}
