//! The cluster's byte layouts: the records a shard addresses to one node (responses, node asks
//! and their answers; its interest, publications and requests travel as mesh records on its
//! cluster link) and the batches one node publishes to another's channel (after a one-byte
//! version and the origin node and shard). Every length is checked when read: a batch from Redis is never trusted to be
//! well formed.

const MESSAGE: u8 = 2;
const REQUEST: u8 = 3;
const RESPONSE: u8 = 4;
const NODE_ASK: u8 = 5;
const NODE_ANSWER: u8 = 6;
const ROOM_MEMBER: u8 = 7;
const ROOM_ROSTER: u8 = 8;

/// A node ask's kind: deliver a push to a user's connections, answer how many.
pub(crate) const ASK_PUSH_USER: u8 = 1;
// Kind 2 asked a node how many members a room had: rooms share their members now.
/// A node ask's kind: an admin listing of the node (`listing_body`).
pub(crate) const ASK_LISTING: u8 = 3;
/// A node ask's kind: the node's members of the room (the body), answered by a `RoomRoster`.
pub(crate) const ASK_ROOM_ROSTER: u8 = 4;
/// A node ask's kind: a server-side membership change (`membership_body`), answered with how
/// many connections it changed.
pub(crate) const ASK_ROOM_MEMBERSHIP: u8 = 5;

/// A server-side membership change as a node ask's body: join or remove, the user, the room,
/// then the member info.
pub(crate) fn membership_body(join: bool, user: &str, room: &[u8], info: &[u8]) -> Vec<u8> {
    let mut body = vec![u8::from(join)];
    put_len16(&mut body, user.len());
    put_len16(&mut body, room.len());
    body.extend_from_slice(user.as_bytes());
    body.extend_from_slice(room);
    body.extend_from_slice(info);
    body
}

/// A membership change read back: join, user, room, info.
pub(crate) fn read_membership_body(body: &[u8]) -> Option<(bool, &str, &[u8], &[u8])> {
    let mut records = Records::new(body);
    let join = records.u8()? == 1;
    let (user_len, room_len) = (records.len16()?, records.len16()?);
    let user = std::str::from_utf8(Records::take(&mut records, user_len)?).ok()?;
    let room = Records::take(&mut records, room_len)?;
    Some((join, user, room, records.rest))
}

/// What a listing ask asks: the node's connections (1), topics (2), or to kick connection
/// `id` (3) if the ask names this node.
pub(crate) fn listing_body(kind: u8, id: u64, node: &str) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(&id.to_le_bytes());
    body.extend_from_slice(node.as_bytes());
    body
}

/// A listing ask read back: kind, id, node.
pub(crate) fn read_listing_body(body: &[u8]) -> Option<(u8, u64, &[u8])> {
    let (&kind, rest) = body.split_first()?;
    let id = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    Some((kind, id, rest.get(8..)?))
}
/// The first byte of a node-to-node batch.
pub(crate) const BATCH_VERSION: u8 = 1;

/// One record read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Message(Message<'a>),
    Request(Request<'a>),
    Response(Response<'a>),
    /// Something every other node is asked (`id` names it at the origin shard); `body`'s
    /// layout is the kind's.
    NodeAsk {
        id: u64,
        kind: u8,
        body: &'a [u8],
    },
    /// A node's answer to a node ask: a JSON array, the origin's parts are added up. `node`
    /// names the origin in a shard's records and is empty in a batch.
    NodeAnswer {
        node: &'a [u8],
        id: u64,
        body: &'a [u8],
    },
    /// A member of the sending node joined or left `room` (for every other node).
    RoomMember {
        joined: bool,
        room: &'a [u8],
        member: Member<'a>,
    },
    /// Every member the sending node has in `room` (`members`: read with `roster_members`),
    /// for `node` (named in a shard's records, empty in a batch).
    RoomRoster {
        node: &'a [u8],
        room: &'a [u8],
        members: &'a [u8],
    },
}

/// A room member as nodes tell each other: its connection on its node, who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    pub(crate) conn: u64,
    pub(crate) user: &'a [u8],
    pub(crate) name: &'a [u8],
    pub(crate) info: &'a [u8],
}

fn put_member(out: &mut Vec<u8>, member: &Member<'_>) {
    out.extend_from_slice(&member.conn.to_le_bytes());
    put_len16(out, member.user.len());
    put_len16(out, member.name.len());
    put_len32(out, member.info.len());
    out.extend_from_slice(member.user);
    out.extend_from_slice(member.name);
    out.extend_from_slice(member.info);
}

/// Appends a member's join or leave.
pub(crate) fn put_room_member(out: &mut Vec<u8>, joined: bool, room: &[u8], member: &Member<'_>) {
    out.push(ROOM_MEMBER);
    out.push(u8::from(joined));
    put_len16(out, room.len());
    out.extend_from_slice(room);
    put_member(out, member);
}

/// Appends a room's roster for `node`.
pub(crate) fn put_room_roster<'m>(
    out: &mut Vec<u8>,
    node: &[u8],
    room: &[u8],
    members: impl Iterator<Item = Member<'m>>,
) {
    out.push(ROOM_ROSTER);
    put_len16(out, node.len());
    put_len16(out, room.len());
    out.extend_from_slice(node);
    out.extend_from_slice(room);
    let at = out.len();
    put_len32(out, 0);
    for member in members {
        put_member(out, &member);
    }
    let len = (out.len() - at - 4).min(u32::MAX as usize) as u32;
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
}

/// The members of a `RoomRoster`, until the bytes end or one is cut.
pub(crate) fn roster_members(bytes: &[u8]) -> impl Iterator<Item = Member<'_>> + '_ {
    let mut records = Records::new(bytes);
    std::iter::from_fn(move || records.read_one(Records::member))
}

/// A request crossing nodes: `token` is the origin's reply token, meaningful only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) flags: u8,
    pub(crate) token: u64,
    pub(crate) timeout_ms: u32,
}

/// A response (or, with a non-zero `code`, an ERR such as `NO_RESPONDERS`) on its way back
/// to the node that issued `token`; `node` names it in a shard's records and is empty in a
/// node-to-node batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response<'a> {
    pub(crate) node: &'a [u8],
    pub(crate) token: u64,
    pub(crate) code: u16,
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) flags: u8,
}

/// A publication crossing nodes: for the receiver's plain subscribers if `plain`, and one
/// member of each group in `groups` (space-separated names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) flags: u8,
    pub(crate) plain: bool,
    pub(crate) groups: &'a [u8],
}

impl<'a> Message<'a> {
    /// A mesh batch's delivery (`msg` with its `plain` and `groups`) as a publication.
    pub(crate) fn in_batch(
        batch: &'a crate::mesh::batch::Batch,
        msg: &crate::mesh::batch::MessageSpans,
        plain: bool,
        groups: crate::mesh::batch::Span,
    ) -> Message<'a> {
        Message {
            subject: batch.get(msg.subject),
            headers: batch.get(msg.headers),
            payload: batch.get(msg.payload),
            flags: msg.flags,
            plain,
            groups: batch.get(groups),
        }
    }
}

/// Appends a publication.
pub(crate) fn put_message(out: &mut Vec<u8>, message: &Message<'_>) {
    out.push(MESSAGE);
    out.push(message.flags);
    out.push(u8::from(message.plain));
    put_len16(out, message.subject.len());
    put_len32(out, message.headers.len());
    put_len32(out, message.payload.len());
    put_len16(out, message.groups.len());
    out.extend_from_slice(message.subject);
    out.extend_from_slice(message.headers);
    out.extend_from_slice(message.payload);
    out.extend_from_slice(message.groups);
}

/// Appends a request.
pub(crate) fn put_request(out: &mut Vec<u8>, request: &Request<'_>) {
    out.push(REQUEST);
    out.push(request.flags);
    out.extend_from_slice(&request.token.to_le_bytes());
    out.extend_from_slice(&request.timeout_ms.to_le_bytes());
    put_len16(out, request.subject.len());
    put_len32(out, request.headers.len());
    put_len32(out, request.payload.len());
    out.extend_from_slice(request.subject);
    out.extend_from_slice(request.headers);
    out.extend_from_slice(request.payload);
}

/// Appends a response.
pub(crate) fn put_response(out: &mut Vec<u8>, response: &Response<'_>) {
    out.push(RESPONSE);
    out.push(response.flags);
    out.extend_from_slice(&response.token.to_le_bytes());
    out.extend_from_slice(&response.code.to_le_bytes());
    put_len16(out, response.node.len());
    put_len32(out, response.headers.len());
    put_len32(out, response.payload.len());
    out.extend_from_slice(response.node);
    out.extend_from_slice(response.headers);
    out.extend_from_slice(response.payload);
}

/// Appends a node ask.
pub(crate) fn put_node_ask(out: &mut Vec<u8>, id: u64, kind: u8, body: &[u8]) {
    out.push(NODE_ASK);
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    put_len32(out, body.len());
    out.extend_from_slice(body);
}

/// Appends a node's answer.
pub(crate) fn put_node_answer(out: &mut Vec<u8>, node: &[u8], id: u64, body: &[u8]) {
    out.push(NODE_ANSWER);
    out.extend_from_slice(&id.to_le_bytes());
    put_len16(out, node.len());
    put_len32(out, body.len());
    out.extend_from_slice(node);
    out.extend_from_slice(body);
}

/// A push to a user as a node ask's body: the user, then the message.
pub(crate) fn push_body(user: &str, message: &Message<'_>) -> Vec<u8> {
    let mut body = Vec::new();
    put_len16(&mut body, user.len());
    body.extend_from_slice(user.as_bytes());
    put_message(&mut body, message);
    body
}

/// Reads a push body back.
pub(crate) fn read_push_body(body: &[u8]) -> Option<(&str, Message<'_>)> {
    let mut records = Records::new(body);
    let user_len = records.len16()?;
    let user = std::str::from_utf8(Records::take(&mut records, user_len)?).ok()?;
    match records.next()? {
        Record::Message(message) => Some((user, message)),
        _ => None,
    }
}

// Subjects, queue names and group lists are bounded far below 64 KiB by the protocol's limits,
// headers and payloads below 4 GiB: the casts keep the values.
fn put_len16(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_le_bytes());
}

fn put_len32(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len.min(u32::MAX as usize) as u32).to_le_bytes());
}

/// Starts a node-to-node batch: the version, then the origin (`node` name, shard).
pub(crate) fn put_batch_header(out: &mut Vec<u8>, node: &str, shard: u16) {
    out.push(BATCH_VERSION);
    out.push(node.len().min(255) as u8);
    out.extend_from_slice(
        node.as_bytes()
            .get(..node.len().min(255))
            .unwrap_or_default(),
    );
    out.extend_from_slice(&shard.to_le_bytes());
}

/// Where a batch came from: the node's name and its shard, as the header's bytes (the name,
/// then two bytes of shard).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub(crate) bytes: &'a [u8],
    name_len: usize,
}

impl<'a> Origin<'a> {
    /// The node's name.
    pub(crate) fn node(&self) -> &'a [u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }
}

/// A batch's origin and its records; `None`: not a batch of this version.
pub(crate) fn batch_origin(batch: &[u8]) -> Option<(Origin<'_>, Records<'_>)> {
    let (&version, rest) = batch.split_first()?;
    if version != BATCH_VERSION {
        return None;
    }
    let (&name_len, rest) = rest.split_first()?;
    let name_len = usize::from(name_len);
    let bytes = rest.get(..name_len + 2)?;
    let origin = Origin { bytes, name_len };
    Some((origin, Records::new(rest.get(name_len + 2..)?)))
}

/// Reads records until the buffer ends; stops (returning `None`) at the first malformed one.
pub(crate) struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Records<'a> {
        Records { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn len16(&mut self) -> Option<usize> {
        let bytes = self.take(2)?;
        Some(usize::from(u16::from_le_bytes(bytes.try_into().ok()?)))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn len32(&mut self) -> Option<usize> {
        let bytes = self.take(4)?;
        usize::try_from(u32::from_le_bytes(bytes.try_into().ok()?)).ok()
    }

    fn member(&mut self) -> Option<Member<'a>> {
        let conn = self.u64()?;
        let (user_len, name_len, info_len) = (self.len16()?, self.len16()?, self.len32()?);
        Some(Member {
            conn,
            user: self.take(user_len)?,
            name: self.take(name_len)?,
            info: self.take(info_len)?,
        })
    }

    fn record(&mut self) -> Option<Record<'a>> {
        match self.u8()? {
            MESSAGE => {
                let flags = self.u8()?;
                let plain = self.u8()? == 1;
                let (subject_len, headers_len) = (self.len16()?, self.len32()?);
                let (payload_len, groups_len) = (self.len32()?, self.len16()?);
                Some(Record::Message(Message {
                    subject: self.take(subject_len)?,
                    headers: self.take(headers_len)?,
                    payload: self.take(payload_len)?,
                    flags,
                    plain,
                    groups: self.take(groups_len)?,
                }))
            }
            REQUEST => {
                let flags = self.u8()?;
                let token = self.u64()?;
                let timeout_ms = u32::try_from(self.len32()?).ok()?;
                let (subject_len, headers_len, payload_len) =
                    (self.len16()?, self.len32()?, self.len32()?);
                Some(Record::Request(Request {
                    subject: self.take(subject_len)?,
                    headers: self.take(headers_len)?,
                    payload: self.take(payload_len)?,
                    flags,
                    token,
                    timeout_ms,
                }))
            }
            RESPONSE => {
                let flags = self.u8()?;
                let token = self.u64()?;
                let code = u16::try_from(self.len16()?).ok()?;
                let (node_len, headers_len, payload_len) =
                    (self.len16()?, self.len32()?, self.len32()?);
                Some(Record::Response(Response {
                    node: self.take(node_len)?,
                    token,
                    code,
                    headers: self.take(headers_len)?,
                    payload: self.take(payload_len)?,
                    flags,
                }))
            }
            NODE_ASK => {
                let kind = self.u8()?;
                let id = self.u64()?;
                let len = self.len32()?;
                Some(Record::NodeAsk {
                    id,
                    kind,
                    body: self.take(len)?,
                })
            }
            NODE_ANSWER => {
                let id = self.u64()?;
                let (node_len, len) = (self.len16()?, self.len32()?);
                Some(Record::NodeAnswer {
                    node: self.take(node_len)?,
                    id,
                    body: self.take(len)?,
                })
            }
            ROOM_MEMBER => {
                let joined = self.u8()? == 1;
                let room_len = self.len16()?;
                let room = self.take(room_len)?;
                Some(Record::RoomMember {
                    joined,
                    room,
                    member: self.member()?,
                })
            }
            ROOM_ROSTER => {
                let (node_len, room_len) = (self.len16()?, self.len16()?);
                let node = self.take(node_len)?;
                let room = self.take(room_len)?;
                let len = self.len32()?;
                Some(Record::RoomRoster {
                    node,
                    room,
                    members: self.take(len)?,
                })
            }
            _ => None,
        }
    }
}

impl<'a> Records<'a> {
    /// The next item `read` takes, until the bytes end; a malformed one ends the reading.
    fn read_one<T>(&mut self, read: impl FnOnce(&mut Records<'a>) -> Option<T>) -> Option<T> {
        if self.rest.is_empty() {
            return None;
        }
        let item = read(self);
        if item.is_none() {
            self.rest = &[];
        }
        item
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.read_one(Records::record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_and_a_cut_one_ends_the_reading() {
        let mut out = Vec::new();
        let message = Message {
            subject: b"a.b",
            headers: b"h",
            payload: b"payload",
            flags: 3,
            plain: true,
            groups: b"workers",
        };
        put_message(&mut out, &message);
        let request = Request {
            subject: b"svc.echo",
            headers: b"",
            payload: b"ping",
            flags: 1,
            token: u64::MAX - 3,
            timeout_ms: 5_000,
        };
        put_request(&mut out, &request);
        let response = Response {
            node: b"east",
            token: 42,
            code: 503,
            headers: b"hh",
            payload: b"",
            flags: 0,
        };
        put_response(&mut out, &response);
        let member = Member {
            conn: 7 << 48 | 9,
            user: b"ann",
            name: b"phone",
            info: b"\x01",
        };
        put_room_member(&mut out, true, b"chat.lobby", &member);
        let mut roster = Vec::new();
        put_room_roster(&mut roster, b"", b"r", [member, member].into_iter());
        out.extend_from_slice(&roster);
        let read: Vec<Record<'_>> = Records::new(&out).collect();
        let Some(Record::RoomRoster { members, .. }) = read.last() else {
            panic!("{read:?}");
        };
        assert_eq!(
            roster_members(members).collect::<Vec<_>>(),
            vec![member, member]
        );
        assert_eq!(
            read[..4],
            vec![
                Record::Message(message),
                Record::Request(request),
                Record::Response(response),
                Record::RoomMember {
                    joined: true,
                    room: b"chat.lobby",
                    member
                },
            ]
        );
        for cut in 0..out.len() {
            // Never a panic, never a whole record past the cut.
            let count = Records::new(&out[..cut]).count();
            assert!(count <= 4, "{cut}");
        }
        assert_eq!(Records::new(&[9, 9, 9]).count(), 0);
    }
}
