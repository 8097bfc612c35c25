//! `Server`: starts the shards — one pinned glommio executor each, each with its own
//! SO_REUSEPORT listener on the same address and its ends of the mesh — and stops them.
//! Used by the `shardbus` binary and, in-process, by the tests.

mod error;
mod listener;
mod process;
mod reloader;
mod shared;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;

use glommio::ExecutorJoinHandle;

pub use error::StartError;
pub(crate) use process::{core_of, prepare_process, shard_executor};
use process::{raise_open_files_limit, refuse_taken_port};
pub use reloader::Reloader;
pub use shared::{Reload, ShardHealth, Shared};

use crate::config::Config;
use crate::http::HttpSettings;
use crate::mesh;
use crate::routing::ShardId;
use crate::shard::{self, Settings, Shard};

/// The flags that set the two listening addresses, for errors that name them.
const LISTEN_FLAG: &str = "--listen";
const HTTP_LISTEN_FLAG: &str = "--http-listen";

/// A running server.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    http_addr: SocketAddr,
    shared: Arc<Shared>,
    handles: Vec<ExecutorJoinHandle<()>>,
    cores: Vec<Option<usize>>,
    /// The longest a drain takes: the grace period, the close wait, a margin.
    drain_bound: std::time::Duration,
}

impl Server {
    /// Checks locked memory, then starts every shard and waits until each listens.
    ///
    /// # Errors
    /// [`StartError`] naming what to change: too little locked memory, an address in use, an
    /// executor that could not be created.
    pub fn start(config: &Config) -> Result<Server, StartError> {
        let (cores, shards) = prepare_process(config)?;
        refuse_taken_port(config.listen, LISTEN_FLAG)?;
        refuse_taken_port(config.http_listen, HTTP_LISTEN_FLAG)?;
        raise_open_files_limit();

        let shared = Arc::new(Shared::new(
            shards,
            config.limits.max_connections,
            std::time::Duration::from_millis(config.runtime.stall_timeout_ms),
        ));
        let settings = Settings::new(config, shards)?;
        if !config.redis.url.is_empty() {
            shared.set_bridge(crate::bridge::Bridge::start(&config.redis, shards)?);
        }
        if config.cluster.enabled() {
            let cluster = crate::cluster::Cluster::start(&config.cluster, &config.redis, shards)?;
            shared.set_cluster(cluster);
        }
        if settings.auth.allows_anonymous() {
            tracing::warn!(
                role = %config.auth.anonymous_role,
                "anonymous access is ON: any client may connect without credentials (auth.anonymous)"
            );
        }
        if settings.auth.http_open() {
            tracing::warn!(
                role = %config.auth.http_open_role,
                "the HTTP API is OPEN: requests without credentials are served (auth.http_open)"
            );
        }
        let files = static_files(config)?;
        let (ends, bells) = mesh::build(shards).map_err(|error| StartError::Mesh {
            reason: error.to_string(),
        })?;
        shared.set_doorbells(bells);
        let mut ends = ends.into_iter();
        let mut server = Server {
            local_addr: config.listen,
            http_addr: config.http_listen,
            shared,
            handles: Vec::with_capacity(shards),
            cores: Vec::with_capacity(shards),
            drain_bound: std::time::Duration::from_millis(config.shutdown.grace_ms)
                + std::time::Duration::from_secs(4),
        };
        for id in 0..shards {
            let core = core_of(&cores, id);
            let started = server.start_shard(
                id,
                core,
                config,
                settings.clone(),
                files.clone(),
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
        files: Option<Arc<crate::http::files::StaticFiles>>,
        ends: mesh::MeshEnds,
    ) -> Result<(), StartError> {
        let builder = shard_executor(id, core, config);
        let (bound_tx, bound_rx) = mpsc::sync_channel(1);
        // Shard 0 binds the configured addresses (port 0 picks one); the rest bind what it got.
        let addrs = (self.local_addr, self.http_addr);
        let shared = Arc::clone(&self.shared);
        let mut http = HttpSettings::new(config);
        http.tls = settings.tls.clone();
        http.files = files;
        let handle = builder
            .spawn(move || async move {
                // Marks the shard stopped however its thread ends, a panic included.
                let _stopped = StoppedOnDrop(Arc::clone(&shared), id);
                let (listener, http_listener) = match bind(addrs) {
                    Ok(listeners) => listeners,
                    Err(error) => {
                        let _ = bound_tx.send(Err(error));
                        return;
                    }
                };
                let bound = (listener.local_addr(), http_listener.local_addr());
                let bound = match bound {
                    (Ok(tcp), Ok(http)) => Ok((tcp, http)),
                    (Err(e), _) => Err(StartError::Bind {
                        addr: addrs.0,
                        flag: LISTEN_FLAG,
                        reason: e.to_string(),
                    }),
                    (_, Err(e)) => Err(StartError::Bind {
                        addr: addrs.1,
                        flag: HTTP_LISTEN_FLAG,
                        reason: e.to_string(),
                    }),
                };
                // Ready before `start` hears of it: a `/readyz` right after start says ready.
                if bound.is_ok() {
                    shared.shard_ready();
                }
                let _ = bound_tx.send(bound);
                let shard = Shard::into_rc(Shard::new(id as ShardId, settings, shared));
                glommio::spawn_local(crate::http::serve(Rc::clone(&shard), http_listener, http))
                    .detach();
                shard::run(shard, listener, ends).await;
            })
            .map_err(|e| StartError::Runtime {
                shard: id,
                reason: e.to_string(),
            })?;
        self.handles.push(handle);
        self.cores.push(core);
        match bound_rx.recv() {
            Ok(Ok((tcp, http))) => {
                self.local_addr = tcp;
                self.http_addr = http;
                Ok(())
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(StartError::Runtime {
                shard: id,
                reason: "the shard thread ended during start-up".to_owned(),
            }),
        }
    }

    /// Where the HTTP edge listens (with the real port when the config said 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
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
        self.shared.stop_bridge();
        result
    }

    /// Waits until every shard has stopped after a shutdown request, or until one stops or
    /// stalls on its own: then it logs why, asks the others to drain, and returns the error
    /// without waiting for a stalled shard, so the process can exit for a supervisor to
    /// restart it.
    ///
    /// # Errors
    /// [`StartError::ShardFailed`] naming the shard and what happened to it.
    pub fn supervise(self) -> Result<(), StartError> {
        const LOOK: std::time::Duration = std::time::Duration::from_millis(250);
        loop {
            if self.shared.all_stopped() {
                return self.join();
            }
            if let Some((shard, health)) = self.shared.failed_shard() {
                let reason = match health.age_ms() {
                    Some(age_ms) => format!("its timers have not run for {age_ms} ms"),
                    None => "its thread ended".to_owned(),
                };
                tracing::error!(shard, %reason, "a shard stopped serving; shutting down");
                self.shared.request_shutdown();
                let deadline = std::time::Instant::now() + self.drain_bound;
                while !self.shared.all_stopped() && std::time::Instant::now() < deadline {
                    std::thread::sleep(LOOK);
                }
                return Err(StartError::ShardFailed { shard, reason });
            }
            std::thread::sleep(LOOK);
        }
    }

    fn stop(&mut self) {
        self.shared.request_shutdown();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
        self.shared.stop_bridge();
    }
}

/// Marks its shard stopped when dropped.
struct StoppedOnDrop(Arc<Shared>, usize);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.shard_stopped(self.1);
    }
}

/// Binds the binary protocol's listener and the HTTP edge's.
fn bind(
    (tcp, http): (SocketAddr, SocketAddr),
) -> Result<(glommio::net::TcpListener, glommio::net::TcpListener), StartError> {
    let listen = |addr: SocketAddr, flag| {
        listener::bind_listener(addr).map_err(|error| StartError::Bind {
            addr,
            flag,
            reason: error.to_string(),
        })
    };
    Ok((listen(tcp, LISTEN_FLAG)?, listen(http, HTTP_LISTEN_FLAG)?))
}

/// `[http] static_dir`'s files, read once before the shards start.
fn static_files(
    config: &Config,
) -> Result<Option<Arc<crate::http::files::StaticFiles>>, StartError> {
    if config.http.static_dir.is_empty() {
        return Ok(None);
    }
    let dir = std::path::Path::new(&config.http.static_dir);
    let files = crate::http::files::StaticFiles::load(dir, &config.http.static_path)
        .map_err(|reason| StartError::StaticFiles { reason })?;
    Ok(Some(Arc::new(files)))
}
