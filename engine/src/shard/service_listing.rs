//! What the registry says, for people and tools: every service (or one) with its options, its
//! instances (health, load, endpoints, requests in flight) and the figures every shard
//! measured of them, added up (`EndpointStats::merge`). The HTTP edge, `/metrics` and the CLI
//! read this one report.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::Shard;
use super::listing::Listing;
use crate::services::stats::EndpointStats;

/// Every shard's figures of one instance, added up.
#[derive(Debug, Default)]
struct Measured {
    pending: u64,
    endpoints: Vec<EndpointStats>,
}

impl Shard {
    /// This shard's part of the figures: `[{"instances": {instance id: {pending, endpoints}},
    /// "gates": {service: [in flight, waiting]}}]` (gates of the services it is home to).
    pub(crate) fn service_stats_part(&self) -> Vec<Json> {
        let registry = self.services.registry.borrow();
        let gates = self.services.gates.borrow();
        let depths: serde_json::Map<String, Json> = registry
            .services()
            .map(|(name, _)| (name, gates.depth(name)))
            .filter(|(_, depth)| *depth != (0, 0))
            .map(|(name, (in_flight, waiting))| (name.to_owned(), json!([in_flight, waiting])))
            .collect();
        vec![json!({"instances": registry.stats_part(">"), "gates": depths})]
    }

    /// The services whose names `pattern` matches (`>`: all), with every shard's figures;
    /// `complete` is false when a shard did not answer in time.
    pub(crate) async fn services_report(&self, pattern: &str) -> Json {
        // No instance anywhere (every shard's replica agrees): nothing to ask the shards.
        if !self.services.any.get() {
            return json!({ "services": [], "complete": true });
        }
        let gathered = self.gather(Listing::ServiceStats).await;
        let mut measured: HashMap<u64, Measured> = HashMap::new();
        let mut gates: HashMap<String, (u64, u64)> = HashMap::new();
        for part in &gathered.items {
            let depths = part
                .get("gates")
                .and_then(Json::as_object)
                .into_iter()
                .flatten();
            for (name, depth) in depths {
                let at = |i: usize| depth.get(i).and_then(Json::as_u64).unwrap_or(0);
                let entry = gates.entry(name.clone()).or_default();
                entry.0 += at(0);
                entry.1 += at(1);
            }
            let instances = part.get("instances").and_then(Json::as_object);
            for (id, figures) in instances.into_iter().flatten() {
                let Ok(id) = id.parse::<u64>() else { continue };
                let entry = measured.entry(id).or_default();
                let field = |key: &str| figures.get(key).cloned().unwrap_or_default();
                entry.pending += field("pending").as_u64().unwrap_or(0);
                let parts = field("endpoints");
                let parts = parts.as_array().into_iter().flatten();
                for (k, part) in parts.enumerate() {
                    let Some(stats) = EndpointStats::from_part(part) else {
                        continue;
                    };
                    if entry.endpoints.len() <= k {
                        entry.endpoints.resize_with(k + 1, EndpointStats::default);
                    }
                    if let Some(slot) = entry.endpoints.get_mut(k) {
                        slot.merge(&stats);
                    }
                }
            }
        }
        let registry = self.services.registry.borrow();
        let services: Vec<Json> = registry
            .services()
            .filter(|(name, _)| shardbus_protocol::topic::matches(pattern, name))
            .map(|(name, service)| {
                let mut by_endpoint: Vec<(String, EndpointStats)> = Vec::new();
                let instances: Vec<Json> = service
                    .instances
                    .iter()
                    .map(|instance| {
                        let figures = measured.remove(&instance.id).unwrap_or_default();
                        let entry = container_to_json(&instance.describe());
                        let endpoints: Vec<Json> = instance
                            .registration
                            .endpoints
                            .iter()
                            .enumerate()
                            .map(|(k, endpoint)| {
                                let stats = figures.endpoints.get(k).cloned().unwrap_or_default();
                                let subject = endpoint.subject.to_string();
                                match by_endpoint.iter_mut().find(|(s, _)| *s == subject) {
                                    Some((_, total)) => total.merge(&stats),
                                    None => by_endpoint.push((subject.clone(), stats.clone())),
                                }
                                let json = with(stats.to_json(), "subject", subject.into());
                                with(json, "queue", endpoint.queue.to_string().into())
                            })
                            .collect();
                        let entry = with(entry, "endpoints", endpoints.into());
                        with(entry, "in_flight", figures.pending.into())
                    })
                    .collect();
                let endpoints: Vec<Json> = by_endpoint
                    .into_iter()
                    .map(|(subject, stats)| with(stats.to_json(), "subject", subject.into()))
                    .collect();
                json!({
                    "name": name,
                    "strategy": service.options.strategy.name(),
                    "gate": gate_json(&service.options, gates.get(name)),
                    "instances": instances,
                    "endpoints": endpoints,
                })
            })
            .collect();
        json!({ "services": services, "complete": gathered.complete })
    }
}

/// `object` with `key` set to `value` (unchanged when it is not an object).
pub(crate) fn with(mut object: Json, key: &str, value: Json) -> Json {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    object
}

/// A container value as JSON (`null` if it cannot be printed, which a registry entry can).
pub(crate) fn container_to_json(value: &shardbus_protocol::container::Value) -> Json {
    value
        .to_json()
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Json::Null)
}

/// A service's flow control as the report shows it: its limits and, at this moment, the
/// requests holding a slot and waiting for one (`null` without flow control).
fn gate_json(options: &crate::services::ServiceConfig, depth: Option<&(u64, u64)>) -> Json {
    if !options.gated() {
        return Json::Null;
    }
    let (in_flight, waiting) = depth.copied().unwrap_or_default();
    json!({
        "max_concurrent": options.max_concurrent,
        "queue_limit": options.queue_limit,
        "rate_per_sec": options.rate_per_sec,
        "in_flight": in_flight,
        "queue_depth": waiting,
    })
}
