//! A scripted peer for client tests: a real TCP listener on loopback whose test reads the
//! exact frames the client sends and answers with frames of its choosing. It stands in for the
//! server only until the engine exists; it asserts wire behaviour, not broker behaviour.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use shardbus_protocol::{Check, Fields, Frame, Limits, Op, Welcome, check, decode, encode};

/// Generous bound on any single wait, so a broken client fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Peer {
    listener: TcpListener,
}

impl Peer {
    pub fn bind() -> Peer {
        Peer {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accepts the next connection, failing the test after [`WAIT`] instead of hanging it.
    pub fn accept(&self) -> PeerConn {
        self.listener.set_nonblocking(true).unwrap();
        let started = std::time::Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(started.elapsed() < WAIT, "the client never connected");
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept failed: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        PeerConn {
            stream,
            buf: Vec::new(),
        }
    }
}

/// One frame's bytes, owned.
#[derive(Debug, Clone)]
pub struct OwnedFrame(pub Vec<u8>);

impl OwnedFrame {
    pub fn frame(&self) -> Frame<'_> {
        decode(&self.0, &Limits::default()).unwrap()
    }
}

pub struct PeerConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub fn welcome() -> Welcome {
    Welcome {
        version: 1,
        shard: 0,
        max_topic_len: 256,
        max_payload: 1 << 20,
        max_frame: Limits::default().max_frame,
        max_subscriptions: 1000,
        ping_interval_ms: 0,
        client_id: 1,
    }
}

impl PeerConn {
    pub fn read_frame(&mut self) -> OwnedFrame {
        loop {
            if let Check::Complete { frame_len } = check(&self.buf, &Limits::default()).unwrap() {
                let bytes: Vec<u8> = self.buf.drain(..frame_len).collect();
                return OwnedFrame(bytes);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("peer read timed out");
            assert!(n > 0, "client closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next frame and asserts its op.
    pub fn expect(&mut self, op: Op) -> OwnedFrame {
        let f = self.read_frame();
        assert_eq!(f.frame().op(), op, "expected {op:?}, got {:?}", f.frame());
        f
    }

    /// Whether the client closed its side (read returns 0) within the wait bound.
    pub fn sees_eof(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    pub fn send(&mut self, frame: &Frame<'_>) {
        let mut out = Vec::new();
        encode(frame, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    /// Reads HELLO and answers WELCOME; returns the HELLO.
    pub fn handshake(&mut self) -> OwnedFrame {
        self.handshake_with(welcome())
    }

    /// Reads HELLO and answers with this WELCOME; returns the HELLO.
    pub fn handshake_with(&mut self, welcome: Welcome) -> OwnedFrame {
        let hello = self.expect(Op::Hello);
        self.send(&Frame::new(Fields::Welcome(welcome)));
        hello
    }
}
