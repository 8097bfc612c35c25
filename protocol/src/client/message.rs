//! `Message`: a delivery or response owned by the application. Topic, headers and payload are
//! slices of the frame the reader received, shared without copying.

use std::borrow::Cow;

use bytes::Bytes;

use crate::container::{self, ContainerError, ContainerLimits, Value};
use crate::flags::Flags;
use crate::headers::Headers;

/// A message received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) sid: u64,
    pub(crate) seq: u64,
    pub(crate) reply: u64,
    pub(crate) flags: Flags,
    pub(crate) topic: Bytes,
    pub(crate) headers: Bytes,
    pub(crate) payload: Bytes,
}

impl Message {
    /// The subscription it was delivered to (0 for a response).
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The per-subscription sequence number (0 for a response).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The topic it was published on (empty for a response).
    pub fn topic(&self) -> &str {
        // Topics were validated as printable ASCII by the decoder.
        std::str::from_utf8(&self.topic).unwrap_or_default()
    }

    /// The payload as sent (still compressed when [`Flags::LZ4`] is set).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as a shared buffer.
    pub fn payload_bytes(&self) -> Bytes {
        self.payload.clone()
    }

    /// The frame flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// The headers.
    pub fn headers(&self) -> Headers<'_> {
        Headers::parse(&self.headers).unwrap_or(Headers::EMPTY)
    }

    /// Whether the sender waits for a response ([`crate::client::Client::respond`]).
    pub fn is_request(&self) -> bool {
        self.reply != 0
    }

    /// The token a response must carry.
    pub fn reply_token(&self) -> u64 {
        self.reply
    }

    /// The payload, decompressed when it was sent with LZ4.
    ///
    /// # Errors
    /// [`ContainerError`] for corrupt LZ4 data or an inflation past `max_len`.
    pub fn decompressed(&self, max_len: usize) -> Result<Cow<'_, [u8]>, ContainerError> {
        if !self.flags.contains(Flags::LZ4) {
            return Ok(Cow::Borrowed(&self.payload));
        }
        let mut out = Vec::new();
        container::compress::decompress(&self.payload, max_len, &mut out)?;
        Ok(Cow::Owned(out))
    }

    /// The payload decoded as a container value.
    ///
    /// # Errors
    /// [`ContainerError`] when the payload is not a (valid) container.
    pub fn value(&self, limits: &ContainerLimits) -> Result<Value, ContainerError> {
        let bytes = self.decompressed(limits.max_size)?;
        Ok(container::decode(&bytes, limits)?.to_owned_value())
    }
}
