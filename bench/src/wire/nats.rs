//! `NatsWire`: a minimal client of the NATS text protocol — CONNECT, PUB, SUB, MSG, PING/PONG,
//! and request/reply through an inbox subscription — so the same load generator drives
//! nats-server. Headers (HPUB/HMSG) are not used.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};

use super::{Event, ReplyTo, Wire, read_some, tune};

/// A NATS connection.
#[derive(Debug)]
pub struct NatsWire {
    stream: TcpStream,
    out: Vec<u8>,
    input: Vec<u8>,
    next_sid: u64,
    inbox: String,
    inbox_sid: Option<u64>,
    next_request: u64,
    pongs_seen: u64,
}

/// Where a line ends (the index of its `\r\n`).
fn line_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

impl NatsWire {
    /// Connects, reads INFO, sends CONNECT (no echo, not verbose) and waits for the PONG of a
    /// PING so the connection is known to be accepted.
    pub fn connect(addr: SocketAddr) -> io::Result<NatsWire> {
        let stream = TcpStream::connect(addr)?;
        tune(&stream)?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut wire = NatsWire {
            stream,
            out: Vec::with_capacity(64 << 10),
            input: Vec::new(),
            next_sid: 0,
            inbox: format!("_INBOX.{nonce:x}{:x}", std::process::id()),
            inbox_sid: None,
            next_request: 0,
            pongs_seen: 0,
        };
        wire.out.extend_from_slice(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"lang\":\"rust\",\"version\":\"shardbus-bench\",\"protocol\":1}\r\n",
        );
        wire.sync()?;
        Ok(wire)
    }

    /// Parses every whole message in the input; answers PINGs; returns the count handed on.
    fn each_message(&mut self, on: &mut dyn FnMut(Event<'_>)) -> io::Result<usize> {
        let mut at = 0;
        let mut count = 0;
        let mut pongs = 0;
        let mut pings = 0;
        loop {
            let rest = self.input.get(at..).unwrap_or_default();
            let Some(end) = line_end(rest) else { break };
            let line = rest.get(..end).unwrap_or_default();
            if let Some(args) = line.strip_prefix(b"MSG ") {
                let mut parts = args.split(|&b| b == b' ');
                let subject = parts.next().unwrap_or_default();
                let sid = parts.next().unwrap_or_default();
                let third = parts.next().unwrap_or_default();
                let (reply, len) = match parts.next() {
                    Some(len) => (Some(third), len),
                    None => (None, third),
                };
                let len: usize = std::str::from_utf8(len)
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .ok_or_else(|| io::Error::other("bad MSG length"))?;
                let start = end + 2;
                if rest.len() < start + len + 2 {
                    break;
                }
                let payload = rest.get(start..start + len).unwrap_or_default();
                // Responses arrive on the inbox subscription; comparing the subject prefix
                // avoids formatting the sid per message.
                let _ = sid;
                let is_response =
                    self.inbox_sid.is_some() && subject.starts_with(self.inbox.as_bytes());
                if is_response {
                    on(Event::Response { payload });
                } else {
                    on(Event::Msg {
                        payload,
                        reply: reply.map(|r| ReplyTo::Subject(r.to_vec())),
                    });
                }
                count += 1;
                at += start + len + 2;
                continue;
            }
            if line == b"PING" {
                pings += 1;
            } else if line == b"PONG" {
                pongs += 1;
            } else if line.starts_with(b"-ERR") {
                return Err(io::Error::other(String::from_utf8_lossy(line).into_owned()));
            }
            // INFO and +OK need nothing.
            at += end + 2;
        }
        self.input.drain(..at);
        for _ in 0..pings {
            self.out.extend_from_slice(b"PONG\r\n");
        }
        if pings > 0 {
            self.flush()?;
        }
        self.pongs_seen += pongs;
        Ok(count)
    }
}

impl Wire for NatsWire {
    fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> io::Result<()> {
        self.next_sid += 1;
        match queue {
            Some(group) => writeln_crlf(
                &mut self.out,
                format_args!("SUB {subject} {group} {}", self.next_sid),
            ),
            None => writeln_crlf(
                &mut self.out,
                format_args!("SUB {subject} {}", self.next_sid),
            ),
        }
        Ok(())
    }

    fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        writeln_crlf(
            &mut self.out,
            format_args!("PUB {subject} {}", payload.len()),
        );
        self.out.extend_from_slice(payload);
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn request(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        if self.inbox_sid.is_none() {
            self.next_sid += 1;
            self.inbox_sid = Some(self.next_sid);
            let inbox = self.inbox.clone();
            writeln_crlf(
                &mut self.out,
                format_args!("SUB {inbox}.* {}", self.next_sid),
            );
        }
        self.next_request += 1;
        writeln_crlf(
            &mut self.out,
            format_args!(
                "PUB {subject} {}.{} {}",
                self.inbox,
                self.next_request,
                payload.len()
            ),
        );
        self.out.extend_from_slice(payload);
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn reply(&mut self, to: &ReplyTo, payload: &[u8]) -> io::Result<()> {
        let ReplyTo::Subject(subject) = to else {
            return Err(io::Error::other("a shardbus token on NATS"));
        };
        self.out.extend_from_slice(b"PUB ");
        self.out.extend_from_slice(subject);
        writeln_crlf(&mut self.out, format_args!(" {}", payload.len()));
        self.out.extend_from_slice(payload);
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.out.extend_from_slice(b"PING\r\n");
        self.flush()?;
        let target = self.pongs_seen + 1;
        loop {
            self.each_message(&mut |_| {})?;
            if self.pongs_seen >= target {
                return Ok(());
            }
            read_some(&mut self.stream, &mut self.input)?;
        }
    }

    fn poll_socket(&self) -> Option<TcpStream> {
        self.stream.try_clone().ok()
    }

    fn receive(&mut self, on: &mut dyn FnMut(Event<'_>)) -> io::Result<usize> {
        read_some(&mut self.stream, &mut self.input)?;
        self.each_message(on)
    }
}

fn writeln_crlf(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
    out.extend_from_slice(b"\r\n");
}
