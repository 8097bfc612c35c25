//! A shard as part of a node of a cluster (ARCHITECTURE.md, *Nodes over Redis*): its interest
//! changes and its publications that other nodes want (the route's pseudo shard `REMOTE`) go
//! into one buffer per poll cycle for `cluster-out`, in the order they happened; the other
//! nodes' interest changes and the batches of their publications come back here. A batch from
//! another node is routed like a forwarded publication, to this node's subscribers only, never
//! back out to the cluster.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use super::Shard;
use super::notify::Notify;
use crate::cluster::{Cluster, REMOTE, ToShard, wire};
use crate::metrics::Metric;
use crate::routing::{InterestChange, Route};

/// A shard's side of the cluster.
pub(crate) struct ShardCluster {
    cluster: Arc<Cluster>,
    /// Records for `cluster-out` gathered this poll cycle.
    out: RefCell<Vec<u8>>,
    has_work: Notify,
    /// Publications dropped since the last warning (the cluster thread far behind).
    dropping: Cell<bool>,
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
            dropping: Cell::new(false),
            proxies: RefCell::new(crate::fast_map::FastMap::default()),
            identity: Arc::from("$cluster"),
        }
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
    /// Tells the cluster of a change in this shard's interest.
    pub(super) fn cluster_interest(&self, change: &InterestChange) {
        if let Some(cluster) = &self.cluster {
            cluster.with_out(|out| wire::put_interest(out, change));
        }
    }

    /// Hands a publication whose route reaches other nodes to the cluster (its plain part if
    /// other nodes have plain interest, and the groups the route picked `REMOTE` for).
    #[cold]
    pub(super) fn to_cluster(
        &self,
        route: &Route<super::conn::LocalSub>,
        entries: &[(crate::routing::ShardId, Option<usize>)],
        (subject, headers, payload, flags): (&[u8], &[u8], &[u8], u8),
    ) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.cluster.is_backed_up() {
            self.metrics.add(Metric::ClusterDropped, 1);
            if !cluster.dropping.replace(true) {
                tracing::warn!(
                    shard = self.id,
                    "the cluster thread is far behind: dropping publications to other nodes"
                );
            }
            return;
        }
        cluster.dropping.set(false);
        let plain = entries.iter().any(|(_, group)| group.is_none());
        let mut groups = Vec::new();
        for (_, group) in entries {
            if let Some(group) = group {
                if !groups.is_empty() {
                    groups.push(b' ');
                }
                groups.extend_from_slice(route.group_name(*group).as_bytes());
            }
        }
        let message = wire::Message {
            subject,
            headers,
            payload,
            flags,
            plain,
            groups: &groups,
        };
        cluster.with_out(|out| wire::put_message(out, &message));
        self.metrics.add(Metric::ClusterOut, 1);
    }

    /// Hands the records gathered in a poll cycle to `cluster-out` (a task of its own).
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
            cluster.cluster.submit(self.id, records);
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
                    ToShard::Batch(batch) => self.batch_arrived(&batch),
                    ToShard::Asked { id, nodes } => self.node_ask_sent(id, nodes),
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
                wire::Record::Interest { .. } => continue,
            };
            let mut route = self.route.borrow_mut();
            self.router.borrow_mut().route_arrived(
                message.subject,
                message.plain,
                message.groups,
                REMOTE,
                &mut route,
            );
            let wire::Message {
                subject,
                headers,
                payload,
                flags,
                ..
            } = message;
            self.deliver_local(&route.local, subject, headers, payload, flags, 0);
            self.forward(
                &route,
                (subject, headers, payload, flags),
                false,
                |msg, plain, groups| crate::mesh::batch::Record::Deliver { msg, plain, groups },
            );
        }
    }
}
