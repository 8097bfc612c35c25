//! Nodes of a cluster over Redis for the tests: an in-process node with test-sized heartbeats
//! (100 ms, gone after 1 s of silence), what a node's `/api/v1/cluster` says of the others,
//! waiting until a node sees another's interest, and the nodes a DISCOVER names.

use std::net::SocketAddr;

use crate::redis::RedisServer;
use crate::{TestServer, http_request, wait_until};

/// An in-process node named `name` of the cluster meeting in `redis`, changed by `change`.
pub fn node_with(
    redis: &RedisServer,
    name: &str,
    change: impl FnOnce(&mut shardbus_engine::config::Config),
) -> TestServer {
    TestServer::with(|config| {
        config.cluster.redis_url = redis.url();
        config.cluster.node_id = name.to_owned();
        config.cluster.heartbeat_ms = 100;
        config.cluster.node_timeout_ms = 1_000;
        change(config);
    })
}

/// An in-process node named `name` of the cluster meeting in `redis`.
pub fn node(redis: &RedisServer, name: &str) -> TestServer {
    node_with(redis, name, |_| {})
}

/// The other nodes the node at `http` knows, each with its number of patterns of interest.
pub fn nodes_seen(http: SocketAddr) -> Vec<(String, u64)> {
    let cluster = http_request(http, "GET", "/api/v1/cluster", None).json();
    cluster["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| Some((n["node"].as_str()?.to_owned(), n["interest"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the node at `http` sees `node` with `patterns` patterns of interest.
pub fn wait_for_interest(http: SocketAddr, node: &str, patterns: u64) {
    wait_until(&format!("node {node} with {patterns} patterns"), || {
        nodes_seen(http).contains(&(node.to_owned(), patterns))
    });
}

/// The nodes of the instances of `service` that `client`'s DISCOVER lists, sorted.
pub fn discovered_nodes(client: &shardbus_protocol::client::Client, service: &str) -> Vec<String> {
    let found = client.discover(service, "").unwrap_or_default();
    let mut nodes: Vec<String> = found
        .iter()
        .filter_map(|i| match i.entry.get("node") {
            Some(shardbus_protocol::container::Value::Str(node)) => Some(node.clone()),
            _ => None,
        })
        .collect();
    nodes.sort();
    nodes
}
