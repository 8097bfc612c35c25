//! `shardbus-cli` end to end against the real server: pub → sub, req → reply, status, and a
//! server error's exit status.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_tests::TestServer;

mod support;
use support::{background, cli, finish};

#[test]
fn pub_reaches_sub_with_wildcards() {
    let server = TestServer::start();
    let sub = background(
        &server,
        &["sub", "sensors.*.temp", "--count", "2"],
        "subscribed",
    );
    assert!(
        cli(&server, &["pub", "sensors.kitchen.temp", "21.5"])
            .status
            .success()
    );
    assert!(
        cli(&server, &["pub", "sensors.kitchen.humidity", "40"])
            .status
            .success()
    );
    assert!(
        cli(&server, &["pub", "sensors.attic.temp", "18"])
            .status
            .success()
    );
    let out = finish(sub);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "[#1] sensors.kitchen.temp: 21.5",
            "[#2] sensors.attic.temp: 18"
        ]
    );
}

#[test]
fn sub_prints_json_lines_with_headers() {
    let server = TestServer::start();
    let sub = background(
        &server,
        &["--json", "sub", "a.>", "--count", "1"],
        "subscribed",
    );
    let published = cli(&server, &["pub", "a.b", "say \"hi\"", "-H", "trace=7"]);
    assert!(published.status.success());
    let out = finish(sub);
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["subject"], "a.b");
    assert_eq!(line["seq"], 1);
    assert_eq!(line["payload"], "say \"hi\"");
    assert_eq!(line["headers"]["trace"], "7");
}

#[test]
fn req_gets_the_reply_answer() {
    let server = TestServer::start();
    let reply = background(
        &server,
        &["reply", "time.now", "12:00", "--count", "1"],
        "answering",
    );
    let out = cli(&server, &["req", "time.now", "what time is it?"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "12:00");
    let seen = finish(reply);
    assert_eq!(seen.trim(), "[#1] time.now: what time is it?");
}

#[test]
fn a_request_nobody_answers_exits_1_naming_the_code() {
    let server = TestServer::start();
    let out = cli(&server, &["req", "nobody.home", "?"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_RESPONDERS"));
}

#[test]
fn status_prints_counters_as_a_table_and_as_json() {
    let server = TestServer::start();
    assert!(
        cli(&server, &["pub", "x", "1", "--count", "3"])
            .status
            .success()
    );
    let json = cli(&server, &["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["server"]["shards"], 2);
    assert_eq!(status["totals"]["msgs_in"], 3);
    assert_eq!(status["shards"].as_array().unwrap().len(), 2);
    let table = String::from_utf8(cli(&server, &["status"]).stdout).unwrap();
    assert!(table.contains("shard 0"), "{table}");
    let msgs_in = table.lines().find(|l| l.starts_with("msgs_in")).unwrap();
    assert_eq!(msgs_in.split_whitespace().last(), Some("3"), "{table}");
}

#[test]
fn tls_options_connect_with_mutual_tls_and_a_wrong_ca_fails() {
    let pki = shardbus_tests::pki::Pki::new();
    let server = TestServer::with(|config| {
        config.tls.cert = Some(pki.server.cert.clone());
        config.tls.key = Some(pki.server.key.clone());
        config.tls.client_ca = Some(pki.ca.clone());
        config.tls.required = true;
    });
    let path = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (path(&pki.ca), path(&pki.client.cert), path(&pki.client.key));
    let tls = ["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    let out = cli(&server, &[&tls[..], &["status", "--json"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = path(&pki.other_ca);
    let wrong = [
        "--tls-ca",
        &other,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "status",
    ];
    assert_eq!(cli(&server, &wrong).status.code(), Some(1));
    let plain = cli(&server, &["status"]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("TLS_REQUIRED"));
}
