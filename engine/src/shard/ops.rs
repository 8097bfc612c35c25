//! What a shard does with each frame a connection sends after HELLO: publish, subscribe,
//! unsubscribe, request, respond, ping, status. Each error is answered with its PROTOCOL.md
//! code and counted (in `Conn::error`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardbus_protocol::{ErrorCode, Fields, Frame};

use super::Shard;
use super::conn::{Conn, LocalSub, Outgoing};
use super::replies::Answer;
use super::requests::Pending;
use super::requests::{parse_token, token};
use crate::mesh::batch::Record;
use crate::metrics::Metric;
use crate::routing::Responder;

impl Shard {
    /// Acts on one frame from `conn`.
    pub(crate) fn handle(&self, conn: &Rc<Conn>, frame: &Frame<'_>) {
        match frame.fields {
            Fields::Pub => self.publish(conn, frame),
            Fields::Sub { sid } => self.subscribe(conn, frame, sid),
            Fields::Unsub { sid, max_msgs } => self.unsubscribe(conn, frame.op_id, sid, max_msgs),
            Fields::Req {
                request_id,
                timeout_ms,
            } => self.request(conn, frame, request_id, timeout_ms),
            Fields::Resp { id } => self.respond(conn, frame, id),
            Fields::Ping => self.pong_after_barrier(conn, frame.op_id),
            Fields::Pong => conn
                .pings_unanswered
                .set(conn.pings_unanswered.get().saturating_sub(1)),
            Fields::Status => self.send_status(conn, frame.op_id),
            Fields::Register(fields) => self.register_service(conn, frame, fields),
            Fields::Heartbeat(fields) => self.heartbeat(conn, frame.op_id, fields),
            Fields::Deregister(fields) => self.deregister(conn, frame.op_id, fields),
            Fields::Discover(_) => self.discover(conn, frame),
            Fields::Join(fields) => self.join(conn, frame, fields),
            Fields::Leave(_) => self.leave(conn, frame),
            Fields::Presence(fields) => self.presence(conn, frame, fields),
            Fields::History(fields) => self.history(conn, frame, fields),
            Fields::Hello { .. } => conn.error(
                ErrorCode::HELLO_REQUIRED,
                frame.op_id,
                0,
                "HELLO may be sent once, first",
            ),
            Fields::Welcome(_)
            | Fields::Ok
            | Fields::Err { .. }
            | Fields::Drain { .. }
            | Fields::Msg { .. }
            | Fields::Member(_) => conn.error(
                ErrorCode::UNKNOWN_OP,
                frame.op_id,
                0,
                "a server-to-client op sent to the server",
            ),
        }
    }

    pub(super) fn count_in(&self, conn: &Conn, frame: &Frame<'_>) {
        conn.traffic.count_in(frame.payload.len());
        self.metrics.add(Metric::MsgsIn, 1);
        self.metrics
            .add(Metric::BytesIn, frame.payload.len() as u64);
    }

    /// Answers PERMISSION_DENIED (the connection stays) when `allowed` is false.
    #[inline]
    fn permitted(
        &self,
        conn: &Conn,
        allowed: bool,
        frame: &Frame<'_>,
        ref_id: u64,
        what: &str,
    ) -> bool {
        if !allowed {
            deny(conn, frame, ref_id, what);
        }
        allowed
    }

    /// Charges the rate limits for one message; answers `RATE_LIMITED` when over one.
    /// Always inlined: on the publish path it is one load when no limit is set (the room ops'
    /// arms of `handle` made LLVM call it out of line, +21 instructions per publish).
    #[inline(always)]
    fn within_rate(&self, conn: &Conn, frame: &Frame<'_>, ref_id: u64) -> bool {
        !self.rate_any.get() || self.charge_rate(conn, frame, ref_id)
    }

    fn charge_rate(&self, conn: &Conn, frame: &Frame<'_>, ref_id: u64) -> bool {
        let charged = self.rate.borrow().charge(
            conn.rate.borrow_mut().as_deref_mut(),
            &conn.identity_name(),
            frame.topic_str(),
            frame.payload.len(),
        );
        match charged {
            Ok(()) => true,
            Err(limited) => {
                conn.rate_limited(frame.op_id, ref_id, limited);
                false
            }
        }
    }

    fn publish(&self, conn: &Conn, frame: &Frame<'_>) {
        // `$sys.` subjects are the server's: one byte tells the rest apart.
        let allowed = conn.may_publish(frame)
            && (frame.topic.first() != Some(&b'$') || !crate::events::is_reserved(frame.topic));
        if !self.permitted(conn, allowed, frame, 0, "publishing to")
            || !self.within_rate(conn, frame, 0)
        {
            return;
        }
        if self.rooms_any.get() && self.publish_to_room(conn, frame) {
            return;
        }
        self.count_in(conn, frame);
        let headers = frame.headers.as_bytes();
        self.fan_out(
            frame.topic,
            headers,
            frame.payload,
            frame.flags.0,
            conn.id,
            conn.echo(),
        );
        conn.ack(frame.op_id);
    }

    /// Delivers a publication to every subscriber on every shard: the local ones now, the
    /// others through one forward per shard. `publisher`'s own subscriptions get it only with
    /// `echo`. Always inlined into its two callers (a plain publish, a room home's stamp): as
    /// a call it cost the publish path ~27 instructions (callgrind).
    #[inline(always)]
    pub(crate) fn fan_out(
        &self,
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
        publisher: u64,
        echo: bool,
    ) {
        let mut route = self.route.borrow_mut();
        self.router
            .borrow_mut()
            .route_publish(subject, publisher, echo, &mut route);
        self.deliver_local(&route.local, subject, headers, payload, flags, 0);
        let message = (subject, headers, payload, flags);
        self.forward(&route, message, |msg, plain, groups| Record::Deliver {
            msg,
            plain,
            groups,
        });
    }

    /// Sends a routed publication to every other shard `route` names (and to the other nodes
    /// of a cluster, one more link), once per shard with its queue groups, as the record
    /// `record` makes. Always inlined: it is the publish path's (and its record is known
    /// where it is called).
    #[inline(always)]
    pub(crate) fn forward(
        &self,
        route: &crate::routing::Route<LocalSub>,
        (subject, headers, payload, flags): (&[u8], &[u8], &[u8], u8),
        record: impl Fn(crate::mesh::batch::MessageSpans, bool, crate::mesh::batch::Span) -> Record,
    ) {
        let mut rest = route.remote.as_slice();
        while let Some(&(shard, _)) = rest.first() {
            let run = rest.iter().take_while(|(s, _)| *s == shard).count();
            let (entries, tail) = rest.split_at(run);
            rest = tail;
            let Some(link) = self.link(shard) else {
                continue;
            };
            let plain = entries.iter().any(|(_, group)| group.is_none());
            let groups = entries
                .iter()
                .filter_map(|(_, group)| group.map(|g| route.group_name(g).as_bytes()));
            link.with_batch(|batch| {
                let msg = batch.put_message(subject, headers, payload, flags);
                let groups = batch.put_words(groups);
                batch.push(record(msg, plain, groups));
            });
            self.metrics.add(Metric::ForwardsOut, 1);
        }
    }

    fn subscribe(&self, conn: &Rc<Conn>, frame: &Frame<'_>, sid: u64) {
        let allowed = conn.may(|p| p.subscribe.allows_pattern(frame.topic_str()))
            && (!crate::events::is_reserved(frame.topic) || self.may_watch(conn, frame.topic));
        if !self.permitted(conn, allowed, frame, sid, "subscribing to") {
            return;
        }
        let count = conn.subs.borrow().len();
        if conn.subs.borrow().contains_key(sid) {
            conn.error(
                ErrorCode::DUPLICATE_SUBSCRIPTION,
                frame.op_id,
                sid,
                "sid already in use",
            );
            return;
        }
        if count >= self.settings.max_subscriptions as usize {
            conn.error(
                ErrorCode::TOO_MANY_SUBSCRIPTIONS,
                frame.op_id,
                sid,
                "max_subscriptions reached",
            );
            return;
        }
        // The decoder checked the queue group is a single valid token, hence ASCII.
        let queue = std::str::from_utf8(frame.payload)
            .ok()
            .filter(|q| !q.is_empty());
        let sub = LocalSub::new(conn, sid, frame.topic, queue);
        let change = self
            .router
            .borrow_mut()
            .subscribe(frame.topic, queue, sub.clone());
        self.broadcast(change);
        conn.subs.borrow_mut().insert(sid, sub);
        conn.interest_dirty.set(true);
        self.metrics.add(Metric::Subscriptions, 1);
        conn.ack(frame.op_id);
    }

    fn unsubscribe(&self, conn: &Conn, op_id: u32, sid: u64, max_msgs: u64) {
        let known = if max_msgs == 0 {
            self.end_subscription(conn, sid)
        } else {
            match conn.subs.borrow().get(sid) {
                Some(sub) => {
                    sub.expire_after(max_msgs);
                    true
                }
                None => false,
            }
        };
        if known {
            conn.ack(op_id);
        } else {
            conn.error(
                ErrorCode::UNKNOWN_SUBSCRIPTION,
                op_id,
                sid,
                "no such subscription",
            );
        }
    }

    fn request(&self, conn: &Conn, frame: &Frame<'_>, request_id: u64, timeout_ms: u32) {
        // Commands are requests the server answers; their roles, not the request rule, say
        // who may run them. Any other `$sys.` subject is the server's alone.
        let command = Self::is_command(frame.topic);
        let allowed =
            command || (conn.may_request(frame) && !crate::events::is_reserved(frame.topic));
        if !self.permitted(conn, allowed, frame, request_id, "requesting on")
            || !self.within_rate(conn, frame, request_id)
        {
            return;
        }
        self.count_in(conn, frame);
        if command {
            self.command(conn, frame, request_id);
            return;
        }
        if conn.inflight.get() >= self.settings.max_inflight_requests {
            conn.error(
                ErrorCode::TOO_MANY_REQUESTS,
                frame.op_id,
                request_id,
                "max_inflight_requests reached",
            );
            return;
        }
        if self.is_service_endpoint(frame.topic) {
            self.request_service(conn, frame, request_id, timeout_ms);
            return;
        }
        let responder =
            self.router
                .borrow_mut()
                .route_request(frame.topic, conn.id, conn.echo(), true);
        if responder == Responder::None {
            self.no_responders(conn, frame, request_id, "no subscriber for the subject");
            return;
        }
        let responder_shard = match responder {
            Responder::Remote(shard) => shard,
            Responder::Local(_) | Responder::None => self.id,
        };
        let Some((key, deadline, timeout_ms)) =
            self.insert_pending(conn, frame, request_id, timeout_ms, responder_shard)
        else {
            return;
        };
        let reply = token(self.id, key);
        let message = (
            frame.topic,
            frame.headers.as_bytes(),
            frame.payload,
            frame.flags.0,
        );
        self.deliver_request(responder, message, reply, deadline, timeout_ms);
    }

    /// Delivers a request to the responder `route_request` picked, with reply token `reply`:
    /// bound to a local subscriber, or forwarded to the shard (or the other nodes) that has one.
    pub(super) fn deliver_request(
        &self,
        responder: Responder<LocalSub>,
        (subject, headers, payload, flags): (&[u8], &[u8], &[u8], u8),
        reply: u64,
        deadline: Instant,
        timeout_ms: u32,
    ) {
        match responder {
            Responder::Local(sub) => {
                self.bind_reply(&sub, subject, reply, deadline);
                let sub = std::slice::from_ref(&sub);
                self.deliver_local(sub, subject, headers, payload, flags, reply);
            }
            Responder::Remote(shard) => {
                if let Some(link) = self.link(shard) {
                    link.with_batch(|batch| {
                        let msg = batch.put_message(subject, headers, payload, flags);
                        batch.push(Record::Request {
                            msg,
                            token: reply,
                            timeout_ms,
                        });
                    });
                    self.metrics.add(Metric::ForwardsOut, 1);
                }
            }
            Responder::None => {}
        }
    }

    /// A request to a service endpoint: the instance its strategy picks, wherever it is.
    fn request_service(&self, conn: &Conn, frame: &Frame<'_>, request_id: u64, timeout_ms: u32) {
        let gated = self.services.registry.borrow().gated_service(frame.topic);
        if let Some(name) = gated {
            self.request_gated(conn, frame, request_id, timeout_ms, name);
            return;
        }
        let Some(target) = self.pick_instance(frame.topic, &frame.headers, 0) else {
            // None here may serve: another node's instances may.
            if self.request_on_other_nodes(conn, frame, request_id, timeout_ms) {
                return;
            }
            let why = "no instance of the service may serve (unhealthy, draining or tripped)";
            self.no_responders(conn, frame, request_id, why);
            return;
        };
        let Some((key, _, _)) =
            self.insert_pending(conn, frame, request_id, timeout_ms, target.shard)
        else {
            self.services.registry.borrow_mut().abandoned(target.id);
            return;
        };
        let body = super::service_requests::RequestBody {
            subject: frame.topic,
            headers: frame.headers.as_bytes(),
            payload: frame.payload,
            flags: frame.flags.0,
        };
        self.send_to_instance(key, target, body);
    }

    #[cold]
    fn no_responders(&self, conn: &Conn, frame: &Frame<'_>, request_id: u64, why: &str) {
        self.metrics.add(Metric::RequestsNoResponders, 1);
        conn.error(ErrorCode::NO_RESPONDERS, frame.op_id, request_id, why);
    }

    /// Records request `request_id` of `conn` as pending with its (capped) deadline; returns
    /// its key, deadline and timeout, or `None` when a cap refused it (answered here).
    pub(super) fn insert_pending(
        &self,
        conn: &Conn,
        frame: &Frame<'_>,
        request_id: u64,
        timeout_ms: u32,
        responder_shard: crate::routing::ShardId,
    ) -> Option<(u64, Instant, u32)> {
        let started = Instant::now();
        let timeout_ms = timeout_ms.min(self.settings.max_request_timeout_ms);
        let deadline = started + Duration::from_millis(u64::from(timeout_ms));
        let identity = conn
            .identity_key()
            .unwrap_or_else(|| Arc::clone(&self.in_process_identity));
        let inserted = {
            let mut requests = self.requests.borrow_mut();
            let earliest = requests.next_deadline();
            let inserted = requests.insert(
                conn.id,
                &identity,
                responder_shard,
                request_id,
                frame.op_id,
                started,
                deadline,
            );
            if inserted.is_ok() && earliest.is_none_or(|earliest| deadline < earliest) {
                self.requests_changed.notify();
            }
            inserted
        };
        match inserted {
            Ok(key) => {
                conn.inflight.set(conn.inflight.get() + 1);
                self.metrics.add(Metric::RequestsPending, 1);
                Some((key, deadline, timeout_ms))
            }
            Err(full) => {
                conn.error(
                    ErrorCode::TOO_MANY_REQUESTS,
                    frame.op_id,
                    request_id,
                    full.message(),
                );
                None
            }
        }
    }

    /// Records that the request with `token` goes to `sub`'s connection, the only one that
    /// may answer it (`replies.rs`), and whether its identity may answer on `subject`.
    pub(crate) fn bind_reply(&self, sub: &LocalSub, subject: &[u8], token: u64, deadline: Instant) {
        let Some(conn) = sub.conn() else { return };
        let may_respond = conn.may_respond(subject);
        let mut replies = self.replies.borrow_mut();
        let earliest = replies.next_deadline();
        replies.insert(token, conn.id, may_respond, deadline);
        drop(replies);
        if earliest.is_none_or(|earliest| deadline < earliest) {
            self.requests_changed.notify();
        }
    }

    fn respond(&self, conn: &Conn, frame: &Frame<'_>, reply: u64) {
        let answer = self.replies.borrow_mut().answer(reply, conn.id);
        match answer {
            Answer::Forward => {}
            Answer::Late => {
                self.metrics.add(Metric::LateResponses, 1);
                return;
            }
            Answer::NotPermitted | Answer::NotYours => {
                self.metrics.add(Metric::ResponsesRefused, 1);
                refuse_response(conn, frame, reply, answer);
                return;
            }
        }
        let response = (frame.headers.as_bytes(), frame.payload, frame.flags.0);
        self.answer_token(reply, response, 0);
    }

    /// Takes a response (or, with a non-zero `code`, an ERR) for reply token `token` to the
    /// shard that issued it: completed here, or forwarded; a token no shard issued is late.
    pub(super) fn answer_token(
        &self,
        token: u64,
        (headers, payload, flags): (&[u8], &[u8], u8),
        code: u16,
    ) {
        match parse_token(token) {
            Some((shard, key)) if shard == self.id => {
                self.complete_request(key, headers, payload, flags, code);
            }
            Some((shard, key)) => match self.link(shard) {
                Some(link) => {
                    link.with_batch(|batch| {
                        let msg = if code == 0 {
                            batch.put_message(&[], headers, payload, flags)
                        } else {
                            crate::mesh::batch::MessageSpans::default()
                        };
                        batch.push(Record::Response { key, msg, code });
                    });
                    self.metrics.add(Metric::ForwardsOut, 1);
                }
                None => self.metrics.add(Metric::LateResponses, 1),
            },
            None => self.metrics.add(Metric::LateResponses, 1),
        }
    }

    /// Ends pending request `key` with a response, or with ERR `code` when it is non-zero.
    /// A request that already ended makes the response late: dropped and counted.
    pub(crate) fn complete_request(
        &self,
        key: u64,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
        code: u16,
    ) {
        if self.answer_proxy(key, headers, payload, flags, code) {
            return;
        }
        if code != 0 {
            let why = "the responder left before the request reached it";
            self.fail_request(key, ErrorCode(code), 0, why);
            return;
        }
        let Some((pending, conn)) = self.take_pending(key, Some(headers)) else {
            return;
        };
        let Some(conn) = conn else { return };
        self.metrics
            .request_latency
            .observe(pending.started.elapsed());
        let headers = if conn.accepts_headers() { headers } else { &[] };
        let sent = conn.send(&Outgoing {
            fields: Fields::Resp {
                id: pending.request_id,
            },
            flags,
            op_id: pending.op_id,
            topic: &[],
            headers,
            payload,
        });
        if sent {
            conn.count_out(payload.len());
            self.note_answer_from(&conn, pending.responder_shard);
        }
    }

    /// Ends pending request `key` with ERR `code` (and a retry-after, when not 0).
    pub(crate) fn fail_request(&self, key: u64, code: ErrorCode, retry_after_ms: u32, why: &str) {
        if self.answer_proxy(key, &[], &[], 0, code.0) {
            return;
        }
        let Some((pending, Some(conn))) = self.take_pending(key, None) else {
            return;
        };
        if code == ErrorCode::NO_RESPONDERS {
            self.metrics.add(Metric::RequestsNoResponders, 1);
        }
        if retry_after_ms > 0 {
            conn.error_retry(code, pending.op_id, pending.request_id, retry_after_ms, why);
        } else {
            conn.error(code, pending.op_id, pending.request_id, why);
        }
    }

    /// Takes pending request `key` out (`answer`: the response's headers, when it was
    /// answered), with its requester's connection if still there; `None` when it already
    /// ended, counted late.
    fn take_pending(&self, key: u64, answer: Option<&[u8]>) -> Option<(Pending, Option<Rc<Conn>>)> {
        let Some(pending) = self.requests.borrow_mut().take(key) else {
            self.metrics.add(Metric::LateResponses, 1);
            return None;
        };
        self.metrics.sub(Metric::RequestsPending, 1);
        if let Some(leg) = pending.service {
            self.service_request_ended(key, leg, pending.started, answer);
        }
        let conn = self.conn(pending.conn);
        if let Some(conn) = &conn {
            conn.inflight.set(conn.inflight.get().saturating_sub(1));
        }
        Some((pending, conn))
    }

    /// Answers TIMEOUT to every request past its deadline, and forgets the reply tokens of
    /// requests over.
    pub(crate) fn expire_requests(&self) {
        let now = Instant::now();
        self.replies.borrow_mut().expire(now);
        let expired = self.requests.borrow_mut().expire(now);
        for (key, pending) in expired {
            self.metrics.sub(Metric::RequestsPending, 1);
            self.metrics.add(Metric::RequestsTimedOut, 1);
            self.forget_proxy(key);
            if let Some(leg) = pending.service {
                self.service_request_timed_out(key, leg, now);
            }
            if let Some(conn) = self.conn(pending.conn) {
                conn.inflight.set(conn.inflight.get().saturating_sub(1));
                conn.error(
                    ErrorCode::TIMEOUT,
                    pending.op_id,
                    pending.request_id,
                    "no response before the deadline",
                );
            }
        }
    }
}

/// Answers PERMISSION_DENIED to a RESP that this connection may not send.
#[cold]
fn refuse_response(conn: &Conn, frame: &Frame<'_>, reply: u64, answer: Answer) {
    let why = if answer == Answer::NotPermitted {
        "this identity may not answer requests on the request's subject (respond permission)"
    } else {
        "the reply token was delivered to another connection"
    };
    conn.error(ErrorCode::PERMISSION_DENIED, frame.op_id, reply, why);
}

/// Answers PERMISSION_DENIED for `what` on the frame's topic; out of line, off the hot path.
#[cold]
fn deny(conn: &Conn, frame: &Frame<'_>, ref_id: u64, what: &str) {
    let message = format!("{what} {} is not permitted", frame.topic_str());
    conn.error(ErrorCode::PERMISSION_DENIED, frame.op_id, ref_id, &message);
}
