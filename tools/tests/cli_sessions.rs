//! `shardbus-cli` against a locked-down server and through the ends of a connection: logging
//! in with a token, a user or the environment; a kick that sticks (no reconnect after a
//! terminal close); and a drain that the CLI's subscriber leaves at once.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use shardbus_engine::auth::TokenConfig;
use shardbus_engine::auth::password::{UserConfig, hash};
use shardbus_engine::config::Config;
use shardbus_engine::metrics::Metric;
use shardbus_tests::{TestServer, http_request, sha256_hex, wait_until};
use support::{background, cli, cli_with};

fn locked_down(config: &mut Config) {
    config.auth.anonymous = false;
    config.auth.tokens = vec![TokenConfig {
        name: "operator".into(),
        sha256: sha256_hex("op-secret"),
        role: "admin".into(),
        permissions: None,
    }];
    config.auth.users = vec![UserConfig {
        name: "billing".into(),
        password_hash: hash("s3cret").unwrap(),
        role: "user".into(),
        permissions: None,
    }];
}

#[test]
fn every_kind_of_credential_logs_in_and_none_is_refused_by_name() {
    let server = TestServer::with(locked_down);
    let none = cli(&server, &["status"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("AUTH_REQUIRED"));

    let token = cli(&server, &["--token", "op-secret", "status"]);
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let env = cli_with(&server, &["status"], &[("SHARDBUS_TOKEN", "op-secret")]);
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
    let user = cli(
        &server,
        &["--user", "billing", "--password", "s3cret", "pub", "a", "x"],
    );
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    let wrong = cli(
        &server,
        &["--user", "billing", "--password", "no", "status"],
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("AUTH_FAILED"));
    // No terminal to ask on: an error, never an empty password.
    let unasked = cli(&server, &["--user", "billing", "status"]);
    assert_eq!(unasked.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unasked.stderr).contains("needs --password"));
    // Connecting says where it landed.
    assert!(String::from_utf8_lossy(&token.stderr).contains("connected to"));
}

#[test]
fn a_kicked_subscriber_exits_naming_the_code_and_does_not_come_back() {
    let server = TestServer::start();
    let mut sub = background(&server, &["sub", "kick.me"], "subscribed to");
    let listing = http_request(server.http, "GET", "/api/v1/connections", None).json();
    let id = listing["connections"][0]["id"].as_u64().unwrap();
    let kicked = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/connections/{id}"),
        None,
    );
    assert_eq!(kicked.status, 200);
    let status = sub.exited();
    assert_eq!(status.code(), Some(1));
    assert!(sub.stderr().contains("KICKED"), "{}", sub.stderr());
    assert_eq!(server.total(Metric::Connections), 0);
    assert_eq!(server.total(Metric::ConnectionsTotal), 1, "it reconnected");
}

#[test]
fn a_drain_ends_when_the_cli_subscriber_leaves_not_after_the_grace_period() {
    // A grace period far longer than the tests' patience: only the client leaving ends it.
    let server = TestServer::with(|config| config.shutdown.grace_ms = 600_000);
    let _sub = background(&server, &["sub", "drain.me"], "subscribed to");
    server.request_shutdown();
    wait_until("the subscriber to leave the draining server", || {
        server.total(Metric::Connections) == 0
    });
    server.stop();
}
