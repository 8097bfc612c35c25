//! `Limits`: the sizes a decoder enforces before it trusts anything in a frame.

use crate::header::HEADER_LEN;
use crate::topic::DEFAULT_MAX_TOPIC_LEN;

/// The bounds a decoder checks. A server sends its own in WELCOME; a client adopts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame, length prefix included. Checked against the prefix before any buffering.
    pub max_frame: u32,
    /// Largest payload section.
    pub max_payload: u32,
    /// Longest topic or pattern.
    pub max_topic_len: u16,
    /// Largest headers block.
    pub max_headers_len: u32,
    /// Most dot-separated tokens in a topic or pattern. Routing walks one trie level per
    /// token, so this bounds the depth any input can drive.
    pub max_topic_tokens: u16,
}

/// Default largest payload: 1 MiB, as NATS.
pub const DEFAULT_MAX_PAYLOAD: u32 = 1 << 20;

/// Default largest headers block.
pub const DEFAULT_MAX_HEADERS_LEN: u32 = 4 << 10;

/// Default most tokens in a topic or pattern.
pub const DEFAULT_MAX_TOPIC_TOKENS: u16 = 64;

/// The most tokens a server may be configured to allow: deep enough for any naming scheme,
/// shallow enough that a walk of the routing trie stays a few kilobytes of stack.
pub const MAX_TOPIC_TOKENS_CEILING: u16 = 256;

impl Limits {
    /// No bound at all, for a reader that trusts what it reads (the tests' raw connection, the
    /// load tool), never for a server's input.
    pub const UNBOUNDED: Limits = Limits {
        max_frame: u32::MAX,
        max_payload: u32::MAX,
        max_topic_len: u16::MAX,
        max_topic_tokens: u16::MAX,
        max_headers_len: u32::MAX,
    };

    /// The largest frame these section limits allow: the header, the largest fixed fields, and
    /// every section at its maximum.
    pub const fn frame_for(max_payload: u32, max_topic_len: u16, max_headers_len: u32) -> u32 {
        // 32 = the largest fixed fields (WELCOME).
        let fixed = HEADER_LEN as u32 + 32 + max_topic_len as u32;
        max_payload
            .saturating_add(max_headers_len)
            .saturating_add(fixed)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: Limits::frame_for(
                DEFAULT_MAX_PAYLOAD,
                DEFAULT_MAX_TOPIC_LEN,
                DEFAULT_MAX_HEADERS_LEN,
            ),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_topic_len: DEFAULT_MAX_TOPIC_LEN,
            max_headers_len: DEFAULT_MAX_HEADERS_LEN,
            max_topic_tokens: DEFAULT_MAX_TOPIC_TOKENS,
        }
    }
}
