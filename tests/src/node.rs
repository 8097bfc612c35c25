//! A `shardbus` process, for the tests that need a broker to die (`kill -9`) or to come back:
//! the binary cargo built beside the test (`target/<profile>/shardbus`; `cargo test
//! --workspace` builds it), on ports the OS picks, stopped by PID.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running broker process.
pub struct NodeProcess {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the HTTP edge listens.
    pub http: SocketAddr,
}

/// The broker binary next to the running test's own.
pub fn broker_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/shardbus
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("shardbus");
    assert!(
        binary.exists(),
        "{} is missing: build it (cargo build --bin shardbus) or run cargo test --workspace",
        binary.display()
    );
    binary
}

impl NodeProcess {
    /// Starts the broker with `settings` (`section.key=value`, each passed as `--set`).
    pub fn start(settings: &[String]) -> NodeProcess {
        NodeProcess::start_with("", settings)
    }

    /// Starts the broker with the TOML `config` (for what `--set` cannot say, such as
    /// `[[rooms]]`) and `settings`.
    pub fn start_with(config: &str, settings: &[String]) -> NodeProcess {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let file = std::env::temp_dir().join(format!(
            "shardbus-node-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&file, config).unwrap();
        let mut command = Command::new(broker_binary());
        command.arg("--config").arg(&file);
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--shards",
            "2",
        ]);
        command.args([
            "--set",
            "runtime.io_memory=65536",
            "--set",
            "auth.http_open=true",
        ]);
        for setting in settings {
            command.args(["--set", setting]);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let (mut addr, mut http) = (None, None);
        let mut line = String::new();
        while addr.is_none() || http.is_none() {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the broker exited early"
            );
            let after = |key: &str| {
                line.find(key)
                    .and_then(|at| line[at + key.len()..].split_whitespace().next())
                    .and_then(|a| a.parse().ok())
            };
            addr = addr.or_else(|| after(" listen="));
            http = http.or_else(|| after(" http="));
        }
        // The rest of the log is read (and dropped) so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        NodeProcess {
            child,
            addr: addr.unwrap(),
            http: http.unwrap(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (no goodbye, nothing flushed) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM (a drain) and waits for it to exit.
    pub fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
