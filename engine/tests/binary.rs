//! The `shardbus` binary itself: `--print-config`, clear start-up errors (port taken, too
//! little locked memory) with a non-zero exit, and SIGTERM draining clients then exiting 0.
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

/// Both listeners on ports the OS picks (tests run in parallel).
const ANY_PORTS: [&str; 4] = ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];

const BIN: &str = env!("CARGO_BIN_EXE_shardbus");

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
    let mut child = Command::new(BIN)
        .args(ANY_PORTS)
        .args(["--shards", "2"])
        .env("SHARDBUS_SHUTDOWN__GRACE_MS", "200")
        .env("SHARDBUS_RUNTIME__IO_MEMORY", "65536")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited early"
        );
        if let Some(at) = line.find("listen=") {
            break line[at + 7..].split_whitespace().next().unwrap().to_owned();
        }
    };
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
