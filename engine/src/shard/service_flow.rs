//! Flow control for services with `max_concurrent` or `rate_per_sec` (`services/flow.rs`): a
//! request to such a service first asks the service's home shard for a slot
//! (`ServiceAdmit`), holding its body meanwhile; the home admits it, queues it, or refuses it
//! (`ServiceVerdict`); an admitted request gives its slot back when it ends, however it ends
//! (`ServiceRelease`), and the home hands the slot to the first waiter. Services without flow
//! control never take this path.

use std::rc::Rc;
use std::time::{Duration, Instant};

use shardbus_protocol::{ErrorCode, Frame};

use super::Shard;
use super::conn::Conn;
use super::requests::ServiceLeg;
use super::service_requests::RequestBody;
use crate::mesh::batch::Record;
use crate::rooms::options::home_shard;
use crate::routing::ShardId;
use crate::services::flow::Verdict;

/// A request waiting for its gate's verdict: its service, and its body until it is sent (or
/// `None` once the request ended meanwhile: the verdict still comes, and an admission is given
/// back).
#[derive(Debug)]
pub(crate) struct Held {
    name: Box<str>,
    body: Option<HeldBody>,
}

#[derive(Debug)]
struct HeldBody {
    subject: Box<[u8]>,
    headers: Box<[u8]>,
    payload: Box<[u8]>,
    flags: u8,
}

impl Shard {
    /// The home of service `name`'s gate.
    fn gate_home(&self, name: &str) -> ShardId {
        home_shard(name.as_bytes(), self.settings.shards)
    }

    /// A request to gated service `name`: pending, its body held, its slot asked for.
    pub(super) fn request_gated(
        &self,
        conn: &Conn,
        frame: &Frame<'_>,
        request_id: u64,
        timeout_ms: u32,
        name: Box<str>,
    ) {
        let Some((key, _, _)) = self.insert_pending(conn, frame, request_id, timeout_ms, self.id)
        else {
            return;
        };
        if let Some(pending) = self.requests.borrow_mut().get_mut(key) {
            pending.service = Some(ServiceLeg {
                instance: 0,
                endpoint: 0,
                retried: false,
                gated: true,
            });
        }
        let body = HeldBody {
            subject: frame.topic.into(),
            headers: frame.headers.as_bytes().into(),
            payload: frame.payload.into(),
            flags: frame.flags.0,
        };
        let home = self.gate_home(&name);
        let asking = name.clone();
        // Held first: a gate on this shard may admit it at once.
        let held = Held {
            name,
            body: Some(body),
        };
        self.services.held.borrow_mut().insert(key, held);
        if home == self.id {
            self.gate_admit(self.id, key, &asking);
        } else if let Some(link) = self.link(home) {
            link.with_batch(|batch| {
                let service = batch.put(asking.as_bytes());
                batch.push(Record::ServiceAdmit { key, service });
            });
        }
    }

    /// At the home: request `key` of shard `from` asks for a slot of service `name`.
    pub(super) fn gate_admit(&self, from: ShardId, key: u64, name: &str) {
        let options = self.services.registry.borrow().options_of(name);
        let verdict = {
            let mut gates = self.services.gates.borrow_mut();
            let earliest = gates.next_deadline();
            let verdict = gates.admit(name, &options, (from, key), Instant::now());
            if verdict == Verdict::Wait && earliest.is_none_or(|e| gates.next_deadline() < Some(e))
            {
                self.services.gates_changed.notify();
            }
            verdict
        };
        match verdict {
            Verdict::Admit => self.send_verdict(from, key, None),
            Verdict::Wait => {}
            Verdict::Busy(wait) => self.send_verdict(from, key, Some(wait)),
        }
    }

    fn send_verdict(&self, to: ShardId, key: u64, busy: Option<Duration>) {
        let retry_after_ms = busy.map_or(0, |wait| {
            u32::try_from(wait.as_millis().saturating_add(1)).unwrap_or(u32::MAX)
        });
        if to == self.id {
            self.gate_verdict(key, busy.is_none(), retry_after_ms);
        } else if let Some(link) = self.link(to) {
            link.with_batch(|batch| {
                batch.push(Record::ServiceVerdict {
                    key,
                    admitted: busy.is_none(),
                    retry_after_ms,
                });
            });
        }
    }

    /// At the requester: the gate admitted request `key` (send it), or refused it.
    pub(super) fn gate_verdict(&self, key: u64, admitted: bool, retry_after_ms: u32) {
        let Some(held) = self.services.held.borrow_mut().remove(&key) else {
            return;
        };
        let Some(body) = held.body else {
            // The request ended while it waited: give the slot straight back.
            if admitted {
                self.release_gate(&held.name);
            }
            return;
        };
        if !admitted {
            let why = "the service is at its max_concurrent with its queue full, or over its rate";
            self.fail_request(key, ErrorCode::SERVICE_BUSY, retry_after_ms.max(1), why);
            return;
        }
        self.services.admitted.borrow_mut().insert(key, held.name);
        let body = RequestBody {
            subject: &body.subject,
            headers: &body.headers,
            payload: &body.payload,
            flags: body.flags,
        };
        let headers = shardbus_protocol::Headers::parse(body.headers).unwrap_or_default();
        match self.pick_instance(body.subject, &headers, 0) {
            Some(target) => self.send_to_instance(key, target, body),
            None => {
                let why = "no instance of the service may serve (unhealthy, draining or tripped)";
                self.fail_request(key, ErrorCode::NO_RESPONDERS, 0, why);
            }
        }
    }

    /// A gated request ended: its slot goes back, or, still waiting, its body is dropped.
    pub(super) fn gated_request_over(&self, key: u64, leg: ServiceLeg) {
        if !leg.gated {
            return;
        }
        let admitted = self.services.admitted.borrow_mut().remove(&key);
        match admitted {
            Some(name) => self.release_gate(&name),
            None => {
                if let Some(held) = self.services.held.borrow_mut().get_mut(&key) {
                    held.body = None;
                }
            }
        }
    }

    fn release_gate(&self, name: &str) {
        let home = self.gate_home(name);
        if home == self.id {
            self.gate_released(name);
        } else if let Some(link) = self.link(home) {
            link.with_batch(|batch| {
                let service = batch.put(name.as_bytes());
                batch.push(Record::ServiceRelease { service });
            });
        }
    }

    /// At the home: a slot of `name` is free; the first waiter gets it.
    pub(super) fn gate_released(&self, name: &str) {
        let next = self.services.gates.borrow_mut().release(name);
        if let Some(waiter) = next {
            self.admit_waiter(waiter);
        }
    }

    /// Tells a waiter to go ahead.
    pub(super) fn admit_waiter(&self, waiter: crate::services::flow::Waiter) {
        self.send_verdict(waiter.shard, waiter.key, None);
    }

    /// The home's task that refuses waiters past their `queue_timeout_ms`.
    pub(super) async fn watch_gates(self: Rc<Self>) {
        loop {
            let changed = self.services.gates_changed.notified();
            let next = self.services.gates.borrow().next_deadline();
            match next {
                None => changed.await,
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    futures_lite::future::or(glommio::timer::sleep(wait), changed).await;
                }
            }
            let expired = self.services.gates.borrow_mut().expire(Instant::now());
            for waiter in expired {
                self.send_verdict(waiter.shard, waiter.key, Some(Duration::from_millis(1)));
            }
        }
    }
}
