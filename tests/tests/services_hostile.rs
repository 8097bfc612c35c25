//! Hostile and careless service clients against the real server: every bad registration,
//! heartbeat flood, registration churn and over-the-cap registration gets its coded ERR, is
//! counted, keeps the connection, and costs an honest client nothing (its requests are still
//! answered); what a connection registered goes with it.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use shardbus_engine::auth::{Permissions, Rule};
use shardbus_engine::metrics::Metric;
use shardbus_protocol::client::ServiceSpec;
use shardbus_protocol::container::Value;
use shardbus_protocol::{ErrorCode, Fields, Flags, Headers, HelloOptions, ServiceFields};
use shardbus_tests::raw::Raw;
use shardbus_tests::{TestServer, wait_until};

fn endpoint(subject: &str, sid: u64) -> Value {
    Value::Map(vec![
        ("subject".into(), Value::Str(subject.into())),
        ("sid".into(), Value::U64(sid)),
    ])
}

fn registration(version: &str, endpoints: Vec<Value>) -> Vec<u8> {
    Value::Map(vec![
        ("version".into(), Value::Str(version.into())),
        ("endpoints".into(), Value::List(endpoints)),
    ])
    .to_binary()
    .unwrap()
}

fn register(raw: &mut Raw, name: &str, heartbeat_ms: u32, payload: &[u8]) -> u32 {
    let fields = Fields::Register(ServiceFields {
        heartbeat_ms,
        ..ServiceFields::default()
    });
    raw.send_flagged(
        fields,
        Flags::CONTAINER,
        name.as_bytes(),
        Headers::EMPTY,
        payload,
    )
}

/// The ERR code answering op `op_id`, skipping anything else.
fn refusal(raw: &mut Raw, op_id: u32) -> (ErrorCode, String) {
    loop {
        let frame = raw.next_event().unwrap();
        if let Fields::Err { code, .. } = frame.fields
            && frame.op_id == op_id
        {
            return (code, String::from_utf8(frame.payload).unwrap());
        }
    }
}

fn registered(raw: &mut Raw, op_id: u32) -> u64 {
    loop {
        let frame = raw.next_event().unwrap();
        match frame.fields {
            Fields::Register(answer) if frame.op_id == op_id => return answer.instance,
            Fields::Err { code, .. } if frame.op_id == op_id => panic!("refused: {code:?}"),
            _ => {}
        }
    }
}

#[test]
fn every_bad_registration_is_refused_with_its_code_and_the_connection_stays() {
    let server = TestServer::start();
    let honest = server.client_on(1);
    let service = honest
        .register("honest", &ServiceSpec::new("1.0.0").endpoint("honest.ask"))
        .unwrap();
    let answering = {
        let honest = honest.clone();
        std::thread::spawn(move || {
            while let Ok(request) = service.requests().recv_timeout(Duration::from_secs(30)) {
                if honest.respond(&request, b"yes").is_err() {
                    return;
                }
            }
        })
    };
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let good = registration("1.0.0", vec![endpoint("x.ask", 1)]);
    // (name, heartbeat_ms, payload, flagged CONTAINER, code, message start)
    type Case<'a> = (&'a str, u32, Vec<u8>, bool, ErrorCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "x",
            5,
            good.clone(),
            true,
            ErrorCode::BAD_SERVICE,
            "heartbeat_ms",
        ),
        (
            "x",
            1 << 31,
            good.clone(),
            true,
            ErrorCode::BAD_SERVICE,
            "heartbeat_ms",
        ),
        (
            "x",
            1_000,
            good.clone(),
            false,
            ErrorCode::BAD_SERVICE,
            "the registration is a container",
        ),
        (
            "x",
            1_000,
            b"\x14\x01".to_vec(),
            true,
            ErrorCode::BAD_SERVICE,
            "the registration does not decode",
        ),
        (
            "x",
            1_000,
            registration("1", vec![endpoint("x.a", 1)]),
            true,
            ErrorCode::BAD_SERVICE,
            "version",
        ),
        (
            "x",
            1_000,
            registration("1.0.0", vec![]),
            true,
            ErrorCode::BAD_SERVICE,
            "endpoints: at least one",
        ),
        (
            "x",
            1_000,
            registration("1.0.0", vec![endpoint("x.>", 1)]),
            true,
            ErrorCode::BAD_SERVICE,
            "endpoints[0].subject",
        ),
        (
            "x",
            1_000,
            registration("1.0.0", vec![endpoint("x.a", 0)]),
            true,
            ErrorCode::BAD_SERVICE,
            "endpoints[0].sid",
        ),
        (
            "x",
            1_000,
            registration(
                "1.0.0",
                (1..=40).map(|i| endpoint(&format!("x.e{i}"), i)).collect(),
            ),
            true,
            ErrorCode::BAD_SERVICE,
            "endpoints: at most 32",
        ),
    ];
    for (name, heartbeat_ms, payload, container, code, starts) in cases {
        let fields = Fields::Register(ServiceFields {
            heartbeat_ms,
            ..ServiceFields::default()
        });
        let flags = if container {
            Flags::CONTAINER
        } else {
            Flags::empty()
        };
        let op_id = raw.send_flagged(fields, flags, name.as_bytes(), Headers::EMPTY, &payload);
        let (got, message) = refusal(&mut raw, op_id);
        assert_eq!(got, code, "{message}");
        assert!(
            message.starts_with(starts),
            "{message:?} should start with {starts:?}"
        );
    }
    // A sid already in use, then the same service twice on one connection.
    raw.subscribe(9, "mine", "");
    let op_id = register(
        &mut raw,
        "x",
        1_000,
        &registration("1.0.0", vec![endpoint("x.a", 9)]),
    );
    assert_eq!(
        refusal(&mut raw, op_id).0,
        ErrorCode::DUPLICATE_SUBSCRIPTION
    );
    let op_id = register(&mut raw, "x", 1_000, &good);
    let id = registered(&mut raw, op_id);
    let op_id = register(
        &mut raw,
        "x",
        1_000,
        &registration("1.0.0", vec![endpoint("x.b", 2)]),
    );
    assert_eq!(refusal(&mut raw, op_id).0, ErrorCode::ALREADY_REGISTERED);
    // Someone else's instance, and a health only the server may give.
    for (instance, health) in [
        (id + 1, shardbus_protocol::Health::Ok),
        (id, shardbus_protocol::Health::Unhealthy),
    ] {
        let beat = Fields::Heartbeat(ServiceFields {
            instance,
            health,
            ..ServiceFields::default()
        });
        let op_id = raw.send(beat, b"", b"");
        let expected = if instance == id {
            ErrorCode::BAD_SERVICE
        } else {
            ErrorCode::UNKNOWN_INSTANCE
        };
        assert_eq!(refusal(&mut raw, op_id).0, expected);
    }
    let gone = Fields::Deregister(ServiceFields {
        instance: id + 1,
        ..ServiceFields::default()
    });
    let op_id = raw.send(gone, b"", b"");
    assert_eq!(refusal(&mut raw, op_id).0, ErrorCode::UNKNOWN_INSTANCE);
    raw.flush();
    assert!(server.errors(ErrorCode::BAD_SERVICE) >= 10);
    assert_eq!(server.errors(ErrorCode::ALREADY_REGISTERED), 1);
    assert_eq!(server.errors(ErrorCode::UNKNOWN_INSTANCE), 2);
    assert!(server.total(Metric::ServiceRefusals) >= 14);
    // The honest service never noticed.
    let answer = honest
        .request("honest.ask", b"?", Duration::from_secs(10))
        .unwrap();
    assert_eq!(answer.payload(), b"yes");
    drop(raw);
    wait_until("x gone with its connection", || {
        honest.discover("x", "").unwrap().is_empty()
    });
    honest.close();
    answering.join().unwrap();
}

#[test]
fn floods_of_heartbeats_and_registrations_are_rate_limited_and_caps_hold() {
    let server = TestServer::with(|config| {
        config.registry.max_services_per_connection = 3;
    });
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let op_id = register(
        &mut raw,
        "a",
        10_000,
        &registration("1.0.0", vec![endpoint("a.x", 1)]),
    );
    let id = registered(&mut raw, op_id);
    for _ in 0..50 {
        let beat = Fields::Heartbeat(ServiceFields {
            instance: id,
            ..ServiceFields::default()
        });
        raw.send(beat, b"", b"");
    }
    let codes = raw.flush_past_errors();
    assert!(
        codes.iter().all(|c| *c == ErrorCode::RATE_LIMITED),
        "{codes:?}"
    );
    assert!(
        codes.len() >= 40,
        "at most 4 heartbeats an interval: {} refused",
        codes.len()
    );
    // The cap on instances per connection.
    for (i, name) in ["b", "c", "d"].iter().enumerate() {
        let sid = 10 + i as u64;
        let op_id = register(
            &mut raw,
            name,
            10_000,
            &registration("1.0.0", vec![endpoint(&format!("{name}.x"), sid)]),
        );
        if *name == "d" {
            assert_eq!(refusal(&mut raw, op_id).0, ErrorCode::TOO_MANY_SERVICES);
        } else {
            registered(&mut raw, op_id);
        }
    }
    // Registration churn: 20 REGISTER/DEREGISTER a second, then RATE_LIMITED.
    let mut churn = Raw::hello_on(server.addr, 1, HelloOptions::default());
    for i in 0..60 {
        let payload = registration("1.0.0", vec![endpoint("churn.x", 1)]);
        register(&mut churn, &format!("churn{i}"), 10_000, &payload);
    }
    let codes = churn.flush_past_errors();
    assert!(codes.contains(&ErrorCode::RATE_LIMITED), "{codes:?}");
    assert!(
        codes.iter().all(|c| matches!(
            *c,
            ErrorCode::RATE_LIMITED
                | ErrorCode::TOO_MANY_SERVICES
                | ErrorCode::DUPLICATE_SUBSCRIPTION
        )),
        "{codes:?}"
    );
    let watcher = server.client_on(1);
    assert_eq!(watcher.discover("a", "").unwrap().len(), 1);
    drop(raw);
    drop(churn);
    wait_until("everything gone with its connection", || {
        watcher.discover(">", "").unwrap().is_empty()
    });
    wait_until("no instance counted", || {
        server.total(Metric::ServiceInstances) == 0
    });
}

#[test]
fn an_endpoint_the_identity_may_not_serve_is_refused() {
    let server = TestServer::with(|config| {
        config.auth.anonymous_role = "svc".into();
        let ok = || Rule {
            allow: vec!["ok.>".into()],
            deny: vec![],
        };
        config.auth.roles.insert(
            "svc".into(),
            Permissions {
                subscribe: Rule::all(),
                respond: Some(ok()),
                ..Permissions::default()
            },
        );
    });
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let op_id = register(
        &mut raw,
        "s",
        1_000,
        &registration("1.0.0", vec![endpoint("ok.a", 1), endpoint("no.b", 2)]),
    );
    let (code, message) = refusal(&mut raw, op_id);
    assert_eq!(code, ErrorCode::PERMISSION_DENIED);
    assert!(message.contains("no.b"), "{message}");
    let op_id = register(
        &mut raw,
        "s",
        1_000,
        &registration("1.0.0", vec![endpoint("ok.a", 1)]),
    );
    registered(&mut raw, op_id);
}
