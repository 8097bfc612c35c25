//! Server-side membership: a backend puts a user's connections into a room or takes them out
//! (`POST /api/v1/rooms/{room}/members`, `DELETE /api/v1/rooms/{room}/members/{user}`, as
//! Socket.IO's `socket.join` and `socket.leave`), on every shard. A server-side membership's
//! sid is the server's, from 2^52 up (a client's own counter never gets there, and the number
//! stays exact in JSON); the connection learns of it from the JOIN its room's home answers
//! (op_id 0), and of a removal from a LEAVE carrying that sid.

use std::rc::Rc;

use shardbus_protocol::{Fields, RoomFields};

use super::Shard;
use super::conn::{Conn, Outgoing};
use crate::mesh::batch::Record;
use crate::routing::ShardId;

/// The first sid the server gives a server-side membership.
pub(crate) const SERVER_SIDS: u64 = 1 << 52;

/// A change of a user's memberships, for every shard to apply to its connections of the user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberChange<'a> {
    pub(crate) user: &'a str,
    pub(crate) room: &'a [u8],
    /// Member info for a join (a validated container, or empty).
    pub(crate) info: &'a [u8],
    /// Join (`true`) or remove.
    pub(crate) join: bool,
}

impl Shard {
    /// Applies `change` to this shard's connections of its user; returns how many changed.
    pub(crate) fn change_members(&self, change: MemberChange<'_>) -> usize {
        let conns = self.users.borrow().conns(change.user);
        conns
            .iter()
            .filter_map(|&id| self.conn(id))
            .filter(|conn| {
                if change.join {
                    self.server_join(conn, change.room, change.info)
                } else {
                    self.server_remove(conn, change.room)
                }
            })
            .count()
    }

    /// Joins `conn` to `room` with a sid of the server's, unless it is a member already or at
    /// its limits.
    fn server_join(&self, conn: &Rc<Conn>, room: &[u8], info: &[u8]) -> bool {
        if !self.is_room(room) || self.is_member(conn.id, room) {
            return false;
        }
        let full = self.memberships_of(conn.id) >= self.settings.max_rooms_per_connection as usize
            || conn.subs.borrow().len() >= self.settings.max_subscriptions as usize;
        if full {
            return false;
        }
        let mut sid = self.next_server_sid();
        while conn.subs.borrow().contains_key(sid) {
            sid = self.next_server_sid();
        }
        self.open_membership(conn, room, sid, info, None, None);
        true
    }

    /// Takes `conn` out of `room` and tells it (LEAVE with the membership's sid).
    fn server_remove(&self, conn: &Conn, room: &[u8]) -> bool {
        let Some(sid) = self.leave_room(conn, room) else {
            return false;
        };
        conn.send(&Outgoing {
            topic: room,
            ..Outgoing::bare(
                Fields::Leave(RoomFields {
                    sid,
                    ..RoomFields::default()
                }),
                0,
            )
        });
        true
    }

    /// Applies `change` on every shard of every node; returns the connections changed (`None`
    /// when a shard or node did not answer in time).
    pub(crate) async fn change_members_everywhere(&self, change: MemberChange<'_>) -> Option<u64> {
        let here = self.change_members_on_node(change).await;
        if self.cluster.is_none() {
            return here;
        }
        let body = crate::cluster::wire::membership_body(
            change.join,
            change.user,
            change.room,
            change.info,
        );
        let there = self
            .gather_nodes(crate::cluster::wire::ASK_ROOM_MEMBERSHIP, &body)
            .await;
        let changed: u64 = there.items.iter().filter_map(|n| n.as_u64()).sum();
        here.filter(|_| there.complete).map(|here| here + changed)
    }

    /// Another node's server-side membership change: applied on this node, answered with how
    /// many connections it changed.
    pub(super) fn membership_asked(&self, origin: &[u8], id: u64, body: &[u8]) {
        let body = body.to_vec();
        self.answer_node_ask_later(origin, id, move |shard| async move {
            let Some((join, user, room, info)) = crate::cluster::wire::read_membership_body(&body)
            else {
                return b"[]".to_vec();
            };
            let change = MemberChange {
                user,
                room,
                info,
                join,
            };
            let changed = shard.change_members_on_node(change).await.unwrap_or(0);
            super::cluster_asks::json_answer(&[changed])
        });
    }

    /// Applies `change` on every shard of this node; returns the connections changed (`None`
    /// when a shard did not answer in time).
    async fn change_members_on_node(&self, change: MemberChange<'_>) -> Option<u64> {
        let local = self.change_members(change);
        let part = serde_json::to_vec(&[local]).unwrap_or_default();
        let gathered = self
            .gather_parts(part, |batch, id| {
                let user = batch.put(change.user.as_bytes());
                let room = batch.put(change.room);
                let info = batch.put(change.info);
                batch.push(Record::MembersChange {
                    id,
                    user,
                    room,
                    info,
                    join: change.join,
                });
            })
            .await;
        let changed = gathered.items.iter().filter_map(|n| n.as_u64()).sum();
        gathered.complete.then_some(changed)
    }

    /// Another shard's membership change: applied here, and answered with how many changed.
    pub(super) fn members_change_arrived(&self, from: ShardId, id: u64, change: MemberChange<'_>) {
        let changed = self.change_members(change);
        let part = serde_json::to_vec(&[changed]).unwrap_or_default();
        if let Some(link) = self.link(from) {
            link.with_batch(|batch| {
                let part = batch.put(&part);
                batch.push(Record::ListPart { id, part });
            });
        }
    }
}
