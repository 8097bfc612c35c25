//! Rooms: topics with options (`[[rooms]]`), members and presence, MEMBER events, history with
//! positions and recovery, retained values. The data structures and decisions live here; the
//! shard's side (ops, the mesh records between a member's shard and the room's home) in
//! `shard/rooms.rs`.
//!
//! **One owner per room.** A room's *home shard* (`home_shard`, a hash of its subject) owns
//! its member list, its order and its history. Joins, leaves and publications to rooms that
//! keep publications go there; it stamps each publication with `(epoch, offset)` and fans it out
//! through the ordinary routing, so members see publications and membership events in one order.

pub(crate) mod asks;
pub(crate) mod members;
pub(crate) mod node_slots;
pub(crate) mod options;
pub(crate) mod positions;

pub use options::{PublishPolicy, RoomConfig};

/// A room answer's container (maps of numbers and short strings, which always encode; an empty
/// payload is the safe fallback).
pub(crate) fn encode(value: &shardbus_protocol::container::Value) -> Vec<u8> {
    value.to_binary().unwrap_or_default()
}
