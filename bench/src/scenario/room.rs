//! `room`: N members of one room over WebSocket, one publisher, deliveries per second and
//! latency. The same tool drives shardbus (binary frames on `/ws`: JOIN, PUB, MSG) and a
//! Socket.IO 4 server (`perf/socketio/server.js`: Engine.IO v4 over a WebSocket, events
//! `join`, `pub`, `msg`), so neither broker is measured through a heavier client than the
//! other. Members are multiplexed over a few reader threads with poll(2), so a thousand of
//! them cost the machine a few threads, not a thousand.
//!
//! Pacing: at most `window` messages in flight (sent, not yet received by the first member),
//! which finds the rate the broker sustains. Payloads start with the send time (20 ASCII
//! digits of nanoseconds since the bench started; both brokers carry text).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::poll::{PollFd, PollFlags, poll};
use shardbus_protocol::{
    Fields, Frame, HelloOptions, Limits, PROTOCOL_VERSION, RoomFields, decode, encode,
};
use tungstenite::{Message, WebSocket};

use super::join_all;
use crate::error::BenchError;
use crate::report::{self, Measured, Report};
use crate::stamp;

/// Digits of the send stamp at the start of every payload.
const STAMP_DIGITS: usize = 20;

/// Which broker, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomTarget {
    /// shardbus's WebSocket edge (its HTTP address).
    Shardbus(SocketAddr),
    /// A Socket.IO 4 server.
    SocketIo(SocketAddr),
}

/// A room run's parameters.
#[derive(Debug, Clone)]
pub struct RoomLoad {
    /// The members' broker.
    pub target: RoomTarget,
    /// The publisher's broker (the members' unless another node's).
    pub publish_to: RoomTarget,
    /// The room's name.
    pub room: String,
    /// Members.
    pub members: usize,
    /// Messages published.
    pub msgs: u64,
    /// Payload bytes (at least 20: the stamp).
    pub size: usize,
    /// Messages in flight.
    pub window: u64,
    /// Threads reading the members' sockets.
    pub readers: usize,
}

/// One member's (or the publisher's) WebSocket and how its broker frames things.
struct Peer {
    ws: WebSocket<TcpStream>,
    socketio: bool,
}

fn ws_error(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

fn frame_message(frame: &Frame<'_>) -> io::Result<Message> {
    let mut bytes = Vec::new();
    encode(frame, &mut bytes).map_err(io::Error::other)?;
    Ok(Message::Binary(bytes.split_off(4).into()))
}

/// A binary message as a decoded frame's op, topic-free payload.
fn with_frame<T>(bytes: &[u8], each: impl FnOnce(&Frame<'_>) -> T) -> Option<T> {
    let mut whole = (bytes.len() as u32).to_le_bytes().to_vec();
    whole.extend_from_slice(bytes);
    let limits = Limits::UNBOUNDED;
    decode(&whole, &limits).ok().map(|frame| each(&frame))
}

impl Peer {
    /// Connects and completes the broker's handshake.
    fn connect(target: RoomTarget) -> io::Result<Peer> {
        let (addr, path, socketio) = match target {
            RoomTarget::Shardbus(addr) => (addr, "/ws", false),
            RoomTarget::SocketIo(addr) => (addr, "/socket.io/?EIO=4&transport=websocket", true),
        };
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut peer = Peer { ws, socketio };
        if socketio {
            // Engine.IO's open packet, then the namespace's connect.
            peer.until_text(|t| t.starts_with('0'))?;
            peer.send(Message::Text("40".into()))?;
            peer.until_text(|t| t.starts_with("40"))?;
        } else {
            let hello = Frame::new(Fields::Hello {
                version: PROTOCOL_VERSION,
                options: HelloOptions(0),
            });
            peer.send(frame_message(&hello)?)?;
            peer.until_frame(|f| matches!(f, Fields::Welcome(_)))?;
        }
        Ok(peer)
    }

    fn send(&mut self, message: Message) -> io::Result<()> {
        self.ws.send(message).map_err(ws_error)
    }

    fn until_text(&mut self, wanted: impl Fn(&str) -> bool) -> io::Result<()> {
        loop {
            if let Message::Text(text) = self.ws.read().map_err(ws_error)? {
                if text.as_str() == "2" {
                    self.send(Message::Text("3".into()))?;
                } else if wanted(&text) {
                    return Ok(());
                }
            }
        }
    }

    /// Reads until a frame `wanted` accepts; an ERR is the broker's refusal.
    fn until_frame(&mut self, wanted: impl Fn(&Fields) -> bool) -> io::Result<()> {
        loop {
            let Message::Binary(bytes) = self.ws.read().map_err(ws_error)? else {
                continue;
            };
            let seen = with_frame(&bytes, |f| match f.fields {
                Fields::Err { code, .. } => Err(io::Error::other(format!(
                    "the server refused: {} ({})",
                    code.name(),
                    String::from_utf8_lossy(f.payload)
                ))),
                ref fields => Ok(wanted(fields)),
            });
            if seen.transpose()? == Some(true) {
                return Ok(());
            }
        }
    }

    /// Joins `room` and waits until the broker says so.
    fn join(&mut self, room: &str) -> io::Result<()> {
        if self.socketio {
            self.send(Message::Text(format!("420[\"join\",\"{room}\"]").into()))?;
            return self.until_text(|t| t.starts_with("430"));
        }
        let join = Frame::new(Fields::Join(RoomFields {
            sid: 1,
            ..RoomFields::default()
        }))
        .with_topic(room);
        self.send(frame_message(&join)?)?;
        self.until_frame(|f| matches!(f, Fields::Join(_)))
    }

    /// Queues a publication of `payload` (ASCII) to `room`; written at the next flush.
    fn publish(&mut self, room: &str, payload: &str) -> io::Result<()> {
        let message = if self.socketio {
            Message::Text(
                format!("42[\"pub\",{{\"room\":\"{room}\",\"data\":\"{payload}\"}}]").into(),
            )
        } else {
            frame_message(
                &Frame::new(Fields::Pub)
                    .with_topic(room)
                    .with_payload(payload.as_bytes()),
            )?
        };
        self.ws.write(message).map_err(ws_error)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(ws_error)
    }

    /// Reads every message waiting (non-blocking socket); hands each delivery's stamp to `on`.
    fn drain(&mut self, on: &mut impl FnMut(u64)) -> io::Result<()> {
        loop {
            let message = match self.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(());
                }
                Err(e) => return Err(ws_error(e)),
            };
            match message {
                Message::Text(text) if self.socketio => {
                    if let Some(rest) = text.strip_prefix("42[\"msg\",\"") {
                        on(parse_stamp(rest.as_bytes()));
                    } else if text.as_str() == "2" {
                        self.send(Message::Text("3".into()))?;
                    }
                }
                Message::Binary(bytes) => {
                    let ping = with_frame(&bytes, |f| match f.fields {
                        Fields::Msg { .. } => {
                            on(parse_stamp(f.payload));
                            false
                        }
                        Fields::Ping => true,
                        _ => false,
                    });
                    if ping == Some(true) {
                        self.send(frame_message(&Frame::new(Fields::Pong))?)?;
                    }
                }
                _ => {}
            }
        }
    }
}

fn parse_stamp(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(STAMP_DIGITS)
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
}

/// What one reader thread saw.
struct Seen {
    received: u64,
    last: Option<Instant>,
    latency: Histogram<u64>,
}

impl RoomLoad {
    /// Runs the scenario.
    ///
    /// # Errors
    /// A connection failed or a load thread died.
    pub fn run(&self) -> Result<Report, BenchError> {
        if self.size < STAMP_DIGITS {
            return Err(BenchError::Setup(format!(
                "--size must be at least {STAMP_DIGITS} bytes for room (the send stamp)"
            )));
        }
        let readers = self.readers.clamp(1, self.members.max(1));
        let start_line = Arc::new(Barrier::new(readers + 1));
        let first_member = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for reader in 0..readers {
            let load = self.clone();
            let (start_line, first_member, stop) = (
                Arc::clone(&start_line),
                Arc::clone(&first_member),
                Arc::clone(&stop),
            );
            handles.push(std::thread::spawn(move || {
                let members: Vec<usize> = (reader..load.members).step_by(readers).collect();
                let setup = load.open_members(members.len());
                start_line.wait();
                let peers = setup?;
                load.read_members(peers, reader == 0, &first_member, &stop)
            }));
        }
        let mut publisher = Peer::connect(self.publish_to)?;
        start_line.wait();
        let started = Instant::now();
        let padding = "x".repeat(self.size - STAMP_DIGITS);
        let mut sent = 0;
        while sent < self.msgs {
            if sent - first_member.load(Ordering::Relaxed) < self.window {
                let payload = format!("{:020}{padding}", stamp::now_ns());
                publisher.publish(&self.room, &payload)?;
                sent += 1;
                if sent % 16 == 0 {
                    publisher.flush()?;
                }
            } else {
                publisher.flush()?;
                std::thread::yield_now();
            }
        }
        publisher.flush()?;
        let send_secs = started.elapsed().as_secs_f64();
        let seen = join_all(handles)?;
        stop.store(true, Ordering::Relaxed);
        let mut latency = report::histogram()?;
        let mut received = 0;
        let mut last = started;
        for s in &seen {
            received += s.received;
            last = last.max(s.last.unwrap_or(started));
            latency
                .add(&s.latency)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
        }
        let target = match self.target {
            RoomTarget::Shardbus(addr) => format!("ws://{addr}/ws"),
            RoomTarget::SocketIo(addr) => format!("socketio://{addr}"),
        };
        let measured = Measured {
            scenario: "room",
            target,
            publishers: 1,
            subscribers: self.members,
            size: self.size,
            sent,
            received,
            expected: self.msgs * self.members as u64,
            send_secs,
            total_secs: last.duration_since(started).as_secs_f64(),
        };
        Ok(Report::new(measured, &latency, None))
    }

    /// `count` members, joined, their sockets non-blocking.
    fn open_members(&self, count: usize) -> Result<Vec<Peer>, BenchError> {
        let mut peers = Vec::with_capacity(count);
        for _ in 0..count {
            let mut peer = Peer::connect(self.target)?;
            peer.join(&self.room)?;
            peer.ws.get_ref().set_nonblocking(true)?;
            peers.push(peer);
        }
        Ok(peers)
    }

    /// Reads the members' deliveries until each has every message (or the run stalls for 10 s);
    /// the first reader's first member paces the publisher.
    fn read_members(
        &self,
        mut peers: Vec<Peer>,
        paces: bool,
        first_member: &AtomicU64,
        stop: &AtomicBool,
    ) -> Result<Seen, BenchError> {
        let mut seen = Seen {
            received: 0,
            last: None,
            latency: report::histogram()?,
        };
        let expected = self.msgs * peers.len() as u64;
        let mut quiet_since = Instant::now();
        while seen.received < expected && !stop.load(Ordering::Relaxed) {
            let ready: Vec<bool> = {
                let mut fds: Vec<PollFd<'_>> = peers
                    .iter()
                    .map(|p| PollFd::new(p.ws.get_ref(), PollFlags::POLLIN))
                    .collect();
                poll(&mut fds, 100).map_err(io::Error::from)?;
                fds.iter()
                    .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                    .collect()
            };
            let before = seen.received;
            for (index, peer) in peers.iter_mut().enumerate() {
                if !ready.get(index).copied().unwrap_or(false) {
                    continue;
                }
                let first = paces && index == 0;
                peer.drain(&mut |sent_ns| {
                    let now = stamp::now_ns();
                    let _ = seen.latency.record(now.saturating_sub(sent_ns).max(1));
                    seen.received += 1;
                    if first {
                        first_member.fetch_add(1, Ordering::Relaxed);
                    }
                })?;
            }
            if seen.received > before {
                seen.last = Some(Instant::now());
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        Ok(seen)
    }
}
