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
    /// Sends a request to another node that has a responder for its subject (a service
    /// request none of this node's instances may serve); false when no node has one.
    pub(super) fn request_on_other_nodes(
        &self,
        conn: &super::conn::Conn,
        frame: &shardbus_protocol::Frame<'_>,
        request_id: u64,
        timeout_ms: u32,
    ) -> bool {
        if self.cluster.is_none() || !self.router.borrow_mut().other_nodes_serve(frame.topic) {
            return false;
        }
        let nodes = crate::cluster::remote_id(self.settings.shards);
        let Some((key, deadline, timeout_ms)) =
            self.insert_pending(conn, frame, request_id, timeout_ms, nodes)
        else {
            return true;
        };
        let message = (
            frame.topic,
            frame.headers.as_bytes(),
            frame.payload,
            frame.flags.0,
        );
        let reply = super::requests::token(self.id, key);
        self.deliver_request(
            Responder::Remote(nodes),
            message,
            reply,
            deadline,
            timeout_ms,
        );
        true
    }

    /// A request from node `origin`: one responder on this node gets it, through a proxy (an
    /// instance the service's strategy picks, for a service endpoint).
    pub(super) fn request_arrived(&self, origin: &[u8], request: &wire::Request<'_>) {
        if self.is_service_endpoint(request.subject) {
            self.node_service_request(origin, request);
            return;
        }
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
        let responder_shard = match responder {
            Responder::Remote(shard) => shard,
            Responder::Local(_) | Responder::None => self.id,
        };
        let Some(key) = self.insert_proxy(origin, request, responder_shard) else {
            return;
        };
        let (deadline, timeout_ms) = self.proxy_deadline(request);
        let reply = super::requests::token(self.id, key);
        let message = (
            request.subject,
            request.headers,
            request.payload,
            request.flags,
        );
        self.deliver_request(responder, message, reply, deadline, timeout_ms);
    }

    fn proxy_deadline(&self, request: &wire::Request<'_>) -> (Instant, u32) {
        let timeout_ms = request.timeout_ms.min(self.settings.max_request_timeout_ms);
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        (deadline, timeout_ms)
    }

    /// Holds `request` of node `origin` as a pending request of this shard (answered
    /// `TOO_MANY_REQUESTS` when the shard's caps refuse it); returns its key.
    fn insert_proxy(
        &self,
        origin: &[u8],
        request: &wire::Request<'_>,
        responder_shard: crate::routing::ShardId,
    ) -> Option<u64> {
        let cluster = self.cluster.as_ref()?;
        let (deadline, _) = self.proxy_deadline(request);
        let identity: Arc<str> = Arc::clone(&cluster.identity);
        let inserted = self.requests.borrow_mut().insert(
            PROXY_CONN,
            &identity,
            responder_shard,
            0,
            0,
            Instant::now(),
            deadline,
        );
        let Ok(key) = inserted else {
            let code = ErrorCode::TOO_MANY_REQUESTS.0;
            self.answer_to_node(origin, request.token, code, &[], &[], 0);
            return None;
        };
        self.requests_changed.notify();
        self.metrics.add(Metric::RequestsPending, 1);
        let proxy = Proxy {
            node: origin.into(),
            token: request.token,
        };
        cluster.proxies.borrow_mut().insert(key, proxy);
        Some(key)
    }

    /// A request from node `origin` to a service endpoint: the instance this node's replica
    /// picks, through a proxy; `NO_RESPONDERS` when none of this node's may serve.
    fn node_service_request(&self, origin: &[u8], request: &wire::Request<'_>) {
        let headers = shardbus_protocol::Headers::parse(request.headers)
            .unwrap_or(shardbus_protocol::Headers::EMPTY);
        let Some(target) = self.pick_instance(request.subject, &headers, 0) else {
            self.answer_to_node(
                origin,
                request.token,
                ErrorCode::NO_RESPONDERS.0,
                &[],
                &[],
                0,
            );
            return;
        };
        let Some(key) = self.insert_proxy(origin, request, target.shard) else {
            self.services.registry.borrow_mut().abandoned(target.id);
            return;
        };
        let body = super::service_requests::RequestBody {
            subject: request.subject,
            headers: request.headers,
            payload: request.payload,
            flags: request.flags,
        };
        self.send_to_instance(key, target, body);
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
        let pending = self.requests.borrow_mut().take(key);
        if let Some(pending) = pending {
            self.metrics.sub(Metric::RequestsPending, 1);
            if let Some(leg) = pending.service {
                let answered = (code == 0).then_some(headers);
                self.service_request_ended(key, leg, pending.started, answered);
            }
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
