//! What a member's shard asks a room's home shard, and what comes back: the values the mesh
//! carries for rooms (boxed in their records: joins, presence and history are control
//! traffic, and the records that carry messages stay small). When the home is the member's own
//! shard the same values are handled in place.

use shardbus_protocol::{ErrorCode, Fields, RoomFlags};

use crate::history::Position;
use crate::rooms::members::Member;

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
    /// What another node told of its members of the room (never answered).
    Remote(Box<Remote>),
}

/// Another node's members of a room, as its records arrived: `node` names it, and each
/// member's `conn` is that node's connection id.
#[derive(Debug, Clone)]
pub(crate) enum Remote {
    Joined {
        node: Box<str>,
        member: Member,
    },
    Left {
        node: Box<str>,
        conn: u64,
    },
    /// Every member the node has in the room (an answer to a roster ask).
    Roster {
        node: Box<str>,
        members: Vec<Member>,
    },
    /// The node asks for this node's members of the room.
    RosterAsked {
        node: Box<str>,
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
