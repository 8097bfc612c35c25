//! The shardbus broker engine: configuration, the start-up checks, shards (one pinned glommio
//! executor per core), the cross-shard mesh, routing, sessions and counters. The `shardbus`
//! binary is a thin `main` over [`server::Server`]; tests start the same server in-process.

pub mod auth;
pub mod bridge;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod events;
pub(crate) mod fast_map;
pub(crate) mod foreign_queue;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod history;
pub(crate) mod http;
pub mod inproc;
pub mod latency;
pub mod logging;
pub mod memlock;
pub(crate) mod mesh;
pub mod metrics;
pub mod rooms;
pub mod routing;
pub mod server;
pub mod services;
pub(crate) mod shard;
pub mod tls;
pub(crate) mod transport;
pub(crate) mod ws;

pub use server::{Server, StartError};
