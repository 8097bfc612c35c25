//! Services across the nodes of a cluster (ARCHITECTURE.md, *Services across nodes*). Each
//! node keeps its own registry (the instances of its connections, replicated on its shards);
//! the other nodes' are asked when someone looks — DISCOVER, the services report of
//! `/api/v1/services` and the `services` command — through node asks, each instance naming its
//! node. A dead node answers nothing and is dropped within the node timeout, so its instances
//! leave every listing with it. Requests prefer this node's instances and go to another node's
//! only when none here may serve (`cluster_requests.rs`).

use shardbus_protocol::container::Value;
use shardbus_protocol::{Fields, Flags, Frame, ServiceFields};

use super::Shard;
use super::cluster_asks::{LIST_DISCOVER, LIST_SERVICES, json_answer, name_node};
use super::conn::{Conn, Outgoing};
use crate::cluster::wire;

/// The services of a report, taken out.
fn take_services(report: &mut serde_json::Value) -> Vec<serde_json::Value> {
    report
        .get_mut("services")
        .and_then(serde_json::Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default()
}

/// Names `node` in each instance and endpoint figure of `services`.
fn name_service_nodes(services: &mut [serde_json::Value], node: &str) {
    for service in services {
        for key in ["instances", "endpoints"] {
            if let Some(list) = service.get_mut(key).and_then(|v| v.as_array_mut()) {
                name_node(list, node);
            }
        }
    }
}

impl Shard {
    /// The services report of every node (`services_report`): a service's entry has the
    /// instances of every node, each naming its node, and the endpoint figures each node's
    /// requesters measured, each naming the node.
    pub(crate) async fn services_everywhere(&self, pattern: &str) -> serde_json::Value {
        let mut report = self.services_report(pattern).await;
        let Some(cluster) = &self.cluster else {
            return report;
        };
        let node = cluster.node().to_owned();
        let mut services = take_services(&mut report);
        name_service_nodes(&mut services, &node);
        let body = wire::listing_body(LIST_SERVICES, 0, pattern);
        let there = self.gather_nodes(wire::ASK_LISTING, &body).await;
        for service in there.items {
            let name = service.get("name").cloned();
            match services.iter_mut().find(|s| s.get("name") == name.as_ref()) {
                Some(known) => {
                    for key in ["instances", "endpoints"] {
                        let more = service.get(key).and_then(|v| v.as_array()).cloned();
                        if let Some(list) = known.get_mut(key).and_then(|v| v.as_array_mut()) {
                            list.extend(more.unwrap_or_default());
                        }
                    }
                }
                None => services.push(service),
            }
        }
        let complete = report.get("complete").and_then(serde_json::Value::as_bool) == Some(true);
        serde_json::json!({ "services": services, "complete": complete && there.complete })
    }

    /// Another node's services report: this node's services, each instance naming the node.
    pub(super) fn services_asked(&self, origin: &[u8], id: u64, node: &str, pattern: &[u8]) {
        let Ok(pattern) = std::str::from_utf8(pattern) else {
            self.answer_node_ask(origin, id, b"[]");
            return;
        };
        let (node, pattern) = (node.to_owned(), pattern.to_owned());
        self.answer_node_ask_later(origin, id, move |shard| async move {
            let mut report = shard.services_report(&pattern).await;
            let mut services = take_services(&mut report);
            name_service_nodes(&mut services, &node);
            json_answer(&services)
        });
    }

    /// DISCOVER on a clustered node: this node's instances and every other node's, each
    /// naming its node, answered when the other nodes have (within the listing's wait).
    pub(super) fn discover_everywhere(
        &self,
        conn: &Conn,
        frame: &Frame<'_>,
        requirement: &str,
        here: Vec<Value>,
    ) {
        let (Some(shard), Some(cluster)) = (
            self.this.get().and_then(std::rc::Weak::upgrade),
            &self.cluster,
        ) else {
            return;
        };
        let node = cluster.node().to_owned();
        let mut entries: Vec<Value> = here.into_iter().map(|e| with_node(e, &node)).collect();
        let asked = format!("{}\n{requirement}", frame.topic_str());
        let body = wire::listing_body(LIST_DISCOVER, 0, &asked);
        let (conn_id, op_id, topic) = (conn.id, frame.op_id, frame.topic.to_vec());
        glommio::spawn_local(async move {
            let there = shard.gather_nodes(wire::ASK_LISTING, &body).await;
            entries.extend(there.items.iter().map(crate::commands::to_container));
            let Some(conn) = shard.conn(conn_id) else {
                return;
            };
            shard.send_discovered(&conn, op_id, &topic, entries);
        })
        .detach();
    }

    /// A DISCOVER answer: as many entries as fit in one payload, in the order given.
    pub(super) fn send_discovered(&self, conn: &Conn, op_id: u32, topic: &[u8], found: Vec<Value>) {
        let max = self.settings.limits.max_payload as usize;
        let mut entries = Vec::new();
        let mut size = 16;
        for entry in found {
            size += entry.to_binary().map_or(max, |b| b.len());
            if size > max {
                break;
            }
            entries.push(entry);
        }
        let count = entries.len() as u32;
        let payload = Value::List(entries).to_binary().unwrap_or_default();
        conn.send(&Outgoing {
            topic,
            flags: Flags::CONTAINER.0,
            payload: &payload,
            ..Outgoing::bare(
                Fields::Discover(ServiceFields {
                    count,
                    ..ServiceFields::default()
                }),
                op_id,
            )
        });
    }

    /// Another node's DISCOVER (`asked`: the name pattern, a newline, the version
    /// requirement): this node's instances, each naming the node.
    pub(super) fn discover_asked(&self, origin: &[u8], id: u64, node: &str, asked: &[u8]) {
        let text = std::str::from_utf8(asked).unwrap_or("");
        let (name, requirement) = text.split_once('\n').unwrap_or((text, ""));
        let version = match requirement.trim() {
            "" => None,
            text => semver::VersionReq::parse(text).ok(),
        };
        let found: Vec<serde_json::Value> = self
            .services
            .registry
            .borrow()
            .discover(name, version.as_ref())
            .into_iter()
            .map(|instance| {
                let entry = with_node(instance.describe(), node);
                super::service_listing::container_to_json(&entry)
            })
            .collect();
        let answer = json_answer(&found);
        self.answer_node_ask(origin, id, &answer);
    }
}

/// A registry entry naming its node.
fn with_node(entry: Value, node: &str) -> Value {
    match entry {
        Value::Map(mut fields) => {
            fields.push(("node".to_owned(), Value::Str(node.to_owned())));
            Value::Map(fields)
        }
        other => other,
    }
}
