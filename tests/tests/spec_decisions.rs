//! Points PROTOCOL.md settles that a client written from the spec alone found open: a
//! wrong-direction op is `UNKNOWN_OP` whatever its body; unknown HELLO option bits are
//! ignored; a client that pipelines many ops while reading its answers is slowed, never cut.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};

use shardbus_engine::metrics::Metric;
use shardbus_protocol::{
    Check, ErrorCode, Fields, Frame, HelloOptions, Limits, check, decode, encode,
};
use shardbus_tests::{PATIENCE, Raw, TestServer};

#[test]
fn a_msg_from_a_client_without_its_fixed_fields_is_unknown_op_and_keeps_the_connection() {
    let server = TestServer::start();
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    // A MSG header (op 0x13) with no fixed fields at all: 16 bytes, len 12.
    let mut bytes = 12u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0x13, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
    raw.send_bytes(&bytes);
    let err = raw.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::UNKNOWN_OP));
    assert_eq!(err.op_id, 9);
    raw.flush();
}

#[test]
fn unknown_hello_option_bits_are_ignored() {
    let server = TestServer::start();
    let mut raw = Raw::hello(server.addr, HelloOptions(0x8000 | HelloOptions::ECHO.0));
    raw.subscribe(1, "me", "");
    raw.publish("me", b"echoed");
    assert!(matches!(
        raw.next_event().unwrap().fields,
        Fields::Msg { sid: 1, .. }
    ));
}

#[test]
fn pipelining_100k_subscriptions_while_reading_is_slowed_not_cut() {
    // A small max_pending, so the answers (90,000 TOO_MANY_SUBSCRIPTIONS ERRs, ~9 MB) outgrow
    // it many times over while the client reads them (one read's answers still fit).
    let server = TestServer::with(|config| {
        config.limits.max_payload = 4096;
        config.limits.max_pending = 1 << 20;
    });
    let raw = Raw::hello(server.addr, HelloOptions(0));
    // A small receive window, so the kernel's buffers do not hide the answers' volume.
    nix::sys::socket::setsockopt(raw.stream(), nix::sys::socket::sockopt::RcvBuf, &(16 << 10))
        .unwrap();
    let mut reader = raw.stream().try_clone().unwrap();
    reader.set_read_timeout(Some(PATIENCE)).unwrap();
    let counting = std::thread::spawn(move || {
        let (mut buf, mut errs) = (Vec::new(), 0u32);
        // Reads steadily but slower than the server answers, as a busy client would.
        let mut chunk = vec![0u8; 4 << 10];
        loop {
            while let Ok(Check::Complete { frame_len }) = check(&buf, &Limits::default()) {
                let frame = decode(&buf[..frame_len], &Limits::default()).unwrap();
                match frame.fields {
                    Fields::Err { code, .. } if code == ErrorCode::TOO_MANY_SUBSCRIPTIONS => {
                        errs += 1;
                    }
                    Fields::Err { code, .. } => return Err(code),
                    Fields::Pong if frame.op_id == u32::MAX => return Ok(errs),
                    _ => {}
                }
                buf.drain(..frame_len);
            }
            let n = reader.read(&mut chunk).unwrap();
            assert!(n > 0, "closed after {errs} answers");
            buf.extend_from_slice(&chunk[..n]);
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    });
    let mut writer = raw.stream().try_clone().unwrap();
    let mut batch = Vec::new();
    for sid in 1..=100_000u64 {
        let topic = format!("pipelined.{sid}");
        encode(
            &Frame::new(Fields::Sub { sid }).with_topic(&topic),
            &mut batch,
        )
        .unwrap();
        if batch.len() > 64 << 10 {
            writer.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    encode(&Frame::new(Fields::Ping).with_op_id(u32::MAX), &mut batch).unwrap();
    writer.write_all(&batch).unwrap();
    assert_eq!(counting.join().unwrap(), Ok(90_000));
    assert_eq!(server.total(Metric::SlowConsumers), 0);
    drop(raw);
}

#[test]
fn the_details_a_client_relies_on_hold() {
    let server = TestServer::start();
    let mut responder = Raw::hello_on(server.addr, 1, HelloOptions(0));
    responder.subscribe(1, "svc", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    // A plain delivery first: seq 1.
    let mut block = shardbus_protocol::HeadersBuilder::new();
    block.insert("trace", "t1").unwrap();
    requester.send_with(Fields::Pub, b"svc", block.headers(), b"0123456789");
    let msg = responder.next_event().unwrap();
    assert!(
        matches!(
            msg.fields,
            Fields::Msg {
                seq: 1,
                reply: 0,
                ..
            }
        ),
        "{:?}",
        msg.fields
    );
    // Headers stripped for a client that did not ask for them, and the flag with them.
    assert!(msg.headers.is_empty());
    assert!(!msg.flags.contains(shardbus_protocol::Flags::HEADERS));
    // The request delivery counts in seq; its RESP carries the REQ's op_id.
    let op_id = requester.send(
        Fields::Req {
            request_id: 3,
            timeout_ms: 30_000,
        },
        b"svc",
        b"?",
    );
    let Fields::Msg { seq, reply, .. } = responder.next_event().unwrap().fields else {
        panic!("no request")
    };
    assert_eq!(seq, 2);
    responder.send(Fields::Resp { id: reply }, b"", b"first");
    let answer = requester.next_event().unwrap();
    assert_eq!(
        (answer.fields, answer.op_id),
        (Fields::Resp { id: 3 }, op_id)
    );
    // A second answer on the same token is dropped and counted.
    responder.send(Fields::Resp { id: reply }, b"", b"second");
    responder.flush();
    shardbus_tests::wait_until("the second answer to be counted", || {
        server.total(Metric::LateResponses) == 1
    });
    // PONG carries the PING's op_id (Raw::flush waits for exactly that).
    requester.flush();
    // bytes_in counts payloads: 10 + 1.
    assert_eq!(server.total(Metric::BytesIn), 11);
}
