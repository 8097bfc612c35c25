//! System events: what happens in the broker, published on `$sys.events.<kind>` (PROTOCOL.md
//! §3.13) for the dashboard and for operators' tools — connections coming and going, refused
//! credentials, slow consumers cut, kicks, service instances up, down and unhealthy, rooms
//! made and gone, reloads applied and refused.
//!
//! A shard builds an event only when someone on some shard subscribes to its subject (one
//! cached routing lookup), gathers a poll cycle's events of a kind into one publication (a
//! container list), and delivers them only to identities allowed to see them: admins, and
//! the roles `[events] roles` names. No client may publish on `$sys.` subjects.

use serde::{Deserialize, Serialize};

/// The prefix every server-reserved subject has.
pub const RESERVED_PREFIX: &[u8] = b"$sys.";

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A connection completed its handshake.
    Connect,
    /// A connection closed, with the code that closed it.
    Disconnect,
    /// A HELLO (or an HTTP request) was refused its credentials.
    AuthFailure,
    /// A connection was cut as a slow consumer.
    SlowConsumer,
    /// An administrator closed a connection.
    Kick,
    /// A service instance registered.
    ServiceUp,
    /// A service instance went (deregistered, its connection closed, or silent too long).
    ServiceDown,
    /// A service instance missed its heartbeats.
    ServiceUnhealthy,
    /// A room got its first member.
    RoomCreated,
    /// A room lost its last member.
    RoomRemoved,
    /// A configuration reload was applied.
    Reload,
    /// A configuration reload was refused (the running one stays).
    ConfigRefused,
}

impl EventKind {
    /// Every kind, in a fixed order (the index of each is its buffer's).
    pub const ALL: [EventKind; 12] = [
        EventKind::Connect,
        EventKind::Disconnect,
        EventKind::AuthFailure,
        EventKind::SlowConsumer,
        EventKind::Kick,
        EventKind::ServiceUp,
        EventKind::ServiceDown,
        EventKind::ServiceUnhealthy,
        EventKind::RoomCreated,
        EventKind::RoomRemoved,
        EventKind::Reload,
        EventKind::ConfigRefused,
    ];

    /// The subject its events are published on.
    pub fn subject(self) -> &'static str {
        match self {
            EventKind::Connect => "$sys.events.connect",
            EventKind::Disconnect => "$sys.events.disconnect",
            EventKind::AuthFailure => "$sys.events.auth_failure",
            EventKind::SlowConsumer => "$sys.events.slow_consumer",
            EventKind::Kick => "$sys.events.kick",
            EventKind::ServiceUp => "$sys.events.service_up",
            EventKind::ServiceDown => "$sys.events.service_down",
            EventKind::ServiceUnhealthy => "$sys.events.service_unhealthy",
            EventKind::RoomCreated => "$sys.events.room_created",
            EventKind::RoomRemoved => "$sys.events.room_removed",
            EventKind::Reload => "$sys.events.reload",
            EventKind::ConfigRefused => "$sys.events.config_refused",
        }
    }

    /// The last token of its subject.
    pub fn name(self) -> &'static str {
        self.subject().rsplit('.').next().unwrap_or_default()
    }

    /// Its place in [`EventKind::ALL`].
    pub fn index(self) -> usize {
        EventKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default()
    }
}

/// `[events]`: who may see system events, and how many a shard gathers per cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Roles besides admin identities that may subscribe to `$sys.events.>`.
    pub roles: Vec<String>,
    /// Events of one kind a shard gathers between two publications; past it they are dropped
    /// and counted (`events_dropped`).
    pub max_batch: u32,
}

impl Default for EventsConfig {
    fn default() -> EventsConfig {
        EventsConfig {
            roles: Vec::new(),
            max_batch: 10_000,
        }
    }
}

/// Whether `subject` is one the server keeps for itself (`$sys.` and below).
#[inline]
pub fn is_reserved(subject: &[u8]) -> bool {
    subject.starts_with(RESERVED_PREFIX)
}
