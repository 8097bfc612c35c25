//! A real `redis-server` for a test: its own free port and temporary directory, started and
//! stopped by PID (SIGTERM for a clean stop, SIGSTOP/SIGCONT to make it hang), never a mock.
//! `scripts/test.sh` installs Debian's `redis-server` when it is missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{PATIENCE, wait_until};

/// A running (or stopped) redis-server.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    appendonly: bool,
}

impl RedisServer {
    /// A redis-server keeping nothing on disk.
    pub fn start() -> RedisServer {
        RedisServer::launch(false)
    }

    /// A redis-server with `appendonly yes` (every write fsynced each second to its
    /// directory), so a restart keeps what it acknowledged before a clean stop.
    pub fn persistent() -> RedisServer {
        RedisServer::launch(true)
    }

    fn launch(appendonly: bool) -> RedisServer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shardbus-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = RedisServer {
            child: None,
            port: 0,
            dir,
            appendonly,
        };
        // A port the OS just handed out; another process may take it first: then try again.
        for _ in 0..20 {
            redis.port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if redis.run() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 20 free ports");
    }

    /// Starts the process on `self.port`; false if it exited (the port was taken).
    fn run(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--protected-mode", "no", "--daemonize", "no"])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => panic!(
                "cannot run redis-server ({error}): scripts/test.sh installs it (apt-get install redis-server)"
            ),
        };
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if self.ping() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!("redis-server did not answer PING on port {}", self.port);
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it answers PING now.
    pub fn ping(&self) -> bool {
        self.command(&["PING"])
            .is_some_and(|reply| reply.starts_with("+PONG"))
    }

    /// Sends one command and returns the first reply's raw text (`None`: no answer).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = vec![0; 64 << 10];
        let n = stream.read(&mut reply).ok()?;
        (n > 0).then(|| String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
    }

    /// Stops it cleanly (SIGTERM: with appendonly, what it acknowledged is on disk) and waits
    /// for the process to exit.
    pub fn stop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        wait_until("redis-server's port to be free again", || self.run());
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing is answered.
    pub fn freeze(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
