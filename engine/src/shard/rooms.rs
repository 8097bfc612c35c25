//! Rooms on a shard (PROTOCOL.md §3.11): what a shard keeps for rooms (`ShardRooms`), and its
//! connections' memberships — JOIN, LEAVE, leaving with the connection, PUB to a room. The
//! home's side is `room_home.rs`, what comes back `room_answers.rs`, presence and history
//! `room_queries.rs`, server-side membership `room_admin.rs`.
//!
//! A JOIN makes a subscription at once but holds its deliveries back until the home answers;
//! the home's answer, the publications it recovers and every live publication stamped after
//! the join travel the same FIFO channel, so the member sees recovered publications, then the
//! live stream, with no gap and no duplicate.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use shardbus_protocol::container::{self, ContainerLimits};
use shardbus_protocol::{ErrorCode, Flags, Frame, RoomFields};

use super::Shard;
use super::conn::{Conn, LocalSub};
use crate::auth::Credential;
use crate::fast_map::FastMap;
use crate::history::{MemoryHistory, Position};
use crate::mesh::batch::Record;
use crate::metrics::Metric;
use crate::rooms::asks::{Ask, AskKind};
use crate::rooms::members;
use crate::rooms::options::{PublishPolicy, RoomConfig, RoomIndex, home_shard};
use crate::rooms::positions::{POSITION_HEADERS_LEN, asked_position};
use crate::routing::ShardId;

/// A kept publication on its way to a connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kept<'a> {
    pub(super) subject: &'a [u8],
    /// Position headers first.
    pub(super) headers: &'a [u8],
    pub(super) payload: &'a [u8],
    pub(super) flags: u8,
}

/// One room a connection of this shard is a member of.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    pub(super) room: Rc<[u8]>,
    pub(super) sub: LocalSub,
}

/// A shard's rooms: the configured options, its connections' memberships, and the rooms it is
/// home to with their history.
pub(crate) struct ShardRooms {
    pub(super) index: RefCell<RoomIndex>,
    /// Each connection's rooms.
    pub(super) memberships: RefCell<FastMap<u64, Vec<Membership>>>,
    /// Each room's member subscriptions on this shard, for MEMBER events.
    pub(super) local: RefCell<FastMap<Rc<[u8]>, Vec<LocalSub>>>,
    /// The rooms this shard is home to.
    pub(super) homes: RefCell<members::Rooms>,
    /// The other nodes whose members `homes` keeps, by slot.
    pub(super) node_slots: RefCell<crate::rooms::node_slots::NodeSlots>,
    /// Ops on rooms waiting for the other nodes' members.
    pub(super) roster_waits: RefCell<super::room_nodes::RosterWaits>,
    /// Publications waiting for an earlier one of their room (a cluster's rooms in Redis).
    pub(super) order: super::room_order::RoomOrder,
    pub(super) history: RefCell<MemoryHistory>,
    /// With `history.backend = "redis"`: the Redis side of this shard's home rooms.
    pub(super) store: Option<super::room_store::RoomStore>,
    /// The publisher's headers without position headers, and the same with this
    /// publication's position first: reused for every stamped publication.
    pub(super) headers: RefCell<(Vec<u8>, Vec<u8>)>,
    pub(super) last_expiry: std::cell::Cell<Option<Instant>>,
    /// Server-side memberships given so far (their sids count up from `SERVER_SIDS`).
    pub(super) next_server_sid: std::cell::Cell<u64>,
}

impl ShardRooms {
    pub(crate) fn new(
        rooms: &[RoomConfig],
        history_bytes: usize,
        store: Option<super::room_store::RoomStore>,
    ) -> ShardRooms {
        ShardRooms {
            index: RefCell::new(RoomIndex::new(rooms)),
            memberships: RefCell::new(FastMap::default()),
            local: RefCell::new(FastMap::default()),
            homes: RefCell::new(members::Rooms::default()),
            node_slots: RefCell::default(),
            roster_waits: RefCell::default(),
            order: super::room_order::RoomOrder::default(),
            history: RefCell::new(MemoryHistory::new(history_bytes)),
            store,
            headers: RefCell::new((Vec::new(), Vec::new())),
            last_expiry: std::cell::Cell::new(None),
            next_server_sid: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn any(&self) -> bool {
        self.index.borrow().any()
    }

    /// Whether this shard still holds room state (memberships, or rooms it is home to): when
    /// a reload removes every pattern, the connections that are members must still leave.
    pub(super) fn holds_state(&self) -> bool {
        !self.memberships.borrow().is_empty() || self.homes.borrow().kept().next().is_some()
    }

    pub(super) fn options(&self, subject: &[u8]) -> Option<Rc<RoomConfig>> {
        self.index.borrow_mut().find(subject)
    }

    /// Whether connection `conn` is a member of `room` (asked on every publish to a
    /// members-only room: no clone).
    pub(super) fn is_member(&self, conn: u64, room: &[u8]) -> bool {
        self.memberships
            .borrow()
            .get(&conn)
            .is_some_and(|list| list.iter().any(|m| &*m.room == room))
    }

    pub(super) fn membership(&self, conn: u64, room: &[u8]) -> Option<Membership> {
        self.memberships
            .borrow()
            .get(&conn)?
            .iter()
            .find(|m| &*m.room == room)
            .cloned()
    }
}

// The member's side: this shard's connections' room ops.
impl Shard {
    /// Whether `subject` is a room.
    pub(crate) fn is_room(&self, subject: &[u8]) -> bool {
        self.rooms.options(subject).is_some()
    }

    /// Whether connection `conn` is a member of `room`.
    pub(super) fn is_member(&self, conn: u64, room: &[u8]) -> bool {
        self.rooms.is_member(conn, room)
    }

    /// How many rooms connection `conn` is a member of.
    pub(super) fn memberships_of(&self, conn: u64) -> usize {
        self.rooms
            .memberships
            .borrow()
            .get(&conn)
            .map_or(0, Vec::len)
    }

    /// The next sid of the server's own (server-side memberships).
    pub(super) fn next_server_sid(&self) -> u64 {
        let n = self.rooms.next_server_sid.get();
        self.rooms.next_server_sid.set(n + 1);
        super::room_admin::SERVER_SIDS + n
    }

    /// Ends `conn`'s membership of `room` (its subscription too) and tells the home; returns
    /// the membership's sid, or `None` if it was not a member.
    pub(super) fn leave_room(&self, conn: &Conn, room: &[u8]) -> Option<u64> {
        let membership = self.take_membership(conn.id, room)?;
        let sid = membership.sub.0.sid;
        self.end_subscription(conn, sid);
        self.tell_home_left(conn.id, &membership.room);
        Some(sid)
    }

    /// The rooms this shard is home to, as `GET /api/v1/rooms` lists them.
    pub(crate) fn rooms_listing(&self) -> Vec<serde_json::Value> {
        self.rooms
            .homes
            .borrow()
            .list()
            .map(|(room, counts)| {
                serde_json::json!({
                    "room": String::from_utf8_lossy(room),
                    "home_shard": self.id,
                    "clients": counts.clients,
                    "users": counts.users,
                })
            })
            .collect()
    }

    pub(super) fn home_of(&self, room: &[u8]) -> ShardId {
        home_shard(room, self.settings.shards)
    }

    /// Sends `ask` to the room's home, or handles it here when this is the home.
    pub(super) fn ask_home(&self, ask: Ask) {
        let home = self.home_of(&ask.room);
        match self.link(home) {
            Some(link) => {
                link.with_batch(|b| b.push(Record::RoomAsk(Box::new(ask))));
                self.metrics.add(Metric::ForwardsOut, 1);
            }
            None => self.home_ask(&ask),
        }
    }

    /// The room options of a room op's topic; answers `NOT_A_ROOM` when it has none.
    pub(super) fn room_for(
        &self,
        conn: &Conn,
        frame: &Frame<'_>,
        sid: u64,
    ) -> Option<Rc<RoomConfig>> {
        let options = self.rooms.options(frame.topic);
        if options.is_none() {
            conn.error(
                ErrorCode::NOT_A_ROOM,
                frame.op_id,
                sid,
                "no [[rooms]] pattern matches the topic",
            );
        }
        options
    }

    /// Whether `conn` may see the room (subscribe permission on its subject).
    pub(super) fn may_see(&self, conn: &Conn, frame: &Frame<'_>, sid: u64) -> bool {
        let allowed = conn.may(|p| p.subscribe.allows_pattern(frame.topic_str()))
            && !crate::events::is_reserved(frame.topic);
        if !allowed {
            let message = format!("the room {} is not permitted", frame.topic_str());
            conn.error(ErrorCode::PERMISSION_DENIED, frame.op_id, sid, &message);
        }
        allowed
    }

    pub(super) fn join(&self, conn: &Rc<Conn>, frame: &Frame<'_>, fields: RoomFields) {
        let sid = fields.sid;
        let Some(options) = self.room_for(conn, frame, sid) else {
            return;
        };
        if !self.may_see(conn, frame, sid) {
            return;
        }
        let identity = conn.identity();
        let anonymous = identity
            .as_ref()
            .is_some_and(|i| i.credential == Credential::Anonymous);
        if anonymous && !options.anonymous {
            conn.error(
                ErrorCode::PERMISSION_DENIED,
                frame.op_id,
                sid,
                "the room does not admit anonymous connections",
            );
            return;
        }
        let joined = self.memberships_of(conn.id);
        let refusal = if self.is_member(conn.id, frame.topic) {
            Some((ErrorCode::ALREADY_A_MEMBER, "already a member of the room"))
        } else if joined >= self.settings.max_rooms_per_connection as usize {
            Some((
                ErrorCode::TOO_MANY_ROOMS,
                "max_rooms_per_connection reached",
            ))
        } else if conn.subs.borrow().contains_key(sid) {
            Some((ErrorCode::DUPLICATE_SUBSCRIPTION, "sid already in use"))
        } else if conn.subs.borrow().len() >= self.settings.max_subscriptions as usize {
            Some((
                ErrorCode::TOO_MANY_SUBSCRIPTIONS,
                "max_subscriptions reached",
            ))
        } else {
            self.member_info_problem(frame)
        };
        if let Some((code, message)) = refusal {
            conn.error(code, frame.op_id, sid, message);
            return;
        }
        if !self.room_op_allowed(conn, frame.op_id, sid) {
            return;
        }
        let from = asked_position(fields);
        self.open_membership(
            conn,
            frame.topic,
            sid,
            frame.payload,
            from,
            Some(frame.op_id),
        );
    }

    /// Makes `conn` a member of `room` with subscription `sid` and asks the room's home to
    /// add it. The subscription exists at once (so the home's fan-out reaches this shard from
    /// the join on) but delivers nothing until the home's answer: JOIN `op_id` for the
    /// client's own join (counted in its room ops in flight), op id 0 for a server-side one
    /// (`None`).
    pub(super) fn open_membership(
        &self,
        conn: &Rc<Conn>,
        room: &[u8],
        sid: u64,
        info: &[u8],
        from: Option<Position>,
        op_id: Option<u32>,
    ) {
        let sub = LocalSub::new(conn, sid, room, None);
        sub.hold();
        let change = self.router.borrow_mut().subscribe(room, None, sub.clone());
        self.broadcast(change);
        conn.subs.borrow_mut().insert(sid, sub.clone());
        conn.interest_dirty.set(true);
        self.metrics.add(Metric::Subscriptions, 1);
        let name: Rc<[u8]> = room.into();
        self.rooms
            .local
            .borrow_mut()
            .entry(Rc::clone(&name))
            .or_default()
            .push(sub.clone());
        self.rooms
            .memberships
            .borrow_mut()
            .entry(conn.id)
            .or_default()
            .push(Membership { room: name, sub });
        let identity = conn.identity();
        if op_id.is_some() {
            conn.room_ops.set(conn.room_ops.get() + 1);
        }
        self.ask_home(Ask {
            room: room.into(),
            conn: conn.id,
            op_id: op_id.unwrap_or(0),
            counted: op_id.is_some(),
            kind: AskKind::Join {
                sid,
                user: identity.as_ref().map_or("", |i| &*i.name).into(),
                name: conn.name.borrow().as_str().into(),
                info: info.into(),
                from,
            },
        });
    }

    /// What is wrong with a JOIN's member info: it must be a container, within
    /// `max_member_info`.
    pub(super) fn member_info_problem(
        &self,
        frame: &Frame<'_>,
    ) -> Option<(ErrorCode, &'static str)> {
        if frame.payload.is_empty() {
            return None;
        }
        if frame.payload.len() > self.settings.max_member_info as usize {
            return Some((
                ErrorCode::PAYLOAD_TOO_LARGE,
                "member info over max_member_info",
            ));
        }
        let limits = ContainerLimits {
            max_size: frame.payload.len(),
            ..ContainerLimits::default()
        };
        if !frame.flags.contains(Flags::CONTAINER)
            || frame.flags.contains(Flags::LZ4)
            || container::decode(frame.payload, &limits).is_err()
        {
            return Some((
                ErrorCode::BAD_PAYLOAD,
                "member info must be an uncompressed container",
            ));
        }
        None
    }

    pub(super) fn leave(&self, conn: &Conn, frame: &Frame<'_>) {
        if self.leave_room(conn, frame.topic).is_none() {
            conn.error(
                ErrorCode::NOT_A_MEMBER,
                frame.op_id,
                0,
                "not a member of the room",
            );
            return;
        }
        conn.ack(frame.op_id);
    }

    /// Removes `conn`'s membership of `room` from this shard's tables.
    pub(super) fn take_membership(&self, conn: u64, room: &[u8]) -> Option<Membership> {
        let membership = {
            let mut memberships = self.rooms.memberships.borrow_mut();
            let list = memberships.get_mut(&conn)?;
            let index = list.iter().position(|m| &*m.room == room)?;
            let membership = list.swap_remove(index);
            if list.is_empty() {
                memberships.remove(&conn);
            }
            membership
        };
        self.forget_local_member(&membership);
        Some(membership)
    }

    pub(super) fn forget_local_member(&self, membership: &Membership) {
        let mut local = self.rooms.local.borrow_mut();
        if let Some(subs) = local.get_mut(&membership.room) {
            subs.retain(|s| s != &membership.sub);
            if subs.is_empty() {
                local.remove(&membership.room);
            }
        }
    }

    pub(super) fn tell_home_left(&self, conn: u64, room: &[u8]) {
        self.ask_home(Ask {
            room: room.into(),
            conn,
            op_id: 0,
            kind: AskKind::Leave,
            counted: false,
        });
    }

    /// A member's subscription ended by UNSUB (or its auto-unsubscribe count): it leaves.
    pub(super) fn subscription_ended(&self, conn: u64, sub: &LocalSub) {
        let room = {
            let memberships = self.rooms.memberships.borrow();
            memberships
                .get(&conn)
                .and_then(|list| list.iter().find(|m| &m.sub == sub))
                .map(|m| Rc::clone(&m.room))
        };
        if let Some(room) = room
            && self.take_membership(conn, &room).is_some()
        {
            self.tell_home_left(conn, &room);
        }
    }

    /// A connection went: each of its rooms hears it left.
    pub(super) fn conn_gone(&self, conn: u64) {
        let Some(list) = self.rooms.memberships.borrow_mut().remove(&conn) else {
            return;
        };
        for membership in list {
            self.forget_local_member(&membership);
            self.tell_home_left(conn, &membership.room);
        }
    }

    /// A PUB to a room: refused for a non-member of a members-only room; sent to the room's
    /// home when the room keeps publications. Returns whether the publish was handled here
    /// (otherwise it takes the plain path).
    #[inline(never)]
    pub(super) fn publish_to_room(&self, conn: &Conn, frame: &Frame<'_>) -> bool {
        let Some(options) = self.rooms.options(frame.topic) else {
            return false;
        };
        if options.publish == PublishPolicy::Members && !self.is_member(conn.id, frame.topic) {
            conn.error(
                ErrorCode::NOT_A_MEMBER,
                frame.op_id,
                0,
                "only members may publish to the room",
            );
            return true;
        }
        if !options.ordered() {
            return false;
        }
        let headers = frame.headers.as_bytes();
        if headers.len() + POSITION_HEADERS_LEN > self.settings.limits.max_headers_len as usize {
            conn.error(
                ErrorCode::BAD_HEADERS,
                frame.op_id,
                0,
                "the headers leave no room for the room's position headers",
            );
            return true;
        }
        self.count_in(conn, frame);
        let flags = frame.flags.0;
        let home = self.home_of(frame.topic);
        match self.link(home) {
            Some(link) => {
                link.with_batch(|b| {
                    let msg = b.put_message(frame.topic, headers, frame.payload, flags);
                    b.push(Record::RoomPublish { msg });
                });
                self.metrics.add(Metric::ForwardsOut, 1);
            }
            None => self.stamp_with(&options, frame.topic, headers, frame.payload, flags),
        }
        conn.ack(frame.op_id);
        true
    }
}
