//! `ClientError`: why a client call failed, carrying the server's ERR code when there is one.

use std::io;

use crate::container::ContainerError;
use crate::error::ProtocolError;
use crate::error_code::ErrorCode;

/// A failed client operation.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// TLS could not be set up (a certificate file, a name).
    #[error("tls: {0}")]
    Tls(String),
    /// The client was asked to send something the protocol forbids, or the server sent bytes
    /// that break it.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// A container payload could not be encoded or decoded.
    #[error("container: {0}")]
    Container(#[from] ContainerError),
    /// The server answered with ERR.
    #[error("server error {code}: {message}")]
    Server {
        /// The code (PROTOCOL.md §5).
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// For `RATE_LIMITED`: how long to wait before retrying.
        retry_after_ms: u32,
    },
    /// No answer arrived in time (the server's own TIMEOUT arrives as [`ClientError::Server`]).
    #[error("timed out waiting for the server")]
    Timeout,
    /// The connection was lost while the operation was in flight.
    #[error("disconnected")]
    Disconnected,
    /// The buffer for publishes made while disconnected is full.
    #[error("reconnect buffer full")]
    BufferFull,
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

impl ClientError {
    /// The server's code, when the server answered with ERR.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}
