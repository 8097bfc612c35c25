//! Room history: the publications a room keeps, each at an `(epoch, offset)`, behind a trait so
//! that a Redis Streams backend can stand beside the memory one. The memory backend keeps a
//! bounded ring per room and one byte cap for all of a shard's rooms; past the cap the oldest
//! rooms' histories are dropped (and counted), never the server's memory grown.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::fast_map::FastMap;

/// Bytes counted for a room's ring besides its publications (key, ring, bookkeeping).
const ROOM_OVERHEAD: usize = 160;
/// Bytes counted for one stored publication besides its sections.
const ENTRY_OVERHEAD: usize = 64;

/// Where a publication sits in its room's history. Offsets rise by one per publication; the
/// epoch changes whenever the history was lost, so an old position cannot be mistaken for one in
/// the new history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) epoch: u64,
    pub(crate) offset: u64,
}

/// How much of a room's history to keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    /// Publications kept.
    pub(crate) size: u32,
    /// How long each is kept (`None`: until pushed out).
    pub(crate) ttl: Option<Duration>,
}

/// One stored publication.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) offset: u64,
    at: Instant,
    pub(crate) flags: u8,
    headers_len: usize,
    /// Headers (the publisher's, without positions) then payload.
    bytes: Vec<u8>,
}

impl Stored {
    pub(crate) fn headers(&self) -> &[u8] {
        self.bytes.get(..self.headers_len).unwrap_or_default()
    }

    pub(crate) fn payload(&self) -> &[u8] {
        self.bytes.get(self.headers_len..).unwrap_or_default()
    }

    fn cost(&self) -> usize {
        self.bytes.capacity() + ENTRY_OVERHEAD
    }
}

/// Which publications a read wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query {
    /// Only those after this position; a position of another epoch, or one that has left the
    /// window, gives none and says so.
    pub(crate) after: Option<Position>,
    /// At most this many.
    pub(crate) limit: usize,
    /// Newest first.
    pub(crate) reverse: bool,
}

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    /// The history's epoch and last offset now.
    pub(crate) top: Position,
    /// With `after`: every publication after it was still kept (and so was read, up to the
    /// limit): the reader missed nothing.
    pub(crate) continuous: bool,
}

/// Where a shard keeps the history of the rooms it is home to.
pub(crate) trait HistoryBackend {
    /// Stores a publication and gives it its position.
    fn append(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) -> Position;

    /// The room's epoch and last offset, starting an empty history if it has none.
    fn top(&mut self, room: &[u8], keep: Retention, now: Instant) -> Position;

    /// Calls `each` with the publications `query` asks for, in the order it asks.
    fn read(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        query: Query,
        each: &mut dyn FnMut(&Stored),
    ) -> ReadOutcome;

    /// Drops what outlived its retention everywhere.
    fn expire(&mut self, now: Instant);

    /// Bytes held, and rooms whose history was dropped for the byte cap so far.
    fn usage(&self) -> (usize, u64);
}

#[derive(Debug)]
struct Ring {
    epoch: u64,
    last: u64,
    entries: VecDeque<Stored>,
    ttl: Option<Duration>,
    bytes: usize,
    /// Which creation of this room's ring it is, so a stale eviction-order entry is skipped.
    generation: u64,
}

impl Ring {
    fn drop_expired(&mut self, now: Instant) -> usize {
        let Some(ttl) = self.ttl else { return 0 };
        let mut freed = 0;
        while let Some(front) = self.entries.front() {
            if now.saturating_duration_since(front.at) < ttl {
                break;
            }
            freed += front.cost();
            self.entries.pop_front();
        }
        self.bytes -= freed;
        freed
    }
}

/// The memory backend: lost with the process (a restart starts new epochs).
#[derive(Debug)]
pub(crate) struct MemoryHistory {
    rings: FastMap<Box<[u8]>, Ring>,
    /// Rooms in the order their rings were made: the eviction order.
    order: VecDeque<(Box<[u8]>, u64)>,
    bytes: usize,
    max_bytes: usize,
    evicted: u64,
    generations: u64,
    epochs: std::collections::hash_map::RandomState,
}

impl MemoryHistory {
    /// A backend holding at most `max_bytes` (publications, keys and bookkeeping).
    pub(crate) fn new(max_bytes: usize) -> MemoryHistory {
        MemoryHistory {
            rings: FastMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
            evicted: 0,
            generations: 0,
            epochs: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The room's ring, made (with a new epoch) if it has none, its expired entries dropped.
    fn ring(&mut self, room: &[u8], keep: Retention, now: Instant) -> Option<&mut Ring> {
        if !self.rings.contains_key(room) {
            self.generations += 1;
            let mut hasher = self.epochs.build_hasher();
            hasher.write_u64(self.generations);
            // Never 0: a client sends epoch 0 for "no position".
            let epoch = hasher.finish().max(1);
            let cost = ROOM_OVERHEAD + room.len();
            self.rings.insert(
                room.into(),
                Ring {
                    epoch,
                    last: 0,
                    entries: VecDeque::new(),
                    ttl: keep.ttl,
                    bytes: cost,
                    generation: self.generations,
                },
            );
            self.order.push_back((room.into(), self.generations));
            self.bytes += cost;
            self.evict_over_cap(room);
        }
        let freed = self.rings.get_mut(room).map_or(0, |ring| {
            ring.ttl = keep.ttl;
            ring.drop_expired(now)
        });
        self.bytes -= freed;
        self.rings.get_mut(room)
    }

    /// Drops the oldest rooms' rings (never `current`'s) while over the byte cap.
    fn evict_over_cap(&mut self, current: &[u8]) {
        let mut skipped = None;
        while self.bytes > self.max_bytes {
            let Some((room, generation)) = self.order.pop_front() else {
                break;
            };
            if &*room == current {
                skipped = Some((room, generation));
                continue;
            }
            if self
                .rings
                .get(&room)
                .is_some_and(|r| r.generation == generation)
                && let Some(ring) = self.rings.remove(&room)
            {
                self.bytes -= ring.bytes;
                self.evicted += 1;
            }
        }
        if let Some(entry) = skipped {
            self.order.push_front(entry);
        }
    }
}

impl HistoryBackend for MemoryHistory {
    fn append(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) -> Position {
        let Some(ring) = self.ring(room, keep, now) else {
            return Position::default();
        };
        ring.last += 1;
        // A full ring gives its oldest entry's buffer to the newest, so a busy room allocates
        // nothing per publication once its ring has filled.
        // A ring over its size (a reload made it smaller) drops its oldest first.
        let mut freed = 0;
        while ring.entries.len() > (keep.size as usize).max(1) {
            if let Some(old) = ring.entries.pop_front() {
                freed += old.cost();
            }
        }
        let oldest = if ring.entries.len() >= keep.size as usize {
            ring.entries.pop_front()
        } else {
            None
        };
        let (mut bytes, freed) = oldest.map_or((Vec::new(), freed), |old| {
            let cost = old.cost();
            (old.bytes, freed + cost)
        });
        bytes.clear();
        bytes.extend_from_slice(headers);
        bytes.extend_from_slice(payload);
        let stored = Stored {
            offset: ring.last,
            at: now,
            flags,
            headers_len: headers.len(),
            bytes,
        };
        let position = Position {
            epoch: ring.epoch,
            offset: ring.last,
        };
        let added = if keep.size > 0 {
            let cost = stored.cost();
            ring.entries.push_back(stored);
            cost
        } else {
            0
        };
        ring.bytes = ring.bytes + added - freed;
        self.bytes = self.bytes + added - freed;
        self.evict_over_cap(room);
        position
    }

    fn top(&mut self, room: &[u8], keep: Retention, now: Instant) -> Position {
        self.ring(room, keep, now)
            .map_or(Position::default(), |ring| Position {
                epoch: ring.epoch,
                offset: ring.last,
            })
    }

    fn read(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        query: Query,
        each: &mut dyn FnMut(&Stored),
    ) -> ReadOutcome {
        let Some(ring) = self.ring(room, keep, now) else {
            return ReadOutcome {
                top: Position::default(),
                continuous: false,
            };
        };
        let top = Position {
            epoch: ring.epoch,
            offset: ring.last,
        };
        let oldest_kept = ring.entries.front().map_or(ring.last + 1, |e| e.offset);
        let (from, continuous) = match query.after {
            None => (0, false),
            Some(after) if after.epoch != ring.epoch || after.offset > ring.last => {
                (u64::MAX, false)
            }
            // Continuous when the first publication after `after` is still kept (or there
            // is none yet).
            Some(after) => (after.offset + 1, after.offset + 1 >= oldest_kept),
        };
        let wanted = ring.entries.iter().filter(|e| e.offset >= from);
        if query.reverse {
            wanted.rev().take(query.limit).for_each(&mut *each);
        } else if query.after.is_some() {
            wanted.take(query.limit).for_each(&mut *each);
        } else {
            // The last `limit`, oldest first.
            let count = ring.entries.len();
            let skip = count.saturating_sub(query.limit);
            ring.entries.iter().skip(skip).for_each(each);
        }
        ReadOutcome { top, continuous }
    }

    fn expire(&mut self, now: Instant) {
        let mut freed = 0;
        for ring in self.rings.values_mut() {
            freed += ring.drop_expired(now);
        }
        self.bytes -= freed;
    }

    fn usage(&self) -> (usize, u64) {
        (self.bytes, self.evicted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    const KEEP: Retention = Retention { size: 3, ttl: None };

    fn offsets(history: &mut MemoryHistory, room: &[u8], query: Query) -> (Vec<u64>, ReadOutcome) {
        let mut seen = Vec::new();
        let outcome = history.read(room, KEEP, Instant::now(), query, &mut |e| {
            seen.push(e.offset);
        });
        (seen, outcome)
    }

    fn last(limit: usize) -> Query {
        Query {
            after: None,
            limit,
            reverse: false,
        }
    }

    #[test]
    fn offsets_rise_and_the_ring_keeps_the_newest() {
        let mut h = MemoryHistory::new(1 << 20);
        let now = Instant::now();
        let first = h.append(b"r", KEEP, now, b"", b"one", 0);
        assert_eq!(first.offset, 1);
        assert_ne!(first.epoch, 0);
        for payload in [&b"two"[..], b"three", b"four"] {
            h.append(b"r", KEEP, now, b"", payload, 0);
        }
        assert_eq!(offsets(&mut h, b"r", last(10)).0, vec![2, 3, 4]);
        assert_eq!(offsets(&mut h, b"r", last(2)).0, vec![3, 4]);
        let newest_first = Query {
            reverse: true,
            ..last(2)
        };
        assert_eq!(offsets(&mut h, b"r", newest_first).0, vec![4, 3]);
        assert_eq!(h.top(b"r", KEEP, now), Position { offset: 4, ..first });
    }

    #[test]
    fn reading_after_a_position_says_whether_anything_was_lost() {
        let mut h = MemoryHistory::new(1 << 20);
        let now = Instant::now();
        let mut positions = Vec::new();
        for i in 0..5u8 {
            positions.push(h.append(b"r", KEEP, now, b"", &[i], 0));
        }
        let after = |p: Position| Query {
            after: Some(p),
            limit: 100,
            reverse: false,
        };
        // Kept: 3, 4, 5.
        let (seen, outcome) = offsets(&mut h, b"r", after(positions[1]));
        assert_eq!((seen, outcome.continuous), (vec![3, 4, 5], true));
        let (seen, outcome) = offsets(&mut h, b"r", after(positions[0]));
        assert_eq!((seen, outcome.continuous), (vec![3, 4, 5], false));
        let (seen, outcome) = offsets(&mut h, b"r", after(positions[4]));
        assert_eq!((seen, outcome.continuous), (vec![], true));
        let other_epoch = Position {
            epoch: positions[0].epoch ^ 1,
            offset: 2,
        };
        let (seen, outcome) = offsets(&mut h, b"r", after(other_epoch));
        assert_eq!((seen, outcome.continuous), (vec![], false));
        let beyond = Position {
            offset: 99,
            ..positions[0]
        };
        assert!(!offsets(&mut h, b"r", after(beyond)).1.continuous);
    }

    #[test]
    fn the_byte_cap_drops_the_oldest_rooms_and_a_new_epoch_follows() {
        let mut h = MemoryHistory::new(4096);
        let now = Instant::now();
        let first = h.append(b"room.0", KEEP, now, b"", &[0; 500], 0);
        for i in 1..20 {
            h.append(format!("room.{i}").as_bytes(), KEEP, now, b"", &[0; 500], 0);
        }
        let (bytes, evicted) = h.usage();
        assert!(bytes <= 4096, "{bytes}");
        assert!(evicted > 0);
        let again = h.top(b"room.0", KEEP, now);
        assert_ne!(again.epoch, first.epoch);
        assert_eq!(again.offset, 0);
    }

    #[test]
    fn publications_expire_with_their_ttl() {
        let keep = Retention {
            size: 10,
            ttl: Some(Duration::from_secs(60)),
        };
        let mut h = MemoryHistory::new(1 << 20);
        let start = Instant::now();
        h.append(b"r", keep, start, b"", b"old", 0);
        h.append(b"r", keep, start + Duration::from_secs(50), b"", b"new", 0);
        h.expire(start + Duration::from_secs(70));
        let mut seen = Vec::new();
        h.read(
            b"r",
            keep,
            start + Duration::from_secs(70),
            last(10),
            &mut |e| {
                seen.push(e.payload().to_vec());
            },
        );
        assert_eq!(seen, vec![b"new".to_vec()]);
    }
}
