//! Malformed input is answered for the client that sent it, with its code, while another
//! client on the same shard keeps working.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions, PROTOCOL_VERSION};
use shardbus_tests::{Raw, TestServer};

/// A healthy pair on `shard`: a subscriber and a publisher that check the shard still serves.
struct Bystander {
    sub: Raw,
    publisher: Raw,
    n: u32,
}

impl Bystander {
    fn on(server: &TestServer, shard: u16) -> Bystander {
        let mut sub = Raw::hello_on(server.addr, shard, HelloOptions(0));
        sub.subscribe(1, "alive", "");
        let publisher = Raw::hello_on(server.addr, shard, HelloOptions(0));
        Bystander {
            sub,
            publisher,
            n: 0,
        }
    }

    fn still_served(&mut self) {
        self.n += 1;
        self.publisher.publish("alive", &self.n.to_le_bytes());
        let frame = self.sub.next_event().expect("the bystander still receives");
        assert_eq!(frame.payload, self.n.to_le_bytes());
    }
}

fn ops_after_hello(server: &TestServer, shard: u16, bytes: &[u8]) -> (Raw, Vec<u8>) {
    let mut raw = Raw::hello_on(server.addr, shard, HelloOptions(0));
    raw.send_bytes(bytes);
    (raw, Vec::new())
}

#[test]
fn a_huge_length_prefix_is_frame_too_large_and_closes() {
    let server = TestServer::start();
    let mut bystander = Bystander::on(&server, 0);
    let (mut raw, _) = ops_after_hello(&server, 0, &[0xFF, 0xFF, 0xFF, 0xFF, 0x10]);
    let frames = raw.until_closed();
    assert_eq!(
        frames.last().and_then(|f| f.err_code()),
        Some(ErrorCode::FRAME_TOO_LARGE)
    );
    bystander.still_served();
    assert_eq!(server.errors(ErrorCode::FRAME_TOO_LARGE), 1);
}

#[test]
fn an_unknown_op_is_answered_and_the_connection_stays() {
    let server = TestServer::start();
    let mut bystander = Bystander::on(&server, 1);
    let mut raw = Raw::hello_on(server.addr, 1, HelloOptions(0));
    // A 16-byte header with op 0x99, op_id 5.
    let mut frame = vec![12, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&5u32.to_le_bytes());
    raw.send_bytes(&frame);
    let err = raw.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::UNKNOWN_OP));
    assert_eq!(err.op_id, 5);
    raw.flush();
    bystander.still_served();
}

#[test]
fn a_truncated_frame_then_close_costs_nobody_anything() {
    let server = TestServer::start();
    let mut bystander = Bystander::on(&server, 0);
    {
        let mut raw = Raw::hello_on(server.addr, 0, HelloOptions(0));
        // A PUB announcing 100 bytes, of which 10 arrive before the client goes away.
        let mut bytes = 100u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0x10, 0, 1, 0, 0, 0, 0, 0, 1, 0]);
        raw.send_bytes(&bytes);
    }
    bystander.still_served();
    shardbus_tests::wait_until("the truncated connection to be gone", || {
        server.total(shardbus_engine::metrics::Metric::Connections) == 2
    });
}

#[test]
fn frames_before_hello_and_a_second_hello_are_hello_required() {
    let server = TestServer::start();
    let mut early = Raw::connect(server.addr);
    early.send(Fields::Pub, b"x", b"");
    let frames = early.until_closed();
    assert_eq!(
        frames.last().and_then(|f| f.err_code()),
        Some(ErrorCode::HELLO_REQUIRED)
    );
    let mut twice = Raw::hello(server.addr, HelloOptions(0));
    twice.send(
        Fields::Hello {
            version: PROTOCOL_VERSION,
            options: HelloOptions(0),
        },
        b"",
        b"",
    );
    let frames = twice.until_closed();
    assert_eq!(
        frames.last().and_then(|f| f.err_code()),
        Some(ErrorCode::HELLO_REQUIRED)
    );
    let mut future = Raw::connect(server.addr);
    future.send(
        Fields::Hello {
            version: 9,
            options: HelloOptions(0),
        },
        b"",
        b"",
    );
    let frames = future.until_closed();
    assert_eq!(
        frames.last().and_then(|f| f.err_code()),
        Some(ErrorCode::UNSUPPORTED_VERSION)
    );
}

#[test]
fn a_server_op_from_a_client_is_unknown_op() {
    let server = TestServer::start();
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    raw.send(
        Fields::Msg {
            sid: 1,
            seq: 1,
            reply: 0,
        },
        b"a",
        b"",
    );
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::UNKNOWN_OP));
    raw.flush();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random bytes after HELLO: whatever the server answers, it answers with ERRs that have
    /// codes, it never stops serving the bystander, and it ends or keeps the connection.
    #[test]
    fn random_bytes_never_hurt_another_client(bytes in proptest::collection::vec(any::<u8>(), 1..512)) {
        let server = TestServer::start();
        let mut bystander = Bystander::on(&server, 0);
        let mut raw = Raw::hello_on(server.addr, 0, HelloOptions(0));
        raw.send_bytes(&bytes);
        bystander.still_served();
        // End of input: the server closes; every ERR on the way carries a defined code.
        raw.shutdown_write();
        for frame in raw.until_closed() {
            if let Some(code) = frame.err_code() {
                prop_assert!(code.info().is_some(), "undefined code {:?}", code);
            }
        }
        bystander.still_served();
    }
}

#[test]
fn an_unknown_op_before_hello_is_hello_required_and_closes() {
    let server = TestServer::start();
    let mut raw = Raw::connect(server.addr);
    // A 16-byte header with op 0x99 and nothing before it.
    raw.send_bytes(&[12, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
    let frames = raw.until_closed();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].err_code(), Some(ErrorCode::HELLO_REQUIRED));
    assert_eq!(frames[0].op_id, 3);
}
