//! The `shardbus` binary itself: `--print-config`, clear start-up errors (port taken, too
//! little locked memory) with a non-zero exit, SIGTERM draining clients then exiting 0, and
//! what a held connection costs it in memory.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use shardbus_protocol::{
    Fields, Frame, HelloOptions, Limits, PROTOCOL_VERSION, encode, next_frame,
};

mod support;
use support::{ANY_PORTS, BIN, Server, rss_of, start};

#[test]
fn print_config_shows_the_effective_configuration() {
    let out = Command::new(BIN)
        .args(["--print-config", "--shards", "3"])
        .env("SHARDBUS_LIMITS__MAX_PAYLOAD", "2048")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("shards = 3"), "{text}");
    assert!(text.contains("max_payload = 2048"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:7400\""), "{text}");
}

#[test]
fn a_taken_http_port_names_its_own_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--http-listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("with --http-listen)"), "{stderr}");
}

#[test]
fn a_restart_right_after_a_drain_listens_on_the_same_port_at_once() {
    let envs = [
        ("SHARDBUS_SHUTDOWN__GRACE_MS", "100"),
        ("SHARDBUS_RUNTIME__IO_MEMORY", "65536"),
    ];
    let (mut child, mut stderr, addr) = start(&["--shards", "2"], &envs);
    // Clients that stay until the server closes them: its side of each ends in TIME_WAIT.
    let mut clients: Vec<TcpStream> = (0..8).map(|_| device(&addr, "restart")).collect();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    for client in &mut clients {
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();

    let mut again = Command::new(BIN)
        .args([
            "--shards",
            "2",
            "--listen",
            &addr,
            "--http-listen",
            "127.0.0.1:0",
        ])
        .envs(envs)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(again.stderr.take().unwrap());
    let mut line = String::new();
    let listening = loop {
        line.clear();
        if log.read_line(&mut line).unwrap() == 0 {
            break false;
        }
        if line.contains("listen=") {
            break true;
        }
    };
    let _ = again.kill();
    let _ = again.wait();
    assert!(listening, "the restart did not listen: {line}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr, "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn too_little_locked_memory_is_a_clear_error() {
    let out = unprivileged(65536)
        .arg(BIN)
        .args(ANY_PORTS)
        .args(["--shards", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not enough locked memory"), "{stderr}");
    assert!(stderr.contains("ulimit -l 6656"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn two_shards_register_their_buffers_within_a_common_8_mib_limit() {
    // The regression: transparent huge pages made each registered buffer count as 2 MiB, so
    // glommio fell back to unregistered buffers (a warning) under the usual 8 MiB limit.
    let mut child = unprivileged(8 << 20)
        .arg(BIN)
        .args(ANY_PORTS)
        .args(["--shards", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut before_listening = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        before_listening.push_str(&line);
        if line.contains("listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(before_listening.contains("listening"), "{before_listening}");
    assert!(
        !before_listening.contains("registering buffers"),
        "{before_listening}"
    );
}

/// A command prefix that runs what follows with a locked-memory limit of `memlock` bytes and,
/// when the tests run as root (whose CAP_IPC_LOCK lifts the limit), as `nobody`.
fn unprivileged(memlock: u64) -> Command {
    let mut command = Command::new("prlimit");
    command.arg(format!("--memlock={memlock}:{memlock}"));
    if is_root() {
        command.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    command
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn sigterm_drains_clients_and_exits_zero() {
    let (mut child, mut stderr, addr) = start(
        &["--shards", "2"],
        &[
            ("SHARDBUS_SHUTDOWN__GRACE_MS", "200"),
            ("SHARDBUS_RUNTIME__IO_MEMORY", "65536"),
        ],
    );
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut hello = Vec::new();
    encode(
        &Frame::new(Fields::Hello {
            version: PROTOCOL_VERSION,
            options: HelloOptions(0),
        }),
        &mut hello,
    )
    .unwrap();
    stream.write_all(&hello).unwrap();
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let mut signalled = false;
    loop {
        while let Some((frame, len)) = next_frame(&buf, &Limits::default()).unwrap() {
            seen.push(frame.fields);
            buf.drain(..len);
        }
        if !signalled && seen.iter().any(|f| matches!(f, Fields::Welcome(_))) {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            signalled = true;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(
        seen.iter()
            .any(|f| matches!(f, Fields::Drain { grace_ms: 200 })),
        "{seen:?}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

// What a held connection costs: the server is its own process, so its resident memory is its
// own. The bound is loose (a debug build, a noisy machine); it catches the kind of regression
// that made every connection's task 5 KB (a TLS handshake's state kept inline in the session
// future). `shardbus-bench conns` gives the release figure (`perf/RESULTS.md`).

const WARM: usize = 500;
/// Connections measured, when the open-files limit allows.
const MEASURED: usize = 2_500;
/// Bytes of server RSS per idle subscribed connection that fail the test (release: ~2.8 kB).
const BOUND: u64 = 5_000;

/// A connection that said HELLO, subscribed to `subject`, and saw the PONG that follows (so
/// the server has handled all three).
fn device(addr: &str, subject: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = Vec::new();
    let hello = Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    });
    encode(&hello, &mut out).unwrap();
    encode(
        &Frame::new(Fields::Sub { sid: 1 }).with_topic(subject),
        &mut out,
    )
    .unwrap();
    encode(&Frame::new(Fields::Ping), &mut out).unwrap();
    stream.write_all(&out).unwrap();
    let mut buf = Vec::new();
    loop {
        while let Some((frame, len)) = next_frame(&buf, &Limits::default()).unwrap() {
            assert!(
                !matches!(frame.fields, Fields::Err { .. }),
                "{:?}",
                frame.fields
            );
            if frame.fields == Fields::Pong {
                return stream;
            }
            buf.drain(..len);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn an_idle_subscribed_connection_costs_the_server_a_few_kilobytes() {
    // The test and the server each hold one end of every connection: raise the open-files
    // limit to the hard limit (the server does so itself) and fit the count under it.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    let measured = MEASURED.min(
        usize::try_from(hard)
            .unwrap_or(usize::MAX)
            .saturating_sub(WARM + 200),
    );
    assert!(
        measured >= 500,
        "an open-files hard limit of {hard} leaves too few connections to measure"
    );
    let (child, mut stderr, addr) = start(
        &["--shards", "2"],
        &[("SHARDBUS_RUNTIME__IO_MEMORY", "65536")],
    );
    let server = Server(child);
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let pid = server.0.id();
    let mut held: Vec<TcpStream> = (0..WARM)
        .map(|i| device(&addr, &format!("devices.warm.{i}")))
        .collect();
    let before = rss_of(pid);
    held.extend((0..measured).map(|i| device(&addr, &format!("devices.{i}"))));
    let after = rss_of(pid);
    let per_connection = after.saturating_sub(before) / measured as u64;
    eprintln!("server RSS {before} -> {after} bytes: {per_connection} bytes per connection");
    assert!(
        per_connection < BOUND,
        "{per_connection} bytes of server memory per idle connection (bound {BOUND})"
    );
    drop(held);
}
