//! The Rust client: the sans-IO [`ClientSession`] and the blocking [`Client`] built on it.

mod backoff;
mod blocking;
mod commands;
mod error;
mod message;
mod options;
mod registry;
mod room;
mod service;
mod session;
mod subscription;
mod tls;
mod transport;

pub use backoff::Backoff;
pub use blocking::Client;
pub use error::ClientError;
pub use message::Message;
pub use options::{ClientOptions, ReconnectPolicy};
pub use room::{History, HistoryQuery, JoinOptions, Joined, MemberEvent, Presence, Room};
pub use service::{Endpoint, Instance, Service, ServiceSpec};
pub use session::{ClientSession, Event, LOCAL_TIMEOUT_GRACE, Phase, SessionOptions};
pub use subscription::Subscription;
pub use tls::ClientTls;
