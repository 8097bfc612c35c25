//! `Batch`: what one shard sends another in one channel item. Records hold spans into one byte
//! buffer, so a poll cycle's worth of forwarded messages costs two allocations however many
//! messages it carries (ARCHITECTURE.md, "The dependencies as measured": one `Arc` per item tops out near 4 M/s between two
//! cores, batches of plain buffers move 150 M+/s). A payload is copied into the batch once per
//! destination shard and shared there by every subscriber.

use crate::rooms::asks::{Answer, Ask, MemberEvent};
use crate::routing::InterestChange;
use crate::services::change::ServiceChange;
use crate::shard::listing::Listing;

/// A range of a batch's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// The sections of a message carried in a batch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MessageSpans {
    pub(crate) subject: Span,
    pub(crate) headers: Span,
    pub(crate) payload: Span,
    /// The publisher's frame flags (CONTAINER, LZ4); HEADERS is recomputed per subscriber.
    pub(crate) flags: u8,
}

/// Whom a replayed publication is for: connection `conn`'s subscription `sid`; `seq` 0 counts
/// it as the subscription's next delivery, else it is the MSG's `seq` (a HISTORY answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayTo {
    pub(crate) conn: u64,
    pub(crate) sid: u64,
    pub(crate) seq: u32,
}

impl ReplayTo {
    const LEN: usize = 20;

    pub(crate) fn to_bytes(self) -> [u8; ReplayTo::LEN] {
        let mut out = [0u8; ReplayTo::LEN];
        let (conn, rest) = out.split_at_mut(8);
        let (sid, seq) = rest.split_at_mut(8);
        conn.copy_from_slice(&self.conn.to_le_bytes());
        sid.copy_from_slice(&self.sid.to_le_bytes());
        seq.copy_from_slice(&self.seq.to_le_bytes());
        out
    }

    /// Reads what `to_bytes` wrote (`None` for a span that is not one).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<ReplayTo> {
        let (conn, rest) = bytes.split_first_chunk::<8>()?;
        let (sid, rest) = rest.split_first_chunk::<8>()?;
        let seq = rest.first_chunk::<4>()?;
        Some(ReplayTo {
            conn: u64::from_le_bytes(*conn),
            sid: u64::from_le_bytes(*sid),
            seq: u32::from_le_bytes(*seq),
        })
    }
}

/// One instruction for the receiving shard.
#[derive(Debug)]
pub(crate) enum Record {
    /// Deliver a published message: to every local plain subscriber of its subject when
    /// `plain`, and to one local member of each queue group named in `groups` (space-separated:
    /// a space never occurs in a group name).
    Deliver {
        msg: MessageSpans,
        plain: bool,
        groups: Span,
    },
    /// Deliver a request to exactly one local subscriber of its subject, with reply `token`.
    /// If none is left, answer `NO_RESPONDERS` back to the token's shard.
    /// `timeout_ms` is the request's (capped) timeout, so the receiving shard forgets the
    /// token's binding to its responder when the request is over.
    Request {
        msg: MessageSpans,
        token: u64,
        timeout_ms: u32,
    },
    /// The response to pending request `key` of the receiving shard; `code` non-zero is an ERR
    /// code to send instead (`NO_RESPONDERS` when the chosen responder was gone).
    Response {
        key: u64,
        msg: MessageSpans,
        code: u16,
    },
    /// Another shard's interest changed.
    Interest(InterestChange),
    /// Answer with `BarrierAck` carrying the same values: every record sent before it has been
    /// applied (how PONG promises that a connection's subscriptions reached every shard).
    Barrier { conn: u64, ping: u64 },
    /// The answer to a `Barrier`.
    BarrierAck { conn: u64, ping: u64 },
    /// The request with reply `token` ended without an answer (its requester went away):
    /// forget whom it was delivered to.
    ReplyEnded { token: u64 },
    /// Send back this shard's part of `listing` as a `ListPart` with the same `id`.
    List { id: u64, listing: Listing },
    /// One shard's part of listing `id`: a JSON array.
    ListPart { id: u64, part: Span },
    /// A connection moving to this shard (`shard/moving.rs`).
    Arrival(Box<crate::shard::moving::Arrival>),
    /// To a room's home: a member's shard asks (join, leave, presence, history).
    RoomAsk(Box<Ask>),
    /// From a room's home: the answer to an ask.
    RoomAnswer(Box<Answer>),
    /// From a room's home: a member joined or left.
    RoomMember(Box<MemberEvent>),
    /// To a room's home: a publication to a room that keeps publications, to be stamped and
    /// fanned out from there.
    RoomPublish { msg: MessageSpans },
    /// To a room's home: another node's stamped publication to a room whose history Redis
    /// keeps, to be delivered here in the room's order (as `Deliver` would).
    RoomArrived {
        msg: MessageSpans,
        plain: bool,
        groups: Span,
    },
    /// Deliver a push to this shard's connections of `user` (MSG sid 0) and answer how many
    /// with a `ListPart` for gathering `id`.
    UserPush {
        id: u64,
        user: Span,
        msg: MessageSpans,
    },
    /// Join (`join`) this shard's connections of `user` to `room`, or take them out, and answer
    /// how many with a `ListPart` for gathering `id`.
    MembersChange {
        id: u64,
        user: Span,
        room: Span,
        info: Span,
        join: bool,
    },
    /// From a room's home: a kept publication for a subscription of a connection (recovered,
    /// retained or asked for by HISTORY). `to` holds [`ReplayTo`] in the batch's bytes, so this
    /// record is no larger than a delivery's: every record of a batch pays for the largest.
    RoomReplay { to: Span, msg: MessageSpans },
    /// Deliver a publication of system events, as `Deliver` does, to the subscribers whose
    /// identity may see them.
    Event {
        msg: MessageSpans,
        plain: bool,
        groups: Span,
    },
    /// From an instance's shard: the registry changed (`services/change.rs`).
    Service(Box<ServiceChange>),
    /// A request for a service instance's endpoint subscription; `to` holds its
    /// `ServiceTo` (connection, sid, reply token, timeout) in the batch's bytes.
    ServiceRequest { to: Span, msg: MessageSpans },
    /// Back to a request's origin: its instance was gone, try another (pending request `key`).
    ServiceBounce { key: u64, msg: MessageSpans },
    /// To a service's home: request `key` of the sending shard asks its gate for a slot.
    ServiceAdmit { key: u64, service: Span },
    /// From a service's home: request `key` was admitted, or refused (retry after).
    ServiceVerdict {
        key: u64,
        admitted: bool,
        retry_after_ms: u32,
    },
    /// To a service's home: a request holding a slot of `service` ended.
    ServiceRelease { service: Span },
}

/// Records and the bytes they point into.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    records: Vec<Record>,
}

impl Batch {
    /// Copies `bytes` in and returns where they are.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Span {
        // A batch holds at most a few max-size frames before the link is congested and readers
        // stop (mesh::link), far below 4 GiB, so the u32 offsets cannot wrap.
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }

    /// Copies `words` in, separated by single spaces, as one span.
    pub(crate) fn put_words<'a>(&mut self, words: impl IntoIterator<Item = &'a [u8]>) -> Span {
        let start = self.bytes.len();
        for (i, word) in words.into_iter().enumerate() {
            if i > 0 {
                self.bytes.push(b' ');
            }
            self.bytes.extend_from_slice(word);
        }
        Span {
            start: start as u32,
            len: (self.bytes.len() - start) as u32,
        }
    }

    /// Copies a message's sections in.
    pub(crate) fn put_message(
        &mut self,
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) -> MessageSpans {
        MessageSpans {
            subject: self.put(subject),
            headers: self.put(headers),
            payload: self.put(payload),
            flags,
        }
    }

    pub(crate) fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    /// The bytes a span points at (empty if the span is not this batch's).
    pub(crate) fn get(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.bytes
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// Empties the batch, keeping its buffers for reuse.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_records_are_no_larger_than_a_request() {
        // A batch is a Vec of records: the largest variant sets every record's size.
        assert!(size_of::<Record>() <= 48, "{}", size_of::<Record>());
    }

    #[test]
    fn replay_targets_round_trip() {
        let to = ReplayTo {
            conn: (1 << 48) | 7,
            sid: 1 << 52,
            seq: 9,
        };
        assert_eq!(ReplayTo::from_bytes(&to.to_bytes()), Some(to));
        assert_eq!(ReplayTo::from_bytes(&[0; 19]), None);
    }
}
