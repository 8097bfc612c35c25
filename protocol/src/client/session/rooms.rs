//! Rooms in the client session (PROTOCOL.md §3.11): JOIN and LEAVE, the position each
//! membership last saw (so a reconnect joins again from there), PRESENCE and HISTORY queries
//! and the labels their answers arrive on, and a backend's server-side joins.

use crate::flags::{Flags, RoomFlags};
use crate::frame::{Fields, Frame, RoomFields};
use crate::headers::Headers;
use crate::topic::validate_subject;

use super::{ClientSession, Phase, Subscription};
use crate::client::error::ClientError;

/// What a room membership keeps so that a reconnect joins again from where it was.
#[derive(Debug, Clone, Default)]
pub(super) struct Membership {
    /// Member info (a container), sent with every JOIN.
    pub(super) info: Vec<u8>,
    /// The last position seen: epoch and offset of the last publication received, or of the
    /// room when it was joined.
    pub(super) position: Option<(u64, u64)>,
    /// Joined by the server (a backend's server-side join): not restored after a reconnect.
    pub(super) server: bool,
}

impl ClientSession {
    /// Queues the JOIN that (re)joins membership `sid` of `room`.
    pub(super) fn write_join(
        &mut self,
        sid: u64,
        room: &str,
        membership: &Membership,
    ) -> Result<(), ClientError> {
        let (epoch, offset) = membership.position.unwrap_or_default();
        let fields = RoomFields {
            sid,
            epoch,
            offset,
            count: 0,
            flags: if membership.position.is_some() {
                RoomFlags::FROM_POSITION
            } else {
                RoomFlags::default()
            },
        };
        let flags = if membership.info.is_empty() {
            Flags::empty()
        } else {
            Flags::CONTAINER
        };
        let join = Fields::Join(fields);
        self.push(join, flags, room.as_bytes(), &[], &membership.info)?;
        Ok(())
    }

    /// Joins room `room` (PROTOCOL.md §3.11) with member `info` (a container, or empty),
    /// recovering after `from` (epoch, offset) when given. Returns the membership's sid and the
    /// JOIN's op id. After a reconnect the session joins again by itself, from the last
    /// position it saw.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a room name that is not a subject.
    pub fn join(
        &mut self,
        room: &str,
        info: &[u8],
        from: Option<(u64, u64)>,
    ) -> Result<(u64, u32), ClientError> {
        validate_subject(room.as_bytes(), usize::from(self.limits.max_topic_len))?;
        self.check_payload(info.len())?;
        let sid = self.next_id;
        self.next_id += 1;
        let sub = Subscription {
            pattern: room.to_owned(),
            queue: None,
            remaining: None,
            room: Some(Membership {
                info: info.to_vec(),
                position: from,
                server: false,
            }),
            endpoint: false,
        };
        let op_id = self.next_op_id;
        if self.phase != Phase::Disconnected {
            self.write_sub(sid, &sub)?;
        }
        self.subs.insert(sid, sub);
        Ok((sid, op_id))
    }

    /// Leaves the room of membership `sid`. Returns LEAVE's op id (0 when not connected: the
    /// membership is simply not restored).
    ///
    /// # Errors
    /// [`ClientError::Protocol`] if the frame cannot be encoded.
    pub fn leave(&mut self, sid: u64) -> Result<u32, ClientError> {
        let Some(sub) = self.subs.remove(&sid) else {
            return Ok(0);
        };
        if self.phase == Phase::Disconnected {
            return Ok(0);
        }
        self.push(
            Fields::Leave(RoomFields::default()),
            Flags::empty(),
            sub.pattern.as_bytes(),
            &[],
            &[],
        )
    }

    /// The last position membership `sid` saw (epoch, offset), if its room keeps history.
    pub fn room_position(&self, sid: u64) -> Option<(u64, u64)> {
        self.subs.get(&sid)?.room.as_ref()?.position
    }

    /// Queues a room op with no payload (PRESENCE, HISTORY). Returns its op id.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a room name that is not a subject.
    pub fn room_query(&mut self, fields: Fields, room: &str) -> Result<u32, ClientError> {
        validate_subject(room.as_bytes(), usize::from(self.limits.max_topic_len))?;
        self.push(fields, Flags::empty(), room.as_bytes(), &[], &[])
    }

    /// A fresh id for labelling a HISTORY answer's messages (from the sid counter, so it never
    /// names a subscription); its messages are events until the HISTORY that ends them.
    pub fn label(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.labels.insert(id);
        id
    }

    /// Forgets a label whose HISTORY will not come (the op was refused).
    pub fn end_label(&mut self, label: u64) {
        self.labels.remove(&label);
    }

    /// Notes a room publication's position (its `sb-epoch` and `sb-offset` headers).
    pub(super) fn note_position(&mut self, sid: u64, headers: &Headers<'_>) {
        let Some(room) = self.subs.get_mut(&sid).and_then(|s| s.room.as_mut()) else {
            return;
        };
        let epoch = headers.get("sb-epoch").and_then(|e| e.parse().ok());
        let offset = headers.get("sb-offset").and_then(|o| o.parse().ok());
        if let (Some(epoch), Some(offset)) = (epoch, offset) {
            room.position = Some((epoch, offset));
        }
    }

    /// A JOIN answer: the room's position, less the publications that follow it. A JOIN with
    /// op id 0 for a sid this session does not know is a backend's server-side join: the
    /// membership is taken on (its messages are events from now on).
    pub(super) fn note_joined(&mut self, frame: &Frame<'_>, fields: RoomFields) {
        if frame.op_id == 0 && !self.subs.contains_key(&fields.sid) {
            let membership = Membership {
                server: true,
                ..Membership::default()
            };
            let sub = Subscription {
                pattern: frame.topic_str().to_owned(),
                queue: None,
                remaining: None,
                room: Some(membership),
                endpoint: false,
            };
            self.subs.insert(fields.sid, sub);
        }
        let Some(room) = self.subs.get_mut(&fields.sid).and_then(|s| s.room.as_mut()) else {
            return;
        };
        if fields.flags.contains(RoomFlags::POSITIONED) {
            let offset = fields.offset.saturating_sub(u64::from(fields.count));
            room.position = Some((fields.epoch, offset));
        }
    }
}
