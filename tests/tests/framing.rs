//! Input arrives in whatever pieces TCP makes of it: frames split at every byte, many frames and
//! HELLO in one write, and a frame larger than the shard's scratch read buffer all come out
//! whole and in order (each shard reads every connection into one scratch buffer and keeps
//! only unfinished frames per connection).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::{Fields, Flags, Frame, Headers, HelloOptions, PROTOCOL_VERSION, encode};
use shardbus_tests::{Raw, TestServer};

fn frame_bytes(fields: Fields, op_id: u32, topic: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    let frame = Frame {
        fields,
        flags: Flags::empty(),
        op_id,
        topic,
        headers: Headers::EMPTY,
        payload,
    };
    encode(&frame, out).unwrap();
}

/// HELLO (with echo), SUB to `split.test`, three PUBs to it and a PING, as one byte string.
fn session_bytes() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let hello = Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions::ECHO,
    };
    frame_bytes(hello, 1, b"", b"", &mut out);
    frame_bytes(Fields::Sub { sid: 7 }, 2, b"split.test", b"", &mut out);
    let payloads: Vec<Vec<u8>> = (0..3u8)
        .map(|i| vec![b'a' + i; 300 + usize::from(i)])
        .collect();
    for (i, payload) in payloads.iter().enumerate() {
        frame_bytes(Fields::Pub, 3 + i as u32, b"split.test", payload, &mut out);
    }
    frame_bytes(Fields::Ping, 9, b"", b"", &mut out);
    (out, payloads)
}

fn expect_session_answers(raw: &mut Raw, payloads: &[Vec<u8>]) {
    let welcome = raw.next_frame().expect("WELCOME");
    assert!(
        matches!(welcome.fields, Fields::Welcome(_)),
        "{:?}",
        welcome.fields
    );
    for payload in payloads {
        let msg = raw.next_frame().expect("MSG");
        assert!(
            matches!(msg.fields, Fields::Msg { sid: 7, .. }),
            "{:?}",
            msg.fields
        );
        assert_eq!(&msg.payload, payload);
    }
    let pong = raw.next_frame().expect("PONG");
    assert!(matches!(pong.fields, Fields::Pong), "{:?}", pong.fields);
    assert_eq!(pong.op_id, 9);
}

#[test]
fn frames_split_at_every_byte_arrive_whole_and_in_order() {
    let server = TestServer::start();
    let (bytes, payloads) = session_bytes();
    let mut raw = Raw::connect(server.addr);
    for byte in &bytes {
        raw.send_bytes(std::slice::from_ref(byte));
    }
    expect_session_answers(&mut raw, &payloads);
}

#[test]
fn frames_written_together_with_hello_are_all_handled() {
    let server = TestServer::start();
    let (bytes, payloads) = session_bytes();
    let mut raw = Raw::connect(server.addr);
    raw.send_bytes(&bytes);
    expect_session_answers(&mut raw, &payloads);
}

#[test]
fn a_frame_larger_than_the_scratch_buffer_arrives_whole() {
    let server = TestServer::start();
    let mut subscriber = Raw::hello_on(server.addr, 1, HelloOptions(0));
    subscriber.subscribe(1, "big.frame", "");
    subscriber.flush();
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = Vec::new();
    frame_bytes(Fields::Pub, 5, b"big.frame", &payload, &mut bytes);
    frame_bytes(Fields::Pub, 6, b"big.frame", b"after", &mut bytes);
    for chunk in bytes.chunks(7_000) {
        publisher.send_bytes(chunk);
    }
    for want in [&payload[..], b"after"] {
        let msg = subscriber.next_event().expect("MSG");
        assert!(
            matches!(msg.fields, Fields::Msg { sid: 1, .. }),
            "{:?}",
            msg.fields
        );
        assert_eq!(msg.payload.len(), want.len());
        assert!(msg.payload == want, "payload differs");
    }
}
