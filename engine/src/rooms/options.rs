//! Room options by topic pattern (`[[rooms]]` in the configuration, Centrifugo's channel
//! namespaces): which subjects are rooms, and what each keeps. A subject takes the options of
//! the first pattern that matches it; a subject no pattern matches is a plain topic.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use shardbus_protocol::topic;

use crate::fast_map::FastMap;

/// Subjects a [`RoomIndex`] remembers the answer for before it starts over.
const CACHED_SUBJECTS: usize = 16 * 1024;

/// Who may publish to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishPolicy {
    /// Anyone the publish permission allows.
    #[default]
    Any,
    /// Only connections that joined the room (others get `NOT_A_MEMBER`).
    Members,
}

/// One `[[rooms]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomConfig {
    /// The subjects these options apply to (wildcards allowed): `chat.>`, `devices.*.state`.
    pub pattern: String,
    /// Keep the member list, so `presence` can answer.
    pub presence: bool,
    /// Tell members when another member joins or leaves (MEMBER frames).
    pub join_leave: bool,
    /// Publications each room keeps (0: no history).
    pub history_size: u32,
    /// How long a publication stays in history, milliseconds (0: until pushed out by newer ones
    /// or by `history.max_bytes`).
    pub history_ttl_ms: u64,
    /// A member may recover what it missed from a `(epoch, offset)` when it joins again.
    pub recover: bool,
    /// A new member receives the room's last publication at once (the last known value).
    pub retain: bool,
    /// Members a room may have (0: no limit but the connection limit).
    pub max_members: u32,
    /// Who may publish: `any` (the publish permission decides) or `members`.
    pub publish: PublishPolicy,
    /// Whether anonymous connections may join.
    pub anonymous: bool,
}

impl Default for RoomConfig {
    fn default() -> RoomConfig {
        RoomConfig {
            pattern: String::new(),
            presence: true,
            join_leave: false,
            history_size: 0,
            history_ttl_ms: 0,
            recover: false,
            retain: false,
            max_members: 0,
            publish: PublishPolicy::Any,
            anonymous: true,
        }
    }
}

/// The most publications one room's history may keep.
pub const MAX_HISTORY_SIZE: u32 = 1_000_000;

impl RoomConfig {
    /// Publications the room keeps: its history, or the last one alone when it only retains.
    pub fn kept(&self) -> u32 {
        if self.history_size == 0 && self.retain {
            1
        } else {
            self.history_size
        }
    }

    /// How much of the room's history to keep.
    pub(crate) fn retention(&self) -> crate::history::Retention {
        crate::history::Retention {
            size: self.kept(),
            ttl: (self.history_ttl_ms > 0)
                .then(|| std::time::Duration::from_millis(self.history_ttl_ms)),
        }
    }

    /// Whether the room's publications are stamped with positions by its home shard (it keeps
    /// some of them), and so all go through that shard in one order.
    pub fn ordered(&self) -> bool {
        self.kept() > 0
    }

    /// What is wrong with this entry, as (key under the entry, rule).
    pub fn problem(&self, max_topic_len: usize) -> Option<(&'static str, &'static str)> {
        if topic::validate_pattern(self.pattern.as_bytes(), max_topic_len).is_err() {
            return Some(("pattern", "a valid topic pattern (PROTOCOL.md §4)"));
        }
        if self.history_size > MAX_HISTORY_SIZE {
            return Some(("history_size", "at most 1000000"));
        }
        if self.recover && self.history_size == 0 {
            return Some(("recover", "needs history_size above 0"));
        }
        if self.history_ttl_ms > 0 && self.history_size == 0 && !self.retain {
            return Some(("history_ttl_ms", "needs history_size above 0, or retain"));
        }
        None
    }
}

/// The configured rooms, with a bounded cache of subject → matching entry.
#[derive(Debug, Default)]
pub(crate) struct RoomIndex {
    rooms: Vec<Rc<RoomConfig>>,
    cache: FastMap<Box<[u8]>, Option<u16>>,
}

impl RoomIndex {
    pub(crate) fn new(rooms: &[RoomConfig]) -> RoomIndex {
        RoomIndex {
            rooms: rooms.iter().cloned().map(Rc::new).collect(),
            cache: FastMap::default(),
        }
    }

    /// Whether any room is configured: when not, nothing of rooms costs anything.
    pub(crate) fn any(&self) -> bool {
        !self.rooms.is_empty()
    }

    /// The options of `subject`, when it is a room.
    pub(crate) fn find(&mut self, subject: &[u8]) -> Option<Rc<RoomConfig>> {
        let index = match self.cache.get(subject) {
            Some(&index) => index,
            None => {
                let text = std::str::from_utf8(subject).unwrap_or("");
                let index = self
                    .rooms
                    .iter()
                    .position(|room| topic::matches(&room.pattern, text))
                    .and_then(|i| u16::try_from(i).ok());
                if self.cache.len() >= CACHED_SUBJECTS {
                    self.cache.clear();
                }
                self.cache.insert(subject.into(), index);
                index
            }
        }?;
        self.rooms.get(usize::from(index)).cloned()
    }
}

/// The shard that owns room `subject`: its members, its order and its history. The same on every
/// shard (and every run): FNV-1a of the subject.
pub(crate) fn home_shard(subject: &[u8], shards: usize) -> u16 {
    let hash = subject.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards.max(1) as u64) as u16
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn room(pattern: &str) -> RoomConfig {
        RoomConfig {
            pattern: pattern.into(),
            ..RoomConfig::default()
        }
    }

    #[test]
    fn the_first_matching_pattern_wins() {
        let mut index = RoomIndex::new(&[
            RoomConfig {
                history_size: 10,
                ..room("chat.vip.*")
            },
            room("chat.>"),
        ]);
        assert_eq!(index.find(b"chat.vip.lounge").unwrap().history_size, 10);
        assert_eq!(index.find(b"chat.lobby").unwrap().pattern, "chat.>");
        assert!(index.find(b"orders.new").is_none());
        // Answered from the cache the second time, the same.
        assert!(index.find(b"orders.new").is_none());
        assert_eq!(index.find(b"chat.lobby").unwrap().pattern, "chat.>");
    }

    #[test]
    fn the_home_is_stable_and_spread() {
        assert_eq!(home_shard(b"chat.lobby", 4), home_shard(b"chat.lobby", 4));
        let homes: std::collections::HashSet<u16> = (0..64)
            .map(|i| home_shard(format!("room.{i}").as_bytes(), 4))
            .collect();
        assert_eq!(homes.len(), 4);
        assert_eq!(home_shard(b"anything", 1), 0);
    }

    #[test]
    fn entries_that_cannot_work_are_refused() {
        assert_eq!(room("a..b").problem(256).unwrap().0, "pattern");
        let recover_without_history = RoomConfig {
            recover: true,
            ..room("a.>")
        };
        assert_eq!(recover_without_history.problem(256).unwrap().0, "recover");
        let retain_only = RoomConfig {
            retain: true,
            ..room("a.>")
        };
        assert!(retain_only.problem(256).is_none());
        assert!(retain_only.ordered());
        assert!(!room("a.>").ordered());
    }
}
