//! `shardbus-cli serve` and `services` against the real server, and what happens to requests
//! when an instance's process stops (SIGSTOP: no heartbeats, its socket open) or is killed
//! (SIGKILL: its socket closed by the kernel) in the middle of a load: it leaves the registry,
//! requests go to the others, and the only requests lost are those already delivered to it.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shardbus_protocol::client::{Client, ClientError};
use shardbus_protocol::{ErrorCode, Health};
use shardbus_tests::{TestServer, wait_until};

mod support;
use support::{Running, background_quiet, cli};

fn serve(server: &TestServer, tag: &str) -> Running {
    background_quiet(
        server,
        &[
            "serve",
            "echo",
            "--endpoint",
            "echo.say",
            "--heartbeat-ms",
            "200",
            "--response",
            tag,
        ],
        "registered echo instance",
    )
}

fn instances(client: &Client) -> Vec<(u64, Health)> {
    client
        .discover("echo", "")
        .unwrap()
        .iter()
        .map(|i| (i.id, i.health))
        .collect()
}

fn signal(process: &Running, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// What the requesters saw.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    timed_out: AtomicU64,
    other: AtomicU64,
}

#[test]
fn services_lists_what_serve_registered() {
    let server = TestServer::start();
    let _a = serve(&server, "a");
    let out = cli(&server, &["services"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("echo 1.0.0 instance "), "{text}");
    assert!(text.contains(" ok load 0 [echo.say]"), "{text}");
    let out = cli(&server, &["--json", "services", "info", "echo"]);
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry["name"], "echo");
    assert_eq!(entry["endpoints"][0]["subject"], "echo.say");
    assert_eq!(entry["heartbeat_ms"], 200);
    let out = cli(&server, &["req", "echo.say", "hi"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "a");
}

#[test]
fn a_stopped_or_killed_instance_leaves_and_requests_go_to_the_others() {
    let server = TestServer::with(|config| {
        config.auth.tokens = vec![shardbus_tests::token_config("ops", "ops-secret", "admin")];
    });
    let ops = server.client_on_with(
        1,
        shardbus_protocol::client::ClientOptions::new().token("ops-secret"),
    );
    let downs = ops.subscribe("$sys.events.service_down").unwrap();
    ops.flush().unwrap();
    let mut a = serve(&server, "a");
    let mut b = serve(&server, "b");
    let _c = serve(&server, "c");
    let watcher = server.client_on(0);
    wait_until("three instances", || instances(&watcher).len() == 3);

    const REQUESTERS: u64 = 4;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..REQUESTERS)
        .map(|i| {
            let client = server.client_on((i % 2) as u16);
            let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match client.request("echo.say", b"?", Duration::from_millis(1_000)) {
                        Ok(_) => tally.answered.fetch_add(1, Ordering::Relaxed),
                        Err(ClientError::Server { code, .. }) if code == ErrorCode::TIMEOUT => {
                            tally.timed_out.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => tally.other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let answered_past = |n: u64| {
        let target = tally.answered.load(Ordering::Relaxed) + n;
        wait_until("requests answered", || {
            tally.answered.load(Ordering::Relaxed) >= target
        });
    };
    answered_past(200);

    // Stopped: its socket stays open and says nothing, so only the missed heartbeats tell.
    let a_id = {
        let before = instances(&watcher);
        signal(&a, "-STOP");
        let stopped = Instant::now();
        wait_until("a out of the registry", || instances(&watcher).len() == 2);
        eprintln!("stopped instance removed after {:?}", stopped.elapsed());
        let after = instances(&watcher);
        before.into_iter().find(|i| !after.contains(i)).unwrap().0
    };
    let lost_to_a = tally.timed_out.load(Ordering::Relaxed);
    assert!(
        lost_to_a <= REQUESTERS,
        "{lost_to_a} requests lost: more than were in flight to the stopped instance"
    );
    answered_past(200);
    signal(&a, "-KILL");
    a.exited();

    // Killed: the kernel closes its socket, so it leaves with its connection at once.
    signal(&b, "-KILL");
    b.exited();
    wait_until("b out of the registry", || instances(&watcher).len() == 1);
    answered_past(200);
    stop.store(true, Ordering::Relaxed);
    for requester in load {
        requester.join().unwrap();
    }
    let lost = tally.timed_out.load(Ordering::Relaxed);
    assert!(
        lost <= 2 * REQUESTERS,
        "{lost} requests lost: more than were in flight to the two instances that died"
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0, "no other failure");
    assert!(instances(&watcher).iter().all(|(id, _)| *id != a_id));
    // Both were told on `$sys.events.service_down`, each with why.
    let mut told = Vec::new();
    while told.len() < 2 {
        let message = downs.recv_timeout(shardbus_tests::PATIENCE).unwrap();
        let value = message
            .value(&shardbus_protocol::container::ContainerLimits::default())
            .unwrap();
        let shardbus_protocol::container::Value::List(events) = value else {
            panic!("events come as a list");
        };
        told.extend(events);
    }
    let why = |e: &shardbus_protocol::container::Value| match e.get("why") {
        Some(shardbus_protocol::container::Value::Str(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(why(&told[0]).starts_with("heartbeats missed"), "{told:?}");
    assert_eq!(why(&told[1]), "connection closed", "{told:?}");
    assert_eq!(
        told[0].get("instance"),
        Some(&shardbus_protocol::container::Value::U64(a_id))
    );
    eprintln!(
        "answered {}, lost {lost} (in flight to the dead)",
        tally.answered.load(Ordering::Relaxed)
    );
}

#[test]
fn cmd_runs_a_built_in_command_and_services_info_shows_the_figures() {
    let server = TestServer::with(|config| {
        config.auth.tokens = vec![shardbus_tests::token_config("ops", "ops-secret", "admin")];
    });
    let _a = serve(&server, "a");
    let out = cli(&server, &["req", "echo.say", "hi"]);
    assert!(out.status.success());
    let out = cli(&server, &["cmd", "help"]);
    let help: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(help["commands"].as_array().unwrap().len(), 11);
    let out = cli(&server, &["cmd", "connections", "limit=1"]);
    assert!(!out.status.success(), "a user may not list connections");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERMISSION_DENIED"));
    let out = cli(
        &server,
        &["--token", "ops-secret", "cmd", "connections", "limit=1"],
    );
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["limit"], 1);
    assert_eq!(page["connections"].as_array().unwrap().len(), 1);
    let out = cli(
        &server,
        &["--token", "ops-secret", "services", "info", "echo"],
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["endpoints"][0]["requests"], 1, "{info}");
    assert_eq!(info["endpoints"][0]["latency_us"]["count"], 1, "{info}");
    let out = cli(&server, &["cmd", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNKNOWN_COMMAND"));
}
