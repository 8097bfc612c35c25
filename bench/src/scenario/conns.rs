//! `conns`: N connections, each subscribed to its own subject (a fleet of devices), held open
//! while the broker's resident memory is read from `/proc/<pid>/status`; then one message is
//! published to every subject and every connection must receive it. Reports the broker's RSS
//! per connection.

use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::report::{Measured, Report};
use crate::stamp;
use crate::wire::{self, Event, Target};

/// A connections run's parameters.
#[derive(Debug, Clone)]
pub struct Conns {
    /// Broker.
    pub target: Target,
    /// Connections to hold.
    pub connections: usize,
    /// The broker's process id, to read its RSS.
    pub server_pid: Option<u32>,
    /// Payload bytes of the one message each connection gets.
    pub size: usize,
    /// How long to keep the connections open after the run.
    pub hold: Duration,
}

/// Resident memory of `pid` in bytes.
fn rss(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| BenchError::Setup(format!("no VmRSS for pid {pid}")))
}

/// Raises this process's open-files limit to its hard limit (a connection is a descriptor).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

impl Conns {
    /// Runs the scenario.
    ///
    /// # Errors
    /// A connection failed, or a connection did not get its message.
    pub fn run(&self) -> Result<Report, BenchError> {
        raise_open_files_limit();
        let before = self.server_pid.map(rss).transpose()?;
        let started = Instant::now();
        let mut wires = Vec::with_capacity(self.connections);
        for i in 0..self.connections {
            let mut wire = wire::connect(self.target)?;
            wire.subscribe(&format!("bench.conns.{i}"), None)?;
            wire.flush()?;
            wires.push(wire);
        }
        for wire in &mut wires {
            wire.sync()?;
        }
        let connect_secs = started.elapsed().as_secs_f64();
        // Let the broker settle (lazy allocations, freed handshake buffers) before reading.
        std::thread::sleep(Duration::from_millis(500));
        let after = self.server_pid.map(rss).transpose()?;

        let mut publisher = wire::connect(self.target)?;
        let mut payload = vec![0u8; self.size.max(stamp::MIN_PAYLOAD)];
        let sent_at = Instant::now();
        for i in 0..self.connections {
            stamp::write(&mut payload, stamp::now_ns());
            publisher.publish(&format!("bench.conns.{i}"), &payload)?;
        }
        publisher.flush()?;
        publisher.sync()?;
        let mut received = 0u64;
        let mut latency = crate::report::histogram()?;
        for wire in &mut wires {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut got = false;
            while !got && Instant::now() < deadline {
                wire.receive(&mut |event| {
                    if let Event::Msg { payload, .. } = event {
                        got = true;
                        let _ = latency
                            .record(stamp::now_ns().saturating_sub(stamp::read(payload)).max(1));
                    }
                })?;
            }
            received += u64::from(got);
        }
        let total_secs = sent_at.elapsed().as_secs_f64().max(1e-9);
        let per_connection = match (before, after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / self.connections.max(1) as f64),
            _ => None,
        };
        let n = self.connections as u64;
        if !self.hold.is_zero() {
            eprintln!("holding {n} connections for {} s", self.hold.as_secs());
            std::thread::sleep(self.hold);
        }
        drop(wires);
        Ok(Report::new(
            Measured {
                scenario: "conns",
                target: self.target.to_string(),
                publishers: 1,
                subscribers: self.connections,
                size: payload.len(),
                sent: n,
                received,
                expected: n,
                send_secs: connect_secs,
                total_secs,
            },
            &latency,
            per_connection,
        ))
    }
}
