//! Services over HTTP: `GET /api/v1/services` (every service with its instances and the
//! figures every shard measured) and `GET /api/v1/services/{name}` (one), from the report
//! `shard/service_listing.rs` builds.

use shardbus_protocol::ErrorCode;

use super::reply::Refusal;
use crate::shard::Shard;

/// `/api/v1/services/{name}`.
pub(crate) const SERVICE_PREFIX: &str = "/api/v1/services/";

/// `GET /api/v1/services`.
pub(crate) async fn list(shard: &Shard) -> serde_json::Value {
    shard.services_everywhere(">").await
}

/// `GET /api/v1/services/{name}`: the service, or `UNKNOWN_SERVICE` (404).
pub(crate) async fn one(shard: &Shard, name: &str) -> Result<serde_json::Value, Refusal> {
    let valid =
        shardbus_protocol::topic::validate_subject(name.as_bytes(), usize::from(u16::MAX)).is_ok();
    if !valid {
        return Err(Refusal::new(
            ErrorCode::INVALID_TOPIC,
            "a service name is a subject (PROTOCOL.md §4)",
        ));
    }
    let mut report = shard.services_everywhere(name).await;
    let complete = report.get("complete").cloned().unwrap_or_default();
    let found = report
        .get_mut("services")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(Vec::pop)
        .ok_or_else(|| Refusal::new(ErrorCode::UNKNOWN_SERVICE, "no instance of that service"))?;
    Ok(crate::shard::service_listing::with(
        found, "complete", complete,
    ))
}
