//! Routing inside a shard: matching a subject against 10,000 subscriptions in the trie, with
//! and without the match cache, and a whole publish decision in the `Router` (local
//! subscribers, the other shards' interest, one member of a queue group picked across shards).

#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shardbus_engine::routing::{
    InterestChange, MatchCache, Route, Router, SubKey, SubscriptionTrie,
};

/// 10,000 subscriptions shaped like an IoT fleet: one per device, per-site wildcards, a few
/// catch-alls and a queue group of workers.
fn fleet() -> SubscriptionTrie<u32> {
    let mut trie = SubscriptionTrie::new();
    let mut id = 0u32;
    for site in 0..100 {
        for device in 0..95 {
            trie.insert(
                format!("sensors.site{site}.dev{device}.temp").as_bytes(),
                None,
                id,
            );
            id += 1;
        }
        trie.insert(format!("sensors.site{site}.*.temp").as_bytes(), None, id);
        id += 1;
        for worker in 0..4 {
            trie.insert(
                format!("sensors.site{site}.>").as_bytes(),
                Some("ingest"),
                id + worker,
            );
        }
        id += 4;
    }
    trie.insert(b"sensors.>", None, id);
    trie
}

fn routing(c: &mut Criterion) {
    let trie = fleet();
    let subject = b"sensors.site42.dev7.temp";
    assert_eq!(trie.matches(subject).plain.len(), 3);
    c.bench_function("trie_match/10k_subs_uncached", |b| {
        b.iter(|| trie.matches(black_box(subject)));
    });
    let mut cache = MatchCache::new(1024);
    c.bench_function("trie_match/10k_subs_cache_hit", |b| {
        b.iter(|| cache.get(&trie, black_box(subject)));
    });
}

/// A router of shard 0 where `orders.*` has 2 plain subscribers here, a queue group with 2
/// members here and 2 on shard 1, and shard 1 also has a plain subscriber.
fn router() -> Router {
    let mut router = Router::new(0, 1024);
    for sid in 0..2 {
        router.subscribe(b"orders.*", None, SubKey { conn: 1, sid });
        router.subscribe(b"orders.>", Some("billing"), SubKey { conn: 2, sid });
    }
    let remote = |queue: Option<&str>| InterestChange {
        shard: 1,
        pattern: b"orders.*"[..].into(),
        queue: queue.map(Into::into),
        gained: true,
    };
    router.apply(&remote(None));
    router.apply(&remote(Some("billing")));
    router.apply(&remote(Some("billing")));
    router
}

fn publish_decision(c: &mut Criterion) {
    let mut router = router();
    let mut route = Route::default();
    router.route_publish(b"orders.new", 9, false, &mut route);
    assert_eq!(route.local.len() + route.remote.len(), 4);
    c.bench_function("router/publish_plain_and_queue_group_2_shards", |b| {
        b.iter(|| router.route_publish(black_box(b"orders.new"), 9, false, &mut route));
    });
    let mut plain_only = Router::new(0, 1024);
    plain_only.subscribe(b"orders.*", None, SubKey { conn: 1, sid: 1 });
    c.bench_function("router/publish_plain_only", |b| {
        b.iter(|| plain_only.route_publish(black_box(b"orders.new"), 9, false, &mut route));
    });
}

criterion_group!(benches, routing, publish_decision);
criterion_main!(benches);
