//! `ProtocolError`: everything that can be wrong with bytes on the wire, each mapped to a code.

use crate::error_code::ErrorCode;

/// A frame, topic, header block or payload that breaks the v1 rules.
///
/// Produced by the decoder and the validators; [`ProtocolError::code`] gives the wire code a
/// server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix is smaller than the fixed header.
    #[error("frame length {0} is shorter than the {min}-byte header", min = crate::header::HEADER_LEN)]
    FrameTooShort(u32),
    /// The length prefix exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced frame length, prefix included.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The section lengths in the header do not add up to the frame length.
    #[error("section lengths exceed the frame length")]
    SectionOverflow,
    /// An op number outside v1.
    #[error("unknown op 0x{0:02x}")]
    UnknownOp(u8),
    /// An op number reserved for a later version.
    #[error("op 0x{0:02x} is reserved for a later protocol version")]
    ReservedOp(u8),
    /// The op carries a section (topic, headers, payload) it must not have, or lacks one it needs.
    #[error("{op} {problem}")]
    BadSection {
        /// The op's name.
        op: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A flag bit that v1 does not define, or flags that contradict the sections.
    #[error("bad flags 0x{0:02x}")]
    BadFlags(u8),
    /// The topic breaks the grammar.
    #[error("invalid topic: {0}")]
    InvalidTopic(&'static str),
    /// The topic is longer than allowed.
    #[error("topic of {len} bytes exceeds the maximum of {max}")]
    TopicTooLong {
        /// The topic's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The topic has more tokens than allowed.
    #[error("topic of {count} tokens exceeds the maximum of {max}")]
    TooManyTokens {
        /// The topic's tokens, counted up to one past the limit.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is larger than allowed.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The headers block is malformed.
    #[error("bad headers: {0}")]
    BadHeaders(&'static str),
    /// The headers block is larger than allowed.
    #[error("headers block of {len} bytes exceeds the maximum of {max}")]
    HeadersTooLarge {
        /// The block's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A queue-group name breaks the token grammar.
    #[error("invalid queue group: {0}")]
    InvalidQueueGroup(&'static str),
    /// A value does not fit the field it must be encoded in.
    #[error("{0} too long to encode")]
    TooLongToEncode(&'static str),
}

impl ProtocolError {
    /// The wire code a server answers this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::FrameTooShort(_)
            | ProtocolError::SectionOverflow
            | ProtocolError::BadSection { .. }
            | ProtocolError::BadFlags(_)
            | ProtocolError::TooLongToEncode(_) => ErrorCode::BAD_FRAME,
            ProtocolError::FrameTooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
            ProtocolError::UnknownOp(_) | ProtocolError::ReservedOp(_) => ErrorCode::UNKNOWN_OP,
            ProtocolError::InvalidTopic(_) | ProtocolError::TopicTooLong { .. } => {
                ErrorCode::INVALID_TOPIC
            }
            ProtocolError::TooManyTokens { .. } => ErrorCode::TOO_MANY_TOKENS,
            ProtocolError::PayloadTooLarge { .. } => ErrorCode::PAYLOAD_TOO_LARGE,
            ProtocolError::BadHeaders(_) | ProtocolError::HeadersTooLarge { .. } => {
                ErrorCode::BAD_HEADERS
            }
            ProtocolError::InvalidQueueGroup(_) => ErrorCode::INVALID_QUEUE_GROUP,
        }
    }
}
