//! shardbus wire protocol v1: framing, ops, error codes, topic syntax and matching, typed value
//! containers, a sans-IO client state machine, and the blocking Rust client built on it.
//!
//! Nothing here does server work, and nothing below [`client`] touches a socket or a clock:
//! the codec takes bytes and returns frames and bytes. The spec is `protocol/PROTOCOL.md`.

pub mod client;
pub mod container;
pub mod decode;
pub mod encode;
pub mod error;
pub mod error_code;
pub mod flags;
pub mod frame;
pub mod header;
pub mod headers;
pub mod limits;
pub mod op;
pub mod service;
pub mod topic;

pub use decode::{Check, check, decode, next_frame};
pub use encode::{Head, encode, encode_head};
pub use error::ProtocolError;
pub use error_code::{CODE_TABLE, ErrorCode};
pub use flags::{Flags, HelloOptions, RoomFlags};
pub use frame::{Fields, Frame, RoomFields, Welcome};
pub use headers::{Headers, HeadersBuilder};
pub use limits::{DEFAULT_MAX_TOPIC_TOKENS, Limits, MAX_TOPIC_TOKENS_CEILING};
pub use op::Op;
pub use service::{Health, ServiceFields};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The top-level README's Rust example, compiled as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
