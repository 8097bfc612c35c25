//! What the CLI's end-to-end tests share: running `shardbus-cli` against a test server, in
//! the foreground or in the background with its stderr collected.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};

use shardbus_tests::{TestServer, wait_until};

pub const CLI: &str = env!("CARGO_BIN_EXE_shardbus-cli");

/// Runs the CLI against `server` to the end.
pub fn cli(server: &TestServer, args: &[&str]) -> Output {
    cli_with(server, args, &[])
}

/// Runs the CLI against `server` with environment variables `envs`.
pub fn cli_with(server: &TestServer, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(CLI)
        .arg("--server")
        .arg(server.addr.to_string())
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A command running in the background; killed and reaped if the test fails first.
pub struct Running {
    child: Child,
    /// Everything it wrote to stderr so far (read on a thread, so it never blocks on it).
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (within the tests' patience) until it exits.
    pub fn exited(&mut self) -> ExitStatus {
        let mut status = None;
        wait_until("the CLI to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a long-running command and returns once it printed `ready` on stderr.
pub fn background(server: &TestServer, args: &[&str], ready: &str) -> Running {
    spawn(server, args, ready, Stdio::piped())
}

/// As [`background`], its stdout thrown away (a command that prints without end).
pub fn background_quiet(server: &TestServer, args: &[&str], ready: &str) -> Running {
    spawn(server, args, ready, Stdio::null())
}

fn spawn(server: &TestServer, args: &[&str], ready: &str, stdout: Stdio) -> Running {
    let mut child = Command::new(CLI)
        .arg("--server")
        .arg(server.addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let stderr = Arc::new(Mutex::new(String::new()));
    let running = Running {
        child,
        stderr: Arc::clone(&stderr),
    };
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "exited before {ready:?}: {}",
            stderr.lock().unwrap()
        );
        stderr.lock().unwrap().push_str(&line);
        if line.contains(ready) {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        while lines.read_line(&mut rest).unwrap_or(0) > 0 {
            stderr.lock().unwrap().push_str(&rest);
            rest.clear();
        }
    });
    running
}

/// Waits for a background command to exit successfully and returns its output.
pub fn finish(mut running: Running) -> String {
    let status = running.child.wait().unwrap();
    assert!(status.success(), "{}", running.stderr());
    let mut out = String::new();
    running
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}
