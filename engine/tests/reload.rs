//! Reloading the configuration of the running binary: SIGHUP and `POST /api/v1/reload` apply
//! token changes without dropping anyone else (a subscriber keeps receiving while a token is
//! added), close a connection whose token was removed with a terminal code, and refuse a
//! configuration that does not validate, naming the key, while the running one stays.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest;
use shardbus_protocol::{
    ErrorCode, Fields, Frame, HeadersBuilder, HelloOptions, Limits, PROTOCOL_VERSION, encode,
    next_frame,
};
use support::{Server, start};

const PATIENCE: Duration = Duration::from_secs(30);

fn digest(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A configuration file with these tokens (name, secret, role), no anonymous access, and
/// `extra` (top-level keys and sections) first.
fn write_config(path: &Path, tokens: &[(&str, &str, &str)], extra: &str) {
    let mut text = format!("{extra}\n[auth]\nanonymous = false\n");
    for (name, secret, role) in tokens {
        text.push_str(&format!(
            "[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n",
            digest(secret)
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A connection that said HELLO with `token`; the first frame the server answered.
fn hello(addr: &str, token: &str) -> (TcpStream, Vec<u8>, Fields) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut block = HeadersBuilder::new();
    block.insert("token", token).unwrap();
    let frame = Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    })
    .with_headers(block.headers());
    let mut out = Vec::new();
    encode(&frame, &mut out).unwrap();
    stream.write_all(&out).unwrap();
    let mut buf = Vec::new();
    let fields = next(&mut stream, &mut buf).expect("an answer to HELLO");
    (stream, buf, fields)
}

/// The next frame's fields (answering PINGs), or `None` when the server closed.
fn next(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Fields> {
    loop {
        if let Some((frame, len)) = next_frame(buf, &Limits::default()).unwrap() {
            let fields = frame.fields;
            buf.drain(..len);
            if fields == Fields::Ping {
                let mut pong = Vec::new();
                encode(&Frame::new(Fields::Pong), &mut pong).unwrap();
                stream.write_all(&pong).unwrap();
                continue;
            }
            return Some(fields);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The next MSG's topic and its (container) payload as JSON text, answering PINGs.
fn next_event(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (String, String) {
    loop {
        if let Some((frame, len)) = next_frame(buf, &Limits::default()).unwrap() {
            let found = match frame.fields {
                Fields::Msg { .. } => {
                    let limits = shardbus_protocol::container::ContainerLimits::default();
                    let value = shardbus_protocol::container::view::decode(frame.payload, &limits)
                        .unwrap()
                        .to_owned_value();
                    let json = String::from_utf8(value.to_json().unwrap()).unwrap();
                    Some((frame.topic_str().to_owned(), json))
                }
                _ => None,
            };
            let ping = frame.fields == Fields::Ping;
            buf.drain(..len);
            if ping {
                let mut pong = Vec::new();
                encode(&Frame::new(Fields::Pong), &mut pong).unwrap();
                stream.write_all(&pong).unwrap();
            }
            if let Some(found) = found {
                return found;
            }
            continue;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed before the event");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn send(stream: &mut TcpStream, frame: &Frame<'_>) {
    let mut out = Vec::new();
    encode(frame, &mut out).unwrap();
    stream.write_all(&out).unwrap();
}

/// Waits (within the patience) until a HELLO with `token` is welcomed.
fn welcomed_eventually(addr: &str, token: &str) -> TcpStream {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (stream, _, fields) = hello(addr, token);
        if matches!(fields, Fields::Welcome(_)) {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "{token} never accepted: {fields:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reload_adds_and_removes_tokens_live_and_refuses_a_bad_file() {
    let dir = std::env::temp_dir().join(format!("shardbus-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shardbus.toml");
    let admin = ("ops", "ops-secret", "admin");
    write_config(&path, &[("a", "a-secret", "user"), admin], "");
    let (child, stderr, addr) = start(
        &["--shards", "2", "--config", path.to_str().unwrap()],
        &[("SHARDBUS_RUNTIME__IO_MEMORY", "65536")],
    );
    let server = Server(child);
    let log = Arc::new(Mutex::new(String::new()));
    let collected = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            collected.lock().unwrap().push_str(&line);
            collected.lock().unwrap().push('\n');
        }
    });
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.0.id()).unwrap());

    // An operator watching the reload events.
    let (mut ops, mut ops_buf, fields) = hello(&addr, "ops-secret");
    assert!(matches!(fields, Fields::Welcome(_)), "{fields:?}");
    send(
        &mut ops,
        &Frame::new(Fields::Sub { sid: 1 }).with_topic("$sys.events.reload"),
    );
    send(
        &mut ops,
        &Frame::new(Fields::Sub { sid: 2 }).with_topic("$sys.events.config_refused"),
    );
    send(&mut ops, &Frame::new(Fields::Ping).with_op_id(5));
    assert_eq!(next(&mut ops, &mut ops_buf), Some(Fields::Pong));

    // A subscriber with token a, before anything changes.
    let (mut sub, mut sub_buf, fields) = hello(&addr, "a-secret");
    assert!(matches!(fields, Fields::Welcome(_)), "{fields:?}");
    send(
        &mut sub,
        &Frame::new(Fields::Sub { sid: 1 }).with_topic("feed"),
    );
    send(&mut sub, &Frame::new(Fields::Ping).with_op_id(5));
    assert_eq!(next(&mut sub, &mut sub_buf), Some(Fields::Pong));
    let (_, _, refused) = hello(&addr, "b-secret");
    assert!(matches!(
        refused,
        Fields::Err {
            code: ErrorCode::AUTH_FAILED,
            ..
        }
    ));

    // SIGHUP adds token b; a's subscriber keeps receiving what b publishes.
    write_config(
        &path,
        &[("a", "a-secret", "user"), ("b", "b-secret", "user"), admin],
        "",
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let mut publisher = welcomed_eventually(&addr, "b-secret");
    send(
        &mut publisher,
        &Frame::new(Fields::Pub)
            .with_topic("feed")
            .with_payload(b"hi"),
    );
    assert!(matches!(
        next(&mut sub, &mut sub_buf),
        Some(Fields::Msg { sid: 1, .. })
    ));
    let (topic, event) = next_event(&mut ops, &mut ops_buf);
    assert_eq!(topic, "$sys.events.reload");
    assert!(event.contains("\"changed\":[\"tokens\"]"), "{event}");

    // A file that does not validate is refused by name, and b still gets in.
    std::fs::write(&path, "[auth]\nanonymous = false\nbogus_key = 1\n").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !log.lock().unwrap().contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        log.lock().unwrap().contains("bogus_key"),
        "{}",
        log.lock().unwrap()
    );
    welcomed_eventually(&addr, "b-secret");
    let (topic, event) = next_event(&mut ops, &mut ops_buf);
    assert_eq!(topic, "$sys.events.config_refused");
    assert!(event.contains("bogus_key"), "{event}");

    // Rate limits and the log level change live too: b is now held to one message a second.
    write_config(
        &path,
        &[("a", "a-secret", "user"), ("b", "b-secret", "user"), admin],
        "log_level = \"debug\"\n[rate_limits]\nconn_msgs_per_sec = 1",
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !log.lock().unwrap().contains("\"rate_limits\":true") {
        assert!(Instant::now() < deadline, "{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut limited = welcomed_eventually(&addr, "b-secret");
    let mut limited_buf = Vec::new();
    let mut answer = None;
    for _ in 0..5 {
        send(
            &mut limited,
            &Frame::new(Fields::Pub)
                .with_topic("feed")
                .with_payload(b"x"),
        );
    }
    send(&mut limited, &Frame::new(Fields::Ping).with_op_id(9));
    while let Some(fields) = next(&mut limited, &mut limited_buf) {
        if let Fields::Err { code, .. } = fields {
            answer = Some(code);
            break;
        }
        if fields == Fields::Pong {
            break;
        }
    }
    assert_eq!(answer, Some(ErrorCode::RATE_LIMITED));

    // POST /api/v1/reload removes token a: its subscriber is closed with a terminal code.
    write_config(&path, &[("b", "b-secret", "user"), admin], "");
    let http = {
        let text = log.lock().unwrap().clone();
        let at = text.find("http=").expect("the HTTP listener logged");
        text[at + 5..].split_whitespace().next().unwrap().to_owned()
    };
    let mut call = TcpStream::connect(&http).unwrap();
    call.set_read_timeout(Some(PATIENCE)).unwrap();
    call.write_all(
        b"POST /api/v1/reload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
          Authorization: Bearer ops-secret\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    call.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""removed":["a"]"#), "{answer}");
    let mut closed_with = None;
    while let Some(fields) = next(&mut sub, &mut sub_buf) {
        if let Fields::Err { code, .. } = fields {
            closed_with = Some(code);
        }
    }
    assert_eq!(closed_with, Some(ErrorCode::AUTH_FAILED));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends JOIN `sid` for `room` and returns the answer's fields (JOIN or ERR).
fn join(stream: &mut TcpStream, buf: &mut Vec<u8>, room: &str, sid: u64) -> Option<Fields> {
    let fields = Fields::Join(shardbus_protocol::RoomFields {
        sid,
        ..Default::default()
    });
    send(stream, &Frame::new(fields).with_topic(room).with_op_id(9));
    next(stream, buf)
}

/// The server's total of counter `name`, from STATUS.
fn total(stream: &mut TcpStream, buf: &mut Vec<u8>, name: &str) -> u64 {
    send(stream, &Frame::new(Fields::Status).with_op_id(77));
    loop {
        let mut chunk = [0u8; 65536];
        if let Ok(Some((frame, len))) = next_frame(buf, &Limits::default()) {
            let done = matches!(frame.fields, Fields::Status).then(|| {
                let limits = shardbus_protocol::container::ContainerLimits::default();
                let value = shardbus_protocol::container::decode(frame.payload, &limits)
                    .unwrap()
                    .to_owned_value();
                match value.get("totals").and_then(|t| t.get(name)) {
                    Some(shardbus_protocol::container::Value::U64(n)) => *n,
                    other => panic!("{name}: {other:?}"),
                }
            });
            buf.drain(..len);
            if let Some(n) = done {
                return n;
            }
            continue;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn room_options_reload_live_and_members_of_a_removed_room_still_leave() {
    let dir = std::env::temp_dir().join(format!("shardbus-reload-rooms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shardbus.toml");
    let tokens = [("a", "a-secret", "user")];
    write_config(&path, &tokens, "");
    let (child, _stderr, addr) = start(
        &["--shards", "2", "--config", path.to_str().unwrap()],
        &[("SHARDBUS_RUNTIME__IO_MEMORY", "65536")],
    );
    let server = Server(child);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.0.id()).unwrap());
    let (mut member, mut buf, _) = hello(&addr, "a-secret");
    assert!(matches!(
        join(&mut member, &mut buf, "chat.x", 1),
        Some(Fields::Err {
            code: ErrorCode::NOT_A_ROOM,
            ..
        })
    ));

    // SIGHUP makes chat.> rooms; every shard takes them at its next watch tick.
    write_config(
        &path,
        &tokens,
        "[[rooms]]\npattern = \"chat.>\"\nhistory_size = 5",
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut sid = 1;
    loop {
        sid += 1;
        match join(&mut member, &mut buf, "chat.x", sid) {
            Some(Fields::Join(_)) => break,
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut probe, mut probe_buf, _) = hello(&addr, "a-secret");
    assert_eq!(total(&mut probe, &mut probe_buf, "room_members"), 1);

    // The pattern goes again: the member stays one until it goes, then nothing is left.
    write_config(&path, &tokens, "");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        // PRESENCE, not JOIN: a probe that joined before the reload reached its shard would be
        // a member itself.
        let presence = Fields::Presence(shardbus_protocol::RoomFields::default());
        send(&mut probe, &Frame::new(presence).with_topic("chat.y"));
        match next(&mut probe, &mut probe_buf) {
            Some(Fields::Err {
                code: ErrorCode::NOT_A_ROOM,
                ..
            }) => break,
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(member);
    let deadline = Instant::now() + PATIENCE;
    while total(&mut probe, &mut probe_buf, "room_members") != 0 {
        assert!(Instant::now() < deadline, "the member never left");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(total(&mut probe, &mut probe_buf, "rooms"), 0);
}
