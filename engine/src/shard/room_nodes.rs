//! A home shard's rooms across the nodes of a cluster (ARCHITECTURE.md, *Rooms across nodes*).
//! Each node keeps its own home per room; the homes share their members:
//!
//! - a member of this node joining or leaving is told to every other node (`RoomMember`), and
//!   each node's home of the room adds it to, or takes it from, the room's members and sends
//!   its own members the MEMBER event;
//! - the first op on a room this node keeps no members of (a join, a presence page) waits,
//!   for at most `ROSTER_WAIT`, for every other node's members of it (a roster ask, answered by
//!   a `RoomRoster` each), so its JOIN counts and PRESENCE pages cover every node;
//! - a node that goes (goodbye, silence, a restart) takes its members with it, each with a
//!   MEMBER `LEFT`; a node that comes is asked for its members of every room kept here.
//!
//! Rooms whose options keep neither presence nor join/leave events share nothing.

use std::rc::Weak;
use std::time::Duration;

use shardbus_protocol::RoomFlags;

use super::Shard;
use crate::cluster::wire;
use crate::fast_map::FastMap;
use crate::rooms::asks::{Ask, AskKind, Remote};
use crate::rooms::encode;
use crate::rooms::members::Member;
use crate::rooms::options::RoomConfig;

/// How long an op waits for the other nodes' members of its room: past it, it goes on with
/// those that answered (a node that died answers nothing until it is dropped).
const ROSTER_WAIT: Duration = Duration::from_secs(1);

/// Ops on rooms waiting for the other nodes' members.
#[derive(Debug, Default)]
pub(crate) struct RosterWaits {
    by_room: FastMap<Box<[u8]>, RosterWait>,
    by_id: FastMap<u64, Box<[u8]>>,
}

#[derive(Debug)]
struct RosterWait {
    id: u64,
    /// How many nodes were asked, once `cluster-out` has said.
    nodes: Option<usize>,
    answered: usize,
    asks: Vec<Ask>,
}

impl RosterWait {
    fn done(&self) -> bool {
        self.nodes.is_some_and(|nodes| self.answered >= nodes)
    }
}

impl Shard {
    /// Whether a room with `options` shares its members with the other nodes.
    pub(super) fn shares_members(&self, options: &RoomConfig) -> bool {
        self.cluster.is_some() && (options.presence || options.join_leave)
    }

    /// Whether `ask` waits for the other nodes' members of its room (and so was kept for then).
    pub(super) fn roster_defers(&self, options: &RoomConfig, ask: &Ask) -> bool {
        let mut waits = self.rooms.roster_waits.borrow_mut();
        if let Some(wait) = waits.by_room.get_mut(&ask.room) {
            // Behind the wait, in order: a leave must not overtake its join.
            wait.asks.push(ask.clone());
            return true;
        }
        let first_look = matches!(ask.kind, AskKind::Join { .. } | AskKind::Presence { .. });
        if !first_look
            || !self.shares_members(options)
            || self.rooms.homes.borrow().tracks(&ask.room)
        {
            return false;
        }
        self.rooms.homes.borrow_mut().track(&ask.room);
        let id = self.ask_rosters(&ask.room);
        let wait = RosterWait {
            id,
            nodes: None,
            answered: 0,
            asks: vec![ask.clone()],
        };
        waits.by_room.insert(ask.room.clone(), wait);
        waits.by_id.insert(id, ask.room.clone());
        drop(waits);
        if let Some(shard) = self.this.get().and_then(Weak::upgrade) {
            glommio::spawn_local(async move {
                glommio::timer::sleep(ROSTER_WAIT).await;
                shard.release_roster_wait(id);
            })
            .detach();
        }
        true
    }

    /// Asks every other node for its members of `room`; returns the ask's id.
    fn ask_rosters(&self, room: &[u8]) -> u64 {
        let id = self.next_node_ask_id();
        if let Some(cluster) = &self.cluster {
            cluster.with_out(|out| wire::put_node_ask(out, id, wire::ASK_ROOM_ROSTER, room));
        }
        id
    }

    /// `cluster-out` sent node ask `id` to `nodes` nodes; false when it is not a roster ask of
    /// a waiting room.
    pub(super) fn roster_ask_sent(&self, id: u64, nodes: usize) -> bool {
        let done = {
            let mut waits = self.rooms.roster_waits.borrow_mut();
            let Some(room) = waits.by_id.get(&id).cloned() else {
                return false;
            };
            let Some(wait) = waits.by_room.get_mut(&room) else {
                return false;
            };
            wait.nodes = Some(nodes);
            wait.done()
        };
        if done {
            self.release_roster_wait(id);
        }
        true
    }

    /// Lets the ops waiting on roster ask `id` go on (every node answered, or the wait ended).
    fn release_roster_wait(&self, id: u64) {
        let wait = {
            let mut waits = self.rooms.roster_waits.borrow_mut();
            let Some(room) = waits.by_id.remove(&id) else {
                return;
            };
            waits.by_room.remove(&room).map(|wait| (room, wait))
        };
        let Some((room, wait)) = wait else { return };
        for ask in &wait.asks {
            self.home_ask(ask);
        }
        self.rooms.homes.borrow_mut().untrack_if_empty(&room);
    }

    /// Tells the other nodes that this node's `member` joined or left `room`.
    pub(super) fn share_member(&self, room: &[u8], member: &Member, joined: bool) {
        let Some(cluster) = &self.cluster else { return };
        cluster.with_out(|out| wire::put_room_member(out, joined, room, &on_wire(member)));
    }

    /// `member` as MEMBER and PRESENCE show it: with its node's name in a cluster.
    pub(super) fn member_value(&self, member: &Member) -> shardbus_protocol::container::Value {
        if member.here() {
            return member.value(self.node_name());
        }
        member.value(self.rooms.node_slots.borrow().name(member.node))
    }

    /// A room record of another node (`origin`), for the room's home on this node.
    pub(super) fn room_record_arrived(&self, origin: &[u8], record: &wire::Record<'_>) {
        let Ok(node) = std::str::from_utf8(origin) else {
            return;
        };
        let node: Box<str> = node.into();
        let (room, remote) = match *record {
            wire::Record::RoomMember {
                joined,
                room,
                member,
            } => {
                let Some(member) = remote_member(&member) else {
                    return;
                };
                let remote = if joined {
                    Remote::Joined { node, member }
                } else {
                    Remote::Left {
                        node,
                        conn: member.conn,
                    }
                };
                (room, remote)
            }
            wire::Record::RoomRoster { room, members, .. } => {
                let members = wire::roster_members(members)
                    .filter_map(|m| remote_member(&m))
                    .collect();
                (room, Remote::Roster { node, members })
            }
            wire::Record::NodeAsk { body, .. } => (body, Remote::RosterAsked { node }),
            _ => return,
        };
        self.ask_home(Ask {
            room: room.into(),
            conn: 0,
            op_id: 0,
            kind: AskKind::Remote(Box::new(remote)),
            counted: false,
        });
    }

    /// What another node told of its members of `room` (this shard is the room's home).
    pub(super) fn remote_members(&self, room: &[u8], remote: &Remote) {
        let options = self.rooms.options(room).unwrap_or_default();
        let events = options.join_leave;
        match remote {
            Remote::Joined { node, member } => {
                let Some(slot) = self.rooms.node_slots.borrow_mut().slot_of(node) else {
                    return;
                };
                let member = Member {
                    node: slot,
                    ..member.clone()
                };
                let added = self
                    .rooms
                    .homes
                    .borrow_mut()
                    .join_remote(room, member)
                    .cloned();
                if let Some(member) = added.filter(|_| events) {
                    let payload = encode(&self.member_value(&member));
                    self.member_event(room, u64::MAX, RoomFlags::JOINED, payload);
                }
            }
            Remote::Left { node, conn } => {
                let Some(slot) = self.rooms.node_slots.borrow().find(node) else {
                    return;
                };
                let key = Member {
                    node: slot,
                    conn: *conn,
                    ..Member::default()
                }
                .key();
                let left = self.rooms.homes.borrow_mut().leave(room, key);
                if let Some((member, _)) = left.filter(|_| events) {
                    let payload = encode(&self.member_value(&member));
                    self.member_event(room, u64::MAX, RoomFlags::LEFT, payload);
                }
            }
            Remote::Roster { node, members } => {
                self.roster_arrived(room, node, members, events);
            }
            Remote::RosterAsked { node } => {
                let Some(cluster) = &self.cluster else { return };
                let homes = self.rooms.homes.borrow();
                let members = homes.members_here(room).map(on_wire);
                cluster.with_out(|out| {
                    wire::put_room_roster(out, node.as_bytes(), room, members);
                });
            }
        }
    }

    fn roster_arrived(&self, room: &[u8], node: &str, members: &[Member], events: bool) {
        let slot = self.rooms.node_slots.borrow_mut().slot_of(node);
        if let Some(slot) = slot {
            let members = members
                .iter()
                .map(|m| Member {
                    node: slot,
                    ..m.clone()
                })
                .collect();
            let (joined, left) = self
                .rooms
                .homes
                .borrow_mut()
                .replace_remote(room, slot, members);
            if events {
                for (flags, member) in joined
                    .iter()
                    .map(|m| (RoomFlags::JOINED, m))
                    .chain(left.iter().map(|m| (RoomFlags::LEFT, m)))
                {
                    let payload = encode(&self.member_value(member));
                    self.member_event(room, u64::MAX, flags, payload);
                }
            }
        }
        let done = {
            let mut waits = self.rooms.roster_waits.borrow_mut();
            waits.by_room.get_mut(room).and_then(|wait| {
                wait.answered += 1;
                wait.done().then_some(wait.id)
            })
        };
        if let Some(id) = done {
            self.release_roster_wait(id);
        }
    }

    /// Another node went: its members leave every room kept here.
    pub(super) fn node_gone(&self, node: &str) {
        let Some(slot) = self.rooms.node_slots.borrow().find(node) else {
            return;
        };
        let gone = self.rooms.homes.borrow_mut().forget_node(slot);
        for (room, member) in &gone {
            if self.rooms.options(room).is_some_and(|o| o.join_leave) {
                let payload = encode(&self.member_value(member));
                self.member_event(room, u64::MAX, RoomFlags::LEFT, payload);
            }
        }
        self.rooms.node_slots.borrow_mut().free(slot);
        // A room waiting for rosters stays kept, even with no member left.
        let waiting: Vec<Box<[u8]>> = self
            .rooms
            .roster_waits
            .borrow()
            .by_room
            .keys()
            .cloned()
            .collect();
        for room in waiting {
            self.rooms.homes.borrow_mut().track(&room);
        }
        if !gone.is_empty() {
            tracing::debug!(shard = self.id, node, members = gone.len(), "node gone");
        }
    }

    /// Another node came (or came back): asked for its members of every room kept here.
    pub(super) fn node_came(&self, node: &str) {
        let rooms: Vec<Box<[u8]>> = self.rooms.homes.borrow().kept().map(Into::into).collect();
        if !rooms.is_empty() {
            tracing::debug!(shard = self.id, node, rooms = rooms.len(), "node came");
        }
        for room in rooms {
            if self
                .rooms
                .options(&room)
                .is_some_and(|options| self.shares_members(&options))
            {
                self.ask_rosters(&room);
            }
        }
    }
}

/// This node's member as nodes tell each other.
fn on_wire(member: &Member) -> wire::Member<'_> {
    wire::Member {
        conn: member.conn,
        user: member.user.as_bytes(),
        name: member.name.as_bytes(),
        info: &member.info,
    }
}

/// Another node's member as the home keeps it (its slot is set by the home); `None` when its
/// fields are not what a node sends.
fn remote_member(member: &wire::Member<'_>) -> Option<Member> {
    if !Member::valid_conn(member.conn) {
        return None;
    }
    Some(Member {
        conn: member.conn,
        node: 0,
        sid: 0,
        user: std::str::from_utf8(member.user).ok()?.into(),
        name: std::str::from_utf8(member.name).ok()?.into(),
        info: member.info.into(),
    })
}
