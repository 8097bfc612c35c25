//! The STATUS op's answer: every shard's counters, read from their `ShardMetrics` without
//! asking the shards (the counters are single-writer atomics), as one container map.

use shardbus_protocol::container::Value;
use shardbus_protocol::{ErrorCode, Fields, Flags};

use super::Shard;
use super::conn::{Conn, Outgoing};
use crate::metrics::{Metric, ShardMetrics};
use crate::server::Shared;

impl Shard {
    /// Answers STATUS `op_id` with the server's counters.
    pub(crate) fn send_status(&self, conn: &Conn, op_id: u32) {
        let payload = match status_value(&self.shared, self.id).to_binary() {
            Ok(payload) => payload,
            Err(error) => {
                conn.error(ErrorCode::INTERNAL, op_id, 0, &error.to_string());
                return;
            }
        };
        conn.send(&Outgoing {
            flags: Flags::CONTAINER.0,
            payload: &payload,
            ..Outgoing::bare(Fields::Status, op_id)
        });
    }
}

fn counters(metrics: &ShardMetrics) -> Vec<(String, Value)> {
    Metric::ALL
        .iter()
        .map(|&m| (m.name().to_owned(), Value::U64(metrics.get(m))))
        .collect()
}

fn errors(metrics: &[&ShardMetrics]) -> Value {
    let mut by_code: Vec<(ErrorCode, u64)> = Vec::new();
    for (code, n) in metrics.iter().flat_map(|m| m.errors()) {
        match by_code.iter_mut().find(|(c, _)| *c == code) {
            Some((_, total)) => *total += n,
            None => by_code.push((code, n)),
        }
    }
    by_code.sort_by_key(|(code, _)| code.0);
    Value::Map(
        by_code
            .into_iter()
            .map(|(code, n)| (code.name().to_owned(), Value::U64(n)))
            .collect(),
    )
}

/// Every shard's request latency histogram added up: bounds in microseconds, counts per bucket.
fn request_latency(metrics: &[&ShardMetrics]) -> Value {
    let mut counts = vec![0u64; crate::latency::BOUNDS_SECONDS.len() + 1];
    for shard in metrics {
        let buckets = shard.request_latency.snapshot().buckets;
        for (total, (_, n)) in counts.iter_mut().zip(buckets) {
            *total += n;
        }
    }
    let bounds = crate::latency::BOUNDS_SECONDS
        .iter()
        .map(|s| Value::U64((s * 1e6).round() as u64))
        .collect();
    Value::Map(vec![
        ("bounds_us".to_owned(), Value::List(bounds)),
        (
            "counts".to_owned(),
            Value::List(counts.into_iter().map(Value::U64).collect()),
        ),
    ])
}

/// The whole status map: `server`, `totals`, `shards`.
pub(crate) fn status_value(shared: &Shared, answering_shard: u16) -> Value {
    let all: Vec<&ShardMetrics> = shared.metrics().collect();
    let shards = all
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut entries = vec![("shard".to_owned(), Value::U64(i as u64))];
            entries.extend(counters(m));
            entries.push(("errors".to_owned(), errors(&[m])));
            Value::Map(entries)
        })
        .collect();
    let mut totals: Vec<(String, Value)> = Metric::ALL
        .iter()
        .map(|&m| {
            let sum = all.iter().map(|s| s.get(m)).sum::<u64>();
            (m.name().to_owned(), Value::U64(sum))
        })
        .collect();
    totals.push(("errors".to_owned(), errors(&all)));
    totals.push(("request_latency".to_owned(), request_latency(&all)));
    Value::Map(vec![
        (
            "server".to_owned(),
            Value::Map(vec![
                ("id".to_owned(), Value::Str(shared.server_id().to_owned())),
                (
                    "version".to_owned(),
                    Value::Str(env!("CARGO_PKG_VERSION").to_owned()),
                ),
                (
                    "uptime_ms".to_owned(),
                    Value::U64(shared.uptime().as_millis() as u64),
                ),
                ("shards".to_owned(), Value::U64(all.len() as u64)),
                (
                    "answered_by_shard".to_owned(),
                    Value::U64(u64::from(answering_shard)),
                ),
            ]),
        ),
        ("totals".to_owned(), Value::Map(totals)),
        ("shards".to_owned(), Value::List(shards)),
    ])
}
