//! A shard: one pinned glommio executor that owns its connections, its subscriptions, its
//! in-flight requests and its counters (ARCHITECTURE.md, "Shards"). All of its state lives in this
//! struct behind `RefCell`s that are never borrowed across an `.await`; nothing here is shared
//! with another thread except through the mesh and the read-only counters.

mod cluster;
mod cluster_asks;
mod cluster_requests;
mod cluster_services;
mod commands;
pub(crate) mod conn;
mod events;
mod inbound;
pub(crate) mod inproc;
mod keepalive;
pub(crate) mod listing;
pub(crate) mod login;
pub(crate) mod moving;
pub(crate) mod notify;
mod ops;
pub(crate) mod outbox;
pub(crate) mod rate;
pub(crate) mod read_buffer;
mod reload;
mod replies;
mod requests;
pub(crate) mod room_admin;
mod room_answers;
mod room_home;
pub(crate) mod room_nodes;
mod room_order;
mod room_queries;
pub(crate) mod room_store;
mod rooms;
mod run;
mod service_flow;
pub(crate) mod service_listing;
mod service_requests;
mod services;
pub(crate) mod session;
mod sid_map;
mod status;
pub(crate) use status::status_value;
pub(crate) mod stream;
pub(crate) mod users;
mod watch;
pub(crate) mod write_tick;

use crate::fast_map::FastMap;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use shardbus_protocol::{Fields, Limits};

use crate::config::Config;
use crate::mesh::batch::Record;
use crate::mesh::link::PeerLink;
use crate::metrics::{Metric, ShardMetrics};
use crate::routing::{InterestChange, Route, Router, ShardId};
use crate::server::Shared;
use conn::{Conn, LocalSub, Outgoing};
use requests::Requests;

pub(crate) use run::{run, spawn_mesh};

/// The longest a reader pauses for backlogged consumers after one read's deliveries
/// (nats-server 2.9 stalls a fast producer between 100 ms and 1 s).
const STALL_MAX: Duration = Duration::from_millis(100);

/// Subjects each match cache remembers.
const MATCH_CACHE_SUBJECTS: usize = 16 * 1024;

/// The configuration values a shard consults, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) max_subscriptions: u32,
    pub(crate) max_pending: usize,
    pub(crate) max_inflight_requests: u32,
    pub(crate) max_inflight_requests_per_identity: u32,
    pub(crate) max_inflight_requests_per_shard: u32,
    pub(crate) max_request_timeout_ms: u32,
    pub(crate) hello_timeout: Duration,
    /// This shard's part of `limits.max_unauthenticated_bytes`.
    pub(crate) preauth_budget: usize,
    pub(crate) max_password_checks: u32,
    pub(crate) max_password_checks_per_address: u32,
    pub(crate) ping_interval_ms: u32,
    pub(crate) grace: Duration,
    pub(crate) watch_interval: Duration,
    pub(crate) write_delay: Duration,
    /// `runtime.move_requester_after` (`moving.rs`).
    pub(crate) move_requester_after: u32,
    pub(crate) shards: usize,
    /// TLS for the listener, when configured.
    pub(crate) tls: Option<crate::tls::ServerTls>,
    /// Who may connect, and with what permissions.
    pub(crate) auth: Arc<crate::auth::Authenticator>,
    pub(crate) rate_limits: crate::config::RateLimitsConfig,
    pub(crate) rooms: Vec<crate::rooms::RoomConfig>,
    pub(crate) max_rooms_per_connection: u32,
    pub(crate) max_room_ops_in_flight: u32,
    pub(crate) max_member_info: u32,
    pub(crate) max_presence_page: u32,
    pub(crate) max_history_page: u32,
    /// This shard's part of `history.max_bytes`.
    pub(crate) history_bytes: usize,
    /// `history.backend = "redis"`.
    pub(crate) history_in_redis: bool,
    pub(crate) history_max_pending: u32,
    pub(crate) registry: crate::services::RegistryConfig,
    pub(crate) services: Vec<crate::services::ServiceConfig>,
    pub(crate) events: crate::events::EventsConfig,
    pub(crate) commands: crate::commands::CommandsConfig,
    /// `[routing] request_local_share`.
    pub(crate) request_local_share: u8,
}

impl Settings {
    /// # Errors
    /// The TLS files or the `[auth]` section cannot be used.
    pub(crate) fn new(
        config: &Config,
        shards: usize,
    ) -> Result<Settings, crate::server::StartError> {
        let l = &config.limits;
        Ok(Settings {
            limits: config.wire_limits(),
            max_subscriptions: l.max_subscriptions,
            max_pending: l.max_pending,
            max_inflight_requests: l.max_inflight_requests,
            max_inflight_requests_per_identity: l.max_inflight_requests_per_identity,
            max_inflight_requests_per_shard: l.max_inflight_requests_per_shard,
            max_request_timeout_ms: l.max_request_timeout_ms,
            hello_timeout: Duration::from_millis(l.hello_timeout_ms),
            preauth_budget: l.max_unauthenticated_bytes / shards.max(1),
            max_password_checks: config.auth.max_password_checks,
            max_password_checks_per_address: config.auth.max_password_checks_per_address,
            ping_interval_ms: l.ping_interval_ms,
            grace: Duration::from_millis(config.shutdown.grace_ms),
            watch_interval: Duration::from_micros(config.runtime.watch_interval_us),
            write_delay: Duration::from_micros(config.runtime.write_delay_us),
            move_requester_after: config.runtime.move_requester_after,
            shards,
            tls: crate::tls::server(&config.tls)?,
            auth: Arc::new(crate::auth::Authenticator::new(&config.auth)?),
            rate_limits: config.rate_limits.clone(),
            rooms: config.rooms.clone(),
            max_rooms_per_connection: l.max_rooms_per_connection,
            max_room_ops_in_flight: l.max_room_ops_in_flight,
            max_member_info: l.max_member_info,
            max_presence_page: l.max_presence_page,
            max_history_page: l.max_history_page,
            history_bytes: config.history.max_bytes / shards.max(1),
            history_in_redis: config.history.backend == crate::config::HistoryBackend::Redis,
            history_max_pending: config.history.max_pending,
            registry: config.registry.clone(),
            services: config.services.clone(),
            events: config.events.clone(),
            commands: config.commands.clone(),
            request_local_share: config.routing.request_local_share,
        })
    }
}

/// One shard's state.
pub(crate) struct Shard {
    pub(crate) id: ShardId,
    pub(crate) settings: Settings,
    pub(crate) shared: Arc<Shared>,
    pub(crate) metrics: Arc<ShardMetrics>,
    /// Outgoing mesh links, indexed by shard; `None` at this shard's own index.
    links: Vec<Option<PeerLink>>,
    /// Delays a waking writer to its next tick (`runtime.write_delay_us`), when set.
    pub(crate) write_tick: Option<Rc<write_tick::WriteTick>>,
    conns: RefCell<FastMap<u64, Rc<Conn>>>,
    router: RefCell<Router<LocalSub>>,
    route: RefCell<Route<LocalSub>>,
    requests: RefCell<Requests>,
    /// Reply tokens of requests delivered to this shard's connections, and to whom.
    replies: RefCell<replies::Replies>,
    /// PINGs waiting for every other shard to acknowledge a barrier: acks still missing.
    barriers: RefCell<HashMap<(u64, u64), usize>>,
    /// Subscriptions that reached their auto-unsubscribe count during a delivery.
    finished: RefCell<Vec<LocalSub>>,
    /// Connections whose outbox passed its high-water mark during the deliveries since the
    /// last `take_backlog`: the reader that caused them pauses until they drain.
    backlog: RefCell<Vec<Rc<Conn>>>,
    requests_changed: notify::Notify,
    /// This shard's rate limits and their buckets.
    pub(crate) rate: RefCell<rate::RateLimits>,
    /// Whether any message limit is set: what every publish asks first, kept beside `rate` so
    /// the answer costs one load (a reload sets both).
    rate_any: Cell<bool>,
    /// Listings this shard is gathering from the others (`listing.rs`).
    listings: RefCell<FastMap<u64, listing::Gathering>>,
    listings_changed: notify::Notify,
    next_listing: Cell<u64>,
    /// Where every session of this shard reads its input (see `ReadBuffer`): empty between
    /// reads, never borrowed across an `.await`.
    scratch: RefCell<read_buffer::ReadBuffer>,
    next_conn: Cell<u64>,
    next_barrier: Cell<u64>,
    draining: Cell<bool>,
    /// Whose requests the in-process edges' connections (HTTP push) make, for the
    /// per-identity cap: they carry no identity of their own.
    in_process_identity: Arc<str>,
    /// Who may connect: the configuration's, replaced by a reload (`reload.rs`).
    auth: RefCell<Arc<crate::auth::Authenticator>>,
    /// Input bytes held by this shard's connections still in their HELLO phase.
    preauth_bytes: Cell<usize>,
    /// Password checks in flight (`login.rs`).
    password_checks: login::PasswordChecks,
    /// Notified once, when the server starts shutting down (`watch.rs`).
    stopping: notify::Notify,
    /// A shutdown or a reload was published: the watch task looks at once.
    nudged: notify::Notify,
    /// Rooms: options, this shard's memberships, the rooms it is home to (`rooms.rs`); boxed,
    /// so the shard's fields on the publish path stay together.
    rooms: Box<rooms::ShardRooms>,
    /// Whether any room is configured: what every publish asks first (a reload sets it).
    rooms_any: Cell<bool>,
    /// This shard's connections by user, for pushes to users (`users.rs`).
    users: RefCell<users::Users>,
    /// Service instances: the registry's replica, the instances this shard owns
    /// (`services.rs`); boxed, like `rooms`.
    services: Box<services::ShardServices>,
    /// System events gathered for the next publication (`events.rs`).
    events: events::ShardEvents,
    /// When the broker is a node of a cluster: this shard's side of it (`cluster.rs`).
    cluster: Option<cluster::ShardCluster>,
    /// This shard, for the tasks its ops spawn (set once it is in its `Rc`).
    this: std::cell::OnceCell<std::rc::Weak<Shard>>,
}

impl Shard {
    pub(crate) fn new(id: ShardId, settings: Settings, shared: Arc<Shared>) -> Shard {
        let metrics = shared.metrics_of(id);
        let rate = rate::RateLimits::new(&settings.rate_limits);
        let auth = Arc::clone(&settings.auth);
        let requests = Requests::new(
            settings.max_inflight_requests_per_identity,
            settings.max_inflight_requests_per_shard as usize,
        );
        let store = shared
            .bridge()
            .filter(|_| settings.history_in_redis)
            .map(|bridge| {
                room_store::RoomStore::new(Arc::clone(bridge), settings.history_max_pending)
            });
        let rooms = Box::new(rooms::ShardRooms::new(
            &settings.rooms,
            settings.history_bytes,
            store,
        ));
        let services = Box::new(services::ShardServices::new(&settings.services));
        let cluster = shared
            .cluster()
            .map(|c| cluster::ShardCluster::new(Arc::clone(c)));
        let other_nodes = crate::cluster::remote_id(settings.shards);
        // One link per other shard, then, in a cluster, the link to the other nodes (the pseudo
        // shard `shards`: `cluster::remote_id`).
        let links = (0..settings.shards)
            .map(|peer| (peer != usize::from(id)).then(PeerLink::default))
            .chain(cluster.is_some().then(|| Some(PeerLink::default())))
            .collect();
        let local_share = settings.request_local_share;
        let write_tick = write_tick::WriteTick::new(settings.write_delay);
        Shard {
            id,
            write_tick,
            settings,
            shared,
            metrics,
            links,
            conns: RefCell::new(FastMap::default()),
            router: RefCell::new(
                Router::new(id, MATCH_CACHE_SUBJECTS)
                    .with_other_nodes(other_nodes)
                    .with_request_local_share(local_share),
            ),
            route: RefCell::new(Route::default()),
            requests: RefCell::new(requests),
            replies: RefCell::new(replies::Replies::default()),
            barriers: RefCell::new(HashMap::new()),
            finished: RefCell::new(Vec::new()),
            backlog: RefCell::new(Vec::new()),
            requests_changed: notify::Notify::default(),
            rate_any: Cell::new(rate.any()),
            rate: RefCell::new(rate),
            listings: RefCell::new(FastMap::default()),
            listings_changed: notify::Notify::default(),
            next_listing: Cell::new(0),
            scratch: RefCell::new(read_buffer::ReadBuffer::new(read_buffer::SCRATCH_SIZE)),
            next_conn: Cell::new(0),
            next_barrier: Cell::new(0),
            draining: Cell::new(false),
            in_process_identity: Arc::from(""),
            auth: RefCell::new(auth),
            preauth_bytes: Cell::new(0),
            password_checks: login::PasswordChecks::default(),
            stopping: notify::Notify::default(),
            nudged: notify::Notify::default(),
            rooms_any: Cell::new(rooms.any()),
            rooms,
            users: RefCell::new(users::Users::default()),
            services,
            events: events::ShardEvents::default(),
            cluster,
            this: std::cell::OnceCell::new(),
        }
    }

    /// `shard` in the `Rc` every task of it shares.
    pub(crate) fn into_rc(shard: Shard) -> Rc<Shard> {
        let shard = Rc::new(shard);
        let _ = shard.this.set(Rc::downgrade(&shard));
        shard
    }

    /// A new connection id, unique server-wide: the shard in the top 16 bits.
    pub(crate) fn next_conn_id(&self) -> u64 {
        let n = self.next_conn.get() + 1;
        self.next_conn.set(n);
        (u64::from(self.id) << 48) | n
    }

    fn link(&self, shard: ShardId) -> Option<&PeerLink> {
        self.links.get(usize::from(shard)).and_then(Option::as_ref)
    }

    /// The links to the other shards (not the cluster's).
    fn peers(&self) -> impl Iterator<Item = &PeerLink> {
        self.links.iter().take(self.settings.shards).flatten()
    }

    /// Every outgoing link, the cluster's too: what backpressure looks at.
    fn outgoing(&self) -> impl Iterator<Item = &PeerLink> {
        self.links.iter().flatten()
    }

    fn conn(&self, id: u64) -> Option<Rc<Conn>> {
        self.conns.borrow().get(&id).cloned()
    }

    pub(crate) fn register(&self, conn: Rc<Conn>) {
        self.user_online(&conn);
        self.conns.borrow_mut().insert(conn.id, conn);
    }

    /// Forgets a closed connection, its subscriptions (telling the other shards of the
    /// interest it held) and its pending requests (a response to one is dropped as late).
    pub(crate) fn remove_conn(&self, conn: &Conn) {
        if self.conns.borrow_mut().remove(&conn.id).is_none() {
            return;
        }
        self.user_offline(conn);
        if conn.remote.is_some() {
            self.conn_closed_event(conn);
        }
        self.replies.borrow_mut().end_conn(conn.id);
        let abandoned = self.requests.borrow_mut().end_conn(conn.id);
        if !abandoned.is_empty() {
            self.metrics
                .sub(Metric::RequestsPending, abandoned.len() as u64);
            self.metrics
                .add(Metric::RequestsAbandoned, abandoned.len() as u64);
        }
        // The responders' shards forget the tokens, so an unanswered request costs nothing
        // once its requester has gone.
        for (key, pending) in abandoned {
            if let Some(leg) = pending.service {
                self.services.registry.borrow_mut().abandoned(leg.instance);
                self.gated_request_over(key, leg);
            }
            let reply = requests::token(self.id, key);
            match self.link(pending.responder_shard) {
                Some(link) => link.with_batch(|b| b.push(Record::ReplyEnded { token: reply })),
                None => self.replies.borrow_mut().forget(reply),
            }
        }
        if self.rooms_any.get() {
            self.conn_gone(conn.id);
        }
        self.services_conn_gone(conn.id);
        let subs = conn.subs.borrow_mut().take_all();
        for sub in subs {
            self.forget(&sub);
        }
    }

    /// Ends a subscription already taken out of its connection's table: no more deliveries,
    /// out of the trie, the other shards told if interest flipped, uncounted.
    fn forget(&self, sub: &LocalSub) {
        sub.end();
        self.metrics.sub(Metric::Subscriptions, 1);
        let change =
            self.router
                .borrow_mut()
                .unsubscribe(&sub.0.pattern, sub.0.queue.as_deref(), sub);
        self.broadcast(change);
    }

    /// Tells every other shard of an interest change.
    fn broadcast(&self, change: Option<InterestChange>) {
        let Some(change) = change else { return };
        for link in self.outgoing() {
            link.with_batch(|batch| batch.push(Record::Interest(change.clone())));
            self.metrics.add(Metric::ForwardsOut, 1);
        }
    }

    /// Puts `conn` on the backlog when its own outbox is past its high-water mark: a client that
    /// pipelines ops faster than it reads their answers (OKs, ERRs, PONGs) is then paused like
    /// a publisher feeding a slow consumer, instead of being cut as one while it reads.
    pub(crate) fn hold_back_own_answers(&self, conn: &Rc<Conn>) {
        if conn.outbox.over_high_water() && !conn.backlogged.replace(true) {
            self.backlog.borrow_mut().push(Rc::clone(conn));
        }
    }

    /// Pauses a session's reader while the outboxes its deliveries filled drain
    /// (`wait_for_backlog`) and while a mesh link is congested (`wait_for_mesh_room`); returns
    /// at once when neither applies. The waiting runs boxed, made only when needed, so its
    /// state (a timer among it) is not part of every connection's task.
    pub(crate) async fn pause_reader(&self) {
        if self.backlog.borrow().is_empty() && !self.outgoing().any(|link| link.is_congested()) {
            return;
        }
        let pausing = Box::pin(async {
            self.wait_for_backlog().await;
            self.wait_for_mesh_room().await;
        });
        pausing.await;
    }

    /// Waits while any outgoing mesh link is congested: the backpressure that stops a
    /// session from reading more input than the mesh can carry.
    async fn wait_for_mesh_room(&self) {
        while let Some(link) = self.outgoing().find(|link| link.is_congested()) {
            self.metrics.add(Metric::MeshStalls, 1);
            link.room().await;
        }
    }

    /// Pauses the caller (a session's reader, a mesh receiver) while the outboxes its last
    /// deliveries filled past their high-water mark drain to their low-water mark, for at most
    /// `STALL_MAX`. A consumer that cannot drain in time is left to `max_pending`.
    pub(crate) async fn wait_for_backlog(&self) {
        let stalled = std::mem::take(&mut *self.backlog.borrow_mut());
        if stalled.is_empty() {
            return;
        }
        self.metrics.add(Metric::PublisherStalls, 1);
        let deadline = std::time::Instant::now() + STALL_MAX;
        for conn in &stalled {
            while conn.outbox.over_low_water() {
                let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                    break;
                };
                futures_lite::future::or(conn.outbox.drained(), glommio::timer::sleep(left)).await;
            }
            conn.backlogged.set(false);
        }
    }

    /// Delivers to the local subscriptions in `keys`, then ends those that reached their
    /// auto-unsubscribe count.
    fn deliver_local(
        &self,
        subs: &[LocalSub],
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
        reply: u64,
    ) {
        for sub in subs {
            let Some(conn) = sub.conn() else {
                continue;
            };
            if !conn.deliver(&sub.0, subject, headers, payload, flags, reply) {
                self.finished.borrow_mut().push(sub.clone());
            }
            if conn.outbox.over_high_water() && !conn.backlogged.replace(true) {
                self.backlog.borrow_mut().push(conn);
            }
        }
        if self.finished.borrow().is_empty() {
            return;
        }
        let finished: Vec<LocalSub> = self.finished.borrow_mut().drain(..).collect();
        for sub in finished {
            let Some(conn) = sub.conn() else { continue };
            // The sid may already name a newer subscription: end only this one.
            let current = conn.subs.borrow().get(sub.0.sid) == Some(&sub);
            if current {
                self.end_subscription(&conn, sub.0.sid);
            }
        }
    }

    /// Removes subscription `sid` of `conn`; `false` if it did not exist.
    fn end_subscription(&self, conn: &Conn, sid: u64) -> bool {
        let Some(sub) = conn.subs.borrow_mut().remove(sid) else {
            return false;
        };
        conn.interest_dirty.set(true);
        self.forget(&sub);
        if self.rooms_any.get() {
            self.subscription_ended(conn.id, &sub);
        }
        true
    }

    /// Sends PONG for `ping_op_id` once every other shard has applied what this shard sent
    /// before now (so the connection's subscriptions are visible everywhere).
    fn pong_after_barrier(&self, conn: &Conn, ping_op_id: u32) {
        let peers = self.peers().count();
        let dirty = conn.interest_dirty.replace(false);
        // A PING behind one still waiting for its barrier waits too, so PONGs keep their order.
        if peers == 0 || (!dirty && conn.barriers_pending.get() == 0) {
            conn.send(&Outgoing::bare(Fields::Pong, ping_op_id));
            return;
        }
        conn.barriers_pending.set(conn.barriers_pending.get() + 1);
        let ping = (self.next_barrier.get() + 1) << 32 | u64::from(ping_op_id);
        self.next_barrier.set(self.next_barrier.get() + 1);
        self.barriers.borrow_mut().insert((conn.id, ping), peers);
        for link in self.peers() {
            link.with_batch(|batch| {
                batch.push(Record::Barrier {
                    conn: conn.id,
                    ping,
                })
            });
        }
    }

    fn barrier_acked(&self, conn_id: u64, ping: u64) {
        let done = {
            let mut barriers = self.barriers.borrow_mut();
            match barriers.get_mut(&(conn_id, ping)) {
                Some(missing) if *missing > 1 => {
                    *missing -= 1;
                    false
                }
                Some(_) => {
                    barriers.remove(&(conn_id, ping));
                    true
                }
                None => false,
            }
        };
        if let (true, Some(conn)) = (done, self.conn(conn_id)) {
            conn.barriers_pending
                .set(conn.barriers_pending.get().saturating_sub(1));
            // The low 32 bits of the barrier id are the PING's op id.
            conn.send(&Outgoing::bare(Fields::Pong, ping as u32));
        }
    }
}

impl Shard {
    /// Whether the shard is shutting down (new HELLOs are refused).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }
}
