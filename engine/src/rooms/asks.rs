//! What a member's shard asks a room's home shard, and what comes back: the values the mesh
//! carries for rooms (boxed in their records: joins, presence and history are control
//! traffic, and the records that carry messages stay small). When the home is the member's own
//! shard the same values are handled in place.

use shardbus_protocol::{ErrorCode, Fields, RoomFlags};

use crate::history::Position;

/// A room op of connection `conn`, for the room's home.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    pub(crate) room: Box<[u8]>,
    pub(crate) conn: u64,
    pub(crate) op_id: u32,
    pub(crate) kind: AskKind,
    /// Counted in the connection's `room_ops` until answered.
    pub(crate) counted: bool,
}

/// Which op.
#[derive(Debug, Clone)]
pub(crate) enum AskKind {
    /// Add the connection as a member with subscription `sid`; recover after `from`.
    Join {
        sid: u64,
        user: Box<str>,
        name: Box<str>,
        info: Box<[u8]>,
        from: Option<Position>,
    },
    /// The connection is no longer a member (LEAVE, unsubscribe, or gone).
    Leave,
    /// A page of members after `cursor`.
    Presence {
        cursor: u64,
        limit: u32,
        stats_only: bool,
    },
    /// Publications as MSGs labelled `sid`, then the HISTORY frame.
    History {
        sid: u64,
        after: Option<Position>,
        limit: u32,
        reverse: bool,
    },
}

/// The home's answer to an ask, for the connection's shard.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) conn: u64,
    pub(crate) op_id: u32,
    pub(crate) room: Box<[u8]>,
    pub(crate) reply: Reply,
    /// It answers an op the connection's `room_ops` counts (not a server-side join).
    pub(crate) counted: bool,
}

/// What to send the connection.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A room frame (JOIN, PRESENCE, HISTORY) with a container payload (or none).
    Frame { fields: Fields, payload: Vec<u8> },
    /// An ERR; `sid` is its `ref_id` (and the membership to undo for a refused join).
    Refused {
        code: ErrorCode,
        sid: u64,
        message: &'static str,
    },
}

/// A member joined or left: for every member of the room on the receiving shard but `except`.
#[derive(Debug)]
pub(crate) struct MemberEvent {
    pub(crate) room: Box<[u8]>,
    pub(crate) except: u64,
    pub(crate) flags: RoomFlags,
    /// The member, as a container map.
    pub(crate) payload: Vec<u8>,
}
