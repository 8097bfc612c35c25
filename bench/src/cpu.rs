//! How much CPU the load tool and the broker used during a run (the tool's own from
//! getrusage(2), to the microsecond; the broker's from Linux `/proc/<pid>/stat`: user and system
//! time of every thread, in the kernel's fixed 100 ticks per second), so a report says whether
//! it measured the broker or the tool's own ceiling.

use std::time::Instant;

/// `/proc` reports process times in USER_HZ, which Linux fixes at 100 for user space.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds of `pid` (user and system, all threads) so far; `None` if it cannot be read.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the fields start at `state` (field 3): utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// CPU seconds of this process (user and system, all threads) so far: getrusage, not `/proc`,
/// whose ticks read a short run's few milliseconds as nothing.
fn own_cpu_secs() -> Option<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(secs(usage.user_time()) + secs(usage.system_time()))
}

/// A reading taken when a run starts.
pub struct CpuClock {
    at: Instant,
    tool: Option<f64>,
    servers: Vec<(String, Option<f64>)>,
}

/// What a run used, in percent of one core over the run's wall time.
#[derive(Debug, Clone, Copy)]
pub struct CpuShare {
    pub tool_percent: f64,
    /// `None` without `--server-pid`.
    pub server_percent: Option<f64>,
}

impl CpuClock {
    /// Starts counting for this process and the broker processes `server_pids`.
    pub fn start(server_pids: &[String]) -> CpuClock {
        CpuClock {
            at: Instant::now(),
            tool: own_cpu_secs(),
            servers: server_pids
                .iter()
                .map(|pid| (pid.clone(), cpu_secs(pid)))
                .collect(),
        }
    }

    /// The shares since `start`.
    pub fn share(&self) -> CpuShare {
        let wall = self.at.elapsed().as_secs_f64().max(1e-6);
        let used = |before: Option<f64>, now: Option<f64>| Some((now? - before?).max(0.0));
        let tool = used(self.tool, own_cpu_secs()).unwrap_or(0.0);
        let server = (!self.servers.is_empty()).then(|| {
            self.servers
                .iter()
                .filter_map(|(pid, before)| used(*before, cpu_secs(pid)))
                .sum::<f64>()
        });
        CpuShare {
            tool_percent: 100.0 * tool / wall,
            server_percent: server.map(|s| 100.0 * s / wall),
        }
    }
}

impl CpuShare {
    /// A warning when the tool, not the broker, is what likely set the pace: it used more CPU
    /// than the broker, or (without a broker's pid) more than 90% of the cores it could use.
    pub fn warning(&self, cores: usize) -> Option<String> {
        match self.server_percent {
            Some(server) if self.tool_percent > server && self.tool_percent > 50.0 => {
                Some(format!(
                    "the load tool used {:.0}% CPU and the broker {server:.0}%: the figures may be \
                 the tool's ceiling, not the broker's",
                    self.tool_percent
                ))
            }
            None if self.tool_percent > 90.0 * cores as f64 => Some(format!(
                "the load tool used {:.0}% CPU, every core it had: the figures may be its \
                 ceiling (give --server-pid to compare with the broker)",
                self.tool_percent
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn this_process_burns_cpu_and_the_warning_follows_the_shares() {
        let clock = CpuClock::start(&["self".to_owned()]);
        let mut x = 0u64;
        let until = Instant::now() + std::time::Duration::from_millis(200);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let share = clock.share();
        assert!(share.tool_percent > 10.0, "{share:?}");
        assert!(share.server_percent.unwrap() > 10.0, "{share:?}");
        let busy_tool = CpuShare {
            tool_percent: 95.0,
            server_percent: Some(40.0),
        };
        assert!(busy_tool.warning(2).is_some());
        let busy_broker = CpuShare {
            tool_percent: 60.0,
            server_percent: Some(150.0),
        };
        assert!(busy_broker.warning(2).is_none());
    }
}
