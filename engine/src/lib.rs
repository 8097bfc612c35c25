//! The shardbus broker engine. So far: configuration (file, environment, flags) and the
//! start-up checks that must pass before any shard starts. Shards, the cross-shard mesh,
//! routing and sessions are issue #3's next steps.

pub mod config;
pub mod memlock;
pub mod routing;
