//! Room history (PROTOCOL.md §3.11, ARCHITECTURE.md *History*): the publications a room
//! keeps, each at an `(epoch, offset)`. `memory` holds them on the room's home shard; `redis`
//! is the store of record when `history.backend = "redis"` (one Redis Stream per room, offsets
//! given by a script so that every node writing a room shares one order), reached through the
//! bridge thread (`crate::bridge`) and never waited for by a shard.

pub(crate) mod memory;
pub(crate) mod redis;

use std::time::Duration;

pub(crate) use memory::MemoryHistory;

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
