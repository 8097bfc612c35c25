//! The fixed 16-byte frame header and the per-op fixed fields, read in place with zerocopy.
//!
//! Every multi-byte field is little-endian and unaligned, so a header can be viewed directly in
//! a network buffer at any offset without copying.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes in [`RawHeader`], the length prefix included.
pub const HEADER_LEN: usize = 16;

/// Bytes in the length prefix alone.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The fixed header at the start of every frame (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawHeader {
    /// Bytes in the frame after this field.
    pub len: U32,
    /// The op byte.
    pub op: u8,
    /// Frame flags ([`crate::Flags`]).
    pub flags: u8,
    /// Bytes of topic.
    pub topic_len: U16,
    /// Bytes of the headers block.
    pub headers_len: U32,
    /// Correlation id chosen by the client; OK and ERR echo it. 0 means none.
    pub op_id: U32,
}

/// HELLO fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawHello {
    /// Protocol version the client speaks.
    pub version: U16,
    /// Option bits ([`crate::HelloOptions`]).
    pub options: U16,
}

/// WELCOME fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawWelcome {
    /// Protocol version the server will speak.
    pub version: U16,
    /// The shard that owns this connection.
    pub shard: U16,
    /// Longest topic the server accepts.
    pub max_topic_len: U16,
    /// Always 0 in v1.
    pub reserved: U16,
    /// Largest payload the server accepts.
    pub max_payload: U32,
    /// Largest frame the server accepts, length prefix included.
    pub max_frame: U32,
    /// Most subscriptions a connection may hold.
    pub max_subscriptions: U32,
    /// The longest the server stays silent towards the client, in milliseconds (0: no keepalive).
    pub ping_interval_ms: U32,
    /// The server's id for this connection.
    pub client_id: U64,
}

/// ERR fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawErr {
    /// The error code (PROTOCOL.md §5).
    pub code: U16,
    /// Always 0 in v1.
    pub reserved: U16,
    /// For `RATE_LIMITED`: milliseconds before a retry can succeed; otherwise 0.
    pub retry_after_ms: U32,
    /// For `NO_RESPONDERS` and `TIMEOUT`: the request id; for subscription errors: the sid.
    pub ref_id: U64,
}

/// DRAIN fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawDrain {
    /// Milliseconds before the server closes the connection.
    pub grace_ms: U32,
}

/// SUB fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSub {
    /// The subscription id, chosen by the client, unique among its active subscriptions.
    pub sid: U64,
}

/// UNSUB fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawUnsub {
    /// The subscription id.
    pub sid: U64,
    /// 0: end now; N: end after N more deliveries.
    pub max_msgs: U64,
}

/// MSG fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawMsg {
    /// The subscription this delivery is for.
    pub sid: U64,
    /// Per-subscription delivery number, starting at 1.
    pub seq: U64,
    /// Non-zero when the message is a request: the token a RESP must carry.
    pub reply: U64,
}

/// REQ fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawReq {
    /// Chosen by the requester; RESP or ERR carry it back.
    pub request_id: U64,
    /// Milliseconds the server waits for a response.
    pub timeout_ms: U32,
    /// Always 0 in v1.
    pub reserved: U32,
}

/// RESP fields.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawResp {
    /// Responder → server: the reply token from MSG. Server → requester: the request id.
    pub id: U64,
}

/// The fixed fields every room op shares: JOIN, LEAVE, PRESENCE, MEMBER and HISTORY
/// (PROTOCOL.md §3.11). What each field means depends on the op and its direction.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawRoom {
    /// The subscription the room's deliveries (and recovered or retained publications) go to.
    pub sid: U64,
    /// A room history's epoch: it changes whenever that history is lost.
    pub epoch: U64,
    /// An offset in the room's history, or a presence cursor.
    pub offset: U64,
    /// A count: publications that follow, members listed, a limit asked for.
    pub count: U32,
    /// Op-specific bits (`RoomFlags`).
    pub flags: U32,
}

/// The fixed fields the service ops share: REGISTER, HEARTBEAT, DEREGISTER and DISCOVER
/// (PROTOCOL.md §3.12).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawService {
    /// The instance the op is about (0 in a REGISTER from a client).
    pub instance: U64,
    /// The heartbeat interval in milliseconds (REGISTER).
    pub heartbeat_ms: U32,
    /// A load figure the instance reports (HEARTBEAT).
    pub load: U32,
    /// Instances listed (DISCOVER from the server).
    pub count: U32,
    /// The health an instance reports (HEARTBEAT) or the server sees (DISCOVER's list).
    pub health: U16,
    /// Always 0 in v1.
    pub reserved: U16,
}
