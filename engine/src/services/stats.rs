//! What a shard measures of the requests it sends to one endpoint of one instance: requests,
//! errors (a response with an `sb-status` header of 400 or more), timeouts, and latency from
//! the request's arrival to its response. Each shard counts its own requesters' requests; a
//! listing adds the shards' parts up (`EndpointStats::merge`).

use hdrhistogram::Histogram;
use serde_json::{Value as Json, json};
use std::time::Duration;

/// The response header a responder sets to report an error status (HTTP-like: 400 and up is
/// an error), counted without any code in the service beyond setting it.
pub(crate) const STATUS_HEADER: &str = "sb-status";

/// The slowest latency the histogram tells apart, in microseconds (slower ones count as it).
const MAX_MICROS: u64 = 3_600_000_000;

/// One endpoint's figures on one shard, or merged over all.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndpointStats {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    /// Made at the first response: an endpoint never asked costs no histogram.
    latency: Option<Box<Histogram<u32>>>,
}

impl EndpointStats {
    /// A response arrived after `elapsed`; `error` when its status said so.
    pub(crate) fn answered(&mut self, elapsed: Duration, error: bool) {
        self.errors += u64::from(error);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(MAX_MICROS);
        self.record(micros, 1);
    }

    /// Adds `other`'s figures (another shard's part) to these.
    pub(crate) fn merge(&mut self, other: &EndpointStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        if let Some(theirs) = &other.latency {
            match &mut self.latency {
                Some(ours) => {
                    let _ = ours.add(theirs.as_ref());
                }
                None => self.latency = Some(theirs.clone()),
            }
        }
    }

    /// The figures as JSON; `latency_us` holds p50, p90, p99 and max when anything answered.
    pub(crate) fn to_json(&self) -> Json {
        let latency = self.latency.as_ref().map(|h| {
            json!({
                "p50": h.value_at_quantile(0.5),
                "p90": h.value_at_quantile(0.9),
                "p99": h.value_at_quantile(0.99),
                "max": h.max(),
                "count": h.len(),
            })
        });
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "latency_us": latency,
        })
    }

    /// The histogram's recorded values as `[value, count]` pairs, for another shard to merge.
    pub(crate) fn to_part(&self) -> Json {
        let recorded: Vec<Json> = self
            .latency
            .iter()
            .flat_map(|h| h.iter_recorded())
            .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
            .collect();
        json!([self.requests, self.errors, self.timeouts, recorded])
    }

    /// Reads what `to_part` wrote (`None` for anything else).
    pub(crate) fn from_part(part: &Json) -> Option<EndpointStats> {
        let [requests, errors, timeouts, recorded] = part.as_array()?.as_slice() else {
            return None;
        };
        let mut stats = EndpointStats {
            requests: requests.as_u64()?,
            errors: errors.as_u64()?,
            timeouts: timeouts.as_u64()?,
            latency: None,
        };
        for pair in recorded.as_array()? {
            let [value, count] = pair.as_array()?.as_slice() else {
                return None;
            };
            let (value, count) = (value.as_u64()?, u32::try_from(count.as_u64()?).ok()?);
            stats.record(value, count);
        }
        Some(stats)
    }

    fn record(&mut self, micros: u64, count: u32) {
        if self.latency.is_none() {
            // One significant digit: buckets 1/16 of a power of two wide (percentiles within
            // ~6%) in ~2 kB, which every endpoint asked on every shard holds.
            self.latency = Histogram::new_with_bounds(1, MAX_MICROS, 1)
                .ok()
                .map(Box::new);
        }
        if let Some(histogram) = &mut self.latency {
            histogram.saturating_record_n(micros.clamp(1, MAX_MICROS), count);
        }
    }
}

/// Whether a response's headers report an error status.
pub(crate) fn is_error(headers: &shardbus_protocol::Headers<'_>) -> bool {
    headers
        .get(STATUS_HEADER)
        .and_then(|value| value.trim().parse::<u16>().ok())
        .is_some_and(|status| status >= 400)
}
