//! Rooms on a shard (PROTOCOL.md §3.11): the room ops of this shard's connections, what this
//! shard does as the home of its rooms, and the mesh between the two (`rooms/asks.rs`).
//!
//! A JOIN makes a subscription at once but holds its deliveries back until the home answers;
//! the home's answer, the publications it recovers and every live publication stamped after
//! the join travel the same FIFO channel, so the member sees recovered publications, then the
//! live stream, with no gap and no duplicate.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shardbus_protocol::container::{self, ContainerLimits, Value};
use shardbus_protocol::{ErrorCode, Fields, Flags, Frame, Headers, RoomFields, RoomFlags};

use super::Shard;
use super::conn::{Conn, LocalSub, Outgoing};
use crate::auth::Credential;
use crate::fast_map::FastMap;
use crate::mesh::batch::Record;
use crate::metrics::Metric;
use crate::rooms::asks::{Answer, Ask, AskKind, MemberEvent, Reply};
use crate::rooms::history::{HistoryBackend, MemoryHistory, Position, Query, Retention};
use crate::rooms::members::{self, Member, Refusal};
use crate::rooms::options::{PublishPolicy, RoomConfig, RoomIndex, home_shard};
use crate::routing::ShardId;

/// Members listed when PRESENCE asks for no particular page size.
const DEFAULT_PRESENCE_PAGE: u32 = 100;
/// Header keys that carry a publication's position; a publisher's own are removed.
const EPOCH_HEADER: &str = "sb-epoch";
const OFFSET_HEADER: &str = "sb-offset";
/// The most the position headers add to a headers block.
const POSITION_HEADERS_LEN: usize = 2 * (1 + 9 + 2 + 20);

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
struct Membership {
    room: Rc<[u8]>,
    sub: LocalSub,
}

/// A shard's rooms: the configured options, its connections' memberships, and the rooms it is
/// home to with their history.
pub(crate) struct ShardRooms {
    index: RefCell<RoomIndex>,
    /// Each connection's rooms.
    memberships: RefCell<FastMap<u64, Vec<Membership>>>,
    /// Each room's member subscriptions on this shard, for MEMBER events.
    local: RefCell<FastMap<Rc<[u8]>, Vec<LocalSub>>>,
    /// The rooms this shard is home to.
    homes: RefCell<members::Rooms>,
    history: RefCell<Box<dyn HistoryBackend>>,
    /// The publisher's headers without position headers, and the same with this
    /// publication's position first: reused for every stamped publication.
    headers: RefCell<(Vec<u8>, Vec<u8>)>,
    last_expiry: std::cell::Cell<Option<Instant>>,
    /// Server-side memberships given so far (their sids count up from `SERVER_SIDS`).
    next_server_sid: std::cell::Cell<u64>,
}

impl ShardRooms {
    pub(crate) fn new(rooms: &[RoomConfig], history_bytes: usize) -> ShardRooms {
        ShardRooms {
            index: RefCell::new(RoomIndex::new(rooms)),
            memberships: RefCell::new(FastMap::default()),
            local: RefCell::new(FastMap::default()),
            homes: RefCell::new(members::Rooms::default()),
            history: RefCell::new(Box::new(MemoryHistory::new(history_bytes))),
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
    fn holds_state(&self) -> bool {
        !self.memberships.borrow().is_empty() || self.homes.borrow().size().0 > 0
    }

    fn options(&self, subject: &[u8]) -> Option<Rc<RoomConfig>> {
        self.index.borrow_mut().find(subject)
    }

    fn membership(&self, conn: u64, room: &[u8]) -> Option<Membership> {
        self.memberships
            .borrow()
            .get(&conn)?
            .iter()
            .find(|m| &*m.room == room)
            .cloned()
    }
}

/// The position a JOIN or HISTORY names, when it sets `FROM_POSITION`.
fn asked_position(fields: RoomFields) -> Option<Position> {
    fields
        .flags
        .contains(RoomFlags::FROM_POSITION)
        .then_some(Position {
            epoch: fields.epoch,
            offset: fields.offset,
        })
}

fn retention(options: &RoomConfig) -> Retention {
    Retention {
        size: options.kept(),
        ttl: (options.history_ttl_ms > 0).then(|| Duration::from_millis(options.history_ttl_ms)),
    }
}

fn counts_value(counts: members::Counts) -> Value {
    Value::Map(vec![
        ("clients".to_owned(), Value::U64(counts.clients)),
        ("users".to_owned(), Value::U64(counts.users)),
    ])
}

fn encode(value: &Value) -> Vec<u8> {
    // Maps of numbers and short strings always encode; an empty payload is the safe fallback.
    value.to_binary().unwrap_or_default()
}

/// Appends one header entry (key and value within the wire's lengths).
fn put_header(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// A publisher's (validated) headers without any `sb-` entry: the position headers are the
/// home's to set.
fn strip_positions(headers: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (key, value) in Headers::parse(headers).unwrap_or_default() {
        if !key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("sb-")) {
            put_header(out, key, value);
        }
    }
}

/// `position` as headers, then `headers`.
fn positioned(position: Position, headers: &[u8], out: &mut Vec<u8>) {
    out.clear();
    put_header(out, EPOCH_HEADER, &position.epoch.to_string());
    put_header(out, OFFSET_HEADER, &position.offset.to_string());
    out.extend_from_slice(headers);
}

// The member's side: this shard's connections' room ops.
impl Shard {
    /// Whether `subject` is a room.
    pub(crate) fn is_room(&self, subject: &[u8]) -> bool {
        self.rooms.options(subject).is_some()
    }

    /// Whether connection `conn` is a member of `room`.
    pub(super) fn is_member(&self, conn: u64, room: &[u8]) -> bool {
        self.rooms.membership(conn, room).is_some()
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

    fn home_of(&self, room: &[u8]) -> ShardId {
        home_shard(room, self.settings.shards)
    }

    /// Sends `ask` to the room's home, or handles it here when this is the home.
    fn ask_home(&self, ask: Ask) {
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
    fn room_for(&self, conn: &Conn, frame: &Frame<'_>, sid: u64) -> Option<Rc<RoomConfig>> {
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
    fn may_see(&self, conn: &Conn, frame: &Frame<'_>, sid: u64) -> bool {
        let allowed = conn.may(|p| p.subscribe.allows_pattern(frame.topic_str()));
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
        let joined = self
            .rooms
            .memberships
            .borrow()
            .get(&conn.id)
            .map_or(0, Vec::len);
        let refusal = if self.rooms.membership(conn.id, frame.topic).is_some() {
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
        let from = asked_position(fields);
        self.open_membership(conn, frame.topic, sid, frame.payload, from, frame.op_id);
    }

    /// Makes `conn` a member of `room` with subscription `sid` and asks the room's home to
    /// add it. The subscription exists at once (so the home's fan-out reaches this shard from
    /// the join on) but delivers nothing until the home's answer (JOIN `op_id`).
    pub(super) fn open_membership(
        &self,
        conn: &Rc<Conn>,
        room: &[u8],
        sid: u64,
        info: &[u8],
        from: Option<Position>,
        op_id: u32,
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
        self.ask_home(Ask {
            room: room.into(),
            conn: conn.id,
            op_id,
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
    fn member_info_problem(&self, frame: &Frame<'_>) -> Option<(ErrorCode, &'static str)> {
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
    fn take_membership(&self, conn: u64, room: &[u8]) -> Option<Membership> {
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

    fn forget_local_member(&self, membership: &Membership) {
        let mut local = self.rooms.local.borrow_mut();
        if let Some(subs) = local.get_mut(&membership.room) {
            subs.retain(|s| s != &membership.sub);
            if subs.is_empty() {
                local.remove(&membership.room);
            }
        }
    }

    fn tell_home_left(&self, conn: u64, room: &[u8]) {
        self.ask_home(Ask {
            room: room.into(),
            conn,
            op_id: 0,
            kind: AskKind::Leave,
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

    pub(super) fn presence(&self, conn: &Conn, frame: &Frame<'_>, fields: RoomFields) {
        let Some(options) = self.room_for(conn, frame, 0) else {
            return;
        };
        if !options.presence {
            conn.error(
                ErrorCode::NOT_AVAILABLE,
                frame.op_id,
                0,
                "the room keeps no presence",
            );
            return;
        }
        if !self.may_see(conn, frame, 0) || !self.within_page(conn, frame, fields.count, true) {
            return;
        }
        let limit = match fields.count {
            0 => DEFAULT_PRESENCE_PAGE.min(self.settings.max_presence_page),
            n => n,
        };
        self.ask_home(Ask {
            room: frame.topic.into(),
            conn: conn.id,
            op_id: frame.op_id,
            kind: AskKind::Presence {
                cursor: fields.offset,
                limit,
                stats_only: fields.flags.contains(RoomFlags::STATS_ONLY),
            },
        });
    }

    pub(super) fn history(&self, conn: &Conn, frame: &Frame<'_>, fields: RoomFields) {
        let Some(options) = self.room_for(conn, frame, fields.sid) else {
            return;
        };
        if !options.ordered() {
            conn.error(
                ErrorCode::NOT_AVAILABLE,
                frame.op_id,
                fields.sid,
                "the room keeps no history",
            );
            return;
        }
        if !self.may_see(conn, frame, fields.sid)
            || !self.within_page(conn, frame, fields.count, false)
        {
            return;
        }
        let limit = match fields.count {
            0 => options.kept().min(self.settings.max_history_page),
            n => n,
        };
        let after = asked_position(fields);
        self.ask_home(Ask {
            room: frame.topic.into(),
            conn: conn.id,
            op_id: frame.op_id,
            kind: AskKind::History {
                sid: fields.sid,
                after,
                limit,
                reverse: fields.flags.contains(RoomFlags::REVERSE),
            },
        });
    }

    /// Answers `LIMIT_TOO_LARGE` when a page asks for more than the server lists at once.
    fn within_page(&self, conn: &Conn, frame: &Frame<'_>, count: u32, presence: bool) -> bool {
        let max = if presence {
            self.settings.max_presence_page
        } else {
            self.settings.max_history_page
        };
        if count > max {
            let what = if presence {
                "max_presence_page"
            } else {
                "max_history_page"
            };
            let message = format!("at most {max} at once ({what})");
            conn.error(ErrorCode::LIMIT_TOO_LARGE, frame.op_id, 0, &message);
            return false;
        }
        true
    }

    /// A PUB to a room: refused for a non-member of a members-only room; sent to the room's
    /// home when the room keeps publications. Returns whether the publish was handled here
    /// (otherwise it takes the plain path).
    #[inline(never)]
    pub(super) fn publish_to_room(&self, conn: &Conn, frame: &Frame<'_>) -> bool {
        let Some(options) = self.rooms.options(frame.topic) else {
            return false;
        };
        if options.publish == PublishPolicy::Members
            && self.rooms.membership(conn.id, frame.topic).is_none()
        {
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
            None => self.stamp(frame.topic, headers, frame.payload, flags),
        }
        conn.ack(frame.op_id);
        true
    }
}

// The home's side.
impl Shard {
    /// Stamps a publication to a room this shard is home to with its position, keeps it, and
    /// fans it out to the room's subscribers everywhere.
    pub(super) fn stamp(&self, room: &[u8], headers: &[u8], payload: &[u8], flags: u8) {
        let Some(options) = self.rooms.options(room) else {
            return;
        };
        let (mut stripped, mut stamped) = std::mem::take(&mut *self.rooms.headers.borrow_mut());
        strip_positions(headers, &mut stripped);
        let position = self.rooms.history.borrow_mut().append(
            room,
            retention(&options),
            Instant::now(),
            &stripped,
            payload,
            flags,
        );
        self.metrics.add(Metric::HistoryAppends, 1);
        self.note_history_usage();
        positioned(position, &stripped, &mut stamped);
        self.fan_out(room, &stamped, payload, flags, 0, true);
        *self.rooms.headers.borrow_mut() = (stripped, stamped);
    }

    fn note_history_usage(&self) {
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
    pub(super) fn home_ask(&self, ask: &Ask) {
        let Some(options) = self.rooms.options(&ask.room) else {
            // No longer a room (a reload removed its pattern): its members still leave.
            if let AskKind::Leave = ask.kind {
                self.home_leave(&ask.room, &RoomConfig::default(), ask.conn);
            }
            return;
        };
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
                    sid: *sid,
                    user: user.clone(),
                    name: name.clone(),
                    info: info.clone(),
                };
                self.home_join(&ask.room, &options, member, ask.op_id, *from);
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
                    let listed = page.iter().map(|m| m.value()).collect();
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
                );
            }
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
    ) {
        let (conn, sid) = (member.conn, member.sid);
        let described = options.join_leave.then(|| encode(&member.value()));
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
                self.answer(conn, op_id, room, Reply::Refused { code, sid, message });
                return;
            }
        };
        self.metrics.add(Metric::RoomJoins, 1);
        self.note_membership();
        let mut fields = RoomFields {
            sid,
            ..RoomFields::default()
        };
        // The answer goes before the publications it announces: the member's shard opens the
        // subscription on it.
        let mut replay = None;
        if options.ordered() {
            let keep = retention(options);
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
                payload: encode(&counts_value(counts)),
            },
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
        let Some((member, _)) = left else {
            return;
        };
        self.metrics.add(Metric::RoomLeaves, 1);
        self.note_membership();
        if options.join_leave {
            self.member_event(room, conn, RoomFlags::LEFT, encode(&member.value()));
        }
    }

    fn note_membership(&self) {
        let (rooms, members) = self.rooms.homes.borrow().size();
        self.metrics.set(Metric::Rooms, rooms as u64);
        self.metrics.set(Metric::RoomMembers, members as u64);
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
        let keep = retention(options);
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
                        let msg = b.put_message(room, &headers, payload, flags);
                        b.push(Record::RoomReplay {
                            conn,
                            sid,
                            seq,
                            msg,
                        });
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
    fn answer(&self, conn: u64, op_id: u32, room: &[u8], reply: Reply) {
        let answer = Answer {
            conn,
            op_id,
            room: room.into(),
            reply,
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
    fn member_event(&self, room: &[u8], except: u64, flags: RoomFlags, payload: Vec<u8>) {
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

// Back on the member's shard.
impl Shard {
    /// The home answered a room op of one of this shard's connections.
    pub(super) fn room_answered(&self, answer: &Answer) {
        let Some(conn) = self.conn(answer.conn) else {
            return;
        };
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
