//! What the tests of the real binary share: starting it on free ports, reading the address
//! it logged, killing it when a test ends, and reading its resident memory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

/// Both listeners on ports the OS picks (tests run in parallel).
pub const ANY_PORTS: [&str; 4] = ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shardbus");

/// Starts the binary with `args` and `envs`, and reads its log up to the line that names the
/// address it listens on: the child, the rest of its log, and that address.
pub fn start(args: &[&str], envs: &[(&str, &str)]) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = Command::new(BIN)
        .args(ANY_PORTS)
        .args(args)
        .envs(envs.iter().copied())
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
    (child, stderr, addr)
}

/// Kills the server when the test ends, passed or not.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident memory of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}
