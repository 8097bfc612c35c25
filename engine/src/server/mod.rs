//! `Server`: starts the shards — one pinned glommio executor each, each with its own
//! SO_REUSEPORT listener on the same address and its ends of the mesh — and stops them.
//! Used by the `shardbus` binary and, in-process, by the tests.

mod error;
mod shared;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

pub use error::StartError;
pub use shared::Shared;

use crate::config::Config;
use crate::memlock;
use crate::mesh;
use crate::routing::ShardId;
use crate::shard::{self, Settings, Shard};

/// A running server.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    handles: Vec<ExecutorJoinHandle<()>>,
    cores: Vec<Option<usize>>,
}

impl Server {
    /// Checks locked memory, then starts every shard and waits until each listens.
    ///
    /// # Errors
    /// [`StartError`] naming what to change: too little locked memory, an address in use, an
    /// executor that could not be created.
    pub fn start(config: &Config) -> Result<Server, StartError> {
        // get_core_ids returns the calling thread's mask: read it once, before any pinning.
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
        refuse_taken_port(config.listen)?;
        raise_open_files_limit();

        let shared = Arc::new(Shared::new(shards, config.limits.max_connections));
        let settings = Settings::new(config, shards);
        let mut ends = mesh::build(shards).into_iter();
        let mut server = Server {
            local_addr: config.listen,
            shared,
            handles: Vec::with_capacity(shards),
            cores: Vec::with_capacity(shards),
        };
        for id in 0..shards {
            let core = (!cores.is_empty())
                .then(|| cores.get(id % cores.len()).copied())
                .flatten();
            let started = server.start_shard(
                id,
                core,
                config,
                settings.clone(),
                ends.next().unwrap_or_default(),
            );
            if let Err(error) = started {
                server.stop();
                return Err(error);
            }
        }
        Ok(server)
    }

    fn start_shard(
        &mut self,
        id: usize,
        core: Option<usize>,
        config: &Config,
        settings: Settings,
        ends: mesh::MeshEnds,
    ) -> Result<(), StartError> {
        let placement = core.map_or(Placement::Unbound, Placement::Fixed);
        let mut builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(config.runtime.io_memory);
        if config.runtime.spin_before_park_us > 0 {
            builder =
                builder.spin_before_park(Duration::from_micros(config.runtime.spin_before_park_us));
        }
        let (bound_tx, bound_rx) = mpsc::sync_channel(1);
        // Shard 0 binds the configured address (port 0 picks one); the rest bind what it got.
        let addr = self.local_addr;
        let shared = Arc::clone(&self.shared);
        let handle = builder
            .spawn(move || async move {
                let listener = match glommio::net::TcpListener::bind(addr) {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = bound_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = bound_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                let shard = Rc::new(Shard::new(id as ShardId, settings, shared));
                shard::run(shard, listener, ends).await;
            })
            .map_err(|e| StartError::Runtime {
                shard: id,
                reason: e.to_string(),
            })?;
        self.handles.push(handle);
        self.cores.push(core);
        match bound_rx.recv() {
            Ok(Ok(bound)) => {
                self.local_addr = bound;
                Ok(())
            }
            Ok(Err(reason)) => Err(StartError::Bind { addr, reason }),
            Err(_) => Err(StartError::Runtime {
                shard: id,
                reason: "the shard thread ended during start-up".to_owned(),
            }),
        }
    }

    /// The address clients connect to (with the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The core each shard is pinned to (`None`: not pinned).
    pub fn cores(&self) -> &[Option<usize>] {
        &self.cores
    }

    /// What the shards share: counters, connection count, shutdown flag.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Asks the shards to drain (DRAIN, grace period, close) and stop; `join` waits for it.
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }

    /// Waits until every shard has stopped.
    ///
    /// # Errors
    /// [`StartError::ShardFailed`] if a shard's thread panicked.
    pub fn join(self) -> Result<(), StartError> {
        let mut result = Ok(());
        for (shard, handle) in self.handles.into_iter().enumerate() {
            if let Err(error) = handle.join() {
                result = Err(StartError::ShardFailed {
                    shard,
                    reason: error.to_string(),
                });
            }
        }
        result
    }

    fn stop(&mut self) {
        self.shared.request_shutdown();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Every connection is a file descriptor, and the usual soft limit (1,024) is far below what a
/// broker holds; the hard limit is what the administrator allows. Raise the soft limit to it,
/// as nats-server does through Go's runtime.
fn raise_open_files_limit() {
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
fn refuse_taken_port(addr: SocketAddr) -> Result<(), StartError> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|error| StartError::Bind {
            addr,
            reason: error.to_string(),
        })
}
