//! Support for the end-to-end tests: a server started in-process on its own shard threads
//! ([`TestServer`]), clients placed on a chosen shard, a raw frame-level connection
//! ([`Raw`]) for what the client library would never send, and [`wait_until`] for waiting on
//! an event with a generous bound instead of sleeping.
// Test support: a failed expectation must fail the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod cdp;
pub mod cluster;
pub mod http;
pub mod json_ws;
pub mod node;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod services;
pub mod tmux;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shardbus_engine::Server;
use shardbus_engine::config::Config;
use shardbus_engine::metrics::Metric;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientOptions};

pub use http::{HttpResponse, http_request, http_request_as};
pub use raw::Raw;

/// The bound on every wait: far above anything a healthy run needs, even on 2 noisy cores.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A server on 127.0.0.1, an OS-chosen port, 2 shards and test-sized I/O memory.
pub struct TestServer {
    server: Option<Server>,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the HTTP edge listens.
    pub http: SocketAddr,
}

/// A token's SHA-256 digest in hex, as `[[auth.tokens]]` stores it.
pub fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `[[auth.tokens]]` entry: `name` with role `role`, known by `secret`.
pub fn token_config(name: &str, secret: &str, role: &str) -> shardbus_engine::auth::TokenConfig {
    shardbus_engine::auth::TokenConfig {
        name: name.into(),
        sha256: sha256_hex(secret),
        role: role.into(),
        permissions: None,
    }
}

/// The configuration tests start from.
pub fn test_config() -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        shards: 2,
        ..Config::default()
    };
    // Many servers run at once in one test process; keep each one's locked memory small.
    config.runtime.io_memory = 64 << 10;
    config.shutdown.grace_ms = 200;
    // The HTTP edge's tests call it without credentials; `http_auth.rs` closes it again.
    config.auth.http_open = true;
    config
}

impl TestServer {
    /// A server with the test configuration.
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    /// A server configured as `shardbus --config <path> --set <sets>...` would be (a sample's
    /// own file, say), but on free ports with the tests' shards, locked memory and shutdown.
    pub fn from_file(path: &str, sets: &[&str]) -> TestServer {
        use clap::Parser;
        let mut args = vec!["shardbus", "--config", path];
        for set in sets {
            args.extend(["--set", set]);
        }
        let cli = shardbus_engine::config::Cli::parse_from(args);
        let file = shardbus_engine::config::load(&cli, Vec::new()).unwrap();
        TestServer::with(move |config| {
            let ours = std::mem::replace(config, file);
            config.listen = ours.listen;
            config.http_listen = ours.http_listen;
            config.shards = ours.shards;
            config.runtime = ours.runtime;
            config.shutdown = ours.shutdown;
        })
    }

    /// A server with the test configuration changed by `change`.
    pub fn with(change: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config();
        change(&mut config);
        config.validate().unwrap();
        let server = Server::start(&config).unwrap();
        let addr = server.local_addr();
        let http = server.http_addr();
        TestServer {
            server: Some(server),
            addr,
            http,
        }
    }

    /// A metric summed over every shard.
    pub fn total(&self, metric: Metric) -> u64 {
        self.server()
            .shared()
            .metrics()
            .map(|m| m.get(metric))
            .sum()
    }

    /// A metric of one shard.
    pub fn shard_metric(&self, shard: usize, metric: Metric) -> u64 {
        self.server()
            .shared()
            .metrics()
            .nth(shard)
            .map_or(0, |m| m.get(metric))
    }

    /// What each shard is doing, as `/healthz` reports it.
    pub fn health(&self) -> Vec<shardbus_engine::server::ShardHealth> {
        self.server().shared().shard_health()
    }

    /// ERRs sent with `code`, over every shard.
    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.server()
            .shared()
            .metrics()
            .flat_map(|m| m.errors())
            .filter(|(c, _)| *c == code)
            .map(|(_, n)| n)
            .sum()
    }

    /// Asks the shards to drain and stop, and waits for them.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    /// Asks for shutdown without waiting.
    pub fn request_shutdown(&self) {
        self.server().shutdown();
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }

    fn stop_inner(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.join().unwrap();
        }
    }

    /// A client connected to shard `shard`.
    pub fn client_on(&self, shard: u16) -> Client {
        self.client_on_with(shard, ClientOptions::new().no_reconnect())
    }

    /// A client with `options` connected to shard `shard`: reconnects until the kernel's
    /// SO_REUSEPORT spread lands it there (WELCOME says which shard it got).
    pub fn client_on_with(&self, shard: u16, options: ClientOptions) -> Client {
        for _ in 0..1000 {
            let client = Client::connect_with(self.addr, options.clone()).unwrap();
            if client.server_info().map(|w| w.shard) == Some(shard) {
                return client;
            }
            client.close();
        }
        panic!("no connection landed on shard {shard} in 1000 tries");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop_inner();
        } else if let Some(server) = &self.server {
            server.shutdown();
        }
    }
}

/// Answers every request on `subject` with the request's payload reversed, on a thread of its
/// own, until no request comes for `PATIENCE` or `client` fails.
pub fn reversing_responder(client: Client, subject: &str) -> std::thread::JoinHandle<()> {
    let sub = client
        .subscribe(subject)
        .expect("the responder's subscription");
    client
        .flush()
        .expect("the responder's subscription in effect");
    std::thread::spawn(move || {
        while let Ok(request) = sub.recv_timeout(PATIENCE) {
            let mut answer = request.payload().to_vec();
            answer.reverse();
            if client.respond(&request, &answer).is_err() {
                return;
            }
        }
    })
}

/// Polls `done` until it holds, failing the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
