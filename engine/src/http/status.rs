//! The JSON status endpoints that read only what every shard shares: `/api/v1/server`
//! (identity, version, uptime, shards and cores, limits) and `/api/v1/shards` (each shard's
//! counters and errors by code), both without asking the shards.

use shardbus_protocol::ErrorCode;

use super::HttpSettings;
use crate::metrics::Metric;
use crate::server::Shared;

/// `/api/v1/server`.
pub(crate) fn server(shared: &Shared, settings: &HttpSettings) -> serde_json::Value {
    let total = |metric| -> u64 { shared.metrics().map(|m| m.get(metric)).sum() };
    serde_json::json!({
        "server_id": shared.server_id(),
        "name": "shardbus",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": u64::try_from(shared.uptime().as_millis()).unwrap_or(u64::MAX),
        "shards": shared.shard_count(),
        "ready": shared.is_ready(),
        "status": if shared.degraded().is_some() { "degraded" } else { "ok" },
        "degraded": shared.degraded(),
        "redis": redis(shared),
        "connections": total(Metric::Connections),
        "subscriptions": total(Metric::Subscriptions),
        "limits": settings.limits,
    })
}

/// The Redis bridge's state (`null` without `[redis] url`).
fn redis(shared: &Shared) -> serde_json::Value {
    let Some(bridge) = shared.bridge() else {
        return serde_json::Value::Null;
    };
    let outage = bridge.status.outage();
    serde_json::json!({
        "up": bridge.status.is_up(),
        "outages": bridge.status.outages(),
        "reason": outage.as_ref().map(|(why, _)| why),
        "down_ms": outage.map(|(_, lasted)| u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX)),
    })
}

/// `/api/v1/cluster`: this node and the others it knows (`enabled: false` when not clustered).
pub(crate) fn cluster(shared: &Shared) -> serde_json::Value {
    let Some(cluster) = shared.cluster() else {
        return serde_json::json!({ "enabled": false });
    };
    let (sent, lost) = cluster.traffic();
    serde_json::json!({
        "enabled": true,
        "node": cluster.node(),
        "connected": cluster.is_connected(),
        "sent": sent,
        "lost": lost,
        "nodes": cluster.nodes(),
    })
}

/// `/api/v1/shards`.
pub(crate) fn shards(shared: &Shared) -> serde_json::Value {
    let shards: Vec<serde_json::Value> = shared
        .metrics()
        .enumerate()
        .map(|(shard, metrics)| {
            let mut counters = serde_json::Map::new();
            for &metric in Metric::ALL {
                counters.insert(metric.name().to_owned(), metrics.get(metric).into());
            }
            let errors: serde_json::Map<String, serde_json::Value> = metrics
                .errors()
                .filter(|(_, n)| *n > 0)
                .map(|(code, n): (ErrorCode, u64)| (code.name().to_owned(), n.into()))
                .collect();
            serde_json::json!({ "shard": shard, "counters": counters, "errors": errors })
        })
        .collect();
    serde_json::json!({ "shards": shards })
}
