//! A scenario's result: throughput and latency percentiles, printed as a table row or as JSON.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::BenchError;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Samples.
    pub samples: u64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            samples: h.len(),
        }
    }
}

/// One scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// What was measured.
    pub target: String,
    /// Publishers (or requesters).
    pub publishers: usize,
    /// Subscribers (or workers, responders).
    pub subscribers: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages sent.
    pub sent: u64,
    /// Messages received by subscribers (or responses).
    pub received: u64,
    /// Seconds from the first send to the last send.
    pub send_secs: f64,
    /// Seconds from the first send to the last receive.
    pub total_secs: f64,
    /// Messages sent per second.
    pub sent_per_sec: f64,
    /// Messages received per second, all subscribers together.
    pub received_per_sec: f64,
    /// Payload megabytes received per second.
    pub received_mb_per_sec: f64,
    /// Messages that were expected and never arrived.
    pub missing: u64,
    /// Send-to-receive latency (request round trip for `reqrep`).
    pub latency: Latency,
    /// `conns` with `--server-pid`: the broker's RSS growth per held connection, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_bytes_per_connection: Option<f64>,
    /// The tool's CPU over the run, in percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_cpu_percent: Option<f64>,
    /// The broker's CPU over the run (with `--server-pid`), in percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_percent: Option<f64>,
    /// What the hypervisor took from the machine's CPUs over the run (steal time), in percent
    /// of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_steal_percent: Option<f64>,
    /// Where a request/reply's two ends landed, on a broker with shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// The shards a request/reply's requesters and responders landed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub requesters: Vec<u16>,
    pub responders: Vec<u16>,
    /// `same shard` (every end on one shard), `cross-shard` (no requester shares a shard with
    /// a responder) or `mixed`.
    pub kind: &'static str,
}

impl Placement {
    /// From each end's shard; `None` when the broker has no shards.
    pub fn of(requesters: &[Option<u16>], responders: &[Option<u16>]) -> Option<Placement> {
        let requesters: Vec<u16> = requesters.iter().copied().collect::<Option<_>>()?;
        let responders: Vec<u16> = responders.iter().copied().collect::<Option<_>>()?;
        let first = requesters.first()?;
        let kind = if requesters.iter().chain(&responders).all(|s| s == first) {
            "same shard"
        } else if requesters.iter().all(|s| !responders.contains(s)) {
            "cross-shard"
        } else {
            "mixed"
        };
        Some(Placement {
            requesters,
            responders,
            kind,
        })
    }
}

/// What a scenario measured; [`Report::new`] derives the rates from it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Scenario name.
    pub scenario: &'static str,
    /// What was measured.
    pub target: String,
    /// Publishers (or requesters).
    pub publishers: usize,
    /// Subscribers (or workers, responders, connections).
    pub subscribers: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Messages that should have been received.
    pub expected: u64,
    /// Seconds from the first send to the last send.
    pub send_secs: f64,
    /// Seconds from the first send to the last receive.
    pub total_secs: f64,
}

impl Report {
    /// A report from what was measured, its latency histogram and, for `conns`, the broker's
    /// memory per connection.
    pub fn new(m: Measured, latency: &Histogram<u64>, rss_per_connection: Option<f64>) -> Report {
        let total_secs = m.total_secs.max(1e-9);
        // A send phase too short for the clock to measure (a small -n fits in the socket
        // buffers at once) would make sent/s absurd (2,000 in "1 ns"): rate it over the run.
        let send_secs = if m.send_secs < 1e-3 {
            total_secs
        } else {
            m.send_secs
        };
        Report {
            scenario: m.scenario.to_owned(),
            target: m.target,
            publishers: m.publishers,
            subscribers: m.subscribers,
            size: m.size,
            sent: m.sent,
            received: m.received,
            send_secs,
            total_secs,
            sent_per_sec: m.sent as f64 / send_secs,
            received_per_sec: m.received as f64 / total_secs,
            received_mb_per_sec: (m.received * m.size as u64) as f64 / total_secs / 1e6,
            missing: m.expected.saturating_sub(m.received),
            latency: Latency::of(latency),
            server_rss_bytes_per_connection: rss_per_connection,
            tool_cpu_percent: None,
            server_cpu_percent: None,
            host_steal_percent: None,
            placement: None,
        }
    }

    /// The header of the human table.
    pub fn table_header() -> String {
        format!(
            "{:<9} {:<28} {:>4} {:>4} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scenario",
            "target",
            "pub",
            "sub",
            "size",
            "sent/s",
            "recv/s",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "missing"
        )
    }

    /// One row of the human table.
    pub fn table_row(&self) -> String {
        format!(
            "{:<9} {:<28} {:>4} {:>4} {:>6} {:>12.0} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9}",
            self.scenario,
            self.target,
            self.publishers,
            self.subscribers,
            self.size,
            self.sent_per_sec,
            self.received_per_sec,
            self.latency.p50_us,
            self.latency.p90_us,
            self.latency.p99_us,
            self.latency.p999_us,
            self.missing
        ) + &self
            .server_rss_bytes_per_connection
            .map(|b| format!("   server RSS per connection: {:.0} B", b))
            .unwrap_or_default()
            + &self
                .tool_cpu_percent
                .map(|t| format!("   CPU: tool {t:.0}%"))
                .unwrap_or_default()
            + &self
                .server_cpu_percent
                .map(|s| format!(", server {s:.0}%"))
                .unwrap_or_default()
            + &self
                .host_steal_percent
                .filter(|&s| s >= 0.5)
                .map(|s| format!(", stolen by the host {s:.0}%"))
                .unwrap_or_default()
            + &self
                .placement
                .as_ref()
                .map(|p| {
                    format!(
                        "   {}: requesters on {:?}, responders on {:?}",
                        p.kind, p.requesters, p.responders
                    )
                })
                .unwrap_or_default()
    }
}

/// A histogram for nanosecond latencies up to a minute.
///
/// # Errors
/// Only if hdrhistogram refused these constant bounds.
pub fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| BenchError::Setup(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::Placement;

    #[test]
    fn a_placement_says_whether_the_ends_share_a_shard() {
        let kind = |req: &[u16], resp: &[u16]| {
            let some = |s: &[u16]| s.iter().map(|&x| Some(x)).collect::<Vec<_>>();
            Placement::of(&some(req), &some(resp)).unwrap().kind
        };
        assert_eq!(kind(&[1], &[1]), "same shard");
        assert_eq!(kind(&[0], &[1]), "cross-shard");
        assert_eq!(kind(&[0, 0], &[1, 1]), "cross-shard");
        assert_eq!(kind(&[0, 1], &[1]), "mixed");
        assert_eq!(
            Placement::of(&[None], &[Some(0)]),
            None,
            "NATS has no shards"
        );
    }
}
