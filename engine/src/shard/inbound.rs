//! Applying what another shard sent over the mesh: deliveries, requests, responses, interest
//! changes and barriers, in the order that shard sent them.

use std::time::{Duration, Instant};

use shardbus_protocol::ErrorCode;

use super::Shard;
use super::requests::parse_token;
use super::rooms::Kept;
use super::service_requests::{ServiceTo, body_in};
use crate::mesh::batch::{Batch, MessageSpans, Record, ReplayTo};
use crate::metrics::Metric;
use crate::routing::ShardId;

impl Shard {
    /// Applies one batch from shard `from`.
    pub(crate) fn apply_batch(&self, from: ShardId, batch: &Batch) {
        self.metrics.add(Metric::ForwardsIn, batch.len() as u64);
        for record in batch.records() {
            match record {
                Record::Deliver { msg, plain, groups } => {
                    self.deliver_forwarded(batch, msg, *plain, *groups, false);
                }
                Record::Request {
                    msg,
                    token,
                    timeout_ms,
                } => self.apply_request(batch, msg, *token, *timeout_ms),
                Record::Response { key, msg, code } => {
                    let (headers, payload) = (batch.get(msg.headers), batch.get(msg.payload));
                    self.complete_request(*key, headers, payload, msg.flags, *code);
                }
                Record::Interest(change) => self.router.borrow_mut().apply(change),
                Record::Barrier { conn, ping } => {
                    if let Some(link) = self.link(from) {
                        link.with_batch(|b| {
                            b.push(Record::BarrierAck {
                                conn: *conn,
                                ping: *ping,
                            });
                        });
                    }
                }
                Record::BarrierAck { conn, ping } => self.barrier_acked(*conn, *ping),
                Record::ReplyEnded { token } => self.replies.borrow_mut().forget(*token),
                Record::List { id, listing } => self.answer_listing(from, *id, *listing),
                Record::ListPart { id, part } => self.listing_part_arrived(*id, batch.get(*part)),
                Record::Arrival(arrival) => self.adopt(arrival),
                Record::RoomAsk(ask) => self.home_ask(ask),
                Record::RoomAnswer(answer) => self.room_answered(answer),
                Record::RoomMember(event) => self.member_event_arrived(event),
                Record::UserPush { id, user, msg } => {
                    let sections = (
                        batch.get(msg.subject),
                        batch.get(msg.headers),
                        batch.get(msg.payload),
                        *msg,
                    );
                    self.user_push_arrived(from, *id, batch.get(*user), sections);
                }
                Record::MembersChange {
                    id,
                    user,
                    room,
                    info,
                    join,
                } => {
                    let change = super::room_admin::MemberChange {
                        user: std::str::from_utf8(batch.get(*user)).unwrap_or(""),
                        room: batch.get(*room),
                        info: batch.get(*info),
                        join: *join,
                    };
                    self.members_change_arrived(from, *id, change);
                }
                Record::RoomPublish { msg } => self.stamp(
                    batch.get(msg.subject),
                    batch.get(msg.headers),
                    batch.get(msg.payload),
                    msg.flags,
                ),
                Record::RoomArrived { msg, plain, groups } => {
                    let arrived =
                        crate::cluster::wire::Message::in_batch(batch, msg, *plain, *groups);
                    self.room_arrived(&arrived);
                }
                Record::Event { msg, plain, groups } => {
                    self.deliver_forwarded(batch, msg, *plain, *groups, true);
                }
                Record::Service(change) => self.service_changed(change.as_ref().clone()),
                Record::ServiceRequest { to, msg } => {
                    let Some(to) = ServiceTo::from_bytes(batch.get(*to)) else {
                        continue;
                    };
                    self.service_request_arrived(to, body_in(batch, msg));
                }
                Record::ServiceAdmit { key, service } => {
                    let name = std::str::from_utf8(batch.get(*service)).unwrap_or("");
                    self.gate_admit(from, *key, name);
                }
                Record::ServiceVerdict {
                    key,
                    admitted,
                    retry_after_ms,
                } => self.gate_verdict(*key, *admitted, *retry_after_ms),
                Record::ServiceRelease { service } => {
                    self.gate_released(std::str::from_utf8(batch.get(*service)).unwrap_or(""));
                }
                Record::ServiceBounce { key, msg } => {
                    self.instance_vanished(*key, body_in(batch, msg))
                }
                Record::RoomReplay { to, msg } => {
                    let Some(to) = ReplayTo::from_bytes(batch.get(*to)) else {
                        continue;
                    };
                    let kept = Kept {
                        subject: batch.get(msg.subject),
                        headers: batch.get(msg.headers),
                        payload: batch.get(msg.payload),
                        flags: msg.flags,
                    };
                    self.replay_arrived(to.conn, to.sid, to.seq, kept);
                }
            }
        }
    }

    /// A publication another shard routed here: to every local plain subscriber when `plain`,
    /// to one member of each queue group in `groups`; system events (`events`) only to those
    /// who may see them. Always inlined: it is every forwarded delivery's path.
    #[inline(always)]
    fn deliver_forwarded(
        &self,
        batch: &Batch,
        msg: &MessageSpans,
        plain: bool,
        groups: crate::mesh::batch::Span,
        events: bool,
    ) {
        let subject = batch.get(msg.subject);
        let mut route = self.route.borrow_mut();
        self.router
            .borrow_mut()
            .route_forwarded(subject, plain, batch.get(groups), &mut route);
        if route.local.is_empty() {
            self.metrics.add(Metric::ForwardsUnmatched, 1);
            return;
        }
        let (headers, payload) = (batch.get(msg.headers), batch.get(msg.payload));
        if events {
            self.deliver_events_local(&route.local, subject, payload);
        } else {
            self.deliver_local(&route.local, subject, headers, payload, msg.flags, 0);
        }
    }

    /// A request forwarded here: one local subscriber gets it, or the origin hears
    /// `NO_RESPONDERS` (the subscriber left while the request was on its way).
    fn apply_request(&self, batch: &Batch, msg: &MessageSpans, token: u64, timeout_ms: u32) {
        let subject = batch.get(msg.subject);
        let responder = self.router.borrow_mut().local_responder(subject);
        if let Some(sub) = responder {
            let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
            self.bind_reply(&sub, subject, token, deadline);
            let (headers, payload) = (batch.get(msg.headers), batch.get(msg.payload));
            self.deliver_local(
                std::slice::from_ref(&sub),
                subject,
                headers,
                payload,
                msg.flags,
                token,
            );
            return;
        }
        let Some((origin, key)) = parse_token(token) else {
            return;
        };
        if let Some(link) = self.link(origin) {
            link.with_batch(|b| {
                b.push(Record::Response {
                    key,
                    msg: MessageSpans::default(),
                    code: ErrorCode::NO_RESPONDERS.0,
                });
            });
        }
    }
}
