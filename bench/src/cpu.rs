//! How much CPU the load tool and the broker used during a run (the tool's own from
//! getrusage(2), to the microsecond; the broker's from Linux `/proc/<pid>/stat`: user and system
//! time of every thread, in the kernel's fixed 100 ticks per second), so a report says whether
//! it measured the broker or the tool's own ceiling; and how much the hypervisor took from this
//! machine meanwhile (steal time, `/proc/stat`), which on a shared host made one run of
//! request/reply a third as fast as the next with nothing else changed.

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

/// CPU seconds the hypervisor has taken from this machine's CPUs so far (steal, all CPUs:
/// the eighth number of `/proc/stat`'s `cpu` line, in USER_HZ).
fn stolen_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let steal: f64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(steal / TICKS_PER_SEC)
}

/// Steal above this share of one core over a run makes its figures the host's, not ours.
const STEAL_WARNING_PERCENT: f64 = 5.0;

/// A reading taken when a run starts.
pub struct CpuClock {
    at: Instant,
    stolen: Option<f64>,
    tool: Option<f64>,
    servers: Vec<(String, Option<f64>)>,
}

/// What a run used, in percent of one core over the run's wall time.
#[derive(Debug, Clone, Copy)]
pub struct CpuShare {
    pub tool_percent: f64,
    /// `None` without `--server-pid`.
    pub server_percent: Option<f64>,
    /// Taken by the hypervisor from all of this machine's CPUs; `None` where `/proc/stat`
    /// cannot be read.
    pub steal_percent: Option<f64>,
}

impl CpuClock {
    /// Starts counting for this process and the broker processes `server_pids`.
    pub fn start(server_pids: &[String]) -> CpuClock {
        CpuClock {
            at: Instant::now(),
            stolen: stolen_secs(),
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
            steal_percent: used(self.stolen, stolen_secs()).map(|s| 100.0 * s / wall),
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

    /// A warning when the hypervisor took enough of the machine during the run to set the
    /// figures (a run to repeat, or to report apart).
    pub fn steal_warning(&self) -> Option<String> {
        let steal = self.steal_percent.filter(|&s| s > STEAL_WARNING_PERCENT)?;
        Some(format!(
            "the hypervisor took {steal:.0}% of a core from this machine during the run (steal \
             time): the figures are the host's as much as the broker's"
        ))
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
        assert!(share.steal_percent.unwrap() >= 0.0, "{share:?}");
        let busy_tool = CpuShare {
            tool_percent: 95.0,
            server_percent: Some(40.0),
            steal_percent: Some(0.0),
        };
        assert!(busy_tool.steal_warning().is_none());
        let stolen = CpuShare {
            steal_percent: Some(30.0),
            ..busy_tool
        };
        assert!(stolen.steal_warning().is_some());
        assert!(busy_tool.warning(2).is_some());
        let busy_broker = CpuShare {
            tool_percent: 60.0,
            server_percent: Some(150.0),
            steal_percent: None,
        };
        assert!(busy_broker.warning(2).is_none());
    }
}
