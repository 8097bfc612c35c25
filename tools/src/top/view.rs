//! What `top` shows, worked out from two looks at the server: rates per shard and in total,
//! the busiest connections by the chosen key, slow consumers, errors and services; as text
//! (`--once`), as JSON (`--once --json`), and as the live screen's rows.

use std::fmt::Write as _;

use shardbus_protocol::container::Value;

use super::sample::{ConnFigures, Sample, ServiceFigures, ShardFigures};

/// What the connections are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    MsgsIn,
    MsgsOut,
    BytesIn,
    BytesOut,
    Pending,
}

impl SortKey {
    /// The next key (the live screen's `s`).
    pub fn next(self) -> SortKey {
        match self {
            SortKey::MsgsIn => SortKey::MsgsOut,
            SortKey::MsgsOut => SortKey::BytesIn,
            SortKey::BytesIn => SortKey::BytesOut,
            SortKey::BytesOut => SortKey::Pending,
            SortKey::Pending => SortKey::MsgsIn,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::MsgsIn => "msgs_in",
            SortKey::MsgsOut => "msgs_out",
            SortKey::BytesIn => "bytes_in",
            SortKey::BytesOut => "bytes_out",
            SortKey::Pending => "pending",
        }
    }
}

/// Per second, between two looks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub msgs_in: f64,
    pub msgs_out: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
}

/// A shard's (or the total's) line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardLine {
    pub rates: Rates,
    pub now: ShardFigures,
    /// Slow consumers cut since the previous look.
    pub new_slow_consumers: u64,
}

/// A connection's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnLine {
    pub now: ConnFigures,
    pub rates: Rates,
}

/// Everything on the screen.
#[derive(Debug, Clone)]
pub struct View {
    pub seconds: f64,
    pub shards: Vec<ShardLine>,
    pub total: ShardLine,
    pub sort: SortKey,
    /// The busiest first; `None`: the identity may not list them.
    pub connections: Option<Vec<ConnLine>>,
    /// How many connections the server listed.
    pub connections_listed: usize,
    pub services: Option<Vec<ServiceFigures>>,
    pub errors: Vec<(String, u64)>,
}

fn rates(seconds: f64, before: [u64; 4], after: [u64; 4]) -> Rates {
    let [msgs_in, msgs_out, bytes_in, bytes_out] = std::array::from_fn(|i| {
        after
            .get(i)
            .zip(before.get(i))
            .map_or(0, |(a, b)| a.saturating_sub(*b)) as f64
            / seconds
    });
    Rates {
        msgs_in,
        msgs_out,
        bytes_in,
        bytes_out,
    }
}

fn shard_counts(s: &ShardFigures) -> [u64; 4] {
    [s.msgs_in, s.msgs_out, s.bytes_in, s.bytes_out]
}

fn conn_counts(c: &ConnFigures) -> [u64; 4] {
    [c.msgs_in, c.msgs_out, c.bytes_in, c.bytes_out]
}

fn shard_line(seconds: f64, before: Option<&ShardFigures>, now: &ShardFigures) -> ShardLine {
    let before = before.cloned().unwrap_or_else(|| now.clone());
    ShardLine {
        rates: rates(seconds, shard_counts(&before), shard_counts(now)),
        now: now.clone(),
        new_slow_consumers: now.slow_consumers.saturating_sub(before.slow_consumers),
    }
}

impl View {
    /// The view from `before` to `now`, the `limit` busiest connections by `sort`.
    pub fn between(before: &Sample, now: &Sample, sort: SortKey, limit: usize) -> View {
        let seconds = now
            .at
            .saturating_duration_since(before.at)
            .as_secs_f64()
            .max(0.001);
        let shards: Vec<ShardLine> = now
            .shards
            .iter()
            .enumerate()
            .map(|(i, shard)| shard_line(seconds, before.shards.get(i), shard))
            .collect();
        let sum = |sample: &Sample| {
            sample
                .shards
                .iter()
                .fold(ShardFigures::default(), |mut total, s| {
                    total.msgs_in += s.msgs_in;
                    total.msgs_out += s.msgs_out;
                    total.bytes_in += s.bytes_in;
                    total.bytes_out += s.bytes_out;
                    total.connections += s.connections;
                    total.subscriptions += s.subscriptions;
                    total.slow_consumers += s.slow_consumers;
                    total
                })
        };
        let total = shard_line(seconds, Some(&sum(before)), &sum(now));
        let connections_listed = now.connections.as_ref().map_or(0, Vec::len);
        let connections = now.connections.as_ref().map(|listed| {
            let earlier = before.connections.as_deref().unwrap_or_default();
            let mut lines: Vec<ConnLine> = listed
                .iter()
                .map(|conn| {
                    let was = earlier
                        .iter()
                        .find(|c| c.id == conn.id && c.node == conn.node)
                        .map_or([0; 4], conn_counts);
                    ConnLine {
                        now: conn.clone(),
                        rates: rates(seconds, was, conn_counts(conn)),
                    }
                })
                .collect();
            let key = |line: &ConnLine| match sort {
                SortKey::MsgsIn => line.rates.msgs_in,
                SortKey::MsgsOut => line.rates.msgs_out,
                SortKey::BytesIn => line.rates.bytes_in,
                SortKey::BytesOut => line.rates.bytes_out,
                SortKey::Pending => line.now.pending_bytes as f64,
            };
            lines.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.now.id.cmp(&b.now.id)));
            lines.truncate(limit);
            lines
        });
        View {
            seconds,
            shards,
            total,
            sort,
            connections,
            connections_listed,
            services: now.services.clone(),
            errors: now.errors.clone(),
        }
    }

    /// The view as one JSON object (`--once --json`).
    pub fn to_json(&self) -> String {
        let rates = |r: &Rates| {
            vec![
                ("msgs_in_per_sec".to_owned(), Value::F64(r.msgs_in)),
                ("msgs_out_per_sec".to_owned(), Value::F64(r.msgs_out)),
                ("bytes_in_per_sec".to_owned(), Value::F64(r.bytes_in)),
                ("bytes_out_per_sec".to_owned(), Value::F64(r.bytes_out)),
            ]
        };
        let shard = |line: &ShardLine| {
            let mut map = rates(&line.rates);
            map.extend([
                ("connections".to_owned(), Value::U64(line.now.connections)),
                (
                    "subscriptions".to_owned(),
                    Value::U64(line.now.subscriptions),
                ),
                (
                    "slow_consumers".to_owned(),
                    Value::U64(line.now.slow_consumers),
                ),
            ]);
            Value::Map(map)
        };
        let mut map = vec![
            ("seconds".to_owned(), Value::F64(self.seconds)),
            ("sort".to_owned(), Value::Str(self.sort.name().to_owned())),
            (
                "shards".to_owned(),
                Value::List(self.shards.iter().map(shard).collect()),
            ),
            ("total".to_owned(), shard(&self.total)),
        ];
        if let Some(connections) = &self.connections {
            let listed = connections
                .iter()
                .map(|line| {
                    let c = &line.now;
                    let mut map = vec![
                        ("id".to_owned(), Value::U64(c.id)),
                        ("shard".to_owned(), Value::U64(c.shard)),
                        ("name".to_owned(), Value::Str(c.name.clone())),
                        ("remote".to_owned(), Value::Str(c.remote.clone())),
                        ("subscriptions".to_owned(), Value::U64(c.subscriptions)),
                        ("pending_bytes".to_owned(), Value::U64(c.pending_bytes)),
                    ];
                    if !c.node.is_empty() {
                        map.push(("node".to_owned(), Value::Str(c.node.clone())));
                    }
                    map.extend(rates(&line.rates));
                    Value::Map(map)
                })
                .collect();
            map.push(("connections".to_owned(), Value::List(listed)));
        }
        if let Some(services) = &self.services {
            let listed = services
                .iter()
                .map(|s| {
                    let mut map = vec![
                        ("name".to_owned(), Value::Str(s.name.clone())),
                        ("instances".to_owned(), Value::U64(s.instances)),
                        ("healthy".to_owned(), Value::U64(s.healthy)),
                        ("requests".to_owned(), Value::U64(s.requests)),
                        ("errors".to_owned(), Value::U64(s.errors)),
                        ("timeouts".to_owned(), Value::U64(s.timeouts)),
                    ];
                    if let Some(p99) = s.p99_us {
                        map.push(("p99_us".to_owned(), Value::U64(p99)));
                    }
                    Value::Map(map)
                })
                .collect();
            map.push(("services".to_owned(), Value::List(listed)));
        }
        let errors = self
            .errors
            .iter()
            .map(|(code, n)| (code.clone(), Value::U64(*n)))
            .collect();
        map.push(("errors".to_owned(), Value::Map(errors)));
        Value::Map(map)
            .to_json()
            .map(|json| String::from_utf8_lossy(&json).into_owned())
            .unwrap_or_default()
    }

    /// The view as plain text (`--once`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:<8} {}", "", SHARD_HEADER.join("  "));
        for (i, line) in self.shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:<8} {}",
                format!("shard {i}"),
                shard_cells(line).join("  ")
            );
        }
        let _ = writeln!(
            out,
            "{:<8} {}",
            "total",
            shard_cells(&self.total).join("  ")
        );
        match &self.connections {
            Some(lines) => {
                let _ = writeln!(
                    out,
                    "\nconnections by {} ({} listed)\n{}",
                    self.sort.name(),
                    self.connections_listed,
                    CONN_HEADER.join("  ")
                );
                for line in lines {
                    let _ = writeln!(out, "{}", conn_cells(line).join("  "));
                }
            }
            None => out.push_str("\nconnections: not listed (needs an admin identity)\n"),
        }
        if let Some(services) = &self.services {
            let _ = writeln!(out, "\nservices\n{}", SERVICE_HEADER.join("  "));
            for service in services {
                let _ = writeln!(out, "{}", service_cells(service).join("  "));
            }
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let _ = writeln!(
            out,
            "\nerrors sent: {}",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(" ")
            }
        );
        out
    }
}

/// Column titles of the shard lines.
pub const SHARD_HEADER: [&str; 7] = [
    "   msgs in/s",
    "  msgs out/s",
    "  bytes in/s",
    " bytes out/s",
    "   conns",
    "    subs",
    "   slow",
];

/// A shard line's cells, aligned under `SHARD_HEADER`.
pub fn shard_cells(line: &ShardLine) -> Vec<String> {
    vec![
        format!("{:>12}", rate(line.rates.msgs_in)),
        format!("{:>12}", rate(line.rates.msgs_out)),
        format!("{:>12}", bytes(line.rates.bytes_in)),
        format!("{:>12}", bytes(line.rates.bytes_out)),
        format!("{:>8}", line.now.connections),
        format!("{:>8}", line.now.subscriptions),
        format!("{:>7}", line.now.slow_consumers),
    ]
}

/// Column titles of the connection lines.
pub const CONN_HEADER: [&str; 8] = [
    "              id",
    "shard",
    "name            ",
    "   msgs in/s",
    "  msgs out/s",
    "  bytes in/s",
    " bytes out/s",
    "   pending",
];

/// A connection line's cells, aligned under `CONN_HEADER`.
pub fn conn_cells(line: &ConnLine) -> Vec<String> {
    let c = &line.now;
    let mut name = c.name.clone();
    if !c.node.is_empty() {
        name = format!("{name}@{}", c.node);
    }
    vec![
        format!("{:>16}", c.id),
        format!("{:>5}", c.shard),
        format!("{:<16}", truncate(&name, 16)),
        format!("{:>12}", rate(line.rates.msgs_in)),
        format!("{:>12}", rate(line.rates.msgs_out)),
        format!("{:>12}", bytes(line.rates.bytes_in)),
        format!("{:>12}", bytes(line.rates.bytes_out)),
        format!("{:>10}", bytes(c.pending_bytes as f64)),
    ]
}

/// Column titles of the service lines.
pub const SERVICE_HEADER: [&str; 6] = [
    "name                ",
    "instances",
    "healthy",
    "  requests",
    "  errors",
    "  p99 µs",
];

/// A service line's cells, aligned under `SERVICE_HEADER`.
pub fn service_cells(s: &ServiceFigures) -> Vec<String> {
    vec![
        format!("{:<20}", truncate(&s.name, 20)),
        format!("{:>9}", s.instances),
        format!("{:>7}", s.healthy),
        format!("{:>10}", s.requests),
        format!("{:>8}", s.errors + s.timeouts),
        format!("{:>8}", s.p99_us.map_or("-".to_owned(), |p| p.to_string())),
    ]
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// A rate with a unit suffix (k, M).
fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2}M", per_sec / 1e6)
    } else if per_sec >= 1e4 {
        format!("{:.1}k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}

/// Bytes with a binary unit.
fn bytes(n: f64) -> String {
    if n >= f64::from(1 << 30) {
        format!("{:.1}GiB", n / f64::from(1 << 30))
    } else if n >= f64::from(1 << 20) {
        format!("{:.1}MiB", n / f64::from(1 << 20))
    } else if n >= f64::from(1 << 10) {
        format!("{:.1}KiB", n / f64::from(1 << 10))
    } else {
        format!("{n:.0}B")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    pub(crate) fn samples() -> (Sample, Sample) {
        let at = Instant::now();
        let conn = |id: u64, msgs_in: u64, name: &str| ConnFigures {
            id,
            name: name.into(),
            msgs_in,
            bytes_in: msgs_in * 16,
            ..ConnFigures::default()
        };
        let shard = |msgs_in: u64| ShardFigures {
            msgs_in,
            connections: 2,
            ..ShardFigures::default()
        };
        let before = Sample {
            at,
            shards: vec![shard(100), shard(0)],
            errors: vec![],
            connections: Some(vec![conn(1, 100, "quiet"), conn(2, 0, "loud")]),
            services: None,
        };
        let after = Sample {
            at: at + Duration::from_secs(2),
            shards: vec![shard(300), shard(1000)],
            errors: vec![("NO_RESPONDERS".into(), 3)],
            connections: Some(vec![
                conn(1, 110, "quiet"),
                conn(2, 1000, "loud"),
                conn(3, 50, "new"),
            ]),
            services: Some(vec![ServiceFigures {
                name: "echo".into(),
                instances: 2,
                healthy: 1,
                ..ServiceFigures::default()
            }]),
        };
        (before, after)
    }

    #[test]
    fn rates_come_from_two_looks_and_the_busiest_come_first() {
        let (before, after) = samples();
        let view = View::between(&before, &after, SortKey::MsgsIn, 2);
        assert_eq!(view.shards[0].rates.msgs_in, 100.0);
        assert_eq!(view.shards[1].rates.msgs_in, 500.0);
        assert_eq!(view.total.rates.msgs_in, 600.0);
        let names: Vec<&str> = view
            .connections
            .as_ref()
            .unwrap()
            .iter()
            .map(|l| l.now.name.as_str())
            .collect();
        // "loud" 500/s, "new" 25/s (counted from 0), "quiet" 5/s cut by the limit.
        assert_eq!(names, ["loud", "new"]);
        assert_eq!(view.connections_listed, 3);
        let text = view.to_text();
        assert!(
            text.contains("shard 1") && text.contains("loud") && text.contains("NO_RESPONDERS=3")
        );
        let json = view.to_json();
        assert!(json.contains("\"msgs_in_per_sec\":600"), "{json}");
        assert!(json.contains("\"name\":\"echo\""), "{json}");
    }
}
