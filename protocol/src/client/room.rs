//! Rooms in the blocking client (PROTOCOL.md §3.11): [`Room`] (a membership: its publications
//! and its MEMBER events), and what JOIN, PRESENCE and HISTORY answer.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::container::Value;

use super::error::ClientError;
use super::message::Message;
use super::subscription::Subscription;

/// What to join with.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// Member info others see in MEMBER events and presence.
    pub info: Option<Value>,
    /// Recover from this (epoch, offset): the last publication seen.
    pub from: Option<(u64, u64)>,
}

/// The server's answer to a JOIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The room keeps publications: `epoch` and `offset` mean something.
    pub positioned: bool,
    /// The room history's epoch.
    pub epoch: u64,
    /// The room's last offset at the join.
    pub offset: u64,
    /// Publications that follow before the live stream (recovered or retained).
    pub count: u32,
    /// Recovery was asked for and nothing was missed.
    pub recovered: bool,
    /// Members of the room, this one included.
    pub clients: u64,
    /// Distinct identities among them.
    pub users: u64,
}

/// Another member joined or left.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberEvent {
    /// `true`: joined; `false`: left.
    pub joined: bool,
    /// `client`, `user`, `name`, `info`.
    pub member: Value,
}

/// A membership of one room. Its publications arrive as [`Message`]s (with their positions in
/// the `sb-epoch` and `sb-offset` headers), other members' arrivals and departures as
/// [`MemberEvent`]s. After a reconnect the client joins again from the last position it saw.
/// Dropping it leaves the room.
pub struct Room {
    pub(crate) name: String,
    pub(crate) joined: Joined,
    pub(crate) messages: Subscription,
    pub(crate) events: Receiver<MemberEvent>,
}

impl Room {
    /// The room's subject.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the JOIN was answered with.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The membership's subscription id.
    pub fn sid(&self) -> u64 {
        self.messages.sid()
    }

    /// Waits up to `timeout` for the room's next publication.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, ClientError> {
        self.messages.recv_timeout(timeout)
    }

    /// Waits up to `timeout` for another member to join or leave.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn next_event(&self, timeout: Duration) -> Result<MemberEvent, ClientError> {
        self.events.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => ClientError::Timeout,
            RecvTimeoutError::Disconnected => ClientError::Closed,
        })
    }

    /// Leaves the room now.
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn leave(self) -> Result<(), ClientError> {
        self.messages.unsubscribe()
    }
}

/// A room frame's container payload as a value (`Null` when it does not decode).
pub(crate) fn payload_value(payload: &[u8]) -> Value {
    crate::container::view::decode(payload, &crate::container::ContainerLimits::default())
        .map(|v| v.to_owned_value())
        .unwrap_or(Value::Null)
}

/// The `clients` and `users` counts of a JOIN or PRESENCE map (0 for one it lacks).
pub(crate) fn counts(value: &Value) -> (u64, u64) {
    let count = |key: &str| match value.get(key) {
        Some(Value::U64(n)) => *n,
        _ => 0,
    };
    (count("clients"), count("users"))
}

/// A backend's join of this connection, as the reader found it, until the application takes
/// it as a [`Room`].
pub(crate) struct ServerJoin {
    pub(crate) name: String,
    pub(crate) fields: crate::RoomFields,
    /// The JOIN's counts: clients, users.
    pub(crate) counts: (u64, u64),
    pub(crate) messages: Receiver<Message>,
    pub(crate) events: Receiver<MemberEvent>,
    pub(crate) dropped: Arc<AtomicU64>,
}

/// A page of a room's members.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// Members of the room.
    pub clients: u64,
    /// Distinct identities among them.
    pub users: u64,
    /// This page: maps with `client`, `user`, `name`, `info`.
    pub members: Vec<Value>,
    /// The cursor for the next page, when there is one.
    pub cursor: Option<u64>,
}

/// What a room kept.
pub struct History {
    /// The history's epoch.
    pub epoch: u64,
    /// Its last offset.
    pub offset: u64,
    /// The publications asked for, each with its position headers.
    pub publications: Vec<Message>,
}

/// Which publications a HISTORY asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    /// At most this many (0: all the room keeps, up to the server's page limit).
    pub limit: u32,
    /// Only those after this (epoch, offset).
    pub after: Option<(u64, u64)>,
    /// Newest first.
    pub reverse: bool,
}
