//! `shardbus-cli top` against the real server under a load: `--once --json` and `--once` show
//! the rates per shard and in total, the busiest connection first and the services; the live
//! screen, run in a real terminal (tmux), shows the same, changes its sort key on `s` and
//! quits on `q`.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shardbus_protocol::client::{Client, ClientOptions, ServiceSpec};
use shardbus_tests::tmux::Tmux;
use shardbus_tests::{TestServer, token_config, wait_until};

mod support;
use support::{CLI, cli};

/// The listings `top` reads need an admin identity.
const ADMIN: &str = "admin-secret";

fn server() -> TestServer {
    TestServer::with(|config| {
        config.auth.tokens = vec![token_config("operator", ADMIN, "admin")];
    })
}

/// A client named `loader` publishing (to a subscriber of its own) until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(server: &TestServer) -> Load {
        let client =
            Client::connect_with(server.addr, ClientOptions::new().name("loader")).unwrap();
        let reader = server.client_on(0);
        let sub = reader.subscribe("load.>").unwrap();
        reader.flush().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !running.load(Ordering::Relaxed) {
                client.publish("load.tick", &n.to_le_bytes()).unwrap();
                n += 1;
                if n.is_multiple_of(32) {
                    client.flush().unwrap();
                    while let Ok(Some(_)) = sub.try_recv() {}
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn with_service(server: &TestServer) -> (Client, shardbus_protocol::client::Service) {
    let client = server.client_on(1);
    let spec = ServiceSpec::new("1.0.0")
        .endpoint("echo.say")
        .heartbeat(Duration::from_millis(500));
    let service = client.register("echo", &spec).unwrap();
    (client, service)
}

#[test]
fn top_once_shows_the_rates_the_busiest_connection_and_the_services() {
    let server = server();
    let _service = with_service(&server);
    let _load = Load::start(&server);
    let out = cli(
        &server,
        &[
            "--token",
            ADMIN,
            "--json",
            "top",
            "--once",
            "--interval",
            "0.5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["shards"].as_array().unwrap().len(), 2, "{view}");
    assert!(
        view["total"]["msgs_in_per_sec"].as_f64().unwrap() > 0.0,
        "{view}"
    );
    assert!(
        view["total"]["connections"].as_u64().unwrap() >= 3,
        "{view}"
    );
    let busiest = &view["connections"][0];
    assert_eq!(busiest["name"], "loader", "{view}");
    assert!(busiest["msgs_in_per_sec"].as_f64().unwrap() > 0.0);
    let services = view["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "{view}");
    assert_eq!(services[0]["name"], "echo");
    assert_eq!(services[0]["instances"], 1);

    let args = [
        "--token",
        ADMIN,
        "top",
        "--once",
        "--interval",
        "0.3",
        "--sort",
        "msgs-out",
    ];
    let out = cli(&server, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "shard 0",
        "shard 1",
        "total",
        "connections by msgs_out",
        "loader",
        "echo",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
}

#[test]
fn the_live_screen_shows_the_load_sorts_on_s_and_quits_on_q() {
    let server = server();
    let _service = with_service(&server);
    let _load = Load::start(&server);
    let command = format!(
        "{CLI} --server {} --token {ADMIN} top --interval 0.3",
        server.addr
    );
    let tmux = Tmux::new("top");
    tmux.run("top", (140, 40), &command);
    wait_until(
        "the screen to show shards, the loader and the service",
        || {
            let screen = tmux.screen("top");
            [
                "shard 0",
                "shard 1",
                "total",
                "connections by msgs_in",
                "loader",
                "echo",
                "q quits",
            ]
            .iter()
            .all(|expected| screen.contains(expected))
        },
    );
    // The rates move: the loader's messages in per second are counted.
    wait_until("the loader's rate on the screen", || {
        let screen = tmux.screen("top");
        screen.lines().any(|line| {
            let mut words = line
                .trim_matches('│')
                .split_whitespace()
                .skip_while(|w| *w != "loader");
            words.nth(1).is_some_and(|rate| rate != "0")
        })
    });
    tmux.keys("top", &["s"]);
    wait_until("the sort key to change", || {
        tmux.screen("top").contains("connections by msgs_out")
    });
    tmux.keys("top", &["q"]);
    wait_until("top to quit", || !tmux.running("top"));
}
