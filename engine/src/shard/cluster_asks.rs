//! Asking every other node of a cluster and adding up their answers (ARCHITECTURE.md, *Nodes
//! over Redis*): a push to a user reaches the user's connections on every node, and its
//! recipient count is the sum; the admin listings (connections, topics, rooms) cover every
//! node, each item naming its node, and a kick reaches the node that has the connection. The
//! ask goes to `cluster-out`, which sends it to every node it knows and tells this shard how
//! many; each node answers a JSON array, gathered like another shard's part of a listing,
//! within `NODE_ASK_WAIT`.

use std::time::{Duration, Instant};

use super::Shard;
use super::listing::{Gathered, Gathering, Listing};
use crate::cluster::wire;

/// How long a node ask waits for the other nodes' answers: a node that died answers nothing
/// until it is dropped (`node_timeout_ms`), and the asker's client must not time out first.
const NODE_ASK_WAIT: Duration = Duration::from_secs(2);

/// A listing ask's kinds.
const LIST_CONNECTIONS: u8 = 1;
const LIST_TOPICS: u8 = 2;
const LIST_KICK: u8 = 3;
const LIST_ROOMS: u8 = 4;
pub(super) const LIST_SERVICES: u8 = 5;
pub(super) const LIST_DISCOVER: u8 = 6;

/// A node ask's answer: `value` as JSON (an array the origin adds up or lists).
pub(super) fn json_answer(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Names `node` in every listed item that is an object (connections, topics, rooms).
pub(super) fn name_node(items: &mut [serde_json::Value], node: &str) {
    for item in items {
        if let Some(map) = item.as_object_mut() {
            map.insert("node".to_owned(), node.into());
        }
    }
}

impl Shard {
    /// Asks every other node `kind` with `body` and gathers their answers (`complete`: every
    /// node asked answered in time; without a cluster, nothing to gather and complete).
    pub(crate) async fn gather_nodes(&self, kind: u8, body: &[u8]) -> Gathered {
        let Some(cluster) = &self.cluster else {
            return Gathered {
                items: Vec::new(),
                complete: true,
            };
        };
        let id = self.next_node_ask_id();
        // How many nodes is not known until `cluster-out` has sent it.
        let gathering = Gathering {
            parts: Vec::new(),
            missing: usize::MAX,
        };
        self.listings.borrow_mut().insert(id, gathering);
        cluster.with_out(|out| wire::put_node_ask(out, id, kind, body));
        self.wait_for_parts(id, Instant::now() + NODE_ASK_WAIT)
            .await
    }

    /// A new node ask's id. The answers come to whichever shard takes the answering node's
    /// batch: the id names this shard, above the counter.
    pub(super) fn next_node_ask_id(&self) -> u64 {
        let count = self.next_listing.get() + 1;
        self.next_listing.set(count);
        ((u64::from(self.id) + 1) << 48) | (count & ((1 << 48) - 1))
    }

    /// `cluster-out` sent node ask `id` to `nodes` nodes.
    pub(super) fn node_ask_sent(&self, id: u64, nodes: usize) {
        if self.roster_ask_sent(id, nodes) {
            return;
        }
        if let Some(gathering) = self.listings.borrow_mut().get_mut(&id) {
            // Answers come after this (the batch goes out after `cluster-out` said so).
            gathering.missing = nodes.saturating_sub(gathering.parts.len());
        }
        self.listings_changed.notify();
    }

    /// Another node's ask: done on this node (every shard), answered to its origin.
    pub(super) fn node_ask_arrived(&self, origin: &[u8], id: u64, kind: u8, body: &[u8]) {
        match kind {
            wire::ASK_PUSH_USER => self.push_asked(origin, id, body),
            wire::ASK_LISTING => self.listing_asked(origin, id, body),
            wire::ASK_ROOM_MEMBERSHIP => self.membership_asked(origin, id, body),
            wire::ASK_ROOM_ROSTER => {
                let ask = wire::Record::NodeAsk { id, kind, body };
                self.room_record_arrived(origin, &ask);
            }
            // An ask of a newer version: answered empty, so the origin does not wait for it.
            _ => self.answer_node_ask(origin, id, b"[]"),
        }
    }

    /// This node's part of `listing`, and every other node's (each item with its `node`).
    pub(crate) async fn gather_everywhere(&self, listing: Listing) -> Gathered {
        let mut here = self.gather(listing).await;
        let Some(cluster) = &self.cluster else {
            return here;
        };
        let node = cluster.node().to_owned();
        name_node(&mut here.items, &node);
        let (kind, id) = match listing {
            Listing::Connections => (LIST_CONNECTIONS, 0),
            Listing::Topics => (LIST_TOPICS, 0),
            Listing::Rooms => (LIST_ROOMS, 0),
            // Connection ids are a node's own: a kick goes to the node it names.
            Listing::Kick(_) | Listing::ServiceStats => return here,
        };
        let body = wire::listing_body(kind, id, &node);
        let there = self.gather_nodes(wire::ASK_LISTING, &body).await;
        here.items.extend(there.items);
        here.complete &= there.complete;
        here
    }

    /// Kicks connection `id` of node `node` (another node's: asked, and its answer kept).
    pub(crate) async fn kick_on_node(&self, id: u64, node: &str) -> Gathered {
        let body = wire::listing_body(LIST_KICK, id, node);
        self.gather_nodes(wire::ASK_LISTING, &body).await
    }

    /// Another node's listing: this node's part, each item naming this node.
    fn listing_asked(&self, origin: &[u8], id: u64, body: &[u8]) {
        let Some(cluster) = &self.cluster else { return };
        let node = cluster.node().to_owned();
        let listing = match wire::read_listing_body(body) {
            Some((LIST_SERVICES, _, pattern)) => {
                self.services_asked(origin, id, &node, pattern);
                return;
            }
            Some((LIST_DISCOVER, _, asked)) => {
                self.discover_asked(origin, id, &node, asked);
                return;
            }
            Some((LIST_CONNECTIONS, _, _)) => Listing::Connections,
            Some((LIST_TOPICS, _, _)) => Listing::Topics,
            Some((LIST_ROOMS, _, _)) => Listing::Rooms,
            Some((LIST_KICK, connection, named)) if named == node.as_bytes() => {
                Listing::Kick(connection)
            }
            _ => {
                self.answer_node_ask(origin, id, b"[]");
                return;
            }
        };
        self.answer_node_ask_later(origin, id, move |shard| async move {
            let mut gathered = shard.gather(listing).await;
            name_node(&mut gathered.items, &node);
            json_answer(&gathered.items)
        });
    }

    /// Another node's push to a user: delivered on this node's shards, counted.
    fn push_asked(&self, origin: &[u8], id: u64, body: &[u8]) {
        let body = body.to_vec();
        self.answer_node_ask_later(origin, id, move |shard| async move {
            let Some((user, message)) = wire::read_push_body(&body) else {
                return b"[]".to_vec();
            };
            let push = super::users::Push {
                user,
                subject: message.subject,
                headers: message.headers,
                payload: message.payload,
                flags: message.flags,
            };
            json_answer(&[shard.push_on_this_node(push).await.unwrap_or(0)])
        });
    }

    /// Answers node ask `id` of node `origin` with what `work` gives once it is done (a task
    /// of its own: the work may wait for this node's other shards).
    pub(super) fn answer_node_ask_later<F, Fut>(&self, origin: &[u8], id: u64, work: F)
    where
        F: FnOnce(std::rc::Rc<Shard>) -> Fut,
        Fut: std::future::Future<Output = Vec<u8>> + 'static,
    {
        let Some(shard) = self.this.get().and_then(std::rc::Weak::upgrade) else {
            self.answer_node_ask(origin, id, b"[]");
            return;
        };
        let origin = origin.to_vec();
        let answer = work(std::rc::Rc::clone(&shard));
        glommio::spawn_local(async move {
            let answer = answer.await;
            shard.answer_node_ask(&origin, id, &answer);
        })
        .detach();
    }

    /// A node's answer to node ask `id`: this shard's, or the asking shard's (the id names it).
    pub(super) fn node_answer_arrived(&self, id: u64, answer: &[u8]) {
        let shard = ((id >> 48) as u16).wrapping_sub(1);
        if shard == self.id {
            self.listing_part_arrived(id, answer);
            return;
        }
        if let Some(link) = self.link(shard) {
            link.with_batch(|batch| {
                let part = batch.put(answer);
                batch.push(crate::mesh::batch::Record::ListPart { id, part });
            });
        }
    }

    pub(super) fn answer_node_ask(&self, origin: &[u8], id: u64, answer: &[u8]) {
        if let Some(cluster) = &self.cluster {
            cluster.with_out(|out| wire::put_node_answer(out, origin, id, answer));
        }
    }
}
