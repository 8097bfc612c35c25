//! The member lists of the rooms a shard is home to: who is in each room (across every shard),
//! how many distinct users, and on which shards they sit (where MEMBER events must go). A room
//! exists from its first join to its last leave.

use std::collections::BTreeMap;

use shardbus_protocol::container::{self, ContainerLimits, Value};

use crate::fast_map::FastMap;
use crate::routing::ShardId;

/// One member: a connection in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The connection (its id names its shard in the top 16 bits).
    pub(crate) conn: u64,
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
    /// The shard that owns the member's connection.
    pub(crate) fn shard(&self) -> ShardId {
        (self.conn >> 48) as ShardId
    }

    /// The member as MEMBER and PRESENCE describe it (PROTOCOL.md §3.11).
    pub(crate) fn value(&self) -> Value {
        let mut fields = vec![
            ("client".to_owned(), Value::U64(self.conn)),
            ("user".to_owned(), Value::Str(self.user.to_string())),
            ("name".to_owned(), Value::Str(self.name.to_string())),
        ];
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

/// Clients and distinct users in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) clients: u64,
    pub(crate) users: u64,
}

#[derive(Debug, Default)]
struct Room {
    /// By connection id: the presence order, and the cursor.
    members: BTreeMap<u64, Member>,
    /// Connections per user: a user with several counts once.
    users: FastMap<Box<str>, u32>,
    /// Members per shard.
    shards: Vec<u32>,
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
        if state.members.contains_key(&member.conn) {
            return Err(Refusal::AlreadyMember);
        }
        if max_members > 0 && state.members.len() >= max_members as usize {
            return Err(Refusal::Full);
        }
        let shard = usize::from(member.shard());
        if state.shards.len() <= shard {
            state.shards.resize(shard + 1, 0);
        }
        if let Some(count) = state.shards.get_mut(shard) {
            *count += 1;
        }
        match state.users.get_mut(&*member.user) {
            Some(count) => *count += 1,
            None => {
                state.users.insert(member.user.clone(), 1);
            }
        }
        state.members.insert(member.conn, member);
        Ok(counts(state))
    }

    /// Removes connection `conn` from `room`; the room goes with its last member.
    pub(crate) fn leave(&mut self, room: &[u8], conn: u64) -> Option<(Member, Counts)> {
        let state = self.rooms.get_mut(room)?;
        let member = state.members.remove(&conn)?;
        if let Some(count) = state.shards.get_mut(usize::from(member.shard())) {
            *count = count.saturating_sub(1);
        }
        if let Some(count) = state.users.get_mut(&*member.user) {
            *count -= 1;
            if *count == 0 {
                state.users.remove(&*member.user);
            }
        }
        let counts = counts(state);
        if state.members.is_empty() {
            self.rooms.remove(room);
        }
        Some((member, counts))
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
            page.last().map_or(0, |m| m.conn)
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

    /// Rooms with members, and members in all.
    pub(crate) fn size(&self) -> (usize, usize) {
        let members = self.rooms.values().map(|r| r.members.len()).sum();
        (self.rooms.len(), members)
    }
}

impl Rooms {
    /// Every room with its counts, in no particular order.
    pub(crate) fn list(&self) -> impl Iterator<Item = (&[u8], Counts)> + '_ {
        self.rooms
            .iter()
            .map(|(name, state)| (&**name, counts(state)))
    }
}

fn counts(state: &Room) -> Counts {
    Counts {
        clients: state.members.len() as u64,
        users: state.users.len() as u64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn member(shard: u64, n: u64, user: &str) -> Member {
        Member {
            conn: (shard << 48) | n,
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
                users: 2
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
                users: 2
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
}
