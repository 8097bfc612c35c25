//! Listings for the HTTP edge: a shard's connections and its topics (patterns with their
//! subscriber counts), and gathering every shard's part over the mesh — the asking shard sends
//! `List` to each other shard, each answers `ListPart` (a JSON array), and the asker waits for
//! all of them (or `LISTING_WAIT`: a listing never hangs on a stuck shard).

use std::time::{Duration, Instant};

use shardbus_protocol::ErrorCode;

use crate::mesh::batch::Record;
use crate::routing::ShardId;

use super::Shard;

/// The longest a listing waits for the other shards.
pub(crate) const LISTING_WAIT: Duration = Duration::from_secs(5);

/// What the HTTP edge asks every shard for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Client connections: id, shard, address, name, subscriptions, traffic, pending bytes.
    Connections,
    /// Subscribed patterns per queue group, with their subscriber counts.
    Topics,
    /// Close connection `id` with `KICKED`, if this shard has it: `[id]`, else `[]`.
    Kick(u64),
    /// The rooms this shard is home to, with their members and users.
    Rooms,
    /// This shard's figures of every service instance (`service_listing.rs`).
    ServiceStats,
}

/// A listing being gathered: the parts so far and how many shards have not answered.
#[derive(Debug)]
pub(crate) struct Gathering {
    pub(super) parts: Vec<Vec<u8>>,
    pub(super) missing: usize,
}

/// Every shard's items, and whether a shard failed to answer in time.
#[derive(Debug)]
pub(crate) struct Gathered {
    pub(crate) items: Vec<serde_json::Value>,
    pub(crate) complete: bool,
}

impl Shard {
    /// This shard's part of `listing`, as a JSON array.
    fn listing_part(&self, listing: Listing) -> Vec<u8> {
        let items: Vec<serde_json::Value> = match listing {
            Listing::Connections => self
                .conns
                .borrow()
                .values()
                // In-process connections (the HTTP edge's own) are not clients.
                .filter_map(|conn| conn.remote.map(|remote| (conn, remote)))
                .map(|(conn, remote)| {
                    let t = &conn.traffic;
                    serde_json::json!({
                        "id": conn.id,
                        "shard": self.id,
                        "remote": remote.to_string(),
                        "name": *conn.name.borrow(),
                        "subscriptions": conn.subs.borrow().len(),
                        "msgs_in": t.msgs_in.get(),
                        "bytes_in": t.bytes_in.get(),
                        "msgs_out": t.msgs_out.get(),
                        "bytes_out": t.bytes_out.get(),
                        "pending_bytes": conn.outbox.backlog(),
                    })
                })
                .collect(),
            Listing::Kick(id) => match self.conn(id).filter(|c| c.remote.is_some()) {
                Some(conn) => {
                    conn.fail(ErrorCode::KICKED, 0, 0, "closed by an administrator");
                    vec![serde_json::Value::from(id)]
                }
                None => Vec::new(),
            },
            Listing::Topics => self
                .router
                .borrow()
                .local_interest()
                .counts()
                .map(|(pattern, queue, count)| {
                    serde_json::json!({
                        "pattern": String::from_utf8_lossy(pattern),
                        "queue": queue,
                        "subscribers": count,
                    })
                })
                .collect(),
            Listing::Rooms => self.rooms_listing(),
            Listing::ServiceStats => self.service_stats_part(),
        };
        serde_json::to_vec(&items).unwrap_or_default()
    }

    /// Every shard's part of `listing`: this shard's, and the others' over the mesh.
    pub(crate) async fn gather(&self, listing: Listing) -> Gathered {
        let local = self.listing_part(listing);
        self.gather_parts(local, |batch, id| batch.push(Record::List { id, listing }))
            .await
    }

    /// This shard's `local` part and every other shard's answer (a `ListPart`) to what `ask`
    /// puts in its batch for gathering `id`.
    pub(crate) async fn gather_parts(
        &self,
        local: Vec<u8>,
        ask: impl Fn(&mut crate::mesh::batch::Batch, u64),
    ) -> Gathered {
        let id = self.next_listing.get() + 1;
        self.next_listing.set(id);
        let peers = self.peers().count();
        let gathering = Gathering {
            parts: vec![local],
            missing: peers,
        };
        self.listings.borrow_mut().insert(id, gathering);
        for link in self.peers() {
            link.with_batch(|batch| ask(batch, id));
        }
        self.wait_for_parts(id, Instant::now() + LISTING_WAIT).await
    }

    /// Waits until gathering `id` has every part, or `deadline`; then takes what it has.
    pub(crate) async fn wait_for_parts(&self, id: u64, deadline: Instant) -> Gathered {
        loop {
            let changed = self.listings_changed.notified();
            let missing = self.listings.borrow().get(&id).map_or(0, |g| g.missing);
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            if missing == 0 {
                break;
            }
            futures_lite::future::or(changed, glommio::timer::sleep(left)).await;
        }
        let Some(gathering) = self.listings.borrow_mut().remove(&id) else {
            return Gathered {
                items: Vec::new(),
                complete: false,
            };
        };
        let items = gathering
            .parts
            .iter()
            .filter_map(|part| serde_json::from_slice::<Vec<serde_json::Value>>(part).ok())
            .flatten()
            .collect();
        Gathered {
            items,
            complete: gathering.missing == 0,
        }
    }

    /// Another shard asked for this shard's part of `listing`.
    pub(crate) fn answer_listing(&self, from: ShardId, id: u64, listing: Listing) {
        let part = self.listing_part(listing);
        if let Some(link) = self.link(from) {
            link.with_batch(|batch| {
                let part = batch.put(&part);
                batch.push(Record::ListPart { id, part });
            });
        }
    }

    /// Another shard's part of listing `id` arrived (a late one, after the deadline, is dropped).
    pub(crate) fn listing_part_arrived(&self, id: u64, part: &[u8]) {
        if let Some(gathering) = self.listings.borrow_mut().get_mut(&id) {
            gathering.parts.push(part.to_vec());
            gathering.missing = gathering.missing.saturating_sub(1);
        }
        self.listings_changed.notify();
    }
}
