//! Back on a member's shard: what a room's home sent for this shard's connections — the answers
//! to their room ops (a JOIN's answer opens the held subscription), kept publications replayed
//! to them, and MEMBER events for the members here.

use shardbus_protocol::{Fields, Flags, RoomFields};

use super::Shard;
use super::conn::{LocalSub, Outgoing};
use super::rooms::Kept;
use crate::rooms::asks::{Answer, MemberEvent, Reply};

impl Shard {
    /// The home answered a room op of one of this shard's connections.
    pub(super) fn room_answered(&self, answer: &Answer) {
        let Some(conn) = self.conn(answer.conn) else {
            return;
        };
        if answer.counted {
            conn.room_ops.set(conn.room_ops.get().saturating_sub(1));
        }
        match &answer.reply {
            &Reply::Refused { code, sid, message } => {
                if self
                    .rooms
                    .membership(conn.id, &answer.room)
                    .is_some_and(|m| m.sub.0.sid == sid)
                    && let Some(m) = self.take_membership(conn.id, &answer.room)
                {
                    self.end_subscription(&conn, m.sub.0.sid);
                }
                conn.error(code, answer.op_id, sid, message);
            }
            Reply::Frame { fields, payload } => {
                if let Fields::Join(join) = *fields {
                    // A member that left (or joined again) before the answer came gets none.
                    let Some(membership) = self.rooms.membership(conn.id, &answer.room) else {
                        return;
                    };
                    if membership.sub.0.sid != join.sid {
                        return;
                    }
                    membership.sub.resume();
                }
                let flags = if payload.is_empty() {
                    0
                } else {
                    Flags::CONTAINER.0
                };
                conn.send(&Outgoing {
                    fields: *fields,
                    flags,
                    op_id: answer.op_id,
                    topic: &answer.room,
                    headers: &[],
                    payload,
                });
            }
        }
    }

    /// A kept publication for subscription `sid` of connection `conn` (`seq` as in
    /// `Record::RoomReplay`).
    pub(super) fn replay_arrived(&self, conn: u64, sid: u64, seq: u32, kept: Kept<'_>) {
        let Kept {
            subject,
            headers,
            payload,
            flags,
        } = kept;
        let Some(conn) = self.conn(conn) else { return };
        if seq == 0 {
            // Through the one delivery path (`Conn::deliver` stays inlined into it: a second
            // caller made LLVM call it out of line on every publish, +8% instructions).
            let sub = conn.subs.borrow().get(sid).cloned();
            if let Some(sub) = sub.filter(LocalSub::is_active) {
                self.deliver_local(
                    std::slice::from_ref(&sub),
                    subject,
                    headers,
                    payload,
                    flags,
                    0,
                );
            }
            return;
        }
        conn.push_message(sid, u64::from(seq), subject, headers, payload, flags);
    }

    /// A member joined or left a room some of this shard's connections are in.
    pub(super) fn member_event_arrived(&self, event: &MemberEvent) {
        let subs = self
            .rooms
            .local
            .borrow()
            .get(&*event.room)
            .cloned()
            .unwrap_or_default();
        for sub in subs {
            let Some(conn) = sub.conn() else { continue };
            if conn.id == event.except || !sub.is_active() {
                continue;
            }
            conn.send(&Outgoing {
                fields: Fields::Member(RoomFields {
                    sid: sub.0.sid,
                    flags: event.flags,
                    ..RoomFields::default()
                }),
                flags: Flags::CONTAINER.0,
                op_id: 0,
                topic: &event.room,
                headers: &[],
                payload: &event.payload,
            });
        }
    }
}
