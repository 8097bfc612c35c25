//! Requests across nodes (ARCHITECTURE.md, *Nodes over Redis*). A request with no responder on
//! this node goes to one node that has one; its reply token stays the origin's, meaningful only
//! there. The node that takes it holds a *proxy*: a pending request of its own (so the request
//! timer, the shard's cap and reply-token bindings work as for any request) whose answer — a
//! response, `NO_RESPONDERS`, or nothing before the deadline — is sent back to the origin node
//! with the origin's token, where it completes the requester's request like an answer from
//! another shard would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shardbus_protocol::ErrorCode;

use super::Shard;
use crate::cluster::wire;
use crate::metrics::Metric;
use crate::routing::Responder;

/// The connection id a proxy's pending request names: no connection has it.
const PROXY_CONN: u64 = u64::MAX;

/// A request another node sent, pending here.
#[derive(Debug)]
pub(crate) struct Proxy {
    node: Box<[u8]>,
    token: u64,
}

impl Shard {
    /// A request from node `origin`: one responder on this node gets it, through a proxy.
    pub(super) fn request_arrived(&self, origin: &[u8], request: &wire::Request<'_>) {
        let responder =
            self.router
                .borrow_mut()
                .route_request(request.subject, PROXY_CONN, true, false);
        if responder == Responder::None {
            self.answer_to_node(
                origin,
                request.token,
                ErrorCode::NO_RESPONDERS.0,
                &[],
                &[],
                0,
            );
            return;
        }
        let Some(cluster) = &self.cluster else { return };
        let timeout_ms = request.timeout_ms.min(self.settings.max_request_timeout_ms);
        let now = Instant::now();
        let deadline = now + Duration::from_millis(u64::from(timeout_ms));
        let responder_shard = match responder {
            Responder::Remote(shard) => shard,
            Responder::Local(_) | Responder::None => self.id,
        };
        let identity: Arc<str> = Arc::clone(&cluster.identity);
        let inserted = self.requests.borrow_mut().insert(
            PROXY_CONN,
            &identity,
            responder_shard,
            0,
            0,
            now,
            deadline,
        );
        let Ok(key) = inserted else {
            self.answer_to_node(
                origin,
                request.token,
                ErrorCode::TOO_MANY_REQUESTS.0,
                &[],
                &[],
                0,
            );
            return;
        };
        self.requests_changed.notify();
        self.metrics.add(Metric::RequestsPending, 1);
        let proxy = Proxy {
            node: origin.into(),
            token: request.token,
        };
        cluster.proxies.borrow_mut().insert(key, proxy);
        let reply = super::requests::token(self.id, key);
        let message = (
            request.subject,
            request.headers,
            request.payload,
            request.flags,
        );
        self.deliver_request(responder, message, reply, deadline, timeout_ms);
    }

    /// A response from another node, for a request of this node.
    pub(super) fn response_arrived(&self, response: &wire::Response<'_>) {
        let answer = (response.headers, response.payload, response.flags);
        self.answer_token(response.token, answer, response.code);
    }

    /// When `key` is a proxy: ends it and sends its answer (a response, or ERR `code`) back to
    /// its node; returns whether it was one.
    pub(super) fn answer_proxy(
        &self,
        key: u64,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
        code: u16,
    ) -> bool {
        let Some(cluster) = &self.cluster else {
            return false;
        };
        if cluster.proxies.borrow().is_empty() {
            return false;
        }
        let Some(proxy) = cluster.proxies.borrow_mut().remove(&key) else {
            return false;
        };
        if self.requests.borrow_mut().take(key).is_some() {
            self.metrics.sub(Metric::RequestsPending, 1);
        }
        self.answer_to_node(&proxy.node, proxy.token, code, headers, payload, flags);
        true
    }

    /// Forgets a proxy whose deadline passed (its origin times the request out itself).
    pub(super) fn forget_proxy(&self, key: u64) {
        if let Some(cluster) = &self.cluster
            && !cluster.proxies.borrow().is_empty()
        {
            cluster.proxies.borrow_mut().remove(&key);
        }
    }

    fn answer_to_node(
        &self,
        node: &[u8],
        token: u64,
        code: u16,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        let Some(cluster) = &self.cluster else { return };
        let response = wire::Response {
            node,
            token,
            code,
            headers,
            payload,
            flags,
        };
        cluster.with_out(|out| wire::put_response(out, &response));
    }
}
