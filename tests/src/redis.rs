//! A real `redis-server` for a test: its own free port and temporary directory, started and
//! stopped by PID (SIGTERM for a clean stop, SIGSTOP/SIGCONT to make it hang), never a mock;
//! optionally with a password and TLS (a second port, with the test PKI's server certificate).
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
    secured: Option<Secured>,
}

/// A password every client must give, and TLS on a port of its own.
struct Secured {
    password: String,
    tls_port: u16,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
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

    /// A redis-server that wants `password` and serves TLS (with `pki`'s server certificate)
    /// on a port of its own: `tls_url` names it.
    pub fn secured(pki: &crate::pki::Pki, password: &str) -> RedisServer {
        let secured = Secured {
            password: password.to_owned(),
            tls_port: 0,
            cert: pki.server.cert.clone(),
            key: pki.server.key.clone(),
            ca: pki.ca.clone(),
        };
        RedisServer::launch_with(false, Some(secured))
    }

    fn launch(appendonly: bool) -> RedisServer {
        RedisServer::launch_with(appendonly, None)
    }

    fn launch_with(appendonly: bool, secured: Option<Secured>) -> RedisServer {
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
            secured,
        };
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        // A port the OS just handed out; another process may take it first: then try again.
        for _ in 0..20 {
            redis.port = free();
            if let Some(secured) = &mut redis.secured {
                secured.tls_port = free();
            }
            if redis.run() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 20 free ports");
    }

    /// Starts the process on `self.port`; false if it exited (the port was taken).
    fn run(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--protected-mode", "no", "--daemonize", "no"])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(secured) = &self.secured {
            command
                .args(["--requirepass", &secured.password])
                .args(["--tls-port", &secured.tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(&secured.cert)
                .arg("--tls-key-file")
                .arg(&secured.key)
                .arg("--tls-ca-cert-file")
                .arg(&secured.ca)
                .args(["--tls-auth-clients", "no"]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
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

    /// `rediss://:<password>@127.0.0.1:<tls port>/` of a secured server (the plain URL, with
    /// the password, of any other).
    pub fn tls_url(&self) -> String {
        match &self.secured {
            Some(s) => format!("rediss://:{}@127.0.0.1:{}/", s.password, s.tls_port),
            None => self.url(),
        }
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
        let mut reply = vec![0; 64 << 10];
        if let Some(secured) = &self.secured {
            let auth = format!(
                "*2\r\n$4\r\nAUTH\r\n${}\r\n{}\r\n",
                secured.password.len(),
                secured.password
            );
            stream.write_all(auth.as_bytes()).ok()?;
            let n = stream.read(&mut reply).ok()?;
            if !reply.get(..n)?.starts_with(b"+OK") {
                return None;
            }
        }
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
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
