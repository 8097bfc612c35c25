//! `Wire`: one blocking connection to the broker under test, with the same buffering for every
//! broker: publishes are encoded into a buffer and written when the scenario flushes (its
//! batch), and reads take whatever the socket has and parse every whole message in it. The
//! shardbus and NATS implementations differ only in encoding, so one load generator with the
//! same threading and batching drives both.

mod nats;
mod null;
mod pub_head;
mod shardbus;
mod websocket;

use std::io;
use std::net::SocketAddr;

/// How to answer a request that arrived as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// shardbus: the reply token.
    Token(u64),
    /// NATS: the reply subject.
    Subject(Vec<u8>),
}

/// Something a connection received.
#[derive(Debug)]
pub enum Event<'a> {
    /// A message on a subscription; `reply` is set for a request.
    Msg {
        /// The payload.
        payload: &'a [u8],
        /// Where to answer, for a request.
        reply: Option<ReplyTo>,
    },
    /// The response to this connection's request.
    Response {
        /// The payload.
        payload: &'a [u8],
    },
}

/// One connection to a broker (or to nothing, for measuring the tool itself).
pub trait Wire: Send {
    /// Subscribes to `subject`, in `queue` if given.
    fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> io::Result<()>;
    /// Queues a publish (written at the next `flush`).
    fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()>;
    /// Queues a request whose response comes back as [`Event::Response`].
    fn request(&mut self, subject: &str, payload: &[u8]) -> io::Result<()>;
    /// Queues the answer to a request.
    fn reply(&mut self, to: &ReplyTo, payload: &[u8]) -> io::Result<()>;
    /// Writes what is queued.
    fn flush(&mut self) -> io::Result<()>;
    /// A PING/PONG round trip: the broker processed everything sent before, and this
    /// connection's subscriptions are in effect.
    fn sync(&mut self) -> io::Result<()>;
    /// Reads once and hands every whole message to `on`; returns how many there were. `Ok(0)`
    /// may mean a read timeout with nothing received.
    fn receive(&mut self, on: &mut dyn FnMut(Event<'_>)) -> io::Result<usize>;
    /// Registers this connection as an instance of `service` answering on `subject` (a
    /// shardbus service, PROTOCOL.md §3.12); its requests arrive as [`Event::Msg`].
    fn register(&mut self, service: &str, subject: &str) -> io::Result<()> {
        let _ = (service, subject);
        Err(io::Error::other("only shardbus has a service registry"))
    }
    /// A handle on the connection's socket (a duplicate descriptor) to wait on with poll(2);
    /// `None` when the wire holds input poll cannot see (a WebSocket's reader) or has no
    /// socket. Input left in the wire's own buffer after `receive` is never a whole message, so
    /// a readable socket is exactly "something to receive".
    fn poll_socket(&self) -> Option<std::net::TcpStream> {
        None
    }
    /// The shard the broker put this connection on (shardbus's WELCOME says), to report where
    /// the two ends of a conversation landed; `None` for a broker without shards.
    fn shard(&self) -> Option<u16> {
        None
    }
}

/// What to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A shardbus server (binary protocol).
    Shardbus(SocketAddr),
    /// A shardbus server's WebSocket edge (binary frames), at its HTTP address.
    ShardbusWs(SocketAddr),
    /// A NATS server (text protocol).
    Nats(SocketAddr),
    /// A Socket.IO 4 server running `perf/socketio/server.js` (the `room` scenario only).
    SocketIo(SocketAddr),
    /// No server: publishes are encoded (as shardbus frames) and dropped.
    Null,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        let addr = |rest: &str| {
            rest.parse::<SocketAddr>()
                .map_err(|e| format!("{rest}: {e} (expected host:port, e.g. 127.0.0.1:7400)"))
        };
        if let Some(rest) = text.strip_prefix("shardbus://") {
            Ok(Target::Shardbus(addr(rest)?))
        } else if let Some(rest) = text.strip_prefix("ws://") {
            Ok(Target::ShardbusWs(addr(rest.trim_end_matches("/ws"))?))
        } else if let Some(rest) = text.strip_prefix("nats://") {
            Ok(Target::Nats(addr(rest)?))
        } else if let Some(rest) = text.strip_prefix("socketio://") {
            Ok(Target::SocketIo(addr(rest)?))
        } else if text == "null" {
            Ok(Target::Null)
        } else {
            Err(format!(
                "{text}: expected shardbus://host:port, ws://host:port (shardbus's HTTP port), \
                 nats://host:port, socketio://host:port (room only) or null"
            ))
        }
    }
}

impl Target {
    /// Whether this target's wires have a socket poll(2) can wait on ([`Wire::poll_socket`]),
    /// so one thread can drive many of them.
    pub fn pollable(self) -> bool {
        matches!(self, Target::Shardbus(_) | Target::Nats(_))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Shardbus(addr) => write!(f, "shardbus://{addr}"),
            Target::ShardbusWs(addr) => write!(f, "ws://{addr}/ws"),
            Target::Nats(addr) => write!(f, "nats://{addr}"),
            Target::SocketIo(addr) => write!(f, "socketio://{addr}"),
            Target::Null => f.write_str("null"),
        }
    }
}

/// The HELLO headers block every shardbus connection of this run sends (credentials), set
/// once by `main` before any load thread starts.
static CREDENTIALS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Sets the credentials every shardbus connection presents: `token`, `user` + `pass`, `jwt`.
pub fn set_credentials(pairs: &[(&str, &str)]) -> Result<(), shardbus_protocol::ProtocolError> {
    let mut block = shardbus_protocol::HeadersBuilder::new();
    for (key, value) in pairs {
        block.insert(key, value)?;
    }
    let _ = CREDENTIALS.set(block.as_bytes().to_vec());
    Ok(())
}

/// The credentials' headers block (empty when none were given).
fn credentials() -> &'static [u8] {
    CREDENTIALS.get().map_or(&[], Vec::as_slice)
}

/// Opens a connection to `target`.
///
/// # Errors
/// Connecting or the handshake failed.
pub fn connect(target: Target) -> io::Result<Box<dyn Wire>> {
    Ok(match target {
        Target::Shardbus(addr) => Box::new(shardbus::ShardbusWire::connect(addr)?),
        Target::ShardbusWs(addr) => Box::new(shardbus::ShardbusWire::over(Box::new(
            websocket::WsFrames::connect(addr)?,
        ))?),
        Target::Nats(addr) => Box::new(nats::NatsWire::connect(addr)?),
        Target::SocketIo(_) => {
            return Err(io::Error::other(
                "a socketio:// target runs the room scenario only",
            ));
        }
        Target::Null => Box::new(null::NullWire::default()),
    })
}

/// Opens a connection subscribed to `subject` (in `queue` if given), with the subscription in
/// effect on every shard when it returns.
///
/// # Errors
/// Connecting, subscribing or the round trip failed.
pub fn subscribed(target: Target, subject: &str, queue: Option<&str>) -> io::Result<Box<dyn Wire>> {
    let mut wire = connect(target)?;
    wire.subscribe(subject, queue)?;
    wire.sync()?;
    Ok(wire)
}

/// Socket settings shared by the real wires: no Nagle, a read timeout so a waiting reader can
/// notice the run ended.
fn tune(stream: &std::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(std::time::Duration::from_millis(200)))
}

/// Reads once and appends what arrived to `buf`, treating a read timeout as "nothing yet".
/// The read lands in a stack chunk and only the bytes read are copied: growing and zeroing
/// `buf` to its capacity before every read cost more than the read (and made 10,000 idle
/// connections' buffers resident).
fn read_some(stream: &mut dyn std::io::Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 64 << 10];
    match stream.read(&mut chunk) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )),
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            Ok(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}
