//! `ShardbusWire`: the binary protocol (PROTOCOL.md), encoded and decoded with the protocol
//! crate's codec, over TCP or over a WebSocket (`websocket.rs`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use shardbus_protocol::{
    Check, Fields, Flags, Head, HelloOptions, Limits, PROTOCOL_VERSION, check, decode, encode_head,
};

use super::pub_head::PubHead;
use super::{Event, ReplyTo, Wire, read_some, tune};

/// Request timeout the bench asks for: long enough never to fire in a healthy run.
const REQUEST_TIMEOUT_MS: u32 = 30_000;

/// A byte stream of frames: a socket, or frames carried in WebSocket messages.
pub trait FrameStream: Read + Write + Send {}
impl<S: Read + Write + Send> FrameStream for S {}

/// What a connection's frames travel on: a TCP socket, which poll(2) can wait on, or another
/// frame stream (a WebSocket's messages).
enum Stream {
    Tcp(TcpStream),
    Framed(Box<dyn FrameStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.read(buf),
            Stream::Framed(frames) => frames.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write(buf),
            Stream::Framed(frames) => frames.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.flush(),
            Stream::Framed(frames) => frames.flush(),
        }
    }
}

/// A shardbus connection.
pub struct ShardbusWire {
    stream: Stream,
    out: Vec<u8>,
    input: Vec<u8>,
    limits: Limits,
    next_sid: u64,
    next_request: u64,
    next_ping: u32,
    /// The shard WELCOME named.
    shard: u16,
    pub_head: PubHead,
}

impl ShardbusWire {
    /// Connects over TCP and completes the handshake.
    pub fn connect(addr: SocketAddr) -> io::Result<ShardbusWire> {
        let stream = TcpStream::connect(addr)?;
        tune(&stream)?;
        ShardbusWire::handshake(Stream::Tcp(stream))
    }

    /// Completes the handshake over `stream`.
    pub fn over(stream: Box<dyn FrameStream>) -> io::Result<ShardbusWire> {
        ShardbusWire::handshake(Stream::Framed(stream))
    }

    fn handshake(stream: Stream) -> io::Result<ShardbusWire> {
        let mut wire = ShardbusWire {
            stream,
            out: Vec::with_capacity(64 << 10),
            input: Vec::new(),
            limits: Limits::default(),
            next_sid: 0,
            next_request: 0,
            next_ping: 0,
            shard: 0,
            pub_head: PubHead::default(),
        };
        let hello = Head {
            fields: Fields::Hello {
                version: PROTOCOL_VERSION,
                options: HelloOptions(0),
            },
            flags: Flags::empty(),
            op_id: 0,
            topic: b"",
            headers: super::credentials(),
        };
        encode_head(&hello, 0, &mut wire.out).map_err(io::Error::other)?;
        wire.flush()?;
        loop {
            let mut welcome = None;
            wire.each_frame(&mut |frame| {
                if let Fields::Welcome(w) = frame.fields {
                    welcome = Some(w);
                }
            })?;
            if let Some(w) = welcome {
                wire.limits.max_frame = w.max_frame;
                wire.limits.max_payload = w.max_payload;
                wire.shard = w.shard;
                return Ok(wire);
            }
            read_some(&mut wire.stream, &mut wire.input)?;
        }
    }

    fn frame(
        &mut self,
        fields: Fields,
        topic: &[u8],
        payload: &[u8],
        op_id: u32,
    ) -> io::Result<()> {
        let head = Head {
            fields,
            flags: Flags::empty(),
            op_id,
            topic,
            headers: &[],
        };
        encode_head(&head, payload.len(), &mut self.out).map_err(io::Error::other)?;
        self.out.extend_from_slice(payload);
        Ok(())
    }

    /// Decodes every whole frame in the input, answering PINGs, and drops them.
    fn each_frame(
        &mut self,
        on: &mut dyn FnMut(&shardbus_protocol::Frame<'_>),
    ) -> io::Result<usize> {
        let mut at = 0;
        let mut count = 0;
        let mut pings = 0;
        loop {
            let rest = self.input.get(at..).unwrap_or_default();
            let len = match check(rest, &self.limits) {
                Ok(Check::Complete { frame_len }) => frame_len,
                Ok(Check::Incomplete { .. }) => break,
                Err(e) => return Err(io::Error::other(e)),
            };
            let frame = decode(rest.get(..len).unwrap_or_default(), &self.limits)
                .map_err(io::Error::other)?;
            match frame.fields {
                Fields::Ping => pings += 1,
                Fields::Err { code, .. } => {
                    return Err(io::Error::other(format!(
                        "server error {}: {}",
                        code.name(),
                        String::from_utf8_lossy(frame.payload)
                    )));
                }
                _ => {
                    on(&frame);
                    count += 1;
                }
            }
            at += len;
        }
        self.input.drain(..at);
        for _ in 0..pings {
            self.frame(Fields::Pong, b"", b"", 0)?;
        }
        if pings > 0 {
            self.flush()?;
        }
        Ok(count)
    }
}

impl Wire for ShardbusWire {
    fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> io::Result<()> {
        self.next_sid += 1;
        let sid = self.next_sid;
        self.frame(
            Fields::Sub { sid },
            subject.as_bytes(),
            queue.unwrap_or("").as_bytes(),
            0,
        )
    }

    fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        self.pub_head.append(subject, payload, &mut self.out)
    }

    fn request(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        self.next_request += 1;
        let request_id = self.next_request;
        self.frame(
            Fields::Req {
                request_id,
                timeout_ms: REQUEST_TIMEOUT_MS,
            },
            subject.as_bytes(),
            payload,
            0,
        )
    }

    fn reply(&mut self, to: &ReplyTo, payload: &[u8]) -> io::Result<()> {
        match to {
            ReplyTo::Token(id) => self.frame(Fields::Resp { id: *id }, b"", payload, 0),
            ReplyTo::Subject(_) => Err(io::Error::other("a NATS reply subject on shardbus")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        self.stream.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.next_ping = self.next_ping.wrapping_add(1).max(1);
        let ping = self.next_ping;
        self.frame(Fields::Ping, b"", b"", ping)?;
        self.flush()?;
        loop {
            let mut done = false;
            self.each_frame(&mut |frame| {
                if matches!(frame.fields, Fields::Pong) && frame.op_id == ping {
                    done = true;
                }
            })?;
            if done {
                return Ok(());
            }
            read_some(&mut self.stream, &mut self.input)?;
        }
    }

    fn shard(&self) -> Option<u16> {
        Some(self.shard)
    }

    fn poll_socket(&self) -> Option<TcpStream> {
        match &self.stream {
            Stream::Tcp(socket) => socket.try_clone().ok(),
            Stream::Framed(_) => None,
        }
    }

    fn register(&mut self, service: &str, subject: &str) -> io::Result<()> {
        use shardbus_protocol::container::Value;
        self.next_sid += 1;
        let endpoint = Value::Map(vec![
            ("subject".into(), Value::Str(subject.to_owned())),
            ("sid".into(), Value::U64(self.next_sid)),
        ]);
        let description = Value::Map(vec![
            ("version".into(), Value::Str("1.0.0".into())),
            ("endpoints".into(), Value::List(vec![endpoint])),
        ])
        .to_binary()
        .map_err(io::Error::other)?;
        // The longest interval the server takes: a bench run never needs to beat.
        let fields = Fields::Register(shardbus_protocol::ServiceFields {
            heartbeat_ms: 3_600_000,
            ..shardbus_protocol::ServiceFields::default()
        });
        let head = Head {
            fields,
            flags: Flags::CONTAINER,
            op_id: 0,
            topic: service.as_bytes(),
            headers: &[],
        };
        encode_head(&head, description.len(), &mut self.out).map_err(io::Error::other)?;
        self.out.extend_from_slice(&description);
        self.flush()?;
        loop {
            let mut registered = false;
            self.each_frame(&mut |frame| {
                registered |= matches!(frame.fields, Fields::Register(_));
            })?;
            if registered {
                return Ok(());
            }
            read_some(&mut self.stream, &mut self.input)?;
        }
    }

    fn receive(&mut self, on: &mut dyn FnMut(Event<'_>)) -> io::Result<usize> {
        read_some(&mut self.stream, &mut self.input)?;
        self.each_frame(&mut |frame| match frame.fields {
            Fields::Msg { reply, .. } => on(Event::Msg {
                payload: frame.payload,
                reply: (reply != 0).then_some(ReplyTo::Token(reply)),
            }),
            Fields::Resp { .. } => on(Event::Response {
                payload: frame.payload,
            }),
            _ => {}
        })
    }
}
