//! The memory history: a bounded ring per room and one byte cap for all of a shard's rooms;
//! past the cap the oldest rooms' rings are dropped (and counted), never the server's memory
//! grown. With `history.backend = "memory"` it is the history; with `"redis"` it is the home
//! shard's copy of each room's stream, filled by loads and by appends whose positions Redis
//! gave (`append_at`), and the whole history again during an outage.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::{Position, Query, ReadOutcome, Retention};
use crate::fast_map::FastMap;

/// Bytes counted for a room's ring besides its publications (key, ring, bookkeeping).
const ROOM_OVERHEAD: usize = 160;
/// Bytes counted for one stored publication besides its sections.
const ENTRY_OVERHEAD: usize = 64;

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
    /// A history holding at most `max_bytes` (publications, keys and bookkeeping).
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

    /// A random epoch, never 0 (a client sends epoch 0 for "no position").
    pub(crate) fn new_epoch(&mut self) -> u64 {
        self.generations += 1;
        let mut hasher = self.epochs.build_hasher();
        hasher.write_u64(self.generations);
        hasher.finish().max(1)
    }

    /// Whether `room` has a ring (with the Redis backend: whether its stream is loaded).
    pub(crate) fn contains(&self, room: &[u8]) -> bool {
        self.rings.contains_key(room)
    }

    /// Replaces the room's ring by a new one at `epoch` whose last offset is `last`.
    fn make_ring(&mut self, room: &[u8], keep: Retention, epoch: u64, last: u64) {
        self.forget(room);
        self.generations += 1;
        let cost = ROOM_OVERHEAD + room.len();
        self.rings.insert(
            room.into(),
            Ring {
                epoch,
                last,
                entries: VecDeque::new(),
                ttl: keep.ttl,
                bytes: cost,
                generation: self.generations,
            },
        );
        self.order.push_back((room.into(), self.generations));
        // Rings made again (loads, restarts) leave stale entries behind: keep them few.
        if self.order.len() > 2 * self.rings.len() + 64 {
            let rings = &self.rings;
            self.order.retain(|(room, generation)| {
                rings.get(room).is_some_and(|r| r.generation == *generation)
            });
        }
        self.bytes += cost;
        self.evict_over_cap(room);
    }

    /// The room's ring, made (with a new epoch) if it has none, its expired entries dropped.
    fn ring(&mut self, room: &[u8], keep: Retention, now: Instant) -> Option<&mut Ring> {
        if !self.rings.contains_key(room) {
            let epoch = self.new_epoch();
            self.make_ring(room, keep, epoch, 0);
        }
        let freed = self.rings.get_mut(room).map_or(0, |ring| {
            ring.ttl = keep.ttl;
            ring.drop_expired(now)
        });
        self.bytes -= freed;
        self.rings.get_mut(room)
    }

    /// Drops the room's ring, if it has one.
    pub(crate) fn forget(&mut self, room: &[u8]) {
        if let Some(ring) = self.rings.remove(room) {
            self.bytes -= ring.bytes;
        }
    }

    /// Starts the room over at a new epoch (its publications dropped): the history goes on in
    /// memory when Redis could not keep it.
    pub(crate) fn restart(&mut self, room: &[u8], keep: Retention) {
        let epoch = self.new_epoch();
        self.make_ring(room, keep, epoch, 0);
    }

    /// Makes the room's ring the stream Redis gave: `epoch`, last offset `last`, and the kept
    /// publications oldest first (`at` each publication's time).
    pub(crate) fn load<'a>(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        epoch: u64,
        last: u64,
        entries: impl Iterator<Item = Loaded<'a>>,
    ) {
        self.make_ring(room, keep, epoch, last);
        for entry in entries {
            if entry.offset <= last {
                self.push(
                    room,
                    keep,
                    entry.at,
                    entry.offset,
                    entry.headers,
                    entry.payload,
                    entry.flags,
                );
            }
        }
        if let Some(ring) = self.rings.get_mut(room) {
            ring.last = last;
            let freed = ring.drop_expired(now);
            self.bytes -= freed;
        }
    }

    /// Stores a publication and gives it the next offset.
    pub(crate) fn append(
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
        let position = Position {
            epoch: ring.epoch,
            offset: ring.last + 1,
        };
        self.push(room, keep, now, position.offset, headers, payload, flags);
        position
    }

    /// Stores a publication at the position Redis gave it. `false` (nothing stored): the room
    /// has no ring, or the position does not follow its last one (another node wrote the
    /// stream, or the ring was dropped): its stream must be loaded again.
    #[allow(clippy::too_many_arguments)] // a publication's parts and where it goes
    pub(crate) fn append_at(
        &mut self,
        room: &[u8],
        keep: Retention,
        now: Instant,
        position: Position,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) -> bool {
        let follows = self
            .ring(room, keep, now)
            .is_some_and(|ring| ring.epoch == position.epoch && ring.last + 1 == position.offset);
        if follows {
            self.push(room, keep, now, position.offset, headers, payload, flags);
        }
        follows
    }

    /// Adds a publication at `offset` to the room's ring (which exists) and counts it.
    #[allow(clippy::too_many_arguments)] // a publication's parts and where it goes
    fn push(
        &mut self,
        room: &[u8],
        keep: Retention,
        at: Instant,
        offset: u64,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        let Some(ring) = self.rings.get_mut(room) else {
            return;
        };
        ring.last = offset;
        // A ring over its size (a reload made it smaller) drops its oldest first.
        let mut freed = 0;
        while ring.entries.len() > (keep.size as usize).max(1) {
            if let Some(old) = ring.entries.pop_front() {
                freed += old.cost();
            }
        }
        // A full ring gives its oldest entry's buffer to the newest, so a busy room allocates
        // nothing per publication once its ring has filled.
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
            offset,
            at,
            flags,
            headers_len: headers.len(),
            bytes,
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
    }

    /// The room's epoch and last offset, starting an empty history if it has none.
    pub(crate) fn top(&mut self, room: &[u8], keep: Retention, now: Instant) -> Position {
        self.ring(room, keep, now)
            .map_or(Position::default(), |ring| Position {
                epoch: ring.epoch,
                offset: ring.last,
            })
    }

    /// Calls `each` with the publications `query` asks for, in the order it asks.
    pub(crate) fn read(
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

    /// Drops what outlived its retention everywhere.
    pub(crate) fn expire(&mut self, now: Instant) {
        let mut freed = 0;
        for ring in self.rings.values_mut() {
            freed += ring.drop_expired(now);
        }
        self.bytes -= freed;
    }

    /// Bytes held, and rooms whose history was dropped for the byte cap so far.
    pub(crate) fn usage(&self) -> (usize, u64) {
        (self.bytes, self.evicted)
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

/// One publication of a loaded stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loaded<'a> {
    pub(crate) offset: u64,
    pub(crate) at: Instant,
    pub(crate) flags: u8,
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
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

    #[test]
    fn positions_given_elsewhere_are_kept_only_when_they_follow() {
        let mut h = MemoryHistory::new(1 << 20);
        let now = Instant::now();
        let entries = [(3u64, b"three"), (4, b"four!")];
        let loaded = entries.iter().map(|(offset, payload)| Loaded {
            offset: *offset,
            at: now,
            flags: 0,
            headers: b"",
            payload: &payload[..],
        });
        h.load(b"r", KEEP, now, 77, 4, loaded);
        assert!(h.contains(b"r"));
        assert_eq!(
            h.top(b"r", KEEP, now),
            Position {
                epoch: 77,
                offset: 4
            }
        );
        let at = |offset| Position { epoch: 77, offset };
        assert!(h.append_at(b"r", KEEP, now, at(5), b"", b"five", 0));
        // Another writer took 6: 7 does not follow, nor does another epoch.
        assert!(!h.append_at(b"r", KEEP, now, at(7), b"", b"seven", 0));
        assert!(!h.append_at(
            b"r",
            KEEP,
            now,
            Position {
                epoch: 78,
                offset: 6
            },
            b"",
            b"",
            0
        ));
        assert_eq!(offsets(&mut h, b"r", last(10)).0, vec![3, 4, 5]);
        h.restart(b"r", KEEP);
        let restarted = h.top(b"r", KEEP, now);
        assert_ne!(restarted.epoch, 77);
        assert_eq!(restarted.offset, 0);
        h.forget(b"r");
        assert!(!h.contains(b"r"));
        assert_eq!(h.usage().0, 0);
    }

    #[test]
    fn rings_made_again_and_again_leave_no_growing_bookkeeping() {
        let mut h = MemoryHistory::new(1 << 20);
        for _ in 0..10_000 {
            h.restart(b"r", KEEP);
        }
        assert!(h.order.len() <= 64 + 2, "{}", h.order.len());
    }
}
