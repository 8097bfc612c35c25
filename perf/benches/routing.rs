//! Routing inside a shard: matching a subject against 10,000 subscriptions in the trie, with
//! and without the match cache.

#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shardbus_engine::routing::{MatchCache, SubscriptionTrie};

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

criterion_group!(benches, routing);
criterion_main!(benches);
