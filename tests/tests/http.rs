//! The HTTP edge against the real server: health and readiness, Prometheus metrics, JSON status,
//! the push API delivering to binary subscribers on both shards, request/response through it,
//! and every refusal with its status and PROTOCOL.md code.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpStream;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_protocol::{ErrorCode, Fields, Flags, HelloOptions};
use shardbus_tests::http::exchange;
use shardbus_tests::{PATIENCE, Raw, TestServer, http_request};

#[test]
fn health_readiness_and_server_status_answer_json() {
    let server = TestServer::start();
    let health = http_request(server.http, "GET", "/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.header("content-type"), Some("application/json"));
    let ready = http_request(server.http, "GET", "/readyz", None);
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (200, "ready".into())
    );

    let info = http_request(server.http, "GET", "/api/v1/server", None).json();
    assert_eq!(info["name"], "shardbus");
    assert_eq!(info["shards"], 2);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["limits"]["max_payload"], 1 << 20);
    assert!(info["server_id"].as_str().is_some_and(|id| !id.is_empty()));

    let shards = http_request(server.http, "GET", "/api/v1/shards", None).json();
    let shards = shards["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert!(shards[1]["counters"]["msgs_in"].is_u64());
}

#[test]
fn metrics_are_prometheus_text_per_shard_with_errors_by_code() {
    let server = TestServer::start();
    let mut raw = Raw::hello_on(server.addr, 1, HelloOptions(0));
    raw.publish("metrics.test", b"x");
    raw.send(Fields::Pub, b"bad..topic", b"x");
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::INVALID_TOPIC));
    let metrics = http_request(server.http, "GET", "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    assert!(text.contains("# TYPE shardbus_msgs_in counter"), "{text}");
    assert!(text.contains("# TYPE shardbus_connections gauge"), "{text}");
    assert!(
        text.contains("shardbus_msgs_in_total{shard=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("shardbus_connections{shard=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("shardbus_errors_total{shard=\"1\",code=\"INVALID_TOPIC\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("shardbus_connections_accepted_total{shard=\"0\"}"),
        "{text}"
    );
    let families = text
        .lines()
        .filter(|l| l.starts_with("# TYPE shardbus_connections "))
        .count();
    assert_eq!(families, 1, "one family per name: {text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[test]
fn answered_requests_are_timed_in_a_latency_histogram() {
    let server = TestServer::start();
    let responder = server.client_on(1);
    let sub = responder.subscribe("svc.timed").unwrap();
    responder.flush().unwrap();
    let answering = std::thread::spawn(move || {
        for _ in 0..3 {
            let request = sub.recv_timeout(PATIENCE).unwrap();
            responder.respond(&request, b"ok").unwrap();
        }
        responder.flush().unwrap();
    });
    let requester = server.client_on(0);
    for _ in 0..3 {
        assert_eq!(
            requester
                .request("svc.timed", b"?", PATIENCE)
                .unwrap()
                .payload(),
            b"ok"
        );
    }
    answering.join().unwrap();

    let text = http_request(server.http, "GET", "/metrics", None).text();
    assert!(
        text.contains("# TYPE shardbus_request_duration_seconds histogram"),
        "{text}"
    );
    // The requester's shard times its requests: three observations, each in some bucket.
    assert!(
        text.contains("shardbus_request_duration_seconds_count{shard=\"0\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("shardbus_request_duration_seconds_bucket{le=\"+Inf\",shard=\"0\"} 3")
            || text.contains("shardbus_request_duration_seconds_bucket{shard=\"0\",le=\"+Inf\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("shardbus_request_duration_seconds_count{shard=\"1\"} 0"),
        "{text}"
    );
}

#[test]
fn a_push_reaches_binary_subscribers_on_both_shards_as_text_container_or_bytes() {
    let server = TestServer::start();
    let near = server.client_on(0);
    let far = server.client_on(1);
    let subs = [
        near.subscribe("push.>").unwrap(),
        far.subscribe("push.>").unwrap(),
    ];
    near.flush().unwrap();
    far.flush().unwrap();

    let pushes = [
        r#"{"topic": "push.text", "text": "hello", "headers": {"trace": "t1"}}"#,
        r#"{"topic": "push.data", "data": {"temp": 21.5, "tags": ["a", "b"]}}"#,
        r#"{"topic": "push.bytes", "data_base64": "AAEC/w=="}"#,
    ];
    for push in pushes {
        let answer = http_request(server.http, "POST", "/api/v1/publish", Some(push));
        assert_eq!(
            (answer.status, answer.json()["ok"].clone()),
            (200, true.into()),
            "{push}"
        );
    }
    // Each push is its own HTTP connection, maybe on either shard: no order between them.
    for sub in &subs {
        let mut got: Vec<_> = (0..3)
            .map(|_| sub.recv_timeout(PATIENCE).unwrap())
            .collect();
        got.sort_by(|a, b| a.topic().cmp(b.topic()));
        let [bytes, data, text] = &got[..] else {
            panic!("three messages")
        };
        assert_eq!((text.topic(), text.payload()), ("push.text", &b"hello"[..]));
        assert_eq!(text.headers().get("trace"), Some("t1"));
        assert!(data.flags().contains(Flags::CONTAINER));
        let value = data.value(&ContainerLimits::default()).unwrap();
        assert_eq!(value.get("temp"), Some(&Value::F64(21.5)));
        assert_eq!(bytes.payload(), &[0, 1, 2, 255]);
    }
    assert_eq!(server.total(Metric::MsgsIn), 3, "counted as any publish");
}

#[test]
fn push_refusals_carry_their_status_and_protocol_code() {
    let server = TestServer::with(|c| c.limits.max_payload = 64);
    let cases = [
        (r#"{"topic": "a..b", "text": "x"}"#, 400, "INVALID_TOPIC"),
        (
            r#"{"topic": "ok", "text": "x", "data": 1}"#,
            400,
            "BAD_PAYLOAD",
        ),
        (
            r#"{"topic": "ok", "data_base64": "!!"}"#,
            400,
            "BAD_PAYLOAD",
        ),
        (r#"{"topic": "ok", "colour": "red"}"#, 400, "BAD_PAYLOAD"),
        (r#"{"topic": "ok""#, 400, "BAD_PAYLOAD"),
        (
            r#"{"topic": "ok", "headers": {"bad key": "v"}}"#,
            400,
            "BAD_HEADERS",
        ),
    ];
    for (body, status, name) in cases {
        let answer = http_request(server.http, "POST", "/api/v1/publish", Some(body));
        assert_eq!(
            (answer.status, answer.error_name()),
            (status, name.to_owned()),
            "{body}"
        );
        assert!(answer.json()["error"]["code"].is_u64());
    }
    let big = format!(r#"{{"topic": "ok", "text": "{}"}}"#, "x".repeat(100));
    let answer = http_request(server.http, "POST", "/api/v1/publish", Some(&big));
    assert_eq!(
        (answer.status, answer.error_name()),
        (413, "PAYLOAD_TOO_LARGE".to_owned())
    );

    let missing = http_request(server.http, "GET", "/nowhere", None);
    assert_eq!(
        (missing.status, missing.error_name()),
        (404, "UNKNOWN_OP".to_owned())
    );
    let wrong = http_request(server.http, "GET", "/api/v1/publish", None);
    assert_eq!(
        (wrong.status, wrong.error_name()),
        (405, "UNKNOWN_OP".to_owned())
    );
    // The shard refused the bad topic as it would a client's, and counted it.
    assert_eq!(server.errors(ErrorCode::INVALID_TOPIC), 1);
}

#[test]
fn a_push_request_gets_the_response_or_no_responders_or_timeout() {
    let server = TestServer::start();
    let responder = server.client_on(1);
    let sub = responder.subscribe("svc.echo").unwrap();
    let silent = responder.subscribe("svc.silent").unwrap();
    responder.flush().unwrap();
    let answering = std::thread::spawn(move || {
        let request = sub.recv_timeout(PATIENCE).unwrap();
        let mut answer = b"echo: ".to_vec();
        answer.extend_from_slice(request.payload());
        responder.respond(&request, &answer).unwrap();
        responder
    });

    let body = r#"{"topic": "svc.echo", "text": "ping", "timeout_ms": 30000}"#;
    let answer = http_request(server.http, "POST", "/api/v1/request", Some(body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["text"], "echo: ping");
    let _responder = answering.join().unwrap();

    let nobody = r#"{"topic": "svc.nobody", "text": "x"}"#;
    let answer = http_request(server.http, "POST", "/api/v1/request", Some(nobody));
    assert_eq!(
        (answer.status, answer.error_name()),
        (404, "NO_RESPONDERS".to_owned())
    );

    let slow = r#"{"topic": "svc.silent", "text": "x", "timeout_ms": 50}"#;
    let answer = http_request(server.http, "POST", "/api/v1/request", Some(slow));
    assert_eq!(
        (answer.status, answer.error_name()),
        (504, "TIMEOUT".to_owned())
    );
    assert!(
        silent.recv_timeout(PATIENCE).is_ok(),
        "the request was delivered"
    );
}

#[test]
fn oversized_headers_and_slow_headers_are_cut_off() {
    let server = TestServer::with(|c| c.http.header_timeout_ms = 300);
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "y".repeat(40 << 10)
    );
    let answer = exchange(server.http, huge.as_bytes());
    assert_eq!(answer.status, 431);
    assert_eq!(answer.json()["error"]["name"], "BAD_HEADERS", "{answer:?}");

    // Slowloris: half a request head, then silence. The server answers 408 with the TIMEOUT
    // code at its header timeout and closes, rather than wait forever.
    let mut slow = TcpStream::connect(server.http).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the server kept a half-sent request open: {closed:?}"
    );
    let answer = shardbus_tests::http::parse(&rest);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["name"], "TIMEOUT", "{answer:?}");
    // And the edge still serves everyone else.
    assert_eq!(
        http_request(server.http, "GET", "/healthz", None).status,
        200
    );
}
