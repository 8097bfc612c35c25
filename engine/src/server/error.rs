//! `StartError`: why a server did not start, each with the remedy in its message.

use std::net::SocketAddr;

use crate::memlock::MemlockError;

/// A failure before the server could serve.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The locked-memory limit is below what the shards need.
    #[error(transparent)]
    Memlock(#[from] MemlockError),
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {reason} (is another server using the port? choose another \
         with {flag})"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The flag that sets it: `--listen` or `--http-listen`.
        flag: &'static str,
        /// What the OS said.
        reason: String,
    },
    /// TLS could not be set up from the configured files.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The `[auth]` section cannot be used.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    /// The Redis bridge could not start.
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeError),
    /// A shard's executor could not be created.
    #[error("cannot start shard {shard}: {reason}")]
    Runtime {
        /// The shard.
        shard: usize,
        /// What glommio said.
        reason: String,
    },
    /// The mesh between the shards could not be built.
    #[error("cannot connect the shards: {reason}")]
    Mesh {
        /// What the OS said.
        reason: String,
    },
    /// `[http] static_dir` could not be read, or passes a bound.
    #[error("http.static_dir: {reason}")]
    StaticFiles {
        /// What went wrong.
        reason: String,
    },
    /// A shard's thread ended abnormally.
    #[error("shard {shard} failed: {reason}")]
    ShardFailed {
        /// The shard.
        shard: usize,
        /// What happened.
        reason: String,
    },
}
