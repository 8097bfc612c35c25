//! Where requests go (`[routing] request_local_share`): with one responder on the requester's
//! shard and three on another, a share of 0 rotates over all four (a quarter stay), 100 keeps
//! every request on the requester's shard, 50 keeps half and rotates the rest; a shard without
//! a responder always sends them on.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use shardbus_engine::routing::{Responder, Router, SubKey};

/// Two shards' routers: one responder of group `workers` on shard 0, three on shard 1.
fn routers(share: u8) -> Vec<Router> {
    let mut routers: Vec<Router> = (0..2)
        .map(|s| Router::new(s, 16).with_request_local_share(share))
        .collect();
    for (shard, conn) in [(0usize, 1u64), (1, 2), (1, 3), (1, 4)] {
        let key = SubKey { conn, sid: 1 };
        if let Some(change) = routers[shard].subscribe(b"svc.echo", Some("workers"), key) {
            routers[1 - shard].apply(&change);
        }
    }
    routers
}

/// Of 1,000 requests from a connection of shard `from`, how many stayed on it.
fn kept(routers: &mut [Router], from: usize) -> usize {
    (0..1000)
        .filter(
            |_| match routers[from].route_request(b"svc.echo", 99, false, false) {
                Responder::Local(_) => true,
                Responder::Remote(_) => false,
                Responder::None => panic!("a responder exists"),
            },
        )
        .count()
}

#[test]
fn a_share_of_requests_stays_with_a_responder_on_the_requesters_shard() {
    assert_eq!(
        kept(&mut routers(0), 0),
        250,
        "an even rotation over all four"
    );
    assert_eq!(kept(&mut routers(100), 0), 1000);
    let half = kept(&mut routers(50), 0);
    assert!(
        (600..=650).contains(&half),
        "half kept, a quarter of the rest: {half}"
    );
    // Shard 1's requests stay there too, rotating over its three responders.
    assert_eq!(kept(&mut routers(100), 1), 1000);
}

#[test]
fn a_shard_without_a_responder_sends_every_request_on() {
    let mut routers: Vec<Router> = (0..2)
        .map(|s| Router::new(s, 16).with_request_local_share(100))
        .collect();
    let change = routers[1]
        .subscribe(b"svc.echo", None, SubKey { conn: 2, sid: 1 })
        .unwrap();
    routers[0].apply(&change);
    assert_eq!(kept(&mut routers, 0), 0);
}
