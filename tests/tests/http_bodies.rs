//! Request bodies at the HTTP edge: a body that stalls gets 408 and the connection closes, a
//! declared length over the limit is refused at once without reading it, and the small
//! conformance points (HEAD answers as GET, the Bearer scheme in any case).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpStream;

use shardbus_engine::auth::TokenConfig;
use shardbus_protocol::ErrorCode;
use shardbus_tests::http::{exchange, parse};
use shardbus_tests::{PATIENCE, TestServer, sha256_hex};

fn post_head(length: usize) -> String {
    format!(
        "POST /api/v1/publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[test]
fn bodies_that_stall_get_408_and_their_connections_close() {
    let server = TestServer::with(|config| config.http.body_timeout_ms = 200);
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(server.http).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream.write_all(post_head(100).as_bytes()).unwrap();
            stream.write_all(br#"{"topic":"#).unwrap();
            stream
        })
        .collect();
    for stream in &mut stalled {
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        let answer = parse(&bytes);
        assert_eq!(
            (answer.status, answer.error_name()),
            (408, "TIMEOUT".to_owned())
        );
    }
    assert_eq!(server.errors(ErrorCode::TIMEOUT), 50);
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let server = TestServer::start();
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(post_head(10_000_000).as_bytes()).unwrap();
    stream.write_all(&[b' '; 1024]).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let answer = parse(&bytes);
    assert_eq!(
        (answer.status, answer.error_name()),
        (413, "PAYLOAD_TOO_LARGE".to_owned())
    );
    assert_eq!(answer.header("connection"), Some("close"));
}

#[test]
fn head_answers_as_get_without_a_body() {
    let server = TestServer::start();
    for path in ["/healthz", "/readyz", "/js/shardbus.js", "/demo"] {
        let raw = format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let answer = exchange(server.http, raw.as_bytes());
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.body.is_empty(), "{path}");
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::with(|config| {
        config.auth.http_open = false;
        config.auth.tokens = vec![TokenConfig {
            name: "operator".into(),
            sha256: sha256_hex("op-secret"),
            role: "admin".into(),
            permissions: None,
        }];
    });
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let raw = format!(
            "GET /api/v1/server HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Authorization: {scheme} op-secret\r\n\r\n"
        );
        assert_eq!(
            exchange(server.http, raw.as_bytes()).status,
            200,
            "{scheme}"
        );
    }
}

#[test]
fn data_that_fits_as_text_but_not_as_a_container_is_payload_too_large() {
    let server = TestServer::with(|config| config.limits.max_payload = 1024);
    let zeros = vec!["0"; 400].join(",");
    let body = format!(r#"{{"topic": "ok", "data": [{zeros}]}}"#);
    assert!(body.len() < 1024);
    let answer = shardbus_tests::http_request(server.http, "POST", "/api/v1/publish", Some(&body));
    assert_eq!(
        (answer.status, answer.error_name()),
        (413, "PAYLOAD_TOO_LARGE".to_owned())
    );
}
