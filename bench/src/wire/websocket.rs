//! `WsFrames`: shardbus frames carried in WebSocket binary messages (PROTOCOL.md §9), seen as
//! the same length-prefixed byte stream the TCP wire reads and writes: a written stream of
//! frames leaves as one message per frame (the length prefix dropped), and each message read
//! comes back with its prefix restored. tungstenite buffers the messages of one flush and
//! writes them together.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use tungstenite::{Message, WebSocket};

use super::tune;

/// A WebSocket connection to shardbus's `/ws`.
pub struct WsFrames {
    ws: WebSocket<TcpStream>,
    /// A received frame (prefix restored) not yet read out.
    pending: Vec<u8>,
    at: usize,
    /// Written frames not yet sent.
    out: Vec<u8>,
}

fn ws_error(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl WsFrames {
    /// Connects and upgrades; `addr` is the server's HTTP address.
    pub fn connect(addr: SocketAddr) -> io::Result<WsFrames> {
        let stream = TcpStream::connect(addr)?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream)
            .map_err(|e| io::Error::other(e.to_string()))?;
        tune(ws.get_ref())?;
        Ok(WsFrames {
            ws,
            pending: Vec::new(),
            at: 0,
            out: Vec::with_capacity(64 << 10),
        })
    }
}

impl Read for WsFrames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            match self.ws.read().map_err(ws_error)? {
                Message::Binary(bytes) => {
                    self.pending.clear();
                    self.pending
                        .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    self.pending.extend_from_slice(&bytes);
                    self.at = 0;
                }
                Message::Close(_) => return Ok(0),
                _ => {}
            }
        }
        let rest = self.pending.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

impl Write for WsFrames {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut at = 0;
        while let Some(prefix) = self.out.get(at..at + 4) {
            let len = prefix
                .try_into()
                .map(u32::from_le_bytes)
                .map_err(io::Error::other)? as usize;
            let Some(frame) = self.out.get(at + 4..at + 4 + len) else {
                break;
            };
            self.ws
                .write(Message::Binary(frame.to_vec().into()))
                .map_err(ws_error)?;
            at += 4 + len;
        }
        self.out.drain(..at);
        self.ws.flush().map_err(ws_error)
    }
}
