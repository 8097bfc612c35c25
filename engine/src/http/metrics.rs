//! `/metrics`: every shard's counters in Prometheus' text format (prometheus-client), read at
//! scrape time from the shared atomics. One series per shard (`shard` label; `sum()` gives the
//! server); errors answered, per shard and code name; the request latency histogram; and per
//! service, endpoint and instance the figures of the services report (already added up over
//! the shards).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use prometheus_client::registry::Unit;

use crate::metrics::Metric;
use crate::server::Shared;

/// The exposition of every metric, or an empty string if encoding failed (it writes to a
/// `String`, which cannot fail).
pub(crate) fn exposition(shared: &Arc<Shared>, services: &serde_json::Value) -> String {
    let mut registry = Registry::with_prefix("shardbus");
    registry.register_collector(Box::new(Shards(Arc::clone(shared))));
    registry.register_collector(Box::new(Services(services.clone())));
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Reads the shards' counters when scraped.
#[derive(Debug)]
struct Shards(Arc<Shared>);

impl Collector for Shards {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for &metric in Metric::ALL {
            let kind = if metric.is_gauge() {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            // The text encoder adds `_total` to counters itself; the one counter whose name
            // already ends so would collide with the gauge of the same stem.
            let name = match metric {
                Metric::ConnectionsTotal => "connections_accepted",
                other => other.name(),
            };
            let mut family = encoder.encode_descriptor(name, metric.help().trim(), None, kind)?;
            for (shard, metrics) in self.0.metrics().enumerate() {
                let labels = [("shard", shard.to_string())];
                let value = metrics.get(metric);
                let encoder = family.encode_family(&labels)?;
                if metric.is_gauge() {
                    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(encoder)?;
                } else {
                    ConstCounter::new(value).encode(encoder)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "errors",
            "ERR answers sent, by PROTOCOL.md code",
            None,
            MetricType::Counter,
        )?;
        for (shard, metrics) in self.0.metrics().enumerate() {
            for (code, n) in metrics.errors() {
                let labels = [
                    ("shard", shard.to_string()),
                    ("code", code.name().to_owned()),
                ];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let refused = encoder.encode_descriptor(
            "reload_failures",
            "Configuration reloads refused (the running configuration stayed)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.0.reload_failures()).encode(refused)?;
        if let Some(bridge) = self.0.bridge() {
            let up = encoder.encode_descriptor(
                "redis_up",
                "1 while the Redis bridge is connected, 0 during an outage",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::from(bridge.status.is_up())).encode(up)?;
            let outages = encoder.encode_descriptor(
                "redis_outages",
                "Times Redis became unreachable (a failed first connection counts)",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(bridge.status.outages()).encode(outages)?;
        }
        let mut family = encoder.encode_descriptor(
            "request_duration",
            "From a request's arrival to its response going out, answered requests only",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (shard, metrics) in self.0.metrics().enumerate() {
            let labels = [("shard", shard.to_string())];
            let latency = metrics.request_latency.snapshot();
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    latency.sum_seconds,
                    latency.count,
                    &latency.buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

/// The services report's figures, one series per service, endpoint and instance.
#[derive(Debug)]
struct Services(serde_json::Value);

/// The report's counters and gauges: (series name, help, key in an endpoint's figures).
const SERVICE_SERIES: [(&str, &str, &str, MetricType); 5] = [
    (
        "service_requests",
        "Requests balanced to a service instance's endpoint",
        "requests",
        MetricType::Counter,
    ),
    (
        "service_errors",
        "Responses whose sb-status header said 400 or more",
        "errors",
        MetricType::Counter,
    ),
    (
        "service_timeouts",
        "Requests to the endpoint that timed out",
        "timeouts",
        MetricType::Counter,
    ),
    (
        "service_latency_p50_microseconds",
        "Median from a request's arrival to its response",
        "latency_us.p50",
        MetricType::Gauge,
    ),
    (
        "service_latency_p99_microseconds",
        "99th percentile from a request's arrival to its response",
        "latency_us.p99",
        MetricType::Gauge,
    ),
];

impl Services {
    /// Every (labels, endpoint figures) pair of the report.
    fn endpoints(&self) -> Vec<([(&'static str, String); 3], &serde_json::Value)> {
        let mut out = Vec::new();
        let services = self.0.get("services").and_then(|s| s.as_array());
        let services = services.into_iter().flatten();
        for service in services {
            let name = service["name"].as_str().unwrap_or("").to_owned();
            for instance in service["instances"].as_array().into_iter().flatten() {
                let id = instance["instance"].as_u64().unwrap_or(0).to_string();
                for endpoint in instance["endpoints"].as_array().into_iter().flatten() {
                    let subject = endpoint["subject"].as_str().unwrap_or("").to_owned();
                    let labels = [
                        ("service", name.clone()),
                        ("endpoint", subject),
                        ("instance", id.clone()),
                    ];
                    out.push((labels, endpoint));
                }
            }
        }
        out
    }
}

impl Collector for Services {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let endpoints = self.endpoints();
        for (name, help, key, kind) in SERVICE_SERIES {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (labels, figures) in &endpoints {
                let value = key
                    .split('.')
                    .fold(*figures, |v, k| &v[k])
                    .as_u64()
                    .unwrap_or(0);
                let encoder = family.encode_family(labels)?;
                if matches!(kind, MetricType::Gauge) {
                    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(encoder)?;
                } else {
                    ConstCounter::new(value).encode(encoder)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "service_queue_depth",
            "Requests waiting at a service's gate for a slot (flow control)",
            None,
            MetricType::Gauge,
        )?;
        let services = self.0.get("services").and_then(|s| s.as_array());
        for service in services.into_iter().flatten() {
            let Some(depth) = service.get("gate").and_then(|g| g.get("queue_depth")) else {
                continue;
            };
            let name = service.get("name").and_then(|n| n.as_str()).unwrap_or("");
            let labels = [("service", name.to_owned())];
            let depth = i64::try_from(depth.as_u64().unwrap_or(0)).unwrap_or(i64::MAX);
            ConstGauge::new(depth).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "service_in_flight",
            "Requests in flight to a service instance",
            None,
            MetricType::Gauge,
        )?;
        let services = self.0.get("services").and_then(|s| s.as_array());
        let services = services.into_iter().flatten();
        for service in services {
            let name = service["name"].as_str().unwrap_or("").to_owned();
            for instance in service["instances"].as_array().into_iter().flatten() {
                let labels = [
                    ("service", name.clone()),
                    (
                        "instance",
                        instance["instance"].as_u64().unwrap_or(0).to_string(),
                    ),
                    (
                        "health",
                        instance["health"].as_str().unwrap_or("").to_owned(),
                    ),
                ];
                let n = instance["in_flight"].as_i64().unwrap_or(0);
                ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
