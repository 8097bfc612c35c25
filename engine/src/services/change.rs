//! `ServiceChange`: what an instance's own shard tells every other shard, so their replicas
//! of the registry stay equal to its own (changes only, in the order they happened, as the
//! mesh keeps each pair of shards in order).

use std::time::Instant;

use shardbus_protocol::Health;

use super::registration::Registration;
use super::registry::Registry;
use crate::routing::ShardId;

/// One change of the registry.
#[derive(Debug, Clone)]
pub(crate) enum ServiceChange {
    /// Instance `id` registered on `shard`, connection `conn`.
    Up {
        id: u64,
        shard: ShardId,
        conn: u64,
        registration: Registration,
    },
    /// Its health or load changed.
    Health { id: u64, health: Health, load: u32 },
    /// It is gone (deregistered, its connection closed, or silent past `remove_after`).
    Down { id: u64 },
    /// A shard's breaker took it out of rotation until `until`.
    Tripped { id: u64, until: Instant },
}

impl Registry {
    /// Applies a change another shard sent.
    pub(crate) fn apply(&mut self, change: ServiceChange) {
        match change {
            ServiceChange::Up {
                id,
                shard,
                conn,
                registration,
            } => self.up(id, shard, conn, Box::new(registration)),
            ServiceChange::Health { id, health, load } => self.set_health(id, health, load),
            ServiceChange::Down { id } => {
                self.down(id);
            }
            ServiceChange::Tripped { id, until } => self.trip(id, until),
        }
    }
}
