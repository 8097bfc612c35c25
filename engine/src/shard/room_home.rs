//! A shard as the home of its rooms (ARCHITECTURE.md, *Rooms*): it stamps publications with
//! their position and keeps them, adds and removes members, answers presence and history, and
//! replays kept publications; what it sends goes back to the member's shard (or is applied in
//! place when that is this shard).

use std::time::{Duration, Instant};

use shardbus_protocol::container::Value;
use shardbus_protocol::{ErrorCode, Fields, RoomFields, RoomFlags};

use super::Shard;
use super::rooms::Kept;
use crate::history::{Position, Query};
use crate::mesh::batch::{Record, ReplayTo};
use crate::metrics::Metric;
use crate::rooms::asks::{Answer, Ask, AskKind, MemberEvent, Reply};
use crate::rooms::encode;
use crate::rooms::members::{Member, Refusal};
use crate::rooms::options::{RoomConfig, RoomIndex};
use crate::rooms::positions::{positioned, strip_positions};
use crate::routing::ShardId;

impl Shard {
    /// Stamps a publication another shard forwarded to a room this shard is home to.
    pub(super) fn stamp(&self, room: &[u8], headers: &[u8], payload: &[u8], flags: u8) {
        if let Some(options) = self.rooms.options(room) {
            self.stamp_with(&options, room, headers, payload, flags);
        }
    }

    /// Stamps a publication to a room this shard is home to with its position, keeps it, and
    /// fans it out to the room's subscribers everywhere.
    pub(super) fn stamp_with(
        &self,
        options: &RoomConfig,
        room: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        let mut stripped = std::mem::take(&mut self.rooms.headers.borrow_mut().0);
        strip_positions(headers, &mut stripped);
        match &self.rooms.store {
            Some(store) => self.store_append(store, options, room, &stripped, payload, flags),
            None => {
                let position = self.rooms.history.borrow_mut().append(
                    room,
                    options.retention(),
                    Instant::now(),
                    &stripped,
                    payload,
                    flags,
                );
                self.note_history_usage();
                self.fan_out_kept(room, position, &stripped, payload, flags);
            }
        }
        self.rooms.headers.borrow_mut().0 = stripped;
    }

    /// Fans out a kept publication (`headers` without positions) with its position headers
    /// first, to the room's subscribers everywhere.
    pub(super) fn fan_out_kept(
        &self,
        room: &[u8],
        position: Position,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        self.metrics.add(Metric::HistoryAppends, 1);
        let mut stamped = std::mem::take(&mut self.rooms.headers.borrow_mut().1);
        positioned(position, headers, &mut stamped);
        self.fan_out(room, &stamped, payload, flags, 0, true);
        self.rooms.headers.borrow_mut().1 = stamped;
    }

    pub(super) fn note_history_usage(&self) {
        let (bytes, evicted) = self.rooms.history.borrow().usage();
        self.metrics.set(Metric::HistoryBytes, bytes as u64);
        self.metrics.set(Metric::HistoryRoomsEvicted, evicted);
    }

    /// Drops expired history, at most once a second (from the watch task).
    pub(crate) fn expire_history(&self, now: Instant) {
        let due = self
            .rooms
            .last_expiry
            .get()
            .is_none_or(|last| now.saturating_duration_since(last) >= Duration::from_secs(1));
        if !due || !self.rooms_any.get() {
            return;
        }
        self.rooms.last_expiry.set(Some(now));
        self.rooms.history.borrow_mut().expire(now);
        self.note_history_usage();
    }

    /// Takes the room options of a reload: the next op on each room follows them.
    pub(super) fn reload_rooms(&self, rooms: &[RoomConfig]) {
        *self.rooms.index.borrow_mut() = RoomIndex::new(rooms);
        self.rooms_any
            .set(self.rooms.any() || self.rooms.holds_state());
    }

    /// Handles what a member's shard asked of a room this shard is home to.
    pub(crate) fn home_ask(&self, ask: &Ask) {
        if let AskKind::Remote(remote) = &ask.kind {
            self.remote_members(&ask.room, remote);
            return;
        }
        let Some(options) = self.rooms.options(&ask.room) else {
            // No longer a room (a reload removed its pattern): its members still leave, and
            // an op on its way is answered.
            let sid = match ask.kind {
                AskKind::Leave => {
                    self.home_leave(&ask.room, &RoomConfig::default(), ask.conn);
                    return;
                }
                AskKind::Join { sid, .. } | AskKind::History { sid, .. } => sid,
                AskKind::Presence { .. } | AskKind::Remote(_) => 0,
            };
            let reply = Reply::Refused {
                code: ErrorCode::NOT_A_ROOM,
                sid,
                message: "no [[rooms]] pattern matches the topic any more",
            };
            self.answer(ask.conn, ask.op_id, &ask.room, reply, ask.counted);
            return;
        };
        if self.roster_defers(&options, ask) || self.store_defers(&options, ask) {
            return;
        }
        match &ask.kind {
            AskKind::Join {
                sid,
                user,
                name,
                info,
                from,
            } => {
                let member = Member {
                    conn: ask.conn,
                    node: 0,
                    sid: *sid,
                    user: user.clone(),
                    name: name.clone(),
                    info: info.clone(),
                };
                self.home_join(&ask.room, &options, member, ask.op_id, *from, ask.counted);
            }
            AskKind::Leave => self.home_leave(&ask.room, &options, ask.conn),
            AskKind::Presence {
                cursor,
                limit,
                stats_only,
            } => {
                let homes = self.rooms.homes.borrow();
                let counts = homes.counts(&ask.room);
                let (page, next) = homes.page(&ask.room, *cursor, *limit as usize);
                let mut map = vec![
                    ("clients".to_owned(), Value::U64(counts.clients)),
                    ("users".to_owned(), Value::U64(counts.users)),
                ];
                if !*stats_only {
                    let listed = page.iter().map(|m| self.member_value(m)).collect();
                    map.push(("members".to_owned(), Value::List(listed)));
                }
                let fields = RoomFields {
                    offset: next,
                    count: if *stats_only { 0 } else { page.len() as u32 },
                    ..RoomFields::default()
                };
                drop(homes);
                self.answer(
                    ask.conn,
                    ask.op_id,
                    &ask.room,
                    Reply::Frame {
                        fields: Fields::Presence(fields),
                        payload: encode(&Value::Map(map)),
                    },
                    ask.counted,
                );
            }
            AskKind::Remote(_) => {}
            AskKind::History {
                sid,
                after,
                limit,
                reverse,
            } => {
                let query = Query {
                    after: *after,
                    limit: *limit as usize,
                    reverse: *reverse,
                };
                let (top, sent) = self.replay(&ask.room, &options, ask.conn, *sid, query, true);
                let fields = RoomFields {
                    sid: *sid,
                    epoch: top.epoch,
                    offset: top.offset,
                    count: sent,
                    flags: RoomFlags::POSITIONED,
                };
                self.answer(
                    ask.conn,
                    ask.op_id,
                    &ask.room,
                    Reply::Frame {
                        fields: Fields::History(fields),
                        payload: Vec::new(),
                    },
                    ask.counted,
                );
            }
        }
    }

    fn home_join(
        &self,
        room: &[u8],
        options: &RoomConfig,
        member: Member,
        op_id: u32,
        from: Option<Position>,
        counted: bool,
    ) {
        let (conn, sid) = (member.conn, member.sid);
        let described = options
            .join_leave
            .then(|| encode(&self.member_value(&member)));
        let shared = self.shares_members(options).then(|| member.clone());
        let joined = self
            .rooms
            .homes
            .borrow_mut()
            .join(room, member, options.max_members);
        let counts = match joined {
            Ok(counts) => counts,
            Err(refusal) => {
                let (code, message) = match refusal {
                    Refusal::Full => (ErrorCode::ROOM_FULL, "the room has max_members members"),
                    Refusal::AlreadyMember => {
                        (ErrorCode::ALREADY_A_MEMBER, "already a member of the room")
                    }
                };
                let refused = Reply::Refused { code, sid, message };
                self.answer(conn, op_id, room, refused, counted);
                return;
            }
        };
        self.metrics.add(Metric::RoomJoins, 1);
        self.note_membership();
        if let Some(member) = shared {
            self.share_member(room, &member, true);
        }
        if counts.here == 1 {
            self.room_event(crate::events::EventKind::RoomCreated, room);
        }
        let mut fields = RoomFields {
            sid,
            ..RoomFields::default()
        };
        // The answer goes before the publications it announces: the member's shard opens the
        // subscription on it.
        let mut replay = None;
        if options.ordered() {
            let keep = options.retention();
            let mut history = self.rooms.history.borrow_mut();
            let top = history.top(room, keep, Instant::now());
            fields.epoch = top.epoch;
            fields.offset = top.offset;
            fields.flags = RoomFlags::POSITIONED;
            replay = match from {
                Some(after) if options.recover => Some(Query {
                    after: Some(after),
                    limit: options.kept() as usize,
                    reverse: false,
                }),
                _ if options.retain => Some(Query {
                    after: None,
                    limit: 1,
                    reverse: false,
                }),
                _ => None,
            };
            if let Some(query) = replay {
                let mut count = 0;
                let outcome = history.read(room, keep, Instant::now(), query, &mut |_| count += 1);
                fields.count = count;
                if from.is_some() && options.recover {
                    if outcome.continuous {
                        fields.flags = fields.flags.with(RoomFlags::RECOVERED);
                        self.metrics.add(Metric::RoomRecoveries, 1);
                    } else {
                        self.metrics.add(Metric::RoomRecoveriesMissed, 1);
                    }
                }
            }
        } else if from.is_some() {
            self.metrics.add(Metric::RoomRecoveriesMissed, 1);
        }
        self.answer(
            conn,
            op_id,
            room,
            Reply::Frame {
                fields: Fields::Join(fields),
                payload: encode(&counts.value()),
            },
            counted,
        );
        if let Some(query) = replay {
            self.replay(room, options, conn, sid, query, false);
        }
        if let Some(payload) = described {
            self.member_event(room, conn, RoomFlags::JOINED, payload);
        }
    }

    fn home_leave(&self, room: &[u8], options: &RoomConfig, conn: u64) {
        let left = self.rooms.homes.borrow_mut().leave(room, conn);
        let Some((member, counts)) = left else {
            return;
        };
        self.metrics.add(Metric::RoomLeaves, 1);
        self.note_membership();
        if counts.here == 0 {
            self.room_event(crate::events::EventKind::RoomRemoved, room);
        }
        if self.shares_members(options) {
            self.share_member(room, &member, false);
        }
        if options.join_leave {
            let payload = encode(&self.member_value(&member));
            self.member_event(room, conn, RoomFlags::LEFT, payload);
        }
    }

    fn room_event(&self, kind: crate::events::EventKind, room: &[u8]) {
        self.event(kind, || {
            let name = String::from_utf8_lossy(room).into_owned();
            vec![(
                "room".into(),
                shardbus_protocol::container::Value::Str(name),
            )]
        });
    }

    fn note_membership(&self) {
        let (rooms, members) = self.rooms.homes.borrow().size();
        self.metrics.set(Metric::Rooms, rooms);
        self.metrics.set(Metric::RoomMembers, members);
    }

    /// Sends the publications `query` picks to subscription `sid` of `conn`; `labelled`: as a
    /// HISTORY answer (seq from 1), else as deliveries to the subscription. Returns the room's
    /// position and how many were sent.
    fn replay(
        &self,
        room: &[u8],
        options: &RoomConfig,
        conn: u64,
        sid: u64,
        query: Query,
        labelled: bool,
    ) -> (Position, u32) {
        let link = self.link((conn >> 48) as ShardId);
        let keep = options.retention();
        let mut history = self.rooms.history.borrow_mut();
        let top = history.top(room, keep, Instant::now());
        let mut sent = 0u32;
        let mut headers = Vec::new();
        history.read(room, keep, Instant::now(), query, &mut |stored| {
            sent += 1;
            let seq = if labelled { sent } else { 0 };
            let position = Position {
                epoch: top.epoch,
                offset: stored.offset,
            };
            positioned(position, stored.headers(), &mut headers);
            let (payload, flags) = (stored.payload(), stored.flags);
            match link {
                Some(link) => {
                    link.with_batch(|b| {
                        let to = b.put(&ReplayTo { conn, sid, seq }.to_bytes());
                        let msg = b.put_message(room, &headers, payload, flags);
                        b.push(Record::RoomReplay { to, msg });
                    });
                    self.metrics.add(Metric::ForwardsOut, 1);
                }
                None => {
                    let kept = Kept {
                        subject: room,
                        headers: &headers,
                        payload,
                        flags,
                    };
                    self.replay_arrived(conn, sid, seq, kept);
                }
            }
        });
        (top, sent)
    }

    /// Sends `answer` to the connection's shard, or applies it when that is this shard.
    /// `counted`: it answers an op the connection's `room_ops` counts.
    fn answer(&self, conn: u64, op_id: u32, room: &[u8], reply: Reply, counted: bool) {
        let answer = Answer {
            conn,
            op_id,
            room: room.into(),
            reply,
            counted,
        };
        match self.link((conn >> 48) as ShardId) {
            Some(link) => {
                link.with_batch(|b| b.push(Record::RoomAnswer(Box::new(answer))));
                self.metrics.add(Metric::ForwardsOut, 1);
            }
            None => self.room_answered(&answer),
        }
    }

    /// Tells every shard with members in `room` (this one too) that a member joined or left.
    pub(super) fn member_event(
        &self,
        room: &[u8],
        except: u64,
        flags: RoomFlags,
        payload: Vec<u8>,
    ) {
        let shards: Vec<ShardId> = self.rooms.homes.borrow().shards(room).collect();
        for shard in shards {
            let event = MemberEvent {
                room: room.into(),
                except,
                flags,
                payload: payload.clone(),
            };
            match self.link(shard) {
                Some(link) => {
                    link.with_batch(|b| b.push(Record::RoomMember(Box::new(event))));
                    self.metrics.add(Metric::ForwardsOut, 1);
                }
                None => self.member_event_arrived(&event),
            }
        }
    }
}
