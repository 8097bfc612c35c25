//! The op byte: every frame kind of protocol v1 and the ranges reserved for later versions.

use crate::error::ProtocolError;

/// What a frame asks for or reports. The numbers are the wire values (PROTOCOL.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// Client → server: first frame of a connection (version, options, credentials).
    Hello = 0x01,
    /// Server → client: answer to HELLO (server id, limits, the client's id and shard).
    Welcome = 0x02,
    /// Either way: liveness probe.
    Ping = 0x03,
    /// Either way: answer to PING.
    Pong = 0x04,
    /// Server → client: acknowledges the op whose `op_id` it carries.
    Ok = 0x05,
    /// Server → client: an error with a stable code (PROTOCOL.md §5).
    Err = 0x06,
    /// Server → client: the server is going away; finish up within the grace period.
    Drain = 0x07,
    /// Client → server: publish a payload on a topic.
    Pub = 0x10,
    /// Client → server: subscribe to a pattern, optionally in a queue group.
    Sub = 0x11,
    /// Client → server: end a subscription now or after N more messages.
    Unsub = 0x12,
    /// Server → client: a delivery to one subscription.
    Msg = 0x13,
    /// Client → server: a request to one responder, with a request id and a timeout.
    Req = 0x14,
    /// Responder → server (carries the reply token), server → requester (carries the request id).
    Resp = 0x15,
    /// Client → server: register a service instance; server → client: its instance id.
    Register = 0x20,
    /// Client → server: an instance is alive, with its health and load.
    Heartbeat = 0x21,
    /// Client → server: an instance goes away.
    Deregister = 0x22,
    /// Client → server: asks for a service's instances; server → client: the list.
    Discover = 0x23,
    /// Client → server: join a room; server → client: the join's answer (position, recovery).
    Join = 0x30,
    /// Client → server: leave a room.
    Leave = 0x31,
    /// Client → server: asks who is in a room; server → client: a page of members and counts.
    Presence = 0x32,
    /// Server → client: a member joined or left a room the connection is in.
    Member = 0x33,
    /// Client → server: asks for a room's history; server → client: ends the publications sent.
    History = 0x40,
    /// Client → server: asks for the server's counters; server → client: carries them.
    Status = 0x50,
}

impl Op {
    /// Every op of v1, in wire order.
    pub const ALL: [Op; 23] = [
        Op::Hello,
        Op::Welcome,
        Op::Ping,
        Op::Pong,
        Op::Ok,
        Op::Err,
        Op::Drain,
        Op::Pub,
        Op::Sub,
        Op::Unsub,
        Op::Msg,
        Op::Req,
        Op::Resp,
        Op::Register,
        Op::Heartbeat,
        Op::Deregister,
        Op::Discover,
        Op::Join,
        Op::Leave,
        Op::Presence,
        Op::Member,
        Op::History,
        Op::Status,
    ];

    /// Whether only a server sends it (WELCOME, OK, ERR, DRAIN, MSG, MEMBER): a server answers one
    /// from a client `UNKNOWN_OP`, whatever its body, and keeps the connection.
    pub fn is_server_to_client(self) -> bool {
        matches!(
            self,
            Op::Welcome | Op::Ok | Op::Err | Op::Drain | Op::Msg | Op::Member
        )
    }

    /// Reads an op byte.
    ///
    /// # Errors
    /// [`ProtocolError::ReservedOp`] for a number kept for a later version,
    /// [`ProtocolError::UnknownOp`] for anything else that is not a v1 op.
    #[inline]
    pub fn from_u8(byte: u8) -> Result<Op, ProtocolError> {
        Ok(match byte {
            0x01 => Op::Hello,
            0x02 => Op::Welcome,
            0x03 => Op::Ping,
            0x04 => Op::Pong,
            0x05 => Op::Ok,
            0x06 => Op::Err,
            0x07 => Op::Drain,
            0x10 => Op::Pub,
            0x11 => Op::Sub,
            0x12 => Op::Unsub,
            0x13 => Op::Msg,
            0x14 => Op::Req,
            0x15 => Op::Resp,
            0x20 => Op::Register,
            0x21 => Op::Heartbeat,
            0x22 => Op::Deregister,
            0x23 => Op::Discover,
            0x30 => Op::Join,
            0x31 => Op::Leave,
            0x32 => Op::Presence,
            0x33 => Op::Member,
            0x40 => Op::History,
            0x50 => Op::Status,
            other if reserved_range(other).is_some() => {
                return Err(ProtocolError::ReservedOp(other));
            }
            other => return Err(ProtocolError::UnknownOp(other)),
        })
    }

    /// The op's name as PROTOCOL.md spells it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Hello => "HELLO",
            Op::Welcome => "WELCOME",
            Op::Ping => "PING",
            Op::Pong => "PONG",
            Op::Ok => "OK",
            Op::Err => "ERR",
            Op::Drain => "DRAIN",
            Op::Pub => "PUB",
            Op::Sub => "SUB",
            Op::Unsub => "UNSUB",
            Op::Msg => "MSG",
            Op::Req => "REQ",
            Op::Resp => "RESP",
            Op::Register => "REGISTER",
            Op::Heartbeat => "HEARTBEAT",
            Op::Deregister => "DEREGISTER",
            Op::Discover => "DISCOVER",
            Op::Join => "JOIN",
            Op::Leave => "LEAVE",
            Op::Presence => "PRESENCE",
            Op::Member => "MEMBER",
            Op::History => "HISTORY",
            Op::Status => "STATUS",
        }
    }
}

/// The capability an op number is kept for, when it lies in a reserved range.
///
/// Servers answer these with `UNKNOWN_OP` until the version that defines them.
pub fn reserved_range(byte: u8) -> Option<&'static str> {
    match byte {
        0x08..=0x0F => Some("connection control"),
        0x16..=0x1F => Some("pub/sub extensions"),
        0x24..=0x2F => Some("services"),
        0x34..=0x3F => Some("rooms"),
        0x41..=0x4F => Some("history queries"),
        0x51..=0x5F => Some("commands: kick, server info"),
        _ => None,
    }
}
