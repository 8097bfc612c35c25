//! Routing a publish allocates nothing once a subject's matches are cached: a counting global
//! allocator watches the router's decisions for plain subscribers and a queue group spread
//! over two shards.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may panic

use shardbus_engine::routing::{InterestChange, Route, Router, SubKey};

#[path = "../../protocol/tests/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, allocations_during};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn routing_a_cached_subject_allocates_nothing() {
    // The counter sees this thread's allocations (else every "0" below would be vacuous).
    let one = allocations_during(|| drop(std::hint::black_box(vec![1u8])));
    assert_eq!(one, 1, "the counting allocator is not counting");
    let mut router = Router::new(0, 1024);
    for sid in 0..3 {
        router.subscribe(b"orders.*", None, SubKey { conn: 1, sid });
        router.subscribe(b"orders.>", Some("billing"), SubKey { conn: 2, sid });
    }
    for queue in [None, Some("billing"), Some("billing")] {
        router.apply(&InterestChange {
            shard: 1,
            pattern: b"orders.new"[..].into(),
            queue: queue.map(Into::into),
            gained: true,
        });
    }
    let mut route = Route::default();
    // Warm-up: fills both caches, grows the route's vectors, meets the group once.
    for _ in 0..10 {
        router.route_publish(b"orders.new", 9, false, &mut route);
        router.route_forwarded(b"orders.new", true, b"billing", &mut route);
    }
    let n = allocations_during(|| {
        for _ in 0..1000 {
            router.route_publish(std::hint::black_box(b"orders.new"), 9, false, &mut route);
            std::hint::black_box(&route);
        }
    });
    assert_eq!(n, 0, "route_publish allocated");
    let n = allocations_during(|| {
        for _ in 0..1000 {
            router.route_forwarded(b"orders.new", true, b"billing", &mut route);
            std::hint::black_box(&route);
        }
    });
    assert_eq!(n, 0, "route_forwarded allocated");
}
