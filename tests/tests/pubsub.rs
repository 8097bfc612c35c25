//! Publish/subscribe through the real server: local and cross-shard delivery, every wildcard
//! form, echo, auto-unsubscribe and headers.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::client::ClientOptions;
use shardbus_protocol::{Fields, HeadersBuilder, HelloOptions};
use shardbus_tests::{PATIENCE, Raw, TestServer};

fn msg_topic(raw: &mut Raw) -> (u64, String, Vec<u8>) {
    let frame = raw.next_event().expect("a MSG");
    match frame.fields {
        Fields::Msg { sid, .. } => (sid, String::from_utf8(frame.topic).unwrap(), frame.payload),
        other => panic!("expected MSG, got {other:?}"),
    }
}

#[test]
fn a_message_reaches_subscribers_on_the_same_and_the_other_shard() {
    let server = TestServer::start();
    let local_sub = server.client_on(0);
    let remote_sub = server.client_on(1);
    let publisher = server.client_on(0);
    let local = local_sub.subscribe("orders.new").unwrap();
    let remote = remote_sub.subscribe("orders.new").unwrap();
    local_sub.flush().unwrap();
    remote_sub.flush().unwrap();

    publisher.publish("orders.new", b"one").unwrap();

    for sub in [&local, &remote] {
        let message = sub.recv_timeout(PATIENCE).unwrap();
        assert_eq!(message.topic(), "orders.new");
        assert_eq!(message.payload(), b"one");
        assert_eq!(message.seq(), 1);
    }
    assert!(server.total(shardbus_engine::metrics::Metric::ForwardsOut) >= 1);
}

#[test]
fn every_wildcard_form_matches_as_protocol_md_says() {
    let server = TestServer::start();
    // The subscriber sits on shard 1 and the publisher on shard 0: every match is cross-shard.
    let mut sub = Raw::hello_on(server.addr, 1, HelloOptions(0));
    let patterns = [
        (1, "a.b.c"),
        (2, "a.*.c"),
        (3, "a.>"),
        (4, "*.b.*"),
        (5, ">"),
        (6, "a.*"),
        (7, "*.*.*.*"),
    ];
    for (sid, pattern) in patterns {
        sub.send(Fields::Sub { sid }, pattern.as_bytes(), b"");
    }
    sub.flush();
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let subjects = ["a.b.c", "a.x.c", "a.b", "x.b.y", "a.b.c.d", "q"];
    for subject in subjects {
        publisher.publish(subject, subject.as_bytes());
    }
    publisher.flush();
    // A sentinel only ">" matches ends the stream of deliveries.
    publisher.publish("end", b"");
    let expected: Vec<(&str, Vec<u64>)> = vec![
        ("a.b.c", vec![1, 2, 3, 4, 5]),
        ("a.x.c", vec![2, 3, 5]),
        ("a.b", vec![3, 5, 6]),
        ("x.b.y", vec![4, 5]),
        ("a.b.c.d", vec![3, 5, 7]),
        ("q", vec![5]),
    ];
    let mut got: Vec<(String, u64)> = Vec::new();
    loop {
        let (sid, topic, _) = msg_topic(&mut sub);
        if topic == "end" {
            break;
        }
        got.push((topic, sid));
    }
    for (subject, sids) in expected {
        let mut delivered: Vec<u64> = got
            .iter()
            .filter(|(t, _)| t == subject)
            .map(|(_, s)| *s)
            .collect();
        delivered.sort_unstable();
        assert_eq!(delivered, sids, "subscriptions that got {subject}");
    }
}

#[test]
fn a_publisher_gets_its_own_message_back_only_with_echo() {
    let server = TestServer::start();
    let quiet = server.client_on(0);
    let echoing = server.client_on_with(0, ClientOptions::new().no_reconnect().echo(true));
    let quiet_sub = quiet.subscribe("self").unwrap();
    let echo_sub = echoing.subscribe("self").unwrap();
    // Both subscriptions in effect before either publishes (two connections: no order).
    quiet.flush().unwrap();
    echoing.flush().unwrap();
    quiet.publish("self", b"q").unwrap();
    echoing.publish("self", b"e").unwrap();
    echoing.flush().unwrap();
    quiet.flush().unwrap();
    // The echoing client gets both; the quiet one only the other's.
    let mut echoed: Vec<Vec<u8>> = (0..2)
        .map(|_| echo_sub.recv_timeout(PATIENCE).unwrap().payload().to_vec())
        .collect();
    echoed.sort();
    assert_eq!(echoed, vec![b"e".to_vec(), b"q".to_vec()]);
    assert_eq!(quiet_sub.recv_timeout(PATIENCE).unwrap().payload(), b"e");
    quiet.flush().unwrap();
    assert!(quiet_sub.try_recv().unwrap().is_none());
}

#[test]
fn auto_unsubscribe_ends_a_subscription_after_n_messages_on_the_server() {
    let server = TestServer::start();
    let mut sub = Raw::hello_on(server.addr, 1, HelloOptions(0));
    sub.send(Fields::Sub { sid: 9 }, b"ticks", b"");
    sub.unsubscribe(9, 3);
    sub.flush();
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..10u8 {
        publisher.publish("ticks", &[i]);
    }
    publisher.flush();
    let seqs: Vec<u64> = (0..3)
        .map(|_| match sub.next_event().unwrap().fields {
            Fields::Msg { seq, .. } => seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    // The sid is gone on the server: UNSUB for it is now unknown.
    sub.unsubscribe(9, 0);
    let err = sub.expect_err();
    assert_eq!(
        err.err_code(),
        Some(shardbus_protocol::ErrorCode::UNKNOWN_SUBSCRIPTION)
    );
    sub.flush();
}

#[test]
fn headers_reach_only_clients_that_accept_them() {
    let server = TestServer::start();
    let mut with = Raw::hello_on(server.addr, 1, HelloOptions::HEADERS);
    let mut without = Raw::hello_on(server.addr, 0, HelloOptions(0));
    with.subscribe(1, "h", "");
    without.subscribe(1, "h", "");
    let mut publisher = Raw::hello(server.addr, HelloOptions(0));
    let mut headers = HeadersBuilder::new();
    headers.insert("trace", "abc").unwrap();
    publisher.send_with(Fields::Pub, b"h", headers.headers(), b"body");
    let got = with.next_event().unwrap();
    assert_eq!(
        shardbus_protocol::Headers::parse(&got.headers)
            .unwrap()
            .get("trace"),
        Some("abc")
    );
    let plain = without.next_event().unwrap();
    assert!(plain.headers.is_empty());
    assert_eq!(plain.payload, b"body");
}

#[test]
fn unsubscribed_clients_stop_receiving_everywhere() {
    let server = TestServer::start();
    let subscriber = server.client_on(1);
    let publisher = server.client_on(0);
    let sub = subscriber.subscribe("gone").unwrap();
    subscriber.flush().unwrap();
    publisher.publish("gone", b"1").unwrap();
    assert_eq!(sub.recv_timeout(PATIENCE).unwrap().payload(), b"1");
    sub.unsubscribe().unwrap();
    subscriber.flush().unwrap();
    let forwards = server.total(shardbus_engine::metrics::Metric::ForwardsOut);
    publisher.publish("gone", b"2").unwrap();
    publisher.flush().unwrap();
    // Shard 0 no longer forwards: shard 1's interest flipped to 0.
    assert_eq!(
        server.total(shardbus_engine::metrics::Metric::ForwardsOut),
        forwards
    );
}

#[test]
fn pongs_keep_the_order_of_their_pings_when_a_barrier_is_pending() {
    let server = TestServer::start();
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions(0));
    // The first PING follows a SUB, so it waits for the other shard; the second must not
    // overtake it.
    raw.send(Fields::Sub { sid: 1 }, b"ordered", b"");
    let first = raw.send(Fields::Ping, b"", b"");
    let second = raw.send(Fields::Ping, b"", b"");
    let pongs: Vec<u32> = (0..2)
        .map(|_| {
            let frame = raw.next_frame().unwrap();
            assert!(matches!(frame.fields, Fields::Pong), "{:?}", frame.fields);
            frame.op_id
        })
        .collect();
    assert_eq!(pongs, vec![first, second]);
}

/// `runtime.write_delay_us` holds a waking writer until the shard's next tick: everything
/// still arrives, in order, on both shards, and a request still gets its answer.
#[test]
fn a_write_delay_holds_writes_to_the_tick_and_loses_nothing() {
    let server = TestServer::with(|config| config.runtime.write_delay_us = 20_000);
    let local_sub = server.client_on(0);
    let remote_sub = server.client_on(1);
    let publisher = server.client_on(0);
    let local = local_sub.subscribe("ticks").unwrap();
    let remote = remote_sub.subscribe("ticks").unwrap();
    local_sub.flush().unwrap();
    remote_sub.flush().unwrap();

    for round in 0..3u8 {
        for n in 0..50u8 {
            publisher.publish("ticks", &[round, n]).unwrap();
        }
        publisher.flush().unwrap();
        for sub in [&local, &remote] {
            for n in 0..50u8 {
                let message = sub.recv_timeout(PATIENCE).unwrap();
                assert_eq!(message.payload(), [round, n]);
            }
        }
    }

    let responder = server.client_on(1);
    let service = responder.subscribe("echo").unwrap();
    responder.flush().unwrap();
    let answering = std::thread::spawn(move || {
        let request = service.recv_timeout(PATIENCE).unwrap();
        responder.respond(&request, b"pong").unwrap();
        responder
    });
    let answer = publisher.request("echo", b"ping", PATIENCE).unwrap();
    assert_eq!(answer.payload(), b"pong");
    drop(answering.join().unwrap());
}
