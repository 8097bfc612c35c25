//! One look at a server for `top`: its counters per shard (STATUS), its connections (the
//! `connections` command, page by page) and its services (the `services` command). The
//! listings need an admin identity; without one they are left empty and `top` says so.

use std::time::Instant;

use shardbus_protocol::client::{Client, ClientError};
use shardbus_protocol::container::Value;

/// Connections asked for in one page (the server lists at most 1000 at once).
const PAGE: u64 = 1000;

/// A shard's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFigures {
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
    pub subscriptions: u64,
    pub slow_consumers: u64,
}

/// A connection's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnFigures {
    pub id: u64,
    pub shard: u64,
    pub node: String,
    pub name: String,
    pub remote: String,
    pub subscriptions: u64,
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub pending_bytes: u64,
}

/// A service: its instances and the figures of its endpoints, added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFigures {
    pub name: String,
    pub instances: u64,
    /// Instances whose health is `ok`.
    pub healthy: u64,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// The worst endpoint's p99, in microseconds (none before the first answer).
    pub p99_us: Option<u64>,
}

/// What one look found.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub shards: Vec<ShardFigures>,
    /// Errors sent, by code name, over every shard.
    pub errors: Vec<(String, u64)>,
    /// `None`: the identity may not list connections.
    pub connections: Option<Vec<ConnFigures>>,
    /// `None`: the identity may not list services.
    pub services: Option<Vec<ServiceFigures>>,
}

impl Sample {
    /// Looks at the server through `client`, listing at most `max_connections` connections.
    pub fn take(client: &Client, max_connections: u64) -> Result<Sample, ClientError> {
        let status = client.status()?;
        let shards = match status.get("shards") {
            Some(Value::List(shards)) => shards.iter().map(shard_figures).collect(),
            _ => Vec::new(),
        };
        let errors = match status.get("totals").and_then(|t| t.get("errors")) {
            Some(Value::Map(errors)) => errors.iter().map(|(k, v)| (k.clone(), count(v))).collect(),
            _ => Vec::new(),
        };
        Ok(Sample {
            at: Instant::now(),
            shards,
            errors,
            connections: connections(client, max_connections),
            services: services(client),
        })
    }
}

fn connections(client: &Client, max: u64) -> Option<Vec<ConnFigures>> {
    let mut listed = Vec::new();
    let mut offset = 0;
    while offset < max {
        let params = Value::Map(vec![
            ("offset".into(), Value::U64(offset)),
            ("limit".into(), Value::U64(PAGE.min(max - offset))),
        ]);
        let page = client.command("connections", &params).ok()?;
        let Some(Value::List(items)) = page.get("connections") else {
            break;
        };
        listed.extend(items.iter().map(conn_figures));
        offset += PAGE;
        if items.is_empty() || offset >= number(&page, "total") {
            break;
        }
    }
    Some(listed)
}

fn services(client: &Client) -> Option<Vec<ServiceFigures>> {
    let report = client.command("services", &Value::Null).ok()?;
    let Some(Value::List(services)) = report.get("services") else {
        return Some(Vec::new());
    };
    Some(services.iter().map(service_figures).collect())
}

fn shard_figures(shard: &Value) -> ShardFigures {
    ShardFigures {
        msgs_in: number(shard, "msgs_in"),
        msgs_out: number(shard, "msgs_out"),
        bytes_in: number(shard, "bytes_in"),
        bytes_out: number(shard, "bytes_out"),
        connections: number(shard, "connections"),
        subscriptions: number(shard, "subscriptions"),
        slow_consumers: number(shard, "slow_consumers"),
    }
}

fn conn_figures(conn: &Value) -> ConnFigures {
    ConnFigures {
        id: number(conn, "id"),
        shard: number(conn, "shard"),
        node: text(conn, "node"),
        name: text(conn, "name"),
        remote: text(conn, "remote"),
        subscriptions: number(conn, "subscriptions"),
        msgs_in: number(conn, "msgs_in"),
        msgs_out: number(conn, "msgs_out"),
        bytes_in: number(conn, "bytes_in"),
        bytes_out: number(conn, "bytes_out"),
        pending_bytes: number(conn, "pending_bytes"),
    }
}

fn service_figures(service: &Value) -> ServiceFigures {
    let instances: &[Value] = match service.get("instances") {
        Some(Value::List(instances)) => instances,
        _ => &[],
    };
    let endpoints: &[Value] = match service.get("endpoints") {
        Some(Value::List(endpoints)) => endpoints,
        _ => &[],
    };
    let sum = |key: &str| endpoints.iter().map(|e| number(e, key)).sum();
    let p99_us = endpoints
        .iter()
        .filter_map(|e| match e.get("latency_us") {
            Some(latency @ Value::Map(_)) => Some(number(latency, "p99")),
            _ => None,
        })
        .max();
    ServiceFigures {
        name: text(service, "name"),
        instances: instances.len() as u64,
        healthy: instances
            .iter()
            .filter(|i| text(i, "health") == "ok")
            .count() as u64,
        requests: sum("requests"),
        errors: sum("errors"),
        timeouts: sum("timeouts"),
        p99_us,
    }
}

/// A counter of `value` (0 when it is missing or not a number).
pub(crate) fn number(value: &Value, key: &str) -> u64 {
    value.get(key).map_or(0, count)
}

fn count(value: &Value) -> u64 {
    match value {
        Value::U64(n) => *n,
        Value::U32(n) => u64::from(*n),
        Value::U16(n) => u64::from(*n),
        Value::I64(n) => u64::try_from(*n).unwrap_or(0),
        Value::F64(n) if *n >= 0.0 => *n as u64,
        _ => 0,
    }
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::Str(s)) => s.clone(),
        _ => String::new(),
    }
}
