//! Services on a shard (ARCHITECTURE.md, *Services*): REGISTER, HEARTBEAT, DEREGISTER and
//! DISCOVER from this shard's connections. An instance is owned by the shard of its
//! connection, which subscribes its endpoints, watches its heartbeats (unhealthy after
//! `registry.unhealthy_after` silent intervals, gone after `remove_after`) and tells the other
//! shards of every change; each shard keeps the replica requests are balanced from.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shardbus_protocol::{ErrorCode, Fields, Flags, Frame, Health, ServiceFields};
use smallvec::SmallVec;

use super::Shard;
use super::conn::{Conn, LocalSub, Outgoing};
use super::notify::Notify;
use super::rate::TokenBucket;
use crate::events::EventKind;
use crate::fast_map::FastMap;
use crate::mesh::batch::Record;
use crate::metrics::Metric;
use crate::services::change::ServiceChange;
use crate::services::registration::{self, Bounds, Refused, Registration};
use crate::services::registry::Registry;
use shardbus_protocol::container::Value;

/// An instance whose connection is on this shard.
#[derive(Debug)]
struct Owned {
    conn: u64,
    name: Box<str>,
    interval: Duration,
    last_heard: Instant,
    /// What it last reported.
    health: Health,
    load: u32,
    /// Marked unhealthy for silence (until its next heartbeat).
    silent: bool,
    /// Heartbeats in the current interval, for the flood bound.
    beats: u32,
    window_start: Instant,
    /// Its endpoints' subscriptions on the connection.
    sids: SmallVec<[u64; 4]>,
}

/// What a connection registered, and its registration churn bucket.
#[derive(Debug)]
struct ConnServices {
    instances: SmallVec<[u64; 2]>,
    churn: TokenBucket,
}

/// A shard's part of the registry.
#[derive(Debug, Default)]
pub(crate) struct ShardServices {
    /// The replica every shard keeps (`services/registry.rs`).
    pub(crate) registry: RefCell<Registry>,
    /// Whether any instance is registered anywhere: what every request asks first.
    pub(crate) any: Cell<bool>,
    owned: RefCell<FastMap<u64, Owned>>,
    by_conn: RefCell<FastMap<u64, ConnServices>>,
    next_instance: Cell<u64>,
    /// Wakes the liveness task when this shard starts owning instances.
    owning: Notify,
    /// The gates of the services this shard is home to (`service_flow.rs`).
    pub(crate) gates: RefCell<crate::services::flow::Gates>,
    /// Wakes the gate task when a waiter with an earlier deadline is queued.
    pub(crate) gates_changed: Notify,
    /// This shard's requests waiting for a gate's verdict.
    pub(crate) held: RefCell<FastMap<u64, super::service_flow::Held>>,
    /// This shard's requests holding a gate's slot, by key: the service to give it back to.
    pub(crate) admitted: RefCell<FastMap<u64, Box<str>>>,
}

impl ShardServices {
    pub(crate) fn new(services: &[crate::services::ServiceConfig]) -> ShardServices {
        ShardServices {
            registry: RefCell::new(Registry::new(services)),
            ..ShardServices::default()
        }
    }
}

impl Shard {
    fn registration_bounds(&self) -> Bounds {
        let r = &self.settings.registry;
        Bounds {
            max_endpoints: r.max_endpoints as usize,
            max_metadata: r.max_metadata as usize,
            min_heartbeat_ms: r.min_heartbeat_ms,
            max_heartbeat_ms: r.max_heartbeat_ms,
            max_topic_len: usize::from(self.settings.limits.max_topic_len),
        }
    }

    /// REGISTER: checks, subscribes the endpoints, tells every shard, answers with the id.
    pub(super) fn register_service(
        &self,
        conn: &Rc<Conn>,
        frame: &Frame<'_>,
        fields: ServiceFields,
    ) {
        self.metrics.add(Metric::ServiceRegistrations, 1);
        let registration = match self.check_registration(conn, frame, fields) {
            Ok(registration) => registration,
            Err(refused) => {
                self.metrics.add(Metric::ServiceRefusals, 1);
                conn.error(refused.code, frame.op_id, 0, &refused.message);
                return;
            }
        };
        let n = self.services.next_instance.get() + 1;
        self.services.next_instance.set(n);
        let id = (u64::from(self.id) + 1) << 48 | n;
        let mut sids = SmallVec::new();
        for endpoint in &registration.endpoints {
            let sub = LocalSub::new(
                conn,
                endpoint.sid,
                endpoint.subject.as_bytes(),
                Some(&endpoint.queue),
            );
            let change = self.router.borrow_mut().subscribe(
                endpoint.subject.as_bytes(),
                Some(&endpoint.queue),
                sub.clone(),
            );
            self.broadcast(change);
            conn.subs.borrow_mut().insert(endpoint.sid, sub);
            self.metrics.add(Metric::Subscriptions, 1);
            sids.push(endpoint.sid);
        }
        conn.interest_dirty.set(true);
        let now = Instant::now();
        let owned = Owned {
            conn: conn.id,
            name: registration.name.clone(),
            interval: Duration::from_millis(u64::from(registration.heartbeat_ms)),
            last_heard: now,
            health: Health::Ok,
            load: 0,
            silent: false,
            beats: 0,
            window_start: now,
            sids,
        };
        let owned_now = {
            let mut all = self.services.owned.borrow_mut();
            all.insert(id, owned);
            all.len()
        };
        self.metrics.set(Metric::ServiceInstances, owned_now as u64);
        if let Some(entry) = self.services.by_conn.borrow_mut().get_mut(&conn.id) {
            entry.instances.push(id);
        }
        tracing::info!(shard = self.id, service = %registration.name, instance = id, "service instance up");
        self.event(EventKind::ServiceUp, || {
            let endpoints = registration
                .endpoints
                .iter()
                .map(|e| Value::Str(e.subject.to_string()))
                .collect();
            vec![
                ("service".into(), Value::Str(registration.name.to_string())),
                ("instance".into(), Value::U64(id)),
                (
                    "version".into(),
                    Value::Str(registration.version.to_string()),
                ),
                ("client_id".into(), Value::U64(conn.id)),
                ("endpoints".into(), Value::List(endpoints)),
            ]
        });
        let heartbeat_ms = registration.heartbeat_ms;
        self.change_service(ServiceChange::Up {
            id,
            shard: self.id,
            conn: conn.id,
            registration,
        });
        self.services.owning.notify();
        conn.send(&Outgoing {
            topic: frame.topic,
            ..Outgoing::bare(
                Fields::Register(ServiceFields {
                    instance: id,
                    heartbeat_ms,
                    ..ServiceFields::default()
                }),
                frame.op_id,
            )
        });
    }

    fn check_registration(
        &self,
        conn: &Conn,
        frame: &Frame<'_>,
        fields: ServiceFields,
    ) -> Result<Registration, Refused> {
        self.charge_churn(conn)?;
        let registration = registration::parse(
            frame.topic_str(),
            frame.payload,
            frame.flags.contains(Flags::CONTAINER),
            fields.heartbeat_ms,
            &self.registration_bounds(),
        )?;
        let owned = self.services.owned.borrow();
        let mine = self
            .services
            .by_conn
            .borrow()
            .get(&conn.id)
            .map(|c| c.instances.clone())
            .unwrap_or_default();
        if mine.len() >= self.settings.registry.max_services_per_connection as usize {
            return Err(Refused {
                code: ErrorCode::TOO_MANY_SERVICES,
                message: "registry.max_services_per_connection reached".into(),
            });
        }
        let name = &registration.name;
        if mine
            .iter()
            .any(|id| owned.get(id).is_some_and(|o| o.name == *name))
        {
            return Err(Refused {
                code: ErrorCode::ALREADY_REGISTERED,
                message: format!("this connection already registered an instance of {name}"),
            });
        }
        let subs = conn.subs.borrow();
        if subs.len() + registration.endpoints.len() > self.settings.max_subscriptions as usize {
            return Err(Refused {
                code: ErrorCode::TOO_MANY_SUBSCRIPTIONS,
                message: "the endpoints would pass max_subscriptions".into(),
            });
        }
        for endpoint in &registration.endpoints {
            let subject = endpoint.subject.as_ref();
            let allowed = conn.may(|p| p.subscribe.allows_pattern(subject))
                && conn.may_respond(subject.as_bytes());
            if !allowed {
                return Err(Refused {
                    code: ErrorCode::PERMISSION_DENIED,
                    message: format!("serving {subject} (subscribe and respond) is not permitted"),
                });
            }
            if subs.contains_key(endpoint.sid) {
                return Err(Refused {
                    code: ErrorCode::DUPLICATE_SUBSCRIPTION,
                    message: format!("sid {} of endpoint {subject} is in use", endpoint.sid),
                });
            }
        }
        Ok(registration)
    }

    /// Charges a REGISTER or DEREGISTER to its connection's churn bucket.
    fn charge_churn(&self, conn: &Conn) -> Result<(), Refused> {
        let now = Instant::now();
        let rate = u64::from(self.settings.registry.max_registrations_per_second);
        let mut by_conn = self.services.by_conn.borrow_mut();
        let entry = by_conn.entry(conn.id).or_insert_with(|| ConnServices {
            instances: SmallVec::new(),
            churn: TokenBucket::new(rate, now),
        });
        entry.churn.take(1.0, now).map_err(|_| Refused {
            code: ErrorCode::RATE_LIMITED,
            message: "registry.max_registrations_per_second reached".into(),
        })
    }

    /// HEARTBEAT: the instance is alive; a changed health or load goes to every shard.
    pub(super) fn heartbeat(&self, conn: &Conn, op_id: u32, fields: ServiceFields) {
        self.metrics.add(Metric::ServiceHeartbeats, 1);
        let now = Instant::now();
        let max_beats = self.settings.registry.max_heartbeats_per_interval;
        let outcome = {
            let mut owned = self.services.owned.borrow_mut();
            match owned
                .get_mut(&fields.instance)
                .filter(|o| o.conn == conn.id)
            {
                None => Err((
                    ErrorCode::UNKNOWN_INSTANCE,
                    "no such instance on this connection",
                )),
                Some(_) if fields.health == Health::Unhealthy => {
                    Err((ErrorCode::BAD_SERVICE, "health: ok, degraded or draining"))
                }
                Some(instance) => {
                    if now.saturating_duration_since(instance.window_start) >= instance.interval {
                        instance.window_start = now;
                        instance.beats = 0;
                    }
                    instance.beats += 1;
                    if instance.beats > max_beats {
                        Err((
                            ErrorCode::RATE_LIMITED,
                            "registry.max_heartbeats_per_interval reached",
                        ))
                    } else {
                        instance.last_heard = now;
                        let changed = instance.silent
                            || instance.health != fields.health
                            || instance.load != fields.load;
                        instance.silent = false;
                        instance.health = fields.health;
                        instance.load = fields.load;
                        Ok(changed)
                    }
                }
            }
        };
        match outcome {
            Ok(changed) => {
                if changed {
                    self.change_service(ServiceChange::Health {
                        id: fields.instance,
                        health: fields.health,
                        load: fields.load,
                    });
                }
                conn.ack(op_id);
            }
            Err((code, message)) => {
                self.metrics.add(Metric::ServiceRefusals, 1);
                conn.error(code, op_id, fields.instance, message);
            }
        }
    }

    /// DEREGISTER: the instance and its endpoints go.
    pub(super) fn deregister(&self, conn: &Conn, op_id: u32, fields: ServiceFields) {
        let mine = self
            .services
            .owned
            .borrow()
            .get(&fields.instance)
            .is_some_and(|o| o.conn == conn.id);
        if !mine {
            self.metrics.add(Metric::ServiceRefusals, 1);
            conn.error(
                ErrorCode::UNKNOWN_INSTANCE,
                op_id,
                fields.instance,
                "no such instance on this connection",
            );
            return;
        }
        if let Err(refused) = self.charge_churn(conn) {
            self.metrics.add(Metric::ServiceRefusals, 1);
            conn.error(refused.code, op_id, fields.instance, &refused.message);
            return;
        }
        self.remove_instance(fields.instance, "deregistered");
        conn.ack(op_id);
    }

    /// Takes an owned instance out: its endpoints' subscriptions end, every shard is told.
    fn remove_instance(&self, id: u64, why: &'static str) {
        let Some(owned) = self.services.owned.borrow_mut().remove(&id) else {
            return;
        };
        if let Some(entry) = self.services.by_conn.borrow_mut().get_mut(&owned.conn) {
            entry.instances.retain(|i| *i != id);
        }
        if let Some(conn) = self.conn(owned.conn) {
            for sid in &owned.sids {
                self.end_subscription(&conn, *sid);
            }
        }
        tracing::info!(shard = self.id, service = %owned.name, instance = id, why, "service instance down");
        self.metrics.add(Metric::ServiceRemovals, 1);
        self.instance_event(EventKind::ServiceDown, &owned.name, id, why);
        let owned_now = self.services.owned.borrow().len();
        self.metrics.set(Metric::ServiceInstances, owned_now as u64);
        self.change_service(ServiceChange::Down { id });
    }

    /// A connection went: so do its instances (the connection is out of the shard's table
    /// already, so their subscriptions go with it rather than one by one).
    /// Whether connection `conn` has registered service instances.
    pub(super) fn has_instances(&self, conn: u64) -> bool {
        self.services.by_conn.borrow().contains_key(&conn)
    }

    pub(super) fn services_conn_gone(&self, conn: u64) {
        let Some(entry) = self.services.by_conn.borrow_mut().remove(&conn) else {
            return;
        };
        for id in entry.instances {
            self.remove_instance(id, "connection closed");
        }
    }

    fn instance_event(&self, kind: EventKind, service: &str, id: u64, why: &str) {
        self.event(kind, || {
            vec![
                ("service".into(), Value::Str(service.to_owned())),
                ("instance".into(), Value::U64(id)),
                ("why".into(), Value::Str(why.to_owned())),
            ]
        });
    }

    /// Applies `change` to this shard's replica and sends it to every other shard.
    pub(super) fn change_service(&self, change: ServiceChange) {
        for link in self.peers() {
            let change = Box::new(change.clone());
            link.with_batch(|batch| batch.push(Record::Service(change)));
        }
        self.service_changed(change);
    }

    /// A change of the registry (this shard's or another's) reaches the replica.
    pub(super) fn service_changed(&self, change: ServiceChange) {
        let gone = match &change {
            ServiceChange::Down { id } => self.services.registry.borrow().name_of(*id),
            _ => None,
        };
        let mut registry = self.services.registry.borrow_mut();
        registry.apply(change);
        self.services.any.set(registry.any());
        // A service's gate lives as long as the service has instances.
        let forgotten = match gone {
            Some(name) if registry.service_options(&name).is_none() => {
                self.services.gates.borrow_mut().forget(&name)
            }
            _ => Vec::new(),
        };
        drop(registry);
        // Its waiters go ahead: with no instance left they hear NO_RESPONDERS.
        for waiter in forgotten {
            self.admit_waiter(waiter);
        }
    }

    /// The liveness task: while this shard owns instances, looks at them every shortest
    /// interval's half; marks the silent ones unhealthy, then removes them.
    pub(super) async fn watch_instances(self: Rc<Self>) {
        loop {
            let owning = self.services.owning.notified();
            let shortest = self
                .services
                .owned
                .borrow()
                .values()
                .map(|o| o.interval)
                .min();
            match shortest {
                None => owning.await,
                Some(interval) => {
                    glommio::timer::sleep(interval / 2).await;
                    self.check_instances(Instant::now());
                }
            }
        }
    }

    fn check_instances(&self, now: Instant) {
        let (unhealthy_after, remove_after) = (
            self.settings.registry.unhealthy_after,
            self.settings.registry.remove_after,
        );
        let mut silent = Vec::new();
        let mut gone = Vec::new();
        for (&id, owned) in self.services.owned.borrow_mut().iter_mut() {
            let quiet = now.saturating_duration_since(owned.last_heard);
            if quiet >= owned.interval * remove_after {
                gone.push(id);
            } else if quiet >= owned.interval * unhealthy_after && !owned.silent {
                owned.silent = true;
                silent.push((id, owned.load, owned.name.clone()));
            }
        }
        for (id, load, name) in silent {
            self.instance_event(EventKind::ServiceUnhealthy, &name, id, "heartbeats missed");
            tracing::warn!(
                shard = self.id,
                instance = id,
                "service instance unhealthy: heartbeats missed"
            );
            self.metrics.add(Metric::ServiceUnhealthy, 1);
            self.change_service(ServiceChange::Health {
                id,
                health: Health::Unhealthy,
                load,
            });
        }
        for id in gone {
            self.remove_instance(id, "heartbeats missed past registry.remove_after");
        }
    }

    /// DISCOVER: the instances of the services the pattern matches, from this shard's replica.
    pub(super) fn discover(&self, conn: &Conn, frame: &Frame<'_>) {
        let requirement = std::str::from_utf8(frame.payload).unwrap_or("").trim();
        let version = match requirement {
            "" => None,
            text => match semver::VersionReq::parse(text) {
                Ok(req) => Some(req),
                Err(e) => {
                    let message = format!("version: {text:?} is not a SemVer requirement ({e})");
                    conn.error(ErrorCode::BAD_SERVICE, frame.op_id, 0, &message);
                    return;
                }
            },
        };
        // In name order (in a cluster, this node's first).
        let found: Vec<_> = self
            .services
            .registry
            .borrow()
            .discover(frame.topic_str(), version.as_ref())
            .into_iter()
            .map(|instance| instance.describe())
            .collect();
        if self.cluster.is_some() {
            self.discover_everywhere(conn, frame, requirement, found);
            return;
        }
        self.send_discovered(conn, frame.op_id, frame.topic, found);
    }
}
