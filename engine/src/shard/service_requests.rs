//! A request to a service endpoint: the requester's shard picks the instance from its replica
//! (`services/balance.rs`) and sends the request to that instance's endpoint subscription,
//! wherever it is. When the instance vanished before the request reached it, the request comes
//! back and is sent once more, to another instance. Answers, timeouts and abandoned requests
//! are counted against the instance that had them.

use std::time::{Duration, Instant};

use shardbus_protocol::{ErrorCode, Headers};

use super::Shard;
use super::requests::{ServiceLeg, parse_token};
use crate::mesh::batch::{MessageSpans, Record};
use crate::metrics::Metric;
use crate::services::change::ServiceChange;
use crate::services::registry::Target;
use crate::services::stats;

/// Where a forwarded service request goes, carried in the batch's bytes (so the record stays
/// as small as a delivery's): connection, subscription, reply token, timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceTo {
    pub(crate) conn: u64,
    pub(crate) sid: u64,
    pub(crate) token: u64,
    pub(crate) timeout_ms: u32,
}

impl ServiceTo {
    const LEN: usize = 28;

    pub(crate) fn to_bytes(self) -> [u8; ServiceTo::LEN] {
        let mut out = [0u8; ServiceTo::LEN];
        for (chunk, value) in out.chunks_mut(8).zip([self.conn, self.sid, self.token]) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        if let Some(tail) = out.get_mut(24..) {
            tail.copy_from_slice(&self.timeout_ms.to_le_bytes());
        }
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<ServiceTo> {
        let (conn, rest) = bytes.split_first_chunk::<8>()?;
        let (sid, rest) = rest.split_first_chunk::<8>()?;
        let (token, rest) = rest.split_first_chunk::<8>()?;
        let timeout = rest.first_chunk::<4>()?;
        Some(ServiceTo {
            conn: u64::from_le_bytes(*conn),
            sid: u64::from_le_bytes(*sid),
            token: u64::from_le_bytes(*token),
            timeout_ms: u32::from_le_bytes(*timeout),
        })
    }
}

/// A request's sections, wherever they are held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestBody<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) flags: u8,
}

impl Shard {
    /// Whether requests on `subject` go to a service's instances.
    #[inline]
    pub(super) fn is_service_endpoint(&self, subject: &[u8]) -> bool {
        self.services.any.get() && self.services.registry.borrow().is_endpoint(subject)
    }

    /// The instance for a request with these headers, never `exclude`.
    pub(super) fn pick_instance(
        &self,
        subject: &[u8],
        headers: &Headers<'_>,
        exclude: u64,
    ) -> Option<Target> {
        let target =
            self.services
                .registry
                .borrow_mut()
                .pick(subject, headers, Instant::now(), exclude);
        if target.is_some() {
            self.metrics.add(Metric::ServiceRequests, 1);
        }
        target
    }

    /// Sends pending request `key` to `target`.
    pub(super) fn send_to_instance(&self, key: u64, target: Target, body: RequestBody<'_>) {
        let token = super::requests::token(self.id, key);
        let deadline = {
            let mut requests = self.requests.borrow_mut();
            let Some(pending) = requests.get_mut(key) else {
                return;
            };
            let retried = pending.service.is_some_and(|leg| leg.retried);
            let gated = pending.service.is_some_and(|leg| leg.gated);
            pending.service = Some(ServiceLeg {
                instance: target.id,
                endpoint: target.endpoint,
                retried,
                gated,
            });
            pending.responder_shard = target.shard;
            pending.deadline
        };
        if target.shard == self.id {
            let to = ServiceTo {
                conn: target.conn,
                sid: target.sid,
                token,
                timeout_ms: 0,
            };
            if !self.deliver_to_endpoint(to, deadline, body) {
                self.instance_vanished(key, body);
            }
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let to = ServiceTo {
            conn: target.conn,
            sid: target.sid,
            token,
            timeout_ms: u32::try_from(left.as_millis()).unwrap_or(u32::MAX),
        };
        if let Some(link) = self.link(target.shard) {
            link.with_batch(|batch| {
                let msg = batch.put_message(body.subject, body.headers, body.payload, body.flags);
                let to = batch.put(&to.to_bytes());
                batch.push(Record::ServiceRequest { to, msg });
            });
            self.metrics.add(Metric::ForwardsOut, 1);
        }
    }

    /// A service request forwarded here for connection `to.conn`: delivered to its endpoint
    /// subscription, or sent back to be tried elsewhere when the instance is gone.
    pub(super) fn service_request_arrived(&self, to: ServiceTo, body: RequestBody<'_>) {
        let deadline = Instant::now() + Duration::from_millis(u64::from(to.timeout_ms));
        if self.deliver_to_endpoint(to, deadline, body) {
            return;
        }
        let Some((origin, key)) = parse_token(to.token) else {
            return;
        };
        if let Some(link) = self.link(origin) {
            link.with_batch(|batch| {
                let msg = batch.put_message(body.subject, body.headers, body.payload, body.flags);
                batch.push(Record::ServiceBounce { key, msg });
            });
        }
    }

    /// Delivers a request to endpoint subscription `to.sid` of connection `to.conn` on this
    /// shard, binding its reply token; `false` when that subscription is gone.
    fn deliver_to_endpoint(&self, to: ServiceTo, deadline: Instant, body: RequestBody<'_>) -> bool {
        let sub = self
            .conn(to.conn)
            .and_then(|conn| conn.subs.borrow().get(to.sid).cloned())
            .filter(super::conn::LocalSub::is_active);
        let Some(sub) = sub else {
            return false;
        };
        self.bind_reply(&sub, body.subject, to.token, deadline);
        let subs = std::slice::from_ref(&sub);
        let RequestBody {
            subject,
            headers,
            payload,
            flags,
        } = body;
        self.deliver_local(subs, subject, headers, payload, flags, to.token);
        true
    }

    /// Request `key`'s instance was gone when the request reached its shard: send it once
    /// more, to another instance, or answer `NO_RESPONDERS`.
    pub(super) fn instance_vanished(&self, key: u64, body: RequestBody<'_>) {
        let leg = match self.requests.borrow_mut().get_mut(key) {
            Some(pending) => pending.service,
            None => return, // already over: timed out, or its requester went
        };
        let Some(leg) = leg else { return };
        let headers = Headers::parse(body.headers).unwrap_or(Headers::EMPTY);
        let retry = if leg.retried {
            None
        } else {
            self.pick_instance(body.subject, &headers, leg.instance)
        };
        let Some(target) = retry else {
            // Ends the request, and its count against the vanished instance.
            let why = "no other instance of the service may serve";
            self.fail_request(key, ErrorCode::NO_RESPONDERS, 0, why);
            return;
        };
        self.services.registry.borrow_mut().abandoned(leg.instance);
        self.metrics.add(Metric::ServiceRetries, 1);
        if let Some(pending) = self.requests.borrow_mut().get_mut(key) {
            pending.service = Some(ServiceLeg {
                retried: true,
                ..leg
            });
        }
        self.send_to_instance(key, target, body);
    }

    /// Service request `key` ended: answered (`answered` with these response headers), or not.
    pub(super) fn service_request_ended(
        &self,
        key: u64,
        leg: ServiceLeg,
        started: Instant,
        answer: Option<&[u8]>,
    ) {
        self.gated_request_over(key, leg);
        let mut registry = self.services.registry.borrow_mut();
        match answer {
            Some(headers) => {
                let headers = Headers::parse(headers).unwrap_or(Headers::EMPTY);
                let error = stats::is_error(&headers);
                registry.answered(leg.instance, leg.endpoint, started.elapsed(), error);
            }
            None => registry.abandoned(leg.instance),
        }
    }

    /// A service request timed out: counted, and the breaker told every shard when it tripped.
    pub(super) fn service_request_timed_out(&self, key: u64, leg: ServiceLeg, now: Instant) {
        self.gated_request_over(key, leg);
        let tripped =
            self.services
                .registry
                .borrow_mut()
                .timed_out(leg.instance, leg.endpoint, now);
        if let Some(until) = tripped {
            tracing::warn!(
                shard = self.id,
                instance = leg.instance,
                "circuit breaker tripped"
            );
            self.metrics.add(Metric::ServiceBreakerTrips, 1);
            self.change_service(ServiceChange::Tripped {
                id: leg.instance,
                until,
            });
        }
    }
}

/// The sections of a message in a batch.
pub(crate) fn body_in<'a>(
    batch: &'a crate::mesh::batch::Batch,
    msg: &MessageSpans,
) -> RequestBody<'a> {
    RequestBody {
        subject: batch.get(msg.subject),
        headers: batch.get(msg.headers),
        payload: batch.get(msg.payload),
        flags: msg.flags,
    }
}
