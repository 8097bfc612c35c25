//! The blocking client against a scripted peer over real loopback sockets: handshake, publish,
//! subscribe, auto-unsubscribe, request/response and its errors, ping, slow-subscriber drops,
//! reconnect with resubscription and buffered publishes, and close.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

mod common;

use std::thread;
use std::time::Duration;

use common::peer::{Peer, WAIT};
use shardbus_protocol::client::{Client, ClientError, ClientOptions, ReconnectPolicy};
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_protocol::{ErrorCode, Fields, Flags, Frame, HeadersBuilder, Op, Welcome};

fn connect(peer: &Peer, options: ClientOptions) -> (Client, common::peer::PeerConn) {
    let addr = peer.addr();
    let handle = thread::spawn(move || Client::connect_with(addr, options));
    let mut conn = peer.accept();
    conn.handshake();
    (handle.join().unwrap().unwrap(), conn)
}

fn msg<'a>(sid: u64, seq: u64, topic: &'a str, payload: &'a [u8]) -> Frame<'a> {
    Frame::new(Fields::Msg { sid, seq, reply: 0 })
        .with_topic(topic)
        .with_payload(payload)
}

#[test]
fn hello_carries_version_options_and_credentials() {
    let peer = Peer::bind();
    let addr = peer.addr();
    let handle = thread::spawn(move || {
        Client::connect_with(
            addr,
            ClientOptions::new()
                .name("svc-a")
                .token("s3cret")
                .echo(true),
        )
    });
    let mut conn = peer.accept();
    let hello = conn.handshake();
    let frame = hello.frame();
    let Fields::Hello { version, options } = frame.fields else {
        panic!()
    };
    assert_eq!(version, 1);
    assert_eq!(options.0 & 0x5, 0x5, "echo and headers requested");
    assert_eq!(frame.headers.get("name"), Some("svc-a"));
    assert_eq!(frame.headers.get("token"), Some("s3cret"));
    let client = handle.join().unwrap().unwrap();
    assert!(client.is_connected());
    assert_eq!(client.server_info().unwrap().max_subscriptions, 1000);
}

#[test]
fn a_refused_handshake_returns_the_server_code() {
    let peer = Peer::bind();
    let addr = peer.addr();
    let handle = thread::spawn(move || Client::connect(addr));
    let mut conn = peer.accept();
    conn.expect(Op::Hello);
    conn.send(
        &Frame::new(Fields::Err {
            code: ErrorCode::AUTH_FAILED,
            retry_after_ms: 0,
            ref_id: 0,
        })
        .with_payload(b"bad token"),
    );
    drop(conn);
    match handle.join().unwrap() {
        Err(ClientError::Server { code, message, .. }) => {
            assert_eq!(code, ErrorCode::AUTH_FAILED);
            assert_eq!(message, "bad token");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connected despite AUTH_FAILED"),
    }
}

#[test]
fn a_silent_server_times_out_the_handshake() {
    let peer = Peer::bind();
    let mut options = ClientOptions::new();
    options.handshake_timeout = Duration::from_millis(100);
    let addr = peer.addr();
    let handle = thread::spawn(move || Client::connect_with(addr, options));
    let mut conn = peer.accept();
    conn.expect(Op::Hello);
    assert!(matches!(handle.join().unwrap(), Err(ClientError::Timeout)));
}

#[test]
fn publish_writes_pub_frames_and_refuses_bad_topics_locally() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let mut headers = HeadersBuilder::new();
    headers.insert("k", "v").unwrap();
    client.publish("a.b", b"one").unwrap();
    client
        .publish_with("a.c", headers.headers(), Flags::empty(), b"two")
        .unwrap();
    let err = client.publish("a.*", b"x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "protocol: invalid topic: wildcards are not allowed when publishing"
    );
    let first = conn.expect(Op::Pub);
    assert_eq!(
        (first.frame().topic_str(), first.frame().payload),
        ("a.b", &b"one"[..])
    );
    let second = conn.expect(Op::Pub);
    assert_eq!(second.frame().headers.get("k"), Some("v"));
}

#[test]
fn subscriptions_receive_their_messages_with_headers_and_sequence() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.subscribe("sensors.*.temp").unwrap();
    let queue = client.queue_subscribe("jobs.>", "workers").unwrap();
    let sub_frame = conn.expect(Op::Sub);
    assert_eq!(sub_frame.frame().fields, Fields::Sub { sid: sub.sid() });
    assert_eq!(sub_frame.frame().topic_str(), "sensors.*.temp");
    let queue_frame = conn.expect(Op::Sub);
    assert_eq!(queue_frame.frame().payload, b"workers");

    let mut headers = HeadersBuilder::new();
    headers.insert("unit", "C").unwrap();
    conn.send(&msg(sub.sid(), 1, "sensors.kitchen.temp", b"21.5").with_headers(headers.headers()));
    let m = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (m.topic(), m.payload(), m.seq()),
        ("sensors.kitchen.temp", &b"21.5"[..], 1)
    );
    assert_eq!(m.headers().get("unit"), Some("C"));
    assert!(!m.is_request());
    conn.send(&msg(queue.sid(), 1, "jobs.resize", b"img-1"));
    assert_eq!(queue.recv_timeout(WAIT).unwrap().payload(), b"img-1");
}

#[test]
fn container_payloads_travel_compressed_and_decode_back() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.subscribe("iot.>").unwrap();
    conn.expect(Op::Sub);
    let reading = Value::Map(vec![
        ("device".into(), Value::Str("dev-1".into())),
        ("samples".into(), Value::List(vec![Value::F64(21.5); 400])),
    ]);
    client.publish_value("iot.dev-1", &reading).unwrap();
    let published = conn.expect(Op::Pub);
    let frame = published.frame();
    assert!(frame.flags.contains(Flags::CONTAINER.with(Flags::LZ4)));
    assert!(frame.payload.len() < reading.to_binary().unwrap().len() / 4);
    // Deliver it back as a server would, unchanged.
    conn.send(&msg(sub.sid(), 1, "iot.dev-1", frame.payload).with_flags(frame.flags));
    let got = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(got.value(&ContainerLimits::default()).unwrap(), reading);
}

#[test]
fn auto_unsubscribe_ends_the_subscription_after_n_messages() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let mut sub = client.subscribe("a").unwrap();
    conn.expect(Op::Sub);
    sub.unsubscribe_after(2).unwrap();
    let unsub = conn.expect(Op::Unsub);
    assert_eq!(
        unsub.frame().fields,
        Fields::Unsub {
            sid: sub.sid(),
            max_msgs: 2
        }
    );
    for seq in 1..=3 {
        conn.send(&msg(sub.sid(), seq, "a", b"x"));
    }
    assert_eq!(sub.next().unwrap().seq(), 1);
    assert_eq!(sub.next().unwrap().seq(), 2);
    assert!(sub.next().is_none(), "the subscription ends after 2");
}

#[test]
fn dropping_a_subscription_unsubscribes() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.subscribe("a").unwrap();
    conn.expect(Op::Sub);
    let sid = sub.sid();
    drop(sub);
    assert_eq!(
        conn.expect(Op::Unsub).frame().fields,
        Fields::Unsub { sid, max_msgs: 0 }
    );
}

#[test]
fn request_gets_its_response() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    thread::scope(|s| {
        let asker = s.spawn(|| client.request("svc.time", b"now?", Duration::from_secs(5)));
        let req = conn.expect(Op::Req);
        let Fields::Req {
            request_id,
            timeout_ms,
        } = req.frame().fields
        else {
            panic!()
        };
        assert_eq!(timeout_ms, 5000);
        assert_eq!(req.frame().payload, b"now?");
        conn.send(&Frame::new(Fields::Resp { id: request_id }).with_payload(b"12:00"));
        assert_eq!(asker.join().unwrap().unwrap().payload(), b"12:00");
    });
}

#[test]
fn request_errors_carry_the_server_code() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    for code in [
        ErrorCode::NO_RESPONDERS,
        ErrorCode::TIMEOUT,
        ErrorCode::PERMISSION_DENIED,
    ] {
        thread::scope(|s| {
            let asker = s.spawn(|| client.request("svc.x", b"", Duration::from_secs(5)));
            let Fields::Req { request_id, .. } = conn.expect(Op::Req).frame().fields else {
                panic!()
            };
            conn.send(
                &Frame::new(Fields::Err {
                    code,
                    retry_after_ms: 0,
                    ref_id: request_id,
                })
                .with_payload(b"nope"),
            );
            let err = asker.join().unwrap().unwrap_err();
            assert_eq!(err.code(), Some(code), "{err}");
        });
    }
}

#[test]
fn a_request_without_any_answer_times_out_locally_and_a_late_response_is_ignored() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let err = thread::scope(|s| {
        let asker = s.spawn(|| client.request("svc.slow", b"", Duration::from_millis(50)));
        conn.expect(Op::Req);
        asker.join().unwrap().unwrap_err()
    });
    assert!(matches!(err, ClientError::Timeout), "{err}");
    conn.send(&Frame::new(Fields::Resp { id: 1 }).with_payload(b"late"));
    thread::scope(|s| {
        let pinger = s.spawn(|| client.rtt());
        conn.expect(Op::Ping);
        conn.send(&Frame::new(Fields::Pong));
        assert!(pinger.join().unwrap().is_ok(), "the client still works");
    });
}

#[test]
fn responders_answer_with_the_reply_token() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.queue_subscribe("svc.echo", "echoers").unwrap();
    conn.expect(Op::Sub);
    conn.send(
        &Frame::new(Fields::Msg {
            sid: sub.sid(),
            seq: 1,
            reply: 0xfeed,
        })
        .with_topic("svc.echo")
        .with_payload(b"ping"),
    );
    let request = sub.recv_timeout(WAIT).unwrap();
    assert!(request.is_request());
    client.respond(&request, b"pong").unwrap();
    let resp = conn.expect(Op::Resp);
    assert_eq!(resp.frame().fields, Fields::Resp { id: 0xfeed });
    assert_eq!(resp.frame().payload, b"pong");
}

#[test]
fn server_pings_are_answered() {
    let peer = Peer::bind();
    let (_client, mut conn) = connect(&peer, ClientOptions::new());
    conn.send(&Frame::new(Fields::Ping));
    conn.expect(Op::Pong);
}

#[test]
fn a_slow_subscriber_drops_and_counts_what_it_cannot_hold() {
    let peer = Peer::bind();
    let mut options = ClientOptions::new();
    options.subscription_capacity = 2;
    let (client, mut conn) = connect(&peer, options);
    let sub = client.subscribe("a").unwrap();
    conn.expect(Op::Sub);
    for seq in 1..=5 {
        conn.send(&msg(sub.sid(), seq, "a", b"x"));
    }
    // The PONG comes after the five messages, so once rtt returns all five were dispatched.
    thread::scope(|s| {
        let pinger = s.spawn(|| client.rtt());
        conn.expect(Op::Ping);
        conn.send(&Frame::new(Fields::Pong));
        pinger.join().unwrap().unwrap();
    });
    assert_eq!(sub.dropped(), 3);
    assert_eq!(sub.try_recv().unwrap().unwrap().seq(), 1);
    assert_eq!(sub.try_recv().unwrap().unwrap().seq(), 2);
    assert!(sub.try_recv().unwrap().is_none());
}

#[test]
fn a_subscription_refused_by_the_server_ends_and_reports_the_code() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.subscribe("secret.>").unwrap();
    conn.expect(Op::Sub);
    conn.send(
        &Frame::new(Fields::Err {
            code: ErrorCode::PERMISSION_DENIED,
            retry_after_ms: 0,
            ref_id: sub.sid(),
        })
        .with_payload(b"subscribe to secret.> denied"),
    );
    assert!(matches!(sub.recv_timeout(WAIT), Err(ClientError::Closed)));
    let (code, text) = client.take_last_error().unwrap();
    assert_eq!(code, ErrorCode::PERMISSION_DENIED);
    assert_eq!(text, "subscribe to secret.> denied");
}

#[test]
fn reconnect_restores_subscriptions_then_sends_what_was_buffered() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let sub = client.subscribe("orders.>").unwrap();
    conn.expect(Op::Sub);
    thread::scope(|s| {
        let asker = s.spawn(|| client.request("svc.x", b"", Duration::from_secs(30)));
        conn.expect(Op::Req);
        drop(conn); // the connection dies with the request in flight
        assert!(matches!(
            asker.join().unwrap(),
            Err(ClientError::Disconnected)
        ));
    });
    client.publish("orders.new", b"while away").unwrap();
    let mut conn = peer.accept();
    conn.handshake();
    let resub = conn.expect(Op::Sub);
    assert_eq!(resub.frame().fields, Fields::Sub { sid: sub.sid() });
    assert_eq!(resub.frame().topic_str(), "orders.>");
    let buffered = conn.expect(Op::Pub);
    assert_eq!(buffered.frame().payload, b"while away");
    conn.send(&msg(sub.sid(), 1, "orders.new", b"after"));
    assert_eq!(sub.recv_timeout(WAIT).unwrap().payload(), b"after");
    assert_eq!(client.reconnects(), 1);
}

#[test]
fn a_server_silent_for_three_ping_intervals_is_treated_as_gone() {
    let peer = Peer::bind();
    let addr = peer.addr();
    let handle = thread::spawn(move || Client::connect(addr));
    let mut conn = peer.accept();
    conn.handshake_with(Welcome {
        ping_interval_ms: 20,
        ..common::peer::welcome()
    });
    let client = handle.join().unwrap().unwrap();
    // The peer neither pings nor closes: the client must give up on it and dial again.
    let mut second = peer.accept();
    second.handshake();
    assert!(second.stream.peer_addr().is_ok());
    drop(conn);
    let waited = std::time::Instant::now();
    while client.reconnects() == 0 {
        assert!(
            waited.elapsed() < WAIT,
            "client never counted the reconnect"
        );
        thread::yield_now();
    }
}

#[test]
fn publishing_while_disconnected_fails_once_the_buffer_is_full() {
    let peer = Peer::bind();
    let mut options = ClientOptions::new().reconnect(ReconnectPolicy {
        base_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(30),
        ..ReconnectPolicy::default()
    });
    options.reconnect_buffer = 16 << 10;
    let (client, conn) = connect(&peer, options);
    drop(conn);
    let payload = [0u8; 1024];
    let mut outcome = None;
    // Until the reader notices the close, publishes go to the dead socket; after it, they
    // fill the reconnect buffer. Bounded so a broken client fails instead of spinning forever.
    for _ in 0..1_000_000 {
        match client.publish("a", &payload) {
            Ok(()) => {}
            Err(e) => {
                outcome = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(outcome, Some(ClientError::BufferFull)),
        "{outcome:?}"
    );
}

#[test]
fn without_reconnect_a_lost_connection_closes_the_client() {
    let peer = Peer::bind();
    let (client, conn) = connect(&peer, ClientOptions::new().no_reconnect());
    let mut sub = client.subscribe("a").unwrap();
    drop(conn);
    assert!(
        sub.next().is_none(),
        "the subscription ends with the connection"
    );
    assert!(matches!(
        client.publish("a", b"x"),
        Err(ClientError::Closed)
    ));
}

#[test]
fn close_flushes_ends_subscriptions_and_closes_the_socket() {
    let peer = Peer::bind();
    let (client, mut conn) = connect(&peer, ClientOptions::new());
    let mut sub = client.subscribe("a").unwrap();
    conn.expect(Op::Sub);
    client.publish("a", b"last words").unwrap();
    client.close();
    assert_eq!(conn.expect(Op::Pub).frame().payload, b"last words");
    assert!(conn.sees_eof());
    assert!(sub.next().is_none());
    assert!(matches!(
        client.publish("a", b"x"),
        Err(ClientError::Closed)
    ));
}
