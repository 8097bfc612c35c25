//! What the process sets up before its shards start, for the server and the in-process engine
//! bench alike: the core list, locked memory, transparent huge pages, the open-files limit, the
//! listening port's availability, and each shard's executor.

use std::net::SocketAddr;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use super::StartError;
use crate::config::Config;
use crate::memlock;

/// What the process needs before shards start: the core list (read once, before any pinning:
/// `get_core_ids` returns the calling thread's mask), the shard count, enough locked memory,
/// and transparent huge pages off.
pub(crate) fn prepare_process(config: &Config) -> Result<(Vec<usize>, usize), StartError> {
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let shards = config.shard_count(cores.len());
    memlock::check(memlock::current_limit(), config.runtime.io_memory, shards)?;
    // glommio allocates each shard's io_memory through the global allocator; mimalloc
    // backs it with transparent huge pages, and the kernel then counts every registered
    // buffer as a whole 2 MiB page: 18 MiB pinned for 2 shards of 1 MiB instead of 6
    // (VmPin, perf/RESULTS.md). Without THP the memlock arithmetic above is exact.
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(%error, "cannot disable transparent huge pages; locked memory use may exceed the check");
    }
    Ok((cores, shards))
}

/// The core shard `id` runs on, when the core list is known.
pub(crate) fn core_of(cores: &[usize], id: usize) -> Option<usize> {
    (!cores.is_empty())
        .then(|| cores.get(id % cores.len()).copied())
        .flatten()
}

/// The executor for shard `id`: pinned to `core`, with the configured io memory and idle policy.
pub(crate) fn shard_executor(
    id: usize,
    core: Option<usize>,
    config: &Config,
) -> LocalExecutorBuilder {
    let placement = core.map_or(Placement::Unbound, Placement::Fixed);
    let builder = LocalExecutorBuilder::new(placement)
        .name(&format!("shard-{id}"))
        .io_memory(config.runtime.io_memory)
        .ring_depth(config.runtime.ring_depth as usize);
    if config.runtime.spin_before_park_us == 0 {
        return builder;
    }
    builder.spin_before_park(Duration::from_micros(config.runtime.spin_before_park_us))
}

/// Every connection is a file descriptor, and the usual soft limit (1,024) is far below what a
/// broker holds; the hard limit is what the administrator allows. Raise the soft limit to it,
/// as nats-server does through Go's runtime.
pub(super) fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the open-files limit"),
    }
}

/// glommio binds with SO_REUSEPORT, which would let shardbus share a port silently with
/// another process of the same user. A plain bind first turns that into a clear error.
pub(super) fn refuse_taken_port(addr: SocketAddr, flag: &'static str) -> Result<(), StartError> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|error| StartError::Bind {
            addr,
            flag,
            reason: error.to_string(),
        })
}
