//! `Raw`: a frame-level test connection over a blocking socket. It sends whatever bytes a test
//! wants (malformed ones included) and reads frames back one at a time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use shardbus_protocol::{
    Check, ErrorCode, Fields, Flags, Frame, Headers, HeadersBuilder, HelloOptions, Limits,
    PROTOCOL_VERSION, Welcome, check, decode, encode,
};

use crate::PATIENCE;

/// A decoded frame with its sections owned.
#[derive(Debug, Clone)]
pub struct Owned {
    /// Op and fixed fields.
    pub fields: Fields,
    /// Frame flags.
    pub flags: Flags,
    /// Correlation id.
    pub op_id: u32,
    /// Topic section.
    pub topic: Vec<u8>,
    /// Headers block.
    pub headers: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Owned {
    /// The ERR code, if this is an ERR.
    pub fn err_code(&self) -> Option<ErrorCode> {
        match self.fields {
            Fields::Err { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A raw connection.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    next_op_id: u32,
    /// WELCOME, once received.
    pub welcome: Option<Welcome>,
}

impl Raw {
    /// Connects without sending anything.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
            next_op_id: 1,
            welcome: None,
        }
    }

    /// Wraps a socket that is already connected (and maybe already said HELLO).
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
            next_op_id: 1,
            welcome: None,
        }
    }

    /// The socket, for a test that drives it directly.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Connects and completes the handshake with `options`.
    pub fn hello(addr: SocketAddr, options: HelloOptions) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(
            Fields::Hello {
                version: PROTOCOL_VERSION,
                options,
            },
            b"",
            b"",
        );
        let frame = raw.next_frame().expect("WELCOME");
        match frame.fields {
            Fields::Welcome(welcome) => raw.welcome = Some(welcome),
            other => panic!(
                "expected WELCOME, got {other:?} {:?}",
                String::from_utf8_lossy(&frame.payload)
            ),
        }
        raw
    }

    /// Connects and sends HELLO whose headers are `headers` (credentials, say); returns the
    /// connection and the first frame's fields (WELCOME, or the ERR that refused it).
    pub fn hello_with(addr: SocketAddr, headers: &[(&str, &str)]) -> (Raw, Fields) {
        let mut raw = Raw::connect(addr);
        let mut block = HeadersBuilder::new();
        for (key, value) in headers {
            block.insert(key, value).unwrap();
        }
        let hello = Fields::Hello {
            version: PROTOCOL_VERSION,
            options: HelloOptions(0),
        };
        raw.send_with(hello, b"", block.headers(), b"");
        let answer = raw.next_frame().expect("an answer to HELLO");
        (raw, answer.fields)
    }

    /// Connects with `options` until the connection lands on `shard`.
    pub fn hello_on(addr: SocketAddr, shard: u16, options: HelloOptions) -> Raw {
        for _ in 0..1000 {
            let raw = Raw::hello(addr, options);
            if raw.shard() == shard {
                return raw;
            }
        }
        panic!("no raw connection landed on shard {shard}");
    }

    /// The shard WELCOME reported.
    pub fn shard(&self) -> u16 {
        self.welcome.expect("handshake done").shard
    }

    /// Sends a frame with `fields`, a topic and a payload; returns its op id.
    pub fn send(&mut self, fields: Fields, topic: &[u8], payload: &[u8]) -> u32 {
        self.send_with(fields, topic, Headers::EMPTY, payload)
    }

    /// Sends a frame with headers too; returns its op id.
    pub fn send_with(
        &mut self,
        fields: Fields,
        topic: &[u8],
        headers: Headers<'_>,
        payload: &[u8],
    ) -> u32 {
        self.send_flagged(fields, Flags::empty(), topic, headers, payload)
    }

    /// Sends a frame with flags (CONTAINER, say) and headers; returns its op id.
    pub fn send_flagged(
        &mut self,
        fields: Fields,
        flags: Flags,
        topic: &[u8],
        headers: Headers<'_>,
        payload: &[u8],
    ) -> u32 {
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        let flags = if headers.is_empty() {
            flags
        } else {
            flags.with(Flags::HEADERS)
        };
        let frame = Frame {
            fields,
            flags,
            op_id,
            topic,
            headers,
            payload,
        };
        let mut out = Vec::new();
        encode(&frame, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
        op_id
    }

    /// Ends this side's output (the server sees end of stream).
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame, or `None` when the server closed the connection.
    pub fn next_frame(&mut self) -> Option<Owned> {
        let limits = Limits::UNBOUNDED;
        loop {
            if let Ok(Check::Complete { frame_len }) = check(&self.buf, &limits) {
                let frame = decode(&self.buf[..frame_len], &limits).unwrap();
                let owned = Owned {
                    fields: frame.fields,
                    flags: frame.flags,
                    op_id: frame.op_id,
                    topic: frame.topic.to_vec(),
                    headers: frame.headers.as_bytes().to_vec(),
                    payload: frame.payload.to_vec(),
                };
                self.buf.drain(..frame_len);
                return Some(owned);
            }
            let mut chunk = [0u8; 64 << 10];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed (nothing from the server within the bound?): {e}"),
            }
        }
    }

    /// The next frame that is not a PING (answered) or a PONG.
    pub fn next_event(&mut self) -> Option<Owned> {
        loop {
            let frame = self.next_frame()?;
            match frame.fields {
                Fields::Ping => {
                    self.send(Fields::Pong, b"", b"");
                }
                Fields::Pong => {}
                _ => return Some(frame),
            }
        }
    }

    /// Reads until an ERR arrives and returns its code.
    pub fn expect_err(&mut self) -> Owned {
        loop {
            let frame = self.next_event().expect("an ERR before the close");
            if frame.err_code().is_some() {
                return frame;
            }
        }
    }

    /// Reads until the server closes the connection; returns the frames on the way.
    pub fn until_closed(&mut self) -> Vec<Owned> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame() {
            frames.push(frame);
        }
        frames
    }

    /// PING, then wait for its PONG: the server processed everything sent before, and every
    /// shard sees this connection's subscriptions.
    pub fn flush(&mut self) {
        let op_id = self.send(Fields::Ping, b"", b"");
        loop {
            let frame = self.next_frame().expect("PONG");
            match frame.fields {
                Fields::Pong if frame.op_id == op_id => return,
                Fields::Ping => {
                    self.send(Fields::Pong, b"", b"");
                }
                Fields::Err { code, .. } => panic!("ERR {} while flushing", code.name()),
                _ => {}
            }
        }
    }

    /// PING, then read up to its PONG past anything else (ERRs included); returns the ERR
    /// codes seen on the way.
    pub fn flush_past_errors(&mut self) -> Vec<ErrorCode> {
        let op_id = self.send(Fields::Ping, b"", b"");
        let mut codes = Vec::new();
        loop {
            let frame = self.next_frame().expect("PONG");
            match frame.fields {
                Fields::Pong if frame.op_id == op_id => return codes,
                Fields::Ping => {
                    self.send(Fields::Pong, b"", b"");
                }
                Fields::Err { code, .. } => codes.push(code),
                _ => {}
            }
        }
    }

    /// Subscribes and flushes; returns nothing (errors show up in later reads).
    pub fn subscribe(&mut self, sid: u64, pattern: &str, queue: &str) {
        self.send(Fields::Sub { sid }, pattern.as_bytes(), queue.as_bytes());
        self.flush();
    }

    /// Sends UNSUB: now (`max_msgs` 0) or after `max_msgs` more deliveries.
    pub fn unsubscribe(&mut self, sid: u64, max_msgs: u64) {
        self.send(Fields::Unsub { sid, max_msgs }, b"", b"");
    }

    /// Publishes.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        self.send(Fields::Pub, subject.as_bytes(), payload);
    }
}

impl Raw {
    /// Registers an instance of service `name` with `endpoints` (subject, sid) and version
    /// 1.0.0, beating every `heartbeat_ms`; returns its instance id (panics on a refusal) once
    /// every shard knows it (a PING after it: the barrier follows the registration).
    pub fn register(&mut self, name: &str, endpoints: &[(&str, u64)], heartbeat_ms: u32) -> u64 {
        use shardbus_protocol::ServiceFields;
        use shardbus_protocol::container::Value;
        let endpoints = endpoints
            .iter()
            .map(|(subject, sid)| {
                Value::Map(vec![
                    ("subject".into(), Value::Str((*subject).into())),
                    ("sid".into(), Value::U64(*sid)),
                ])
            })
            .collect();
        let description = Value::Map(vec![
            ("version".into(), Value::Str("1.0.0".into())),
            ("endpoints".into(), Value::List(endpoints)),
        ])
        .to_binary()
        .unwrap();
        let fields = Fields::Register(ServiceFields {
            heartbeat_ms,
            ..ServiceFields::default()
        });
        let op_id = self.send_flagged(
            fields,
            Flags::CONTAINER,
            name.as_bytes(),
            Headers::EMPTY,
            &description,
        );
        loop {
            let frame = self.next_event().expect("REGISTER's answer");
            match frame.fields {
                Fields::Register(answer) if frame.op_id == op_id => {
                    self.flush();
                    return answer.instance;
                }
                Fields::Err { code, .. } if frame.op_id == op_id => {
                    panic!("REGISTER refused: {code:?}")
                }
                _ => {}
            }
        }
    }
}
