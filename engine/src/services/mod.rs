//! Services: instances that connections register with their endpoints (PROTOCOL.md §3.12),
//! what the configuration says about them, the replica of the registry every shard keeps,
//! balancing a request over a service's instances, and what is measured of each.
//!
//! The shard side (registering, heartbeats and their deadlines, sending a request to the
//! picked instance) is `shard/services.rs`.

pub(crate) mod balance;
pub(crate) mod change;
pub(crate) mod flow;
pub mod options;
pub(crate) mod registration;
pub(crate) mod registry;
pub(crate) mod stats;

pub use options::{RegistryConfig, ServiceConfig, Strategy};
