//! `shardbus-bench` end to end: every scenario against the real server (small counts), and the
//! null target, checking the JSON report's numbers are whole (nothing missing).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use shardbus_tests::TestServer;

const BENCH: &str = env!("CARGO_BIN_EXE_shardbus-bench");

fn run(target: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BENCH)
        .args(["--json", "--target", target])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_scenario_runs_against_the_server_and_loses_nothing() {
    let server = TestServer::start();
    let target = format!("shardbus://{}", server.addr);
    for (args, sent, received) in [
        (vec!["-n", "2000", "pub"], 2000, 0),
        (vec!["-n", "2000", "pubsub"], 2000, 2000),
        (
            vec!["-n", "1000", "-s", "1024", "pubsub", "-S", "3"],
            1000,
            3000,
        ),
        (vec!["-n", "2000", "queue", "-w", "3"], 2000, 2000),
        (vec!["-n", "200", "reqrep", "-c", "2", "-r", "2"], 400, 400),
        (
            vec![
                "-n", "200", "reqrep", "-c", "2", "-r", "2", "--driver", "threads",
            ],
            400,
            400,
        ),
        // Paced requesters sharing one thread: each waits for its own slots.
        (
            vec!["-n", "50", "--rate", "500", "reqrep", "-c", "3"],
            150,
            150,
        ),
        (
            vec![
                "-n",
                "100",
                "reqrep",
                "-r",
                "2",
                "--slow",
                "1",
                "--slow-us",
                "100",
            ],
            100,
            100,
        ),
        (vec!["-n", "200", "service", "-c", "2", "-r", "3"], 400, 400),
        (
            vec!["-n", "100", "service", "-r", "2", "--slow", "1"],
            100,
            100,
        ),
    ] {
        let report = run(&target, &args);
        assert_eq!(report["sent"], sent, "{args:?}: {report}");
        assert_eq!(report["received"], received, "{args:?}: {report}");
        assert_eq!(report["missing"], 0, "{args:?}: {report}");
        if received > 0 {
            assert!(
                report["latency"]["samples"].as_u64().unwrap() > 0,
                "{report}"
            );
        }
    }
    // A thread per subscriber, one thread for all, and 3 subscribers on 2 threads (the
    // default on 2 cores): every subscriber gets every message.
    for threads in ["0", "1", "2"] {
        let args = [
            "-n",
            "1000",
            "--subscriber-threads",
            threads,
            "pubsub",
            "-S",
            "3",
        ];
        let report = run(&target, &args);
        assert_eq!(report["received"], 3000, "{args:?}: {report}");
        assert_eq!(report["missing"], 0, "{args:?}: {report}");
    }
}

#[test]
fn the_room_scenario_fans_every_message_out_to_every_member() {
    let server = TestServer::with(|config| {
        config.rooms = vec![shardbus_engine::rooms::RoomConfig {
            pattern: "bench.>".into(),
            ..Default::default()
        }];
    });
    let target = format!("ws://{}", server.http);
    let report = run(
        &target,
        &[
            "-n",
            "200",
            "-s",
            "32",
            "room",
            "-m",
            "50",
            "--readers",
            "2",
        ],
    );
    assert_eq!(report["sent"], 200, "{report}");
    assert_eq!(report["received"], 200 * 50, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["latency"]["samples"], 200 * 50, "{report}");
    // A room the server does not have is refused, not measured as silence.
    let out = Command::new(BENCH)
        .args(["--target", &target, "-n", "10", "-s", "32"])
        .args(["room", "-m", "2", "--room", "plain.topic"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT_A_ROOM"));
}

#[test]
fn the_websocket_target_carries_the_same_scenarios() {
    let server = TestServer::start();
    let target = format!("ws://{}", server.http);
    for (args, sent, received) in [
        (vec!["-n", "2000", "pubsub", "-S", "2"], 2000, 4000),
        (vec!["-n", "100", "reqrep"], 100, 100),
    ] {
        let report = run(&target, &args);
        assert_eq!(report["sent"], sent, "{args:?}: {report}");
        assert_eq!(report["received"], received, "{args:?}: {report}");
        assert_eq!(
            report["target"],
            format!("ws://{}/ws", server.http),
            "{report}"
        );
    }
}

#[test]
fn conns_holds_connections_and_reports_the_server_memory_per_connection() {
    let server = TestServer::start();
    // The server runs in this test process, so its pid is ours.
    let pid = std::process::id().to_string();
    let report = run(
        &format!("shardbus://{}", server.addr),
        &["conns", "-c", "50", "--server-pid", &pid],
    );
    assert_eq!(report["received"], 50, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert!(
        report["server_rss_bytes_per_connection"].is_number(),
        "{report}"
    );
}

#[test]
fn a_report_gives_the_tools_cpu_share_and_the_servers() {
    let server = TestServer::start();
    let pid = std::process::id().to_string();
    let report = run(
        &format!("shardbus://{}", server.addr),
        &["-n", "200000", "--server-pid", &pid, "pubsub"],
    );
    assert_eq!(report["missing"], 0, "{report}");
    // The broker (this test process) delivered 200,000 messages: it used some CPU, and so did
    // the tool that sent and read them.
    assert!(
        report["tool_cpu_percent"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["server_cpu_percent"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let table = Command::new(BENCH)
        .args(["--target", &format!("shardbus://{}", server.addr)])
        .args(["-n", "1000", "--server-pid", &pid, "pubsub"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("CPU: tool") && text.contains("server"),
        "{text}"
    );
}

#[test]
fn a_fixed_rate_run_sends_at_that_rate() {
    let server = TestServer::start();
    let report = run(
        &format!("shardbus://{}", server.addr),
        &["-n", "200", "--rate", "1000", "--batch", "10", "pubsub"],
    );
    assert_eq!(report["received"], 200);
    // 200 messages at 1,000/s take at least 0.19 s: the pacing held them back.
    assert!(report["send_secs"].as_f64().unwrap() >= 0.19, "{report}");
}

#[test]
fn a_paced_run_sends_each_message_at_its_own_time() {
    let server = TestServer::start();
    // The default batch (256) is larger than the run: a paced publisher that wrote a whole
    // batch at once would send messages before the time stamped in them, and their latency
    // would read as nothing. Over loopback a delivery takes microseconds at the least.
    let report = run(
        &format!("shardbus://{}", server.addr),
        &["-n", "100", "--rate", "2000", "pubsub"],
    );
    assert_eq!(report["received"], 100);
    assert!(
        report["latency"]["p50_us"].as_f64().unwrap() >= 1.0,
        "{report}"
    );
}

#[test]
fn the_null_target_measures_the_tool_alone() {
    let report = run("null", &["-n", "100000", "pub"]);
    assert_eq!(report["sent"], 100_000);
    assert!(report["sent_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_locked_down_server_is_measured_with_a_token_and_rates_stay_sane() {
    let server = TestServer::with(|config| {
        config.auth.anonymous = false;
        config.auth.tokens = vec![shardbus_engine::auth::TokenConfig {
            name: "bench".into(),
            sha256: shardbus_tests::sha256_hex("bench-secret"),
            role: "user".into(),
            permissions: None,
        }];
    });
    let target = format!("shardbus://{}", server.addr);
    let refused = Command::new(BENCH)
        .args(["--json", "--target", &target, "-n", "10", "pub"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let report = run(
        &target,
        &["--token", "bench-secret", "-n", "2000", "pubsub"],
    );
    assert_eq!(report["received"], 2000);
    // 2,000 messages leave in one write: sent/s is rated over the run, not over "no time".
    let sent_per_sec = report["sent_per_sec"].as_f64().unwrap();
    let received_per_sec = report["received_per_sec"].as_f64().unwrap();
    assert!(sent_per_sec <= 10.0 * received_per_sec, "{report}");
}
