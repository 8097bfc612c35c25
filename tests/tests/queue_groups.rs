//! Queue groups through the real server: every message reaches exactly one member, and the
//! members on both shards share the work evenly.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use shardbus_protocol::{Fields, HelloOptions};
use shardbus_tests::{Raw, TestServer};

const MESSAGES: u32 = 3_000;

#[test]
fn each_message_reaches_exactly_one_member_balanced_across_shards() {
    let server = TestServer::start();
    // Two members on each shard, plus a plain subscriber that must see everything.
    let mut members: Vec<Raw> = [0u16, 0, 1, 1]
        .iter()
        .map(|&shard| Raw::hello_on(server.addr, shard, HelloOptions(0)))
        .collect();
    for (i, member) in members.iter_mut().enumerate() {
        member.send(Fields::Sub { sid: 2 }, format!("stop.{i}").as_bytes(), b"");
        member.subscribe(1, "jobs.*", "workers");
    }
    let mut watcher = Raw::hello_on(server.addr, 1, HelloOptions(0));
    watcher.subscribe(1, "jobs.>", "");
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..MESSAGES {
        publisher.publish("jobs.resize", &i.to_le_bytes());
    }
    publisher.publish("jobs.end", b"");
    publisher.flush();

    // The watcher sees every message, in order, then the end marker.
    for i in 0..MESSAGES {
        assert_eq!(watcher.next_event().unwrap().payload, i.to_le_bytes());
    }
    // Each member reads until its own stop marker, published after all the work (the end
    // marker went to one member and is skipped).
    let mut seen = HashSet::new();
    let mut per_member = Vec::new();
    for i in 0..members.len() {
        publisher.publish(&format!("stop.{i}"), b"");
    }
    for member in &mut members {
        let mut count = 0u32;
        loop {
            let frame = member.next_event().unwrap();
            let Fields::Msg { sid, .. } = frame.fields else {
                panic!("{:?}", frame.fields);
            };
            if sid == 2 {
                break;
            }
            if frame.topic == b"jobs.end" {
                continue;
            }
            let n = u32::from_le_bytes(frame.payload.try_into().unwrap());
            assert!(seen.insert(n), "message {n} delivered twice");
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(
        seen.len() as u32,
        MESSAGES,
        "every message reached a member"
    );
    // One publisher: its shard rotates over all four members in turn.
    let fair = MESSAGES / 4;
    for count in &per_member {
        assert!(count.abs_diff(fair) <= 1, "uneven shares: {per_member:?}");
    }
}

#[test]
fn a_group_member_leaving_moves_its_share_to_the_others() {
    let server = TestServer::start();
    let mut stays = Raw::hello_on(server.addr, 1, HelloOptions(0));
    stays.subscribe(1, "work", "pool");
    let mut leaves = Raw::hello_on(server.addr, 0, HelloOptions(0));
    leaves.subscribe(1, "work", "pool");
    leaves.unsubscribe(1, 0);
    leaves.flush();
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..100u8 {
        publisher.publish("work", &[i]);
    }
    for i in 0..100u8 {
        assert_eq!(stays.next_event().unwrap().payload, [i]);
    }
}
