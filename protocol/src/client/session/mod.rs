//! `ClientSession`: the sans-IO client state machine. It encodes ops into an outbox, digests
//! decoded frames into [`Event`]s, remembers subscriptions so a new connection can restore
//! them, and tracks request deadlines against a clock the caller passes in.
//!
//! It never touches a socket or reads the time, so the blocking client and an async driver
//! (glommio, in the bench) share it unchanged.

mod rooms;
mod services;

use rooms::Membership;
use services::Registrations;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::PROTOCOL_VERSION;
use crate::encode::{Head, encode_head};
use crate::error::ProtocolError;
use crate::error_code::ErrorCode;
use crate::flags::{Flags, HelloOptions};
use crate::frame::{Fields, Frame, Welcome};
use crate::headers::{Headers, HeadersBuilder};
use crate::limits::Limits;
use crate::topic::{validate_pattern, validate_queue_group, validate_subject};

use super::error::ClientError;

/// Connection-level settings sent in HELLO.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Client name shown in server status.
    pub name: Option<String>,
    /// A static token, sent as the `token` header.
    pub token: Option<String>,
    /// Username and password, sent as `user` and `pass` headers.
    pub user_password: Option<(String, String)>,
    /// A JWT, sent as the `jwt` header.
    pub jwt: Option<String>,
    /// HELLO option bits (echo, verbose, headers).
    pub options: HelloOptions,
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No connection.
    Disconnected,
    /// HELLO sent, WELCOME not yet received.
    AwaitingWelcome,
    /// WELCOME received.
    Ready,
    /// The server sent DRAIN.
    Draining,
}

/// What a received frame meant. Data (topic, headers, payload) stays in the caller's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed.
    Welcome(Welcome),
    /// A delivery to a live subscription. `last` is true when an auto-unsubscribe limit was
    /// reached with it and the subscription is now gone.
    Message {
        /// The subscription.
        sid: u64,
        /// Per-subscription sequence.
        seq: u64,
        /// Non-zero for a request: the token to respond with.
        reply: u64,
        /// Whether this was the subscription's final message.
        last: bool,
    },
    /// A response to a pending request.
    Response {
        /// The request it answers.
        request_id: u64,
    },
    /// An ERR that refers to a pending request (`NO_RESPONDERS`, `TIMEOUT`, `PERMISSION_DENIED` …).
    RequestFailed {
        /// The request.
        request_id: u64,
        /// The code.
        code: ErrorCode,
    },
    /// An ERR that ended a subscription (its sid is gone from the session).
    SubscriptionFailed {
        /// The subscription.
        sid: u64,
        /// The code.
        code: ErrorCode,
    },
    /// Any other ERR.
    Error {
        /// The code.
        code: ErrorCode,
        /// The op it answers, if the server said.
        op_id: u32,
        /// Milliseconds before a retry can succeed.
        retry_after_ms: u32,
    },
    /// OK for the op with this id.
    Ok {
        /// The acknowledged op.
        op_id: u32,
    },
    /// PONG for our PING; `rtt` is the time since the oldest unanswered PING.
    Pong {
        /// Round-trip time.
        rtt: Option<Duration>,
    },
    /// The server pinged us; a PONG is already in the outbox.
    Ping,
    /// A room frame from the server (JOIN's answer, PRESENCE, MEMBER, HISTORY's end): the
    /// frame's topic names the room, its payload is the op's container (PROTOCOL.md §3.11).
    Room {
        /// Which room op.
        op: crate::Op,
        /// The op id of our op it answers (0 for MEMBER).
        op_id: u32,
        /// Its fixed fields.
        fields: crate::RoomFields,
    },
    /// A service frame from the server: REGISTER's answer (the instance id) or DISCOVER's
    /// (the payload lists the instances, PROTOCOL.md §3.12).
    Service {
        /// Which service op.
        op: crate::Op,
        /// The op id of our op it answers.
        op_id: u32,
        /// Its fixed fields.
        fields: crate::ServiceFields,
    },
    /// The server's counters, answering the STATUS sent with `op_id`; the payload is a
    /// container map.
    Status {
        /// The op id of our STATUS.
        op_id: u32,
    },
    /// The server is draining and will close the connection after `grace_ms`.
    Drain {
        /// Grace period.
        grace_ms: u32,
    },
    /// A frame that needs no action: a message for a subscription already ended, a late
    /// response, or an op a client never receives.
    Ignored,
}

#[derive(Debug, Clone)]
struct Subscription {
    pattern: String,
    queue: Option<String>,
    /// Deliveries left before an auto-unsubscribe completes.
    remaining: Option<u64>,
    /// A room membership (JOIN instead of SUB), with what a rejoin needs.
    room: Option<Membership>,
    /// A service endpoint: the server subscribes it with its REGISTER, which a new connection
    /// sends again.
    endpoint: bool,
}

/// Extra time a client waits beyond a request's timeout before giving up on its own, so the
/// server's TIMEOUT (which carries the code) normally arrives first.
pub const LOCAL_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// The client state machine. See the module docs.
///
/// Driving it by hand, as an async runtime would (no socket here: the "server" is a frame we
/// encode ourselves):
///
/// ```
/// use std::time::{Duration, Instant};
/// use shardbus_protocol::client::{ClientSession, Event, SessionOptions};
/// use shardbus_protocol::{Fields, Flags, Frame, Headers, Limits, Op, Welcome, decode, encode};
///
/// let mut session = ClientSession::new(SessionOptions::default());
/// session.connected()?; // the transport is up: HELLO goes into the outbox
/// let hello = std::mem::take(session.outbox()); // write these bytes to the socket
/// assert_eq!(decode(&hello, &Limits::default())?.op(), Op::Hello);
///
/// // Bytes read from the socket are decoded and handed to the session.
/// let mut wire = Vec::new();
/// encode(&Frame::new(Fields::Welcome(Welcome { version: 1, max_payload: 1 << 20,
///     max_frame: 1 << 21, max_topic_len: 256, ..Welcome::default() })), &mut wire)?;
/// let now = Instant::now();
/// let event = session.handle_frame(&decode(&wire, &Limits::default())?, now)?;
/// assert!(matches!(event, Event::Welcome(_)));
///
/// let id = session.request("svc.time", Headers::EMPTY, Flags::empty(), b"", Duration::from_millis(100), now)?;
/// // No answer: the caller's timer fires at `poll_timeout()` and the session expires the request.
/// let deadline = session.poll_timeout().expect("a request is pending");
/// assert_eq!(
///     session.handle_timeout(deadline),
///     Some(Event::RequestFailed { request_id: id, code: shardbus_protocol::ErrorCode::TIMEOUT })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClientSession {
    options: SessionOptions,
    phase: Phase,
    welcome: Option<Welcome>,
    limits: Limits,
    outbox: Vec<u8>,
    subs: HashMap<u64, Subscription>,
    /// Sids and request ids come from one counter, so an ERR's `ref_id` names exactly one.
    next_id: u64,
    next_op_id: u32,
    pending: HashMap<u64, Instant>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    pings: std::collections::VecDeque<Instant>,
    /// Sids labelling HISTORY answers still coming.
    labels: std::collections::HashSet<u64>,
    /// Service instances registered through this session.
    services: Registrations,
}

impl ClientSession {
    /// A session with no connection yet.
    pub fn new(options: SessionOptions) -> ClientSession {
        ClientSession {
            options,
            phase: Phase::Disconnected,
            welcome: None,
            limits: Limits::default(),
            outbox: Vec::with_capacity(64 << 10),
            subs: HashMap::new(),
            next_id: 1,
            next_op_id: 1,
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
            pings: std::collections::VecDeque::new(),
            labels: std::collections::HashSet::new(),
            services: Registrations::default(),
        }
    }

    /// Where the handshake stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What the server said in WELCOME on the current connection.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// The limits the decoder should apply to frames from the server.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Encoded frames waiting to be written. The caller writes them and drains what it wrote.
    pub fn outbox(&mut self) -> &mut Vec<u8> {
        &mut self.outbox
    }

    /// Bytes waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Starts a (new) connection: HELLO, then a SUB for every live subscription, then whatever
    /// was queued while disconnected. Call when the transport has connected.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] when the credentials do not fit a headers block.
    pub fn connected(&mut self) -> Result<(), ClientError> {
        let queued = std::mem::take(&mut self.outbox);
        self.phase = Phase::AwaitingWelcome;
        self.welcome = None;
        self.pings.clear();
        let mut hello = HeadersBuilder::new();
        if let Some(name) = &self.options.name {
            hello.insert("name", name)?;
        }
        if let Some(token) = &self.options.token {
            hello.insert("token", token)?;
        }
        if let Some((user, pass)) = &self.options.user_password {
            hello.insert("user", user)?.insert("pass", pass)?;
        }
        if let Some(jwt) = &self.options.jwt {
            hello.insert("jwt", jwt)?;
        }
        let fields = Fields::Hello {
            version: PROTOCOL_VERSION,
            options: self.options.options,
        };
        self.push(fields, Flags::empty(), b"", hello.as_bytes(), &[])?;
        // A backend's joins belonged to the old connection; it joins the new one itself.
        self.subs
            .retain(|_, sub| !sub.room.as_ref().is_some_and(|room| room.server));
        let mut sids: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, sub)| !sub.endpoint)
            .map(|(&sid, _)| sid)
            .collect();
        sids.sort_unstable();
        for sid in sids {
            if let Some(sub) = self.subs.get(&sid).cloned() {
                self.write_sub(sid, &sub)?;
            }
        }
        self.register_again()?;
        self.outbox.extend_from_slice(&queued);
        Ok(())
    }

    /// The transport is gone. Returns the requests that were in flight; they cannot be
    /// answered on a new connection. Subscriptions are kept for [`ClientSession::connected`].
    pub fn disconnected(&mut self) -> Vec<u64> {
        self.phase = Phase::Disconnected;
        self.outbox.clear();
        self.pings.clear();
        self.deadlines.clear();
        self.labels.clear();
        self.pending.drain().map(|(id, _)| id).collect()
    }

    fn push(
        &mut self,
        fields: Fields,
        flags: Flags,
        topic: &[u8],
        headers: &[u8],
        payload: &[u8],
    ) -> Result<u32, ClientError> {
        let op_id = self.next_op_id;
        self.next_op_id = self.next_op_id.wrapping_add(1).max(1);
        let head = Head {
            fields,
            flags,
            op_id,
            topic,
            headers,
        };
        encode_head(&head, payload.len(), &mut self.outbox)?;
        self.outbox.extend_from_slice(payload);
        Ok(op_id)
    }

    fn check_payload(&self, len: usize) -> Result<(), ClientError> {
        let max = self.limits.max_payload as usize;
        if len > max {
            return Err(ProtocolError::PayloadTooLarge { len, max }.into());
        }
        Ok(())
    }

    /// Queues a PUB. Returns its op id.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an invalid topic or a payload over the server's limit.
    pub fn publish(
        &mut self,
        topic: &str,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
    ) -> Result<u32, ClientError> {
        validate_subject(topic.as_bytes(), usize::from(self.limits.max_topic_len))?;
        self.check_payload(payload.len())?;
        self.push(
            Fields::Pub,
            flags,
            topic.as_bytes(),
            headers.as_bytes(),
            payload,
        )
    }

    /// Registers a subscription and, when connected, queues its SUB. Returns the sid.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an invalid pattern or queue group.
    pub fn subscribe(&mut self, pattern: &str, queue: Option<&str>) -> Result<u64, ClientError> {
        let max = usize::from(self.limits.max_topic_len);
        validate_pattern(pattern.as_bytes(), max)?;
        if let Some(group) = queue {
            validate_queue_group(group.as_bytes(), max)?;
        }
        let sid = self.next_id;
        self.next_id += 1;
        let sub = Subscription {
            pattern: pattern.to_owned(),
            queue: queue.map(str::to_owned),
            remaining: None,
            room: None,
            endpoint: false,
        };
        if self.phase != Phase::Disconnected {
            self.write_sub(sid, &sub)?;
        }
        self.subs.insert(sid, sub);
        Ok(sid)
    }

    fn write_sub(&mut self, sid: u64, sub: &Subscription) -> Result<(), ClientError> {
        if let Some(room) = &sub.room {
            return self.write_join(sid, &sub.pattern, room);
        }
        let queue = sub.queue.as_deref().unwrap_or("").as_bytes();
        self.push(
            Fields::Sub { sid },
            Flags::empty(),
            sub.pattern.as_bytes(),
            &[],
            queue,
        )?;
        if let Some(left) = sub.remaining {
            self.push(
                Fields::Unsub {
                    sid,
                    max_msgs: left,
                },
                Flags::empty(),
                b"",
                &[],
                &[],
            )?;
        }
        Ok(())
    }

    /// Ends a subscription now (`after = None`) or after `after` more deliveries. Returns false
    /// when the sid is not live.
    ///
    /// # Errors
    /// Only if encoding fails, which fixed-size UNSUB frames cannot.
    pub fn unsubscribe(&mut self, sid: u64, after: Option<u64>) -> Result<bool, ClientError> {
        let live = match after {
            None | Some(0) => self.subs.remove(&sid).is_some(),
            Some(n) => match self.subs.get_mut(&sid) {
                Some(sub) => {
                    sub.remaining = Some(n);
                    true
                }
                None => false,
            },
        };
        if live && self.phase != Phase::Disconnected {
            let max_msgs = after.unwrap_or(0);
            self.push(
                Fields::Unsub { sid, max_msgs },
                Flags::empty(),
                b"",
                &[],
                &[],
            )?;
        }
        Ok(live)
    }

    /// Whether `sid` is a live subscription.
    pub fn is_subscribed(&self, sid: u64) -> bool {
        self.subs.contains_key(&sid)
    }

    /// Queues a REQ and starts tracking its deadline. Returns the request id.
    ///
    /// # Errors
    /// As [`ClientSession::publish`].
    pub fn request(
        &mut self,
        topic: &str,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
        timeout: Duration,
        now: Instant,
    ) -> Result<u64, ClientError> {
        validate_subject(topic.as_bytes(), usize::from(self.limits.max_topic_len))?;
        self.check_payload(payload.len())?;
        let request_id = self.next_id;
        self.next_id += 1;
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let fields = Fields::Req {
            request_id,
            timeout_ms,
        };
        self.push(fields, flags, topic.as_bytes(), headers.as_bytes(), payload)?;
        let deadline = now + timeout + LOCAL_TIMEOUT_GRACE;
        self.pending.insert(request_id, deadline);
        self.deadlines.push(Reverse((deadline, request_id)));
        Ok(request_id)
    }

    /// Stops tracking a request (its caller gave up). Returns whether it was pending.
    pub fn cancel_request(&mut self, request_id: u64) -> bool {
        self.pending.remove(&request_id).is_some()
    }

    /// Queues a RESP to a request delivered with `reply` token.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a payload over the server's limit.
    pub fn respond(
        &mut self,
        reply: u64,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
    ) -> Result<u32, ClientError> {
        self.check_payload(payload.len())?;
        self.push(
            Fields::Resp { id: reply },
            flags,
            b"",
            headers.as_bytes(),
            payload,
        )
    }

    /// Queues a PING; its PONG reports the round-trip time.
    ///
    /// # Errors
    /// Only if encoding fails, which an empty PING cannot.
    pub fn ping(&mut self, now: Instant) -> Result<(), ClientError> {
        self.pings.push_back(now);
        self.push(Fields::Ping, Flags::empty(), b"", &[], &[])?;
        Ok(())
    }

    /// Asks the server for its counters; the answer is [`Event::Status`] with the returned
    /// op id.
    ///
    /// # Errors
    /// As for any frame queued ([`ClientError::Protocol`] only if encoding fails).
    pub fn status(&mut self) -> Result<u32, ClientError> {
        self.push(Fields::Status, Flags::empty(), b"", &[], &[])
    }

    /// PINGs sent on this connection and not yet answered.
    pub fn pings_outstanding(&self) -> usize {
        self.pings.len()
    }

    /// The earliest request deadline, for the caller's timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.prune_deadlines();
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Expires the next request whose deadline is at or before `now`, if any. Call until it
    /// returns `None`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event> {
        self.prune_deadlines();
        let Reverse((at, request_id)) = *self.deadlines.peek()?;
        if at > now {
            return None;
        }
        self.deadlines.pop();
        self.pending.remove(&request_id);
        Some(Event::RequestFailed {
            request_id,
            code: ErrorCode::TIMEOUT,
        })
    }

    fn prune_deadlines(&mut self) {
        while let Some(Reverse((_, id))) = self.deadlines.peek() {
            if self.pending.contains_key(id) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// Digests one frame from the server.
    ///
    /// # Errors
    /// [`ClientError::Server`] for an ERR during the handshake (the connection is being
    /// refused), [`ClientError::Protocol`] for a frame a server must not send first.
    pub fn handle_frame(&mut self, frame: &Frame<'_>, now: Instant) -> Result<Event, ClientError> {
        if self.phase == Phase::AwaitingWelcome {
            match frame.fields {
                Fields::Welcome(_) | Fields::Err { .. } | Fields::Ping => {}
                _ => {
                    return Err(ProtocolError::BadSection {
                        op: frame.op().name(),
                        problem: "arrived before WELCOME",
                    }
                    .into());
                }
            }
        }
        Ok(match frame.fields {
            Fields::Welcome(welcome) => {
                self.phase = Phase::Ready;
                self.welcome = Some(welcome);
                self.limits = Limits {
                    max_frame: welcome.max_frame,
                    max_payload: welcome.max_payload,
                    max_topic_len: welcome.max_topic_len,
                    max_headers_len: self.limits.max_headers_len,
                    // The server checked every topic it sends against its own bound.
                    max_topic_tokens: u16::MAX,
                };
                Event::Welcome(welcome)
            }
            Fields::Msg { sid, seq, reply } => {
                if !frame.headers.is_empty() {
                    self.note_position(sid, &frame.headers);
                }
                self.on_message(sid, seq, reply)
            }
            Fields::Resp { id } => match self.pending.remove(&id) {
                Some(_) => Event::Response { request_id: id },
                None => Event::Ignored,
            },
            Fields::Err {
                code,
                retry_after_ms,
                ref_id,
            } => self.on_error(frame, code, retry_after_ms, ref_id)?,
            Fields::Ok => Event::Ok { op_id: frame.op_id },
            Fields::Ping => {
                self.push(Fields::Pong, Flags::empty(), b"", &[], &[])?;
                Event::Ping
            }
            Fields::Pong => Event::Pong {
                rtt: self
                    .pings
                    .pop_front()
                    .map(|sent| now.saturating_duration_since(sent)),
            },
            Fields::Drain { grace_ms } => {
                self.phase = Phase::Draining;
                Event::Drain { grace_ms }
            }
            Fields::Status => Event::Status { op_id: frame.op_id },
            Fields::Join(fields) => {
                self.note_joined(frame, fields);
                Event::Room {
                    op: frame.op(),
                    op_id: frame.op_id,
                    fields,
                }
            }
            Fields::History(fields) => {
                self.labels.remove(&fields.sid);
                Event::Room {
                    op: frame.op(),
                    op_id: frame.op_id,
                    fields,
                }
            }
            Fields::Presence(fields) | Fields::Member(fields) => Event::Room {
                op: frame.op(),
                op_id: frame.op_id,
                fields,
            },
            Fields::Register(fields) => {
                self.note_registered(frame, fields, now);
                Event::Service {
                    op: frame.op(),
                    op_id: frame.op_id,
                    fields,
                }
            }
            Fields::Discover(fields) => Event::Service {
                op: frame.op(),
                op_id: frame.op_id,
                fields,
            },
            Fields::Hello { .. }
            | Fields::Heartbeat(_)
            | Fields::Deregister(_)
            | Fields::Pub
            | Fields::Sub { .. }
            | Fields::Unsub { .. }
            | Fields::Req { .. } => Event::Ignored,
            Fields::Leave(fields) => {
                // A backend took this connection out of a room.
                self.subs.remove(&fields.sid);
                Event::Room {
                    op: frame.op(),
                    op_id: frame.op_id,
                    fields,
                }
            }
        })
    }

    fn on_message(&mut self, sid: u64, seq: u64, reply: u64) -> Event {
        let Some(sub) = self.subs.get_mut(&sid) else {
            // Sid 0: a server push to this connection's user; labels: a HISTORY answer.
            if sid == 0 || self.labels.contains(&sid) {
                return Event::Message {
                    sid,
                    seq,
                    reply,
                    last: false,
                };
            }
            return Event::Ignored;
        };
        let mut last = false;
        if let Some(left) = sub.remaining.as_mut() {
            *left = left.saturating_sub(1);
            last = *left == 0;
        }
        if last {
            self.subs.remove(&sid);
        }
        Event::Message {
            sid,
            seq,
            reply,
            last,
        }
    }

    fn on_error(
        &mut self,
        frame: &Frame<'_>,
        code: ErrorCode,
        retry_after_ms: u32,
        ref_id: u64,
    ) -> Result<Event, ClientError> {
        if self.phase == Phase::AwaitingWelcome {
            return Err(ClientError::Server {
                code,
                message: String::from_utf8_lossy(frame.payload).into_owned(),
                retry_after_ms,
            });
        }
        self.note_refused(frame.op_id);
        if ref_id != 0 && self.pending.remove(&ref_id).is_some() {
            return Ok(Event::RequestFailed {
                request_id: ref_id,
                code,
            });
        }
        let sub_codes = [
            ErrorCode::PERMISSION_DENIED,
            ErrorCode::TOO_MANY_SUBSCRIPTIONS,
            ErrorCode::INVALID_TOPIC,
            ErrorCode::INVALID_QUEUE_GROUP,
            ErrorCode::DUPLICATE_SUBSCRIPTION,
            ErrorCode::NOT_A_ROOM,
            ErrorCode::ALREADY_A_MEMBER,
            ErrorCode::ROOM_FULL,
            ErrorCode::TOO_MANY_ROOMS,
        ];
        if ref_id != 0 && sub_codes.contains(&code) && self.subs.remove(&ref_id).is_some() {
            return Ok(Event::SubscriptionFailed { sid: ref_id, code });
        }
        Ok(Event::Error {
            code,
            op_id: frame.op_id,
            retry_after_ms,
        })
    }
}
