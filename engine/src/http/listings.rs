//! `/api/v1/connections` (paged) and `/api/v1/topics` (merged over shards), from every shard's
//! part gathered over the mesh (`shard/listing.rs`). `"complete": false` says a shard did not
//! answer in time.

use std::collections::BTreeMap;

use shardbus_protocol::ErrorCode;

use super::reply::Refusal;
use crate::shard::Shard;
use crate::shard::listing::Listing;

/// The `connections` command (`/api/v1/connections?offset=N&limit=M`): connections ordered
/// by id.
pub(crate) async fn connections(shard: &Shard, offset: usize, limit: usize) -> serde_json::Value {
    let gathered = shard.gather(Listing::Connections).await;
    let mut all = gathered.items;
    all.sort_by_key(|c| c.get("id").and_then(serde_json::Value::as_u64).unwrap_or(0));
    let total = all.len();
    let page: Vec<_> = all.into_iter().skip(offset).take(limit).collect();
    serde_json::json!({
        "total": total,
        "offset": offset,
        "limit": limit,
        "complete": gathered.complete,
        "connections": page,
    })
}

/// `/api/v1/topics`: each subscribed pattern (per queue group) with its subscribers on every
/// shard.
pub(crate) async fn topics(shard: &Shard) -> serde_json::Value {
    let gathered = shard.gather(Listing::Topics).await;
    let mut merged: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for item in &gathered.items {
        let pattern = item["pattern"].as_str().unwrap_or_default().to_owned();
        let queue = item["queue"].as_str().map(str::to_owned);
        *merged.entry((pattern, queue)).or_default() += item["subscribers"].as_u64().unwrap_or(0);
    }
    let topics: Vec<_> = merged
        .into_iter()
        .map(|((pattern, queue), subscribers)| {
            serde_json::json!({ "pattern": pattern, "queue": queue, "subscribers": subscribers })
        })
        .collect();
    serde_json::json!({ "complete": gathered.complete, "topics": topics })
}

/// The `kick` command (`DELETE /api/v1/connections/{id}`): closes the connection with
/// `KICKED`, on whichever shard has it.
pub(crate) async fn kick(shard: &Shard, id: u64) -> Result<serde_json::Value, Refusal> {
    let gathered = shard.gather(Listing::Kick(id)).await;
    if gathered.items.is_empty() {
        return Err(Refusal::new(
            ErrorCode::UNKNOWN_CONNECTION,
            format!("no connection {id}"),
        ));
    }
    Ok(serde_json::json!({ "kicked": id }))
}
