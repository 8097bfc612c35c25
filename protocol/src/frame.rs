//! `Frame`: one decoded frame, borrowing its topic, headers and payload from the input buffer,
//! and `Fields`, the op-specific fixed fields.

use bytes::BufMut;
use zerocopy::{FromBytes, IntoBytes};

use crate::error_code::ErrorCode;
use crate::flags::{Flags, HelloOptions, RoomFlags};
use crate::header::{
    RawDrain, RawErr, RawHello, RawMsg, RawReq, RawResp, RawRoom, RawSub, RawUnsub, RawWelcome,
};
use crate::headers::Headers;
use crate::op::Op;
use crate::service::ServiceFields;

/// What WELCOME tells a client about the server and its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Welcome {
    /// Protocol version the server will speak.
    pub version: u16,
    /// The shard that owns this connection.
    pub shard: u16,
    /// Longest topic the server accepts.
    pub max_topic_len: u16,
    /// Largest payload the server accepts.
    pub max_payload: u32,
    /// Largest frame the server accepts, length prefix included.
    pub max_frame: u32,
    /// Most subscriptions a connection may hold.
    pub max_subscriptions: u32,
    /// The longest the server stays silent towards the client, in milliseconds (0: no keepalive).
    pub ping_interval_ms: u32,
    /// The server's id for this connection.
    pub client_id: u64,
}

/// The fixed fields the room ops share (PROTOCOL.md §3.11); each op reads them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomFields {
    /// The subscription deliveries go to (JOIN, HISTORY, MEMBER).
    pub sid: u64,
    /// A history's epoch.
    pub epoch: u64,
    /// An offset in a room's history (JOIN, HISTORY) or a presence cursor (PRESENCE).
    pub offset: u64,
    /// Publications that follow, members in a page, or a limit asked for.
    pub count: u32,
    /// Op-specific bits.
    pub flags: RoomFlags,
}

/// The op of a frame together with its fixed fields (PROTOCOL.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// HELLO: protocol version and option bits; credentials travel in the headers block.
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// Option bits.
        options: HelloOptions,
    },
    /// WELCOME: the server's limits and the connection's identity.
    Welcome(Welcome),
    /// PING.
    Ping,
    /// PONG.
    Pong,
    /// OK: acknowledges the op whose `op_id` the frame carries.
    Ok,
    /// ERR: a coded error; the payload is a human-readable UTF-8 message.
    Err {
        /// The code.
        code: ErrorCode,
        /// Milliseconds before a retry can succeed (`RATE_LIMITED`), else 0.
        retry_after_ms: u32,
        /// The request id (`NO_RESPONDERS`, `TIMEOUT`) or sid the error refers to, else 0.
        ref_id: u64,
    },
    /// DRAIN: the server closes the connection after `grace_ms`.
    Drain {
        /// The grace period in milliseconds.
        grace_ms: u32,
    },
    /// PUB: topic, optional headers, payload.
    Pub,
    /// SUB: the topic section holds the pattern, the payload the optional queue group.
    Sub {
        /// The subscription id.
        sid: u64,
    },
    /// UNSUB.
    Unsub {
        /// The subscription id.
        sid: u64,
        /// 0: now; N: after N more deliveries.
        max_msgs: u64,
    },
    /// MSG: a delivery.
    Msg {
        /// The subscription id.
        sid: u64,
        /// Per-subscription delivery number, from 1.
        seq: u64,
        /// Non-zero for a request: the token a RESP must carry.
        reply: u64,
    },
    /// REQ: a request.
    Req {
        /// The requester's id for it.
        request_id: u64,
        /// How long the server waits for a response.
        timeout_ms: u32,
    },
    /// RESP: a response (reply token towards the server, request id towards the requester).
    Resp {
        /// Reply token or request id, by direction.
        id: u64,
    },
    /// REGISTER: register an instance of the service named by the topic, described by the
    /// payload (client), or the instance id it got (server).
    Register(ServiceFields),
    /// HEARTBEAT: an instance is alive, with its health and load.
    Heartbeat(ServiceFields),
    /// DEREGISTER: an instance goes away.
    Deregister(ServiceFields),
    /// DISCOVER: asks for the instances of the services the topic's pattern matches (client),
    /// or carries them (server).
    Discover(ServiceFields),
    /// JOIN: become a member of the room named by the topic (client), or the join's answer
    /// (server).
    Join(RoomFields),
    /// LEAVE: stop being a member of the room named by the topic.
    Leave(RoomFields),
    /// PRESENCE: asks for a page of a room's members (client), or carries it (server).
    Presence(RoomFields),
    /// MEMBER: a member joined or left a room (server only).
    Member(RoomFields),
    /// HISTORY: asks for a room's publications (client), or ends those sent (server).
    History(RoomFields),
    /// STATUS: asks the server for its counters (client → server, empty), or carries them
    /// (server → client, a container map answering the request's `op_id`).
    Status,
}

/// Which topic form a section rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicRule {
    /// The topic section must be empty.
    Absent,
    /// A concrete subject (no wildcards).
    Subject,
    /// A subscription pattern (wildcards allowed).
    Pattern,
}

/// Which sections an op may carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SectionRules {
    pub(crate) topic: TopicRule,
    pub(crate) headers: bool,
    pub(crate) payload: bool,
}

impl Fields {
    /// The op these fields belong to.
    #[inline]
    pub fn op(&self) -> Op {
        match self {
            Fields::Hello { .. } => Op::Hello,
            Fields::Welcome(_) => Op::Welcome,
            Fields::Ping => Op::Ping,
            Fields::Pong => Op::Pong,
            Fields::Ok => Op::Ok,
            Fields::Err { .. } => Op::Err,
            Fields::Drain { .. } => Op::Drain,
            Fields::Pub => Op::Pub,
            Fields::Sub { .. } => Op::Sub,
            Fields::Unsub { .. } => Op::Unsub,
            Fields::Msg { .. } => Op::Msg,
            Fields::Req { .. } => Op::Req,
            Fields::Resp { .. } => Op::Resp,
            Fields::Register(_) => Op::Register,
            Fields::Heartbeat(_) => Op::Heartbeat,
            Fields::Deregister(_) => Op::Deregister,
            Fields::Discover(_) => Op::Discover,
            Fields::Join(_) => Op::Join,
            Fields::Leave(_) => Op::Leave,
            Fields::Presence(_) => Op::Presence,
            Fields::Member(_) => Op::Member,
            Fields::History(_) => Op::History,
            Fields::Status => Op::Status,
        }
    }

    /// Bytes of fixed fields that follow the header for `op`.
    #[inline]
    pub fn wire_len(op: Op) -> usize {
        match op {
            Op::Hello => size_of::<RawHello>(),
            Op::Welcome => size_of::<RawWelcome>(),
            Op::Ping | Op::Pong | Op::Ok | Op::Pub | Op::Status => 0,
            Op::Err => size_of::<RawErr>(),
            Op::Drain => size_of::<RawDrain>(),
            Op::Sub => size_of::<RawSub>(),
            Op::Unsub => size_of::<RawUnsub>(),
            Op::Msg => size_of::<RawMsg>(),
            Op::Req => size_of::<RawReq>(),
            Op::Resp => size_of::<RawResp>(),
            Op::Join | Op::Leave | Op::Presence | Op::Member | Op::History => size_of::<RawRoom>(),
            Op::Register | Op::Heartbeat | Op::Deregister | Op::Discover => {
                size_of::<crate::header::RawService>()
            }
        }
    }

    pub(crate) fn sections(op: Op) -> SectionRules {
        let (topic, headers, payload) = match op {
            Op::Hello | Op::Welcome => (TopicRule::Absent, true, false),
            Op::Ping | Op::Pong | Op::Ok | Op::Drain | Op::Unsub => {
                (TopicRule::Absent, false, false)
            }
            Op::Err => (TopicRule::Absent, false, true),
            Op::Pub | Op::Msg | Op::Req => (TopicRule::Subject, true, true),
            Op::Sub => (TopicRule::Pattern, false, true),
            Op::Resp => (TopicRule::Absent, true, true),
            Op::Status => (TopicRule::Absent, false, true),
            Op::Join | Op::Presence | Op::Member => (TopicRule::Subject, false, true),
            Op::Leave | Op::History => (TopicRule::Subject, false, false),
            Op::Register => (TopicRule::Subject, false, true),
            Op::Heartbeat | Op::Deregister => (TopicRule::Absent, false, false),
            Op::Discover => (TopicRule::Pattern, false, true),
        };
        SectionRules {
            topic,
            headers,
            payload,
        }
    }

    /// Reads the fixed fields of `op` from exactly `bytes` (`wire_len(op)` long).
    #[inline]
    pub(crate) fn read(op: Op, bytes: &[u8]) -> Option<Fields> {
        Some(match op {
            Op::Hello => {
                let raw = RawHello::ref_from_bytes(bytes).ok()?;
                Fields::Hello {
                    version: raw.version.get(),
                    options: HelloOptions(raw.options.get()),
                }
            }
            Op::Welcome => {
                let raw = RawWelcome::ref_from_bytes(bytes).ok()?;
                Fields::Welcome(Welcome {
                    version: raw.version.get(),
                    shard: raw.shard.get(),
                    max_topic_len: raw.max_topic_len.get(),
                    max_payload: raw.max_payload.get(),
                    max_frame: raw.max_frame.get(),
                    max_subscriptions: raw.max_subscriptions.get(),
                    ping_interval_ms: raw.ping_interval_ms.get(),
                    client_id: raw.client_id.get(),
                })
            }
            Op::Ping => Fields::Ping,
            Op::Pong => Fields::Pong,
            Op::Ok => Fields::Ok,
            Op::Pub => Fields::Pub,
            Op::Status => Fields::Status,
            Op::Err => {
                let raw = RawErr::ref_from_bytes(bytes).ok()?;
                Fields::Err {
                    code: ErrorCode(raw.code.get()),
                    retry_after_ms: raw.retry_after_ms.get(),
                    ref_id: raw.ref_id.get(),
                }
            }
            Op::Drain => Fields::Drain {
                grace_ms: RawDrain::ref_from_bytes(bytes).ok()?.grace_ms.get(),
            },
            Op::Sub => Fields::Sub {
                sid: RawSub::ref_from_bytes(bytes).ok()?.sid.get(),
            },
            Op::Unsub => {
                let raw = RawUnsub::ref_from_bytes(bytes).ok()?;
                Fields::Unsub {
                    sid: raw.sid.get(),
                    max_msgs: raw.max_msgs.get(),
                }
            }
            Op::Msg => {
                let raw = RawMsg::ref_from_bytes(bytes).ok()?;
                Fields::Msg {
                    sid: raw.sid.get(),
                    seq: raw.seq.get(),
                    reply: raw.reply.get(),
                }
            }
            Op::Req => {
                let raw = RawReq::ref_from_bytes(bytes).ok()?;
                Fields::Req {
                    request_id: raw.request_id.get(),
                    timeout_ms: raw.timeout_ms.get(),
                }
            }
            Op::Resp => Fields::Resp {
                id: RawResp::ref_from_bytes(bytes).ok()?.id.get(),
            },
            Op::Register => Fields::Register(ServiceFields::read(bytes)?),
            Op::Heartbeat => Fields::Heartbeat(ServiceFields::read(bytes)?),
            Op::Deregister => Fields::Deregister(ServiceFields::read(bytes)?),
            Op::Discover => Fields::Discover(ServiceFields::read(bytes)?),
            Op::Join => Fields::Join(RoomFields::read(bytes)?),
            Op::Leave => Fields::Leave(RoomFields::read(bytes)?),
            Op::Presence => Fields::Presence(RoomFields::read(bytes)?),
            Op::Member => Fields::Member(RoomFields::read(bytes)?),
            Op::History => Fields::History(RoomFields::read(bytes)?),
        })
    }

    /// Writes the fixed fields in wire form.
    pub(crate) fn write<B: BufMut>(&self, out: &mut B) {
        match *self {
            Fields::Hello { version, options } => out.put_slice(
                RawHello {
                    version: version.into(),
                    options: options.0.into(),
                }
                .as_bytes(),
            ),
            Fields::Welcome(w) => out.put_slice(
                RawWelcome {
                    version: w.version.into(),
                    shard: w.shard.into(),
                    max_topic_len: w.max_topic_len.into(),
                    reserved: 0.into(),
                    max_payload: w.max_payload.into(),
                    max_frame: w.max_frame.into(),
                    max_subscriptions: w.max_subscriptions.into(),
                    ping_interval_ms: w.ping_interval_ms.into(),
                    client_id: w.client_id.into(),
                }
                .as_bytes(),
            ),
            Fields::Ping | Fields::Pong | Fields::Ok | Fields::Pub | Fields::Status => {}
            Fields::Err {
                code,
                retry_after_ms,
                ref_id,
            } => out.put_slice(
                RawErr {
                    code: code.0.into(),
                    reserved: 0.into(),
                    retry_after_ms: retry_after_ms.into(),
                    ref_id: ref_id.into(),
                }
                .as_bytes(),
            ),
            Fields::Drain { grace_ms } => out.put_slice(
                RawDrain {
                    grace_ms: grace_ms.into(),
                }
                .as_bytes(),
            ),
            Fields::Sub { sid } => out.put_slice(RawSub { sid: sid.into() }.as_bytes()),
            Fields::Unsub { sid, max_msgs } => out.put_slice(
                RawUnsub {
                    sid: sid.into(),
                    max_msgs: max_msgs.into(),
                }
                .as_bytes(),
            ),
            Fields::Msg { sid, seq, reply } => out.put_slice(
                RawMsg {
                    sid: sid.into(),
                    seq: seq.into(),
                    reply: reply.into(),
                }
                .as_bytes(),
            ),
            Fields::Req {
                request_id,
                timeout_ms,
            } => out.put_slice(
                RawReq {
                    request_id: request_id.into(),
                    timeout_ms: timeout_ms.into(),
                    reserved: 0.into(),
                }
                .as_bytes(),
            ),
            Fields::Resp { id } => out.put_slice(RawResp { id: id.into() }.as_bytes()),
            Fields::Join(room)
            | Fields::Leave(room)
            | Fields::Presence(room)
            | Fields::Member(room)
            | Fields::History(room) => out.put_slice(room.raw().as_bytes()),
            Fields::Register(service)
            | Fields::Heartbeat(service)
            | Fields::Deregister(service)
            | Fields::Discover(service) => out.put_slice(service.raw().as_bytes()),
        }
    }
}

impl RoomFields {
    fn read(bytes: &[u8]) -> Option<RoomFields> {
        let raw = RawRoom::ref_from_bytes(bytes).ok()?;
        Some(RoomFields {
            sid: raw.sid.get(),
            epoch: raw.epoch.get(),
            offset: raw.offset.get(),
            count: raw.count.get(),
            flags: RoomFlags(raw.flags.get()),
        })
    }

    fn raw(&self) -> RawRoom {
        RawRoom {
            sid: self.sid.into(),
            epoch: self.epoch.into(),
            offset: self.offset.into(),
            count: self.count.into(),
            flags: self.flags.0.into(),
        }
    }
}

/// One frame. Decoded frames borrow `topic`, `headers` and `payload` from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The op and its fixed fields.
    pub fields: Fields,
    /// Frame flags. [`Flags::HEADERS`] is derived from `headers` when encoding.
    pub flags: Flags,
    /// Client-chosen correlation id echoed by OK/ERR; 0 for none.
    pub op_id: u32,
    /// The topic (PUB, MSG, REQ) or pattern (SUB); empty for other ops. Always printable
    /// ASCII once decoded; [`Frame::topic_str`] gives it as text.
    pub topic: &'a [u8],
    /// The headers block.
    pub headers: Headers<'a>,
    /// The payload (for SUB: the queue group; for ERR: the message).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A frame with these fields and empty sections.
    pub fn new(fields: Fields) -> Frame<'a> {
        Frame {
            fields,
            flags: Flags::empty(),
            op_id: 0,
            topic: &[],
            headers: Headers::EMPTY,
            payload: &[],
        }
    }

    /// This frame's op.
    pub fn op(&self) -> Op {
        self.fields.op()
    }

    /// The same frame with a topic.
    #[must_use]
    pub fn with_topic(mut self, topic: &'a str) -> Frame<'a> {
        self.topic = topic.as_bytes();
        self
    }

    /// The topic as text. Decoded topics are printable ASCII, so this only fails (giving `""`)
    /// for a frame built by hand with non-UTF-8 topic bytes.
    pub fn topic_str(&self) -> &'a str {
        std::str::from_utf8(self.topic).unwrap_or_default()
    }

    /// The same frame with a payload.
    #[must_use]
    pub fn with_payload(mut self, payload: &'a [u8]) -> Frame<'a> {
        self.payload = payload;
        self
    }

    /// The same frame with a headers block; [`Flags::HEADERS`] follows it.
    #[must_use]
    pub fn with_headers(mut self, headers: Headers<'a>) -> Frame<'a> {
        self.headers = headers;
        self.flags = if headers.is_empty() {
            self.flags.without(Flags::HEADERS)
        } else {
            self.flags.with(Flags::HEADERS)
        };
        self
    }

    /// The same frame with an op id.
    #[must_use]
    pub fn with_op_id(mut self, op_id: u32) -> Frame<'a> {
        self.op_id = op_id;
        self
    }

    /// The same frame with flags.
    #[must_use]
    pub fn with_flags(mut self, flags: Flags) -> Frame<'a> {
        self.flags = flags;
        self
    }
}
