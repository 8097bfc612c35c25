//! Users: the connections of each authenticated identity on this shard, so a backend can push
//! to a user (`POST /api/v1/publish` with `user`): every shard delivers to its own connections
//! of that user (MSG with sid 0: a server push, not a subscription's) and says how many it
//! reached. Anonymous connections are nobody's.

use std::sync::Arc;

use super::Shard;
use super::conn::Conn;
use crate::auth::Credential;
use crate::fast_map::FastMap;
use crate::mesh::batch::{MessageSpans, Record};

/// Connection ids by identity name.
#[derive(Debug, Default)]
pub(crate) struct Users {
    by_name: FastMap<Arc<str>, Vec<u64>>,
}

impl Users {
    fn add(&mut self, name: &Arc<str>, conn: u64) {
        self.by_name.entry(Arc::clone(name)).or_default().push(conn);
    }

    fn remove(&mut self, name: &str, conn: u64) {
        if let Some(conns) = self.by_name.get_mut(name) {
            conns.retain(|&c| c != conn);
            if conns.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    pub(super) fn conns(&self, name: &str) -> Vec<u64> {
        self.by_name.get(name).cloned().unwrap_or_default()
    }
}

/// The identity name `conn` is reachable as, when it has one (not anonymous).
fn user_of(conn: &Conn) -> Option<Arc<str>> {
    let identity = conn.identity()?;
    (identity.credential != Credential::Anonymous).then(|| Arc::clone(&identity.name))
}

/// A user push on its way: the user, and the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Push<'a> {
    pub(crate) user: &'a str,
    pub(crate) subject: &'a [u8],
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) flags: u8,
}

impl Shard {
    /// Notes a connection that passed HELLO under its user.
    pub(super) fn user_online(&self, conn: &Conn) {
        if let Some(user) = user_of(conn) {
            self.users.borrow_mut().add(&user, conn.id);
        }
    }

    /// Forgets a closed connection's user entry.
    pub(super) fn user_offline(&self, conn: &Conn) {
        if let Some(user) = user_of(conn) {
            self.users.borrow_mut().remove(&user, conn.id);
        }
    }

    /// Delivers `push` to this shard's connections of its user; returns how many.
    pub(crate) fn push_to_user(&self, push: Push<'_>) -> usize {
        let conns = self.users.borrow().conns(push.user);
        let mut reached = 0;
        for conn in conns.iter().filter_map(|&id| self.conn(id)) {
            let (subject, headers, payload) = (push.subject, push.headers, push.payload);
            if conn.push_message(0, 0, subject, headers, payload, push.flags) {
                reached += 1;
            }
        }
        reached
    }

    /// Delivers `push` on every shard of every node; returns the connections reached (`None`
    /// when a shard or a node did not answer in time).
    pub(crate) async fn push_everywhere(&self, push: Push<'_>) -> Option<u64> {
        let here = self.push_on_this_node(push).await;
        if self.cluster.is_none() {
            return here;
        }
        let message = crate::cluster::wire::Message {
            subject: push.subject,
            headers: push.headers,
            payload: push.payload,
            flags: push.flags,
            plain: false,
            groups: &[],
        };
        let body = crate::cluster::wire::push_body(push.user, &message);
        let nodes = self
            .gather_nodes(crate::cluster::wire::ASK_PUSH_USER, &body)
            .await;
        let there: u64 = nodes.items.iter().filter_map(|n| n.as_u64()).sum();
        here.filter(|_| nodes.complete).map(|here| here + there)
    }

    /// Delivers `push` on every shard of this node; returns the connections reached (`None`
    /// when a shard did not answer in time).
    pub(crate) async fn push_on_this_node(&self, push: Push<'_>) -> Option<u64> {
        let local = self.push_to_user(push);
        let part = serde_json::to_vec(&[local]).unwrap_or_default();
        let gathered = self
            .gather_parts(part, |batch, id| {
                let user = batch.put(push.user.as_bytes());
                let msg = batch.put_message(push.subject, push.headers, push.payload, push.flags);
                batch.push(Record::UserPush { id, user, msg });
            })
            .await;
        let reached = gathered.items.iter().filter_map(|n| n.as_u64()).sum();
        gathered.complete.then_some(reached)
    }

    /// Another shard's user push: delivered here, and answered with how many it reached.
    pub(super) fn user_push_arrived(
        &self,
        from: crate::routing::ShardId,
        id: u64,
        user: &[u8],
        msg: (&[u8], &[u8], &[u8], MessageSpans),
    ) {
        let (subject, headers, payload, spans) = msg;
        let push = Push {
            user: std::str::from_utf8(user).unwrap_or(""),
            subject,
            headers,
            payload,
            flags: spans.flags,
        };
        let reached = self.push_to_user(push);
        let part = serde_json::to_vec(&[reached]).unwrap_or_default();
        if let Some(link) = self.link(from) {
            link.with_batch(|batch| {
                let part = batch.put(&part);
                batch.push(Record::ListPart { id, part });
            });
        }
    }
}
