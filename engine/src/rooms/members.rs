//! The member lists of the rooms a shard is home to: who is in each room (across every shard,
//! and, in a cluster, across every node), how many distinct users, and on which of this node's
//! shards they sit (where MEMBER events must go). A room exists from its first join to its last
//! leave; in a cluster, also while it waits for the other nodes' members (`track`).
//!
//! Another node's members are kept under a *slot*, a small number this shard gives each node
//! it has heard members from (0 is this node): a member's key is its slot above its connection
//! id, so one node's connection ids never meet another's, and the presence cursor is the key.

use std::collections::BTreeMap;

use shardbus_protocol::container::{self, ContainerLimits, Value};

use crate::fast_map::FastMap;
use crate::routing::ShardId;

/// Connection ids stay below this (a shard number of at most 10 bits above 48 bits of
/// counter): the bits above are the member's slot.
const CONN_BITS: u32 = 58;

/// Other nodes a shard keeps members of at once (slots 1 to 63).
pub(crate) const MAX_NODE_SLOTS: usize = 63;

/// One member: a connection in a room.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Member {
    /// The connection (its id names its shard in the top 16 bits), on its node.
    pub(crate) conn: u64,
    /// The member's node: 0 for this one, else the slot of another.
    pub(crate) node: u8,
    /// The connection's subscription for the room.
    pub(crate) sid: u64,
    /// The identity's name (`""` for anonymous).
    pub(crate) user: Box<str>,
    /// The name the client gave in HELLO.
    pub(crate) name: Box<str>,
    /// The client info given at join: a validated binary container, or empty.
    pub(crate) info: Box<[u8]>,
}

impl Member {
    /// The shard that owns the member's connection (this node's members only).
    pub(crate) fn shard(&self) -> ShardId {
        (self.conn >> 48) as ShardId
    }

    /// Whether the member's connection is on this node.
    pub(crate) fn here(&self) -> bool {
        self.node == 0
    }

    /// The member's place in its room: its slot above its connection id (the presence cursor).
    pub(crate) fn key(&self) -> u64 {
        (u64::from(self.node) << CONN_BITS) | (self.conn & ((1 << CONN_BITS) - 1))
    }

    /// Whether `conn` can be another node's connection id (it leaves room for the slot).
    pub(crate) fn valid_conn(conn: u64) -> bool {
        conn >> CONN_BITS == 0
    }

    /// The member as MEMBER and PRESENCE describe it (PROTOCOL.md §3.11); `node` names its
    /// node in a cluster.
    pub(crate) fn value(&self, node: Option<&str>) -> Value {
        let mut fields = vec![
            ("client".to_owned(), Value::U64(self.conn)),
            ("user".to_owned(), Value::Str(self.user.to_string())),
            ("name".to_owned(), Value::Str(self.name.to_string())),
        ];
        if let Some(node) = node {
            fields.push(("node".to_owned(), Value::Str(node.to_owned())));
        }
        if !self.info.is_empty() {
            // Validated at join; a failure here could only drop the info, never the member.
            let limits = ContainerLimits {
                max_size: self.info.len(),
                ..ContainerLimits::default()
            };
            if let Ok(info) = container::decode(&self.info, &limits) {
                fields.push(("info".to_owned(), info.to_owned_value()));
            }
        }
        Value::Map(fields)
    }
}

/// Clients and distinct users in a room (on every node), and its members on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) clients: u64,
    pub(crate) users: u64,
    pub(crate) here: u64,
}

#[derive(Debug, Default)]
struct Room {
    /// By key: the presence order, and the cursor.
    members: BTreeMap<u64, Member>,
    /// Connections per user: a user with several counts once.
    users: FastMap<Box<str>, u32>,
    /// This node's members per shard.
    shards: Vec<u32>,
    /// This node's members.
    here: u64,
}

impl Counts {
    /// As JOIN's answer and PRESENCE carry them: `clients`, `users`.
    pub(crate) fn value(self) -> Value {
        Value::Map(vec![
            ("clients".to_owned(), Value::U64(self.clients)),
            ("users".to_owned(), Value::U64(self.users)),
        ])
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    AlreadyMember,
}

/// The rooms this shard is home to.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    rooms: FastMap<Box<[u8]>, Room>,
    /// Rooms with members on this node.
    here: u64,
    /// This node's members in all.
    members_here_total: u64,
}

impl Rooms {
    /// Adds `member` to `room` (made if new) unless it has `max_members` (0: no limit).
    pub(crate) fn join(
        &mut self,
        room: &[u8],
        member: Member,
        max_members: u32,
    ) -> Result<Counts, Refusal> {
        if !self.rooms.contains_key(room) {
            self.rooms.insert(room.into(), Room::default());
        }
        let Some(state) = self.rooms.get_mut(room) else {
            return Err(Refusal::Full);
        };
        if state.members.contains_key(&member.key()) {
            return Err(Refusal::AlreadyMember);
        }
        if max_members > 0 && state.members.len() >= max_members as usize {
            return Err(Refusal::Full);
        }
        let here = member.here();
        add(state, member);
        if here {
            self.members_here_total += 1;
            self.here += u64::from(state.here == 1);
        }
        Ok(counts(state))
    }

    /// Removes the member keyed `key` (this node's connection id, or a slot above another's)
    /// from `room`; the room goes with its last member.
    pub(crate) fn leave(&mut self, room: &[u8], key: u64) -> Option<(Member, Counts)> {
        let state = self.rooms.get_mut(room)?;
        let member = state.members.remove(&key)?;
        forget(state, &member);
        if member.here() {
            self.members_here_total = self.members_here_total.saturating_sub(1);
            self.here = self.here.saturating_sub(u64::from(state.here == 0));
        }
        let counts = counts(state);
        if state.members.is_empty() {
            self.rooms.remove(room);
        }
        Some((member, counts))
    }

    /// Keeps `room` while it has no member yet: it waits for the other nodes' members.
    pub(crate) fn track(&mut self, room: &[u8]) {
        if !self.rooms.contains_key(room) {
            self.rooms.insert(room.into(), Room::default());
        }
    }

    /// Whether this shard keeps `room`'s members (it has some, or waits for them).
    pub(crate) fn tracks(&self, room: &[u8]) -> bool {
        self.rooms.contains_key(room)
    }

    /// Drops `room` if it has no member (a wait for the other nodes found none).
    pub(crate) fn untrack_if_empty(&mut self, room: &[u8]) {
        if self.rooms.get(room).is_some_and(|r| r.members.is_empty()) {
            self.rooms.remove(room);
        }
    }

    /// Another node's member joined a room this shard keeps (ignored when it does not, or the
    /// member is there already). Returns the member as added.
    pub(crate) fn join_remote(&mut self, room: &[u8], member: Member) -> Option<&Member> {
        let state = self.rooms.get_mut(room)?;
        let key = member.key();
        if member.here() || state.members.contains_key(&key) {
            return None;
        }
        add(state, member);
        state.members.get(&key)
    }

    /// Makes `members` the whole of slot `node`'s members in `room` (when this shard keeps it);
    /// returns who joined and who left by it.
    pub(crate) fn replace_remote(
        &mut self,
        room: &[u8],
        node: u8,
        members: Vec<Member>,
    ) -> (Vec<Member>, Vec<Member>) {
        let Some(state) = self.rooms.get_mut(room) else {
            return (Vec::new(), Vec::new());
        };
        let wanted: BTreeMap<u64, Member> = members
            .into_iter()
            .filter(|m| m.node == node && node != 0)
            .map(|m| (m.key(), m))
            .collect();
        let gone: Vec<u64> = slot_keys(state, node)
            .filter(|key| !wanted.contains_key(key))
            .collect();
        let mut left = Vec::new();
        for key in gone {
            if let Some(member) = state.members.remove(&key) {
                forget(state, &member);
                left.push(member);
            }
        }
        let mut joined = Vec::new();
        for (key, member) in wanted {
            if !state.members.contains_key(&key) {
                joined.push(member.clone());
                add(state, member);
            }
        }
        (joined, left)
    }

    /// Removes slot `node`'s members from every room (the node is gone); returns them with
    /// their rooms. Rooms left with no member go.
    pub(crate) fn forget_node(&mut self, node: u8) -> Vec<(Box<[u8]>, Member)> {
        let mut gone = Vec::new();
        for (name, state) in self.rooms.iter_mut() {
            let keys: Vec<u64> = slot_keys(state, node).collect();
            for key in keys {
                if let Some(member) = state.members.remove(&key) {
                    forget(state, &member);
                    gone.push((name.clone(), member));
                }
            }
        }
        self.rooms.retain(|_, state| !state.members.is_empty());
        gone
    }

    /// This node's members of `room`.
    pub(crate) fn members_here(&self, room: &[u8]) -> impl Iterator<Item = &Member> + '_ {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|state| state.members.range(..1 << CONN_BITS).map(|(_, m)| m))
    }

    /// The rooms this shard keeps.
    pub(crate) fn kept(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.rooms.keys().map(|name| &**name)
    }

    /// Clients and users in `room` (zero when it has no members).
    pub(crate) fn counts(&self, room: &[u8]) -> Counts {
        self.rooms.get(room).map(counts).unwrap_or_default()
    }

    /// Up to `limit` members after connection id `cursor`, and the cursor for the next page
    /// (0 when this one reaches the end).
    pub(crate) fn page(&self, room: &[u8], cursor: u64, limit: usize) -> (Vec<&Member>, u64) {
        let Some(state) = self.rooms.get(room) else {
            return (Vec::new(), 0);
        };
        let mut page: Vec<&Member> = state
            .members
            .range(cursor.saturating_add(1)..)
            .map(|(_, m)| m)
            .take(limit + 1)
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map_or(0, |m| m.key())
        } else {
            0
        };
        (page, next)
    }

    /// The shards with members in `room`.
    pub(crate) fn shards(&self, room: &[u8]) -> impl Iterator<Item = ShardId> + '_ {
        self.rooms.get(room).into_iter().flat_map(|state| {
            state
                .shards
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(shard, _)| shard as ShardId)
        })
    }

    /// Rooms with members on this node, and this node's members in all.
    pub(crate) fn size(&self) -> (u64, u64) {
        (self.here, self.members_here_total)
    }
}

impl Rooms {
    /// Every room with members on this node, with this node's counts, in no particular order.
    pub(crate) fn list(&self) -> impl Iterator<Item = (&[u8], Counts)> + '_ {
        self.rooms
            .iter()
            .filter(|(_, state)| state.here > 0)
            .map(|(name, state)| {
                let mut users: Vec<&str> = state
                    .members
                    .range(..1 << CONN_BITS)
                    .map(|(_, m)| &*m.user)
                    .collect();
                users.sort_unstable();
                users.dedup();
                let here = Counts {
                    clients: state.here,
                    users: users.len() as u64,
                    here: state.here,
                };
                (&**name, here)
            })
    }
}

fn counts(state: &Room) -> Counts {
    Counts {
        clients: state.members.len() as u64,
        users: state.users.len() as u64,
        here: state.here,
    }
}

/// The keys of slot `node`'s members.
fn slot_keys(state: &Room, node: u8) -> impl Iterator<Item = u64> + '_ {
    let first = u64::from(node) << CONN_BITS;
    let end = first | ((1 << CONN_BITS) - 1);
    state.members.range(first..=end).map(|(key, _)| *key)
}

fn add(state: &mut Room, member: Member) {
    if member.here() {
        let shard = usize::from(member.shard());
        if state.shards.len() <= shard {
            state.shards.resize(shard + 1, 0);
        }
        if let Some(count) = state.shards.get_mut(shard) {
            *count += 1;
        }
        state.here += 1;
    }
    match state.users.get_mut(&*member.user) {
        Some(count) => *count += 1,
        None => {
            state.users.insert(member.user.clone(), 1);
        }
    }
    state.members.insert(member.key(), member);
}

fn forget(state: &mut Room, member: &Member) {
    if member.here() {
        if let Some(count) = state.shards.get_mut(usize::from(member.shard())) {
            *count = count.saturating_sub(1);
        }
        state.here = state.here.saturating_sub(1);
    }
    if let Some(count) = state.users.get_mut(&*member.user) {
        *count -= 1;
        if *count == 0 {
            state.users.remove(&*member.user);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn member(shard: u64, n: u64, user: &str) -> Member {
        Member {
            conn: (shard << 48) | n,
            node: 0,
            sid: 1,
            user: user.into(),
            name: "".into(),
            info: Box::new([]),
        }
    }

    #[test]
    fn users_count_once_and_rooms_go_with_their_last_member() {
        let mut rooms = Rooms::default();
        rooms.join(b"r", member(0, 1, "ann"), 0).unwrap();
        rooms.join(b"r", member(1, 2, "ann"), 0).unwrap();
        let counts = rooms.join(b"r", member(1, 3, "bob"), 0).unwrap();
        assert_eq!(
            counts,
            Counts {
                clients: 3,
                users: 2,
                here: 3
            }
        );
        assert_eq!(rooms.shards(b"r").collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            rooms.join(b"r", member(0, 1, "ann"), 0),
            Err(Refusal::AlreadyMember)
        );
        rooms.leave(b"r", (1 << 48) | 2).unwrap();
        assert_eq!(
            rooms.counts(b"r"),
            Counts {
                clients: 2,
                users: 2,
                here: 2
            }
        );
        rooms.leave(b"r", 1).unwrap();
        assert_eq!(rooms.shards(b"r").collect::<Vec<_>>(), vec![1]);
        rooms.leave(b"r", (1 << 48) | 3).unwrap();
        assert_eq!(rooms.size(), (0, 0));
        assert!(rooms.leave(b"r", 1).is_none());
    }

    #[test]
    fn a_full_room_refuses_and_pages_follow_the_cursor() {
        let mut rooms = Rooms::default();
        for n in 1..=5 {
            rooms.join(b"r", member(0, n, "u"), 5).unwrap();
        }
        assert_eq!(rooms.join(b"r", member(0, 6, "u"), 5), Err(Refusal::Full));
        let (page, next) = rooms.page(b"r", 0, 2);
        assert_eq!(page.iter().map(|m| m.conn).collect::<Vec<_>>(), vec![1, 2]);
        let (page, next) = rooms.page(b"r", next, 2);
        assert_eq!(page.iter().map(|m| m.conn).collect::<Vec<_>>(), vec![3, 4]);
        let (page, next) = rooms.page(b"r", next, 2);
        assert_eq!(page.iter().map(|m| m.conn).collect::<Vec<_>>(), vec![5]);
        assert_eq!(next, 0);
    }

    fn remote(node: u8, n: u64, user: &str) -> Member {
        Member {
            node,
            ..member(0, n, user)
        }
    }

    #[test]
    fn other_nodes_members_count_in_the_room_and_go_with_their_node() {
        let mut rooms = Rooms::default();
        assert!(rooms.join_remote(b"r", remote(1, 1, "ann")).is_none());
        rooms.join(b"r", member(0, 1, "ann"), 0).unwrap();
        assert!(rooms.join_remote(b"r", remote(1, 1, "ann")).is_some());
        assert!(rooms.join_remote(b"r", remote(1, 1, "ann")).is_none());
        let (joined, left) =
            rooms.replace_remote(b"r", 2, vec![remote(2, 1, "bob"), remote(2, 2, "cy")]);
        assert_eq!((joined.len(), left.len()), (2, 0));
        let counts = rooms.counts(b"r");
        assert_eq!((counts.clients, counts.users, counts.here), (4, 3, 1));
        assert_eq!(rooms.size(), (1, 1));
        // The same connection id on three nodes is three members, paged in key order.
        let (page, next) = rooms.page(b"r", 0, 2);
        assert_eq!(page.iter().map(|m| m.node).collect::<Vec<_>>(), vec![0, 1]);
        let (page, _) = rooms.page(b"r", next, 5);
        assert_eq!(page.iter().map(|m| m.node).collect::<Vec<_>>(), vec![2, 2]);
        let (joined, left) = rooms.replace_remote(b"r", 2, vec![remote(2, 2, "cy")]);
        assert_eq!((joined.len(), left.len()), (0, 1));
        assert_eq!(rooms.forget_node(1).len(), 1);
        assert_eq!(
            rooms.list().map(|(_, c)| c.clients).collect::<Vec<_>>(),
            vec![1]
        );
        rooms.leave(b"r", 1).unwrap();
        // Only another node's member is left: the room stays, not listed as this node's.
        assert!(rooms.tracks(b"r"));
        assert_eq!(rooms.size(), (0, 0));
        assert_eq!(rooms.list().count(), 0);
        assert_eq!(rooms.forget_node(2).len(), 1);
        assert!(!rooms.tracks(b"r"));
        rooms.track(b"q");
        rooms.untrack_if_empty(b"q");
        assert!(!rooms.tracks(b"q"));
    }
}
