//! `/api/v1/connections` (paged) and `/api/v1/topics` (merged over shards), from every shard's
//! part gathered over the mesh (`shard/listing.rs`), and in a cluster every node's
//! (`shard/cluster_asks.rs`: each connection names its `node`). `"complete": false` says a
//! shard or node did not answer in time.

use std::collections::BTreeMap;

use shardbus_protocol::ErrorCode;

use super::reply::Refusal;
use crate::shard::Shard;
use crate::shard::listing::Listing;

/// The `connections` command (`/api/v1/connections?offset=N&limit=M`): connections ordered
/// by id.
pub(crate) async fn connections(shard: &Shard, offset: usize, limit: usize) -> serde_json::Value {
    let gathered = shard.gather_everywhere(Listing::Connections).await;
    let mut all = gathered.items;
    let key = |c: &serde_json::Value| {
        let node = c
            .get("node")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned();
        (
            node,
            c.get("id").and_then(serde_json::Value::as_u64).unwrap_or(0),
        )
    };
    all.sort_by_key(key);
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
    let gathered = shard.gather_everywhere(Listing::Topics).await;
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

/// The `kick` command (`DELETE /api/v1/connections/{id}[?node=NAME]`): closes the connection
/// with `KICKED`, on whichever shard of this node (or of node `node`) has it.
pub(crate) async fn kick(
    shard: &Shard,
    id: u64,
    node: Option<&str>,
) -> Result<serde_json::Value, Refusal> {
    let gathered = match node {
        Some(node) if Some(node) != shard.node_name() => shard.kick_on_node(id, node).await,
        _ => shard.gather(Listing::Kick(id)).await,
    };
    if gathered.items.is_empty() {
        let at = node.map_or_else(String::new, |node| format!(" on node {node}"));
        return Err(Refusal::new(
            ErrorCode::UNKNOWN_CONNECTION,
            format!("no connection {id}{at}"),
        ));
    }
    Ok(serde_json::json!({ "kicked": id, "node": node.or(shard.node_name()) }))
}
