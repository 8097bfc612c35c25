//! The HTTP edge with authentication: health stays open, monitoring needs an admin identity
//! (requests without credentials are served only with `auth.http_open`, as its anonymous
//! role), and the push API acts with the token's permissions.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::auth::{Permissions, Rule, TokenConfig};
use shardbus_engine::config::Config;
use shardbus_tests::http::{HttpResponse, exchange};
use shardbus_tests::{TestServer, sha256_hex};

fn secured(config: &mut Config) {
    config.auth.anonymous = false;
    config.auth.http_open = false;
    config.auth.tokens = vec![
        TokenConfig {
            name: "operator".into(),
            sha256: sha256_hex("op-secret"),
            role: "admin".into(),
            permissions: None,
        },
        TokenConfig {
            name: "sensor".into(),
            sha256: sha256_hex("sensor-secret"),
            role: "sensors".into(),
            permissions: None,
        },
    ];
    let publish = Rule {
        allow: vec!["sensors.>".into()],
        deny: vec![],
    };
    config.auth.roles.insert(
        "sensors".into(),
        Permissions {
            publish,
            ..Permissions::guest()
        },
    );
}

/// `method path` with an optional extra header line and JSON body.
fn call(server: &TestServer, method: &str, path: &str, header: &str, body: &str) -> HttpResponse {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if !header.is_empty() {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    exchange(server.http, raw.as_bytes())
}

#[test]
fn monitoring_needs_an_admin_token_and_health_stays_open() {
    let server = TestServer::with(secured);
    assert_eq!(call(&server, "GET", "/healthz", "", "").status, 200);
    assert_eq!(call(&server, "GET", "/readyz", "", "").status, 200);
    let cases = [
        ("", 401, "AUTH_REQUIRED"),
        ("Authorization: Bearer guess", 401, "AUTH_FAILED"),
        (
            "Authorization: Bearer sensor-secret",
            403,
            "PERMISSION_DENIED",
        ),
    ];
    for path in [
        "/metrics",
        "/api/v1/server",
        "/api/v1/connections",
        "/api/v1/topics",
    ] {
        for (header, status, name) in cases {
            let answer = call(&server, "GET", path, header, "");
            assert_eq!(
                (answer.status, answer.error_name()),
                (status, name.to_owned()),
                "{path} {header}"
            );
        }
        let admin = call(&server, "GET", path, "Authorization: Bearer op-secret", "");
        assert_eq!(admin.status, 200, "{path}");
        let key = call(&server, "GET", path, "X-Api-Key: op-secret", "");
        assert_eq!(key.status, 200, "{path}");
    }
}

#[test]
fn the_push_api_acts_with_the_token_s_permissions() {
    let server = TestServer::with(secured);
    let body = |topic: &str| format!(r#"{{"topic": "{topic}", "text": "x"}}"#);
    let sensor = "Authorization: Bearer sensor-secret";
    let allowed = call(
        &server,
        "POST",
        "/api/v1/publish",
        sensor,
        &body("sensors.t"),
    );
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let denied = call(
        &server,
        "POST",
        "/api/v1/publish",
        sensor,
        &body("orders.t"),
    );
    assert_eq!(
        (denied.status, denied.error_name()),
        (403, "PERMISSION_DENIED".to_owned())
    );
    let anonymous = call(&server, "POST", "/api/v1/publish", "", &body("sensors.t"));
    assert_eq!(
        (anonymous.status, anonymous.error_name()),
        (401, "AUTH_REQUIRED".to_owned())
    );
}

#[test]
fn an_open_http_api_serves_requests_without_credentials_as_the_http_open_role() {
    let server = TestServer::with(|c| {
        secured(c);
        c.auth.http_open = true;
        c.auth.http_open_role = "guest".into();
    });
    let metrics = call(&server, "GET", "/metrics", "", "");
    assert_eq!(
        (metrics.status, metrics.error_name()),
        (403, "PERMISSION_DENIED".to_owned())
    );
    let push = call(&server, "POST", "/api/v1/publish", "", r#"{"topic": "a"}"#);
    assert_eq!(
        (push.status, push.error_name()),
        (403, "PERMISSION_DENIED".to_owned())
    );
    let admin = call(
        &server,
        "GET",
        "/metrics",
        "Authorization: Bearer op-secret",
        "",
    );
    assert_eq!(admin.status, 200, "a token still counts");
}

#[test]
fn the_embedded_default_closes_the_http_api_but_not_health() {
    let server = TestServer::with(|c| c.auth = shardbus_engine::auth::AuthConfig::default());
    assert_eq!(call(&server, "GET", "/healthz", "", "").status, 200);
    let metrics = call(&server, "GET", "/metrics", "", "");
    assert_eq!(
        (metrics.status, metrics.error_name()),
        (401, "AUTH_REQUIRED".to_owned())
    );
}
