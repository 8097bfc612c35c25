//! Password logins under a flood of unauthenticated ones: argon2 runs on blocking threads, and
//! a shard runs only so many checks at once, of which one remote address gets only a part, so
//! a legitimate login from elsewhere is not queued behind hundreds of decoys; the decoys over
//! the bound are refused `RATE_LIMITED` with a retry time.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{SocketAddr, TcpStream};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
use shardbus_engine::auth::password::{UserConfig, hash};
use shardbus_engine::metrics::Metric;
use shardbus_protocol::{ErrorCode, Fields, HeadersBuilder, HelloOptions, PROTOCOL_VERSION};
use shardbus_tests::{Raw, TestServer};

/// A connection to `server` from the loopback address `from`.
fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::new(from[0], from[1], from[2], from[3], 0),
    )
    .unwrap();
    let SocketAddr::V4(server) = server else {
        panic!("an IPv4 test server")
    };
    connect(fd.as_raw_fd(), &SockaddrIn::from(server)).unwrap();
    TcpStream::from(fd)
}

fn hello_as(raw: &mut Raw, user: &str, pass: &str) {
    let mut block = HeadersBuilder::new();
    block.insert("user", user).unwrap();
    block.insert("pass", pass).unwrap();
    let hello = Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    };
    raw.send_with(hello, b"", block.headers(), b"");
}

#[test]
fn a_login_flood_from_one_address_leaves_room_for_a_login_from_another() {
    let server = TestServer::with(|config| {
        // Unoptimised argon2 on two loaded cores takes far longer than the 5 s HELLO timeout
        // allows for the checks ahead of the login; this test is about who gets a check.
        config.limits.hello_timeout_ms = 120_000;
        config.auth.anonymous = false;
        config.auth.users = vec![UserConfig {
            name: "billing".into(),
            password_hash: hash("s3cret").unwrap(),
            role: "user".into(),
            permissions: None,
        }];
    });
    // 250 decoy logins from 127.0.0.2, all sent before the legitimate one.
    let mut decoys: Vec<Raw> = (0..250)
        .map(|_| {
            let mut raw = Raw::from_stream(connect_from([127, 0, 0, 2], server.addr));
            hello_as(&mut raw, "nobody", "guess");
            raw
        })
        .collect();
    let mut user = Raw::from_stream(connect_from([127, 0, 0, 1], server.addr));
    hello_as(&mut user, "billing", "s3cret");
    let answer = user.next_frame().unwrap();
    assert!(
        matches!(answer.fields, Fields::Welcome(_)),
        "the legitimate login got {:?}",
        answer.fields
    );
    let (mut refused, mut failed) = (0, 0);
    for decoy in &mut decoys {
        let answer = decoy.next_frame().unwrap();
        match answer.fields {
            Fields::Err {
                code: ErrorCode::RATE_LIMITED,
                retry_after_ms,
                ..
            } => {
                assert!(retry_after_ms > 0);
                refused += 1;
            }
            Fields::Err {
                code: ErrorCode::AUTH_FAILED,
                ..
            } => failed += 1,
            other => panic!("a decoy got {other:?}"),
        }
    }
    assert!(
        refused > 0 && failed > 0,
        "{refused} refused, {failed} failed"
    );
    assert_eq!(server.total(Metric::PasswordChecksRefused), refused);
}
