//! A shard as part of a node of a cluster (ARCHITECTURE.md, *Nodes over Redis*). The other
//! nodes are one more outgoing link of the shard (the pseudo shard `cluster::remote_id`): its
//! interest changes, and the publications and requests its routes send the other nodes, go
//! into that link's batch like a forward to another shard, and the link's flusher hands each
//! batch to `cluster-out`. Records addressed to one node (responses, node asks and their
//! answers) go in a buffer of their own. The other nodes' interest changes and the batches of
//! their publications come back here; a batch from another node is routed like a forwarded
//! publication, to this node's subscribers only, never back out to the cluster.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::Shard;
use super::notify::Notify;
use crate::cluster::{Cluster, ToShard, wire};
use crate::metrics::Metric;

/// A shard's side of the cluster.
pub(crate) struct ShardCluster {
    cluster: Arc<Cluster>,
    /// Records for `cluster-out` gathered this poll cycle.
    out: RefCell<Vec<u8>>,
    has_work: Notify,
    /// Requests from other nodes pending here, by their key (`cluster_requests.rs`).
    pub(super) proxies: RefCell<crate::fast_map::FastMap<u64, super::cluster_requests::Proxy>>,
    /// The identity proxies count under (`limits.max_inflight_requests_per_identity`).
    pub(super) identity: Arc<str>,
}

impl ShardCluster {
    pub(crate) fn new(cluster: Arc<Cluster>) -> ShardCluster {
        ShardCluster {
            cluster,
            out: RefCell::new(Vec::new()),
            has_work: Notify::default(),
            proxies: RefCell::new(crate::fast_map::FastMap::default()),
            identity: Arc::from("$cluster"),
        }
    }

    /// This node's name.
    pub(super) fn node(&self) -> &str {
        self.cluster.node()
    }

    pub(super) fn with_out(&self, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        fill(&mut out);
        if was_empty && !out.is_empty() {
            self.has_work.notify();
        }
    }
}

impl Shard {
    /// This node's name in its cluster (`None`: not clustered).
    pub(crate) fn node_name(&self) -> Option<&str> {
        self.cluster.as_ref().map(ShardCluster::node)
    }

    /// Hands the cluster link's batches to `cluster-out` (a task of its own): the mesh's
    /// flusher, with the cluster thread for the peer. While `cluster-out` is far behind the
    /// batch waits (and grows until the link is congested and readers pause, as on the mesh).
    pub(crate) async fn flush_cluster_link(self: Rc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let remote = crate::cluster::remote_id(self.settings.shards);
        let Some(link) = self.link(remote) else {
            return;
        };
        link.run_cluster_flusher(&cluster.cluster, self.id).await;
    }

    /// Hands the node-addressed records gathered in a poll cycle to `cluster-out` (a task of
    /// its own).
    pub(crate) async fn flush_cluster(self: Rc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        loop {
            let has_work = cluster.has_work.notified();
            if cluster.out.borrow().is_empty() {
                has_work.await;
                continue;
            }
            let records =
                std::mem::replace(&mut *cluster.out.borrow_mut(), cluster.cluster.buffer());
            cluster.cluster.submit_records(self.id, records);
            // Once per poll cycle: let the cycle's other tasks add theirs first.
            glommio::yield_if_needed().await;
        }
    }

    /// Takes what the cluster threads hand this shard (a task of its own).
    pub(crate) async fn take_from_cluster(self: Rc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let cluster = Arc::clone(&cluster.cluster);
        loop {
            cluster.arrived(self.id).await;
            while let Some(item) = cluster.take(self.id) {
                match item {
                    ToShard::Interest(change) => self.router.borrow_mut().apply(&change),
                    ToShard::Batch(batch) => {
                        self.batch_arrived(&batch);
                        cluster.inbound_bytes(-(batch.len() as isize));
                    }
                    ToShard::Asked { id, nodes } => self.node_ask_sent(id, nodes),
                    ToShard::NodeCame(node) => self.node_came(&node),
                    ToShard::NodeGone(node) => self.node_gone(&node),
                }
            }
        }
    }

    fn batch_arrived(&self, batch: &[u8]) {
        let Some((origin, records)) = wire::batch_origin(batch) else {
            self.metrics.add(Metric::ClusterMalformed, 1);
            return;
        };
        for record in records {
            self.metrics.add(Metric::ClusterIn, 1);
            let message = match record {
                wire::Record::Message(message) => message,
                wire::Record::Request(request) => {
                    self.request_arrived(origin.node(), &request);
                    continue;
                }
                wire::Record::Response(response) => {
                    self.response_arrived(&response);
                    continue;
                }
                wire::Record::NodeAsk { id, kind, body } => {
                    self.node_ask_arrived(origin.node(), id, kind, body);
                    continue;
                }
                wire::Record::NodeAnswer { id, body, .. } => {
                    self.node_answer_arrived(id, body);
                    continue;
                }
                wire::Record::RoomMember { .. } | wire::Record::RoomRoster { .. } => {
                    self.room_record_arrived(origin.node(), &record);
                    continue;
                }
            };
            if self.ordered_across_nodes(message.subject) {
                self.to_room_home(&message);
            } else {
                self.deliver_arrived(&message);
            }
        }
    }

    /// Delivers another node's publication to this node's subscribers (never back out).
    pub(super) fn deliver_arrived(&self, arrived: &wire::Message<'_>) {
        let mut route = self.route.borrow_mut();
        self.router.borrow_mut().route_arrived(
            arrived.subject,
            arrived.plain,
            arrived.groups,
            &mut route,
        );
        let wire::Message {
            subject,
            headers,
            payload,
            flags,
            ..
        } = *arrived;
        self.deliver_local(&route.local, subject, headers, payload, flags, 0);
        self.forward(
            &route,
            (subject, headers, payload, flags),
            |msg, plain, groups| crate::mesh::batch::Record::Deliver { msg, plain, groups },
        );
    }

    /// Sends another node's publication to its room's home here, to be put in order.
    fn to_room_home(&self, arrived: &wire::Message<'_>) {
        let Some(link) = self.link(self.home_of(arrived.subject)) else {
            self.room_arrived(arrived);
            return;
        };
        link.with_batch(|batch| {
            let msg = batch.put_message(
                arrived.subject,
                arrived.headers,
                arrived.payload,
                arrived.flags,
            );
            let groups = batch.put(arrived.groups);
            batch.push(crate::mesh::batch::Record::RoomArrived {
                msg,
                plain: arrived.plain,
                groups,
            });
        });
        self.metrics.add(Metric::ForwardsOut, 1);
    }
}
