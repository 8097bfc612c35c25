//! A home shard's rooms whose history Redis keeps (`history.backend = "redis"`; ARCHITECTURE.md,
//! *History in Redis*). The memory ring stays the copy every read is served from; Redis is the
//! store of record and the one that gives positions:
//!
//! - **Publishing.** A publication goes to the bridge (`APPEND`); its answer, in the order the
//!   shard asked, gives the position, and only then is it kept in the copy and fanned out. A
//!   position that does not follow the copy's last (another node wrote the room) drops the
//!   copy and loads the stream again.
//! - **Loading.** An ask that reads history (a join of an ordered room, HISTORY) for a room with
//!   no copy waits while the stream is loaded (`LOAD`); a publication never waits for one.
//! - **Outage.** While Redis is unreachable (and nothing is on its way to it) publications are
//!   kept in memory at a new epoch; when it is back, each such room's next request starts a
//!   new epoch in Redis too, so no client takes the two histories for one.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Shard;
use crate::bridge::{Bridge, Done};
use crate::fast_map::FastMap;
use crate::history::memory::Loaded;
use crate::history::redis::{Outcome, Request, RequestKind};
use crate::history::{Position, Retention};
use crate::metrics::Metric;
use crate::rooms::asks::Ask;
use crate::rooms::options::RoomConfig;

/// Emptied append buffers a shard keeps for reuse.
const SPARE_BUFFERS: usize = 256;

/// A home shard's side of the Redis history.
pub(crate) struct RoomStore {
    bridge: Arc<Bridge>,
    /// Requests sent and not answered yet.
    pending: Cell<u32>,
    max_pending: u32,
    /// Rooms whose stream is being loaded, with the asks waiting for it.
    loading: RefCell<FastMap<Box<[u8]>, Vec<Ask>>>,
    /// Rooms whose history went on in memory while Redis could not keep it.
    diverged: RefCell<FastMap<Box<[u8]>, ()>>,
    /// Headers and payload buffers of answered appends.
    spare: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// An overflow was logged and nothing has been sent since.
    overflowing: Cell<bool>,
}

impl RoomStore {
    pub(crate) fn new(bridge: Arc<Bridge>, max_pending: u32) -> RoomStore {
        RoomStore {
            bridge,
            pending: Cell::new(0),
            max_pending,
            loading: RefCell::new(FastMap::default()),
            diverged: RefCell::new(FastMap::default()),
            spare: RefCell::new(Vec::new()),
            overflowing: Cell::new(false),
        }
    }
}

impl RoomStore {
    /// Whether Redis is reachable.
    pub(super) fn is_up(&self) -> bool {
        self.bridge.status.is_up()
    }

    /// Whether `room`'s stream is being loaded.
    pub(super) fn is_loading(&self, room: &[u8]) -> bool {
        self.loading.borrow().contains_key(room)
    }

    /// Whether `room`'s history went on in memory while Redis could not keep it.
    pub(super) fn diverged(&self, room: &[u8]) -> bool {
        self.diverged.borrow().contains_key(room)
    }
}

impl Shard {
    /// Sends a publication of a history room to Redis (or keeps it in memory while Redis is
    /// away); it is fanned out when its position is known.
    pub(super) fn store_append(
        &self,
        store: &RoomStore,
        options: &RoomConfig,
        room: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        let keep = options.retention();
        if !store.bridge.status.is_up() && store.pending.get() == 0 {
            self.fall_back(store, room, keep, headers, payload, flags);
            return;
        }
        if store.pending.get() >= store.max_pending {
            self.metrics.add(Metric::HistoryOverflows, 1);
            if !store.overflowing.replace(true) {
                tracing::warn!(
                    shard = self.id,
                    max_pending = store.max_pending,
                    "history.max_pending publications are on their way to Redis: dropping \
                     publications to history rooms until it catches up"
                );
            }
            return;
        }
        store.overflowing.set(false);
        if !self.rooms.history.borrow().contains(room) {
            self.load_room(store, room, keep);
        }
        let (mut kept_headers, mut kept_payload) =
            store.spare.borrow_mut().pop().unwrap_or_default();
        kept_headers.clear();
        kept_headers.extend_from_slice(headers);
        kept_payload.clear();
        kept_payload.extend_from_slice(payload);
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let kind = RequestKind::Append {
            headers: kept_headers,
            payload: kept_payload,
            flags,
            at_ms,
        };
        self.submit(store, room, keep, kind);
    }

    /// Whether `ask` must wait for its room's stream to load (and so was kept for then).
    pub(super) fn store_defers(&self, options: &RoomConfig, ask: &Ask) -> bool {
        let Some(store) = &self.rooms.store else {
            return false;
        };
        if !options.ordered() || self.rooms.history.borrow().contains(&ask.room) {
            return false;
        }
        if !store.loading.borrow().contains_key(&ask.room) {
            self.load_room(store, &ask.room, options.retention());
        }
        if let Some(waiting) = store.loading.borrow_mut().get_mut(&ask.room) {
            waiting.push(ask.clone());
        }
        true
    }

    /// Asks Redis for the room's stream (asks for the room wait until it comes).
    pub(super) fn load_room(&self, store: &RoomStore, room: &[u8], keep: Retention) {
        if store.loading.borrow().contains_key(room) {
            return;
        }
        store.loading.borrow_mut().insert(room.into(), Vec::new());
        self.submit(store, room, keep, RequestKind::Load);
    }

    fn submit(&self, store: &RoomStore, room: &[u8], keep: Retention, kind: RequestKind) {
        let request = Request {
            room: room.into(),
            keep,
            reset: store.diverged.borrow().contains_key(room),
            epoch: self.rooms.history.borrow_mut().new_epoch(),
            kind,
        };
        store.pending.set(store.pending.get() + 1);
        self.metrics
            .set(Metric::HistoryPending, u64::from(store.pending.get()));
        store.bridge.submit(self.id, request);
    }

    /// Takes the bridge's answers as they come (a task of its own while the shard runs).
    pub(crate) async fn take_store_answers(self: std::rc::Rc<Self>) {
        let Some(store) = &self.rooms.store else {
            return;
        };
        let bridge = Arc::clone(&store.bridge);
        loop {
            bridge.answered(self.id).await;
            while let Some(done) = bridge.take(self.id) {
                self.store_answered(store, done);
            }
            self.metrics
                .set(Metric::HistoryPending, u64::from(store.pending.get()));
        }
    }

    fn store_answered(&self, store: &RoomStore, done: Done) {
        store.pending.set(store.pending.get().saturating_sub(1));
        let Done { request, outcome } = done;
        let Request {
            room,
            keep,
            reset,
            kind,
            ..
        } = request;
        match (kind, outcome) {
            (
                RequestKind::Append {
                    headers,
                    payload,
                    flags,
                    ..
                },
                outcome,
            ) => {
                match outcome {
                    Outcome::Appended(position) => {
                        self.appended(
                            store, &room, keep, reset, position, &headers, &payload, flags,
                        );
                    }
                    _ => self.fall_back(store, &room, keep, &headers, &payload, flags),
                }
                let mut spare = store.spare.borrow_mut();
                if spare.len() < SPARE_BUFFERS {
                    spare.push((headers, payload));
                }
            }
            (
                RequestKind::Load,
                Outcome::Loaded {
                    epoch,
                    last,
                    entries,
                },
            ) if reset || !store.diverged.borrow().contains_key(&room) => {
                self.metrics.add(Metric::HistoryRedisLoads, 1);
                if reset {
                    store.diverged.borrow_mut().remove(&room);
                }
                let now = Instant::now();
                let wall_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let loaded = entries.iter().map(|e| Loaded {
                    offset: e.offset,
                    at: now
                        .checked_sub(std::time::Duration::from_millis(
                            wall_ms.saturating_sub(e.at_ms),
                        ))
                        .unwrap_or(now),
                    flags: e.flags,
                    headers: &e.headers,
                    payload: &e.payload,
                });
                self.rooms
                    .history
                    .borrow_mut()
                    .load(&room, keep, now, epoch, last, loaded);
                self.note_history_usage();
                self.loaded(store, &room);
            }
            (RequestKind::Load, _) => {
                // Failed, or read before the room went on in memory (so older than what the
                // memory has): the asks waiting go on with the memory's history.
                if !self.rooms.history.borrow().contains(&room) {
                    self.rooms.history.borrow_mut().restart(&room, keep);
                    store.diverged.borrow_mut().insert(room.clone(), ());
                }
                self.loaded(store, &room);
            }
        }
    }

    /// Redis kept a publication at `position`: keep it in the copy and fan it out.
    #[allow(clippy::too_many_arguments)] // a publication's parts and where it goes
    fn appended(
        &self,
        store: &RoomStore,
        room: &[u8],
        keep: Retention,
        reset: bool,
        position: Position,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        self.metrics.add(Metric::HistoryRedisAppends, 1);
        let now = Instant::now();
        let mut history = self.rooms.history.borrow_mut();
        if reset && store.diverged.borrow_mut().remove(room).is_some() {
            // Redis started the room over: so does the copy.
            history.load(
                room,
                keep,
                now,
                position.epoch,
                position.offset - 1,
                std::iter::empty(),
            );
        }
        if self.cluster.is_some() {
            // Other nodes write the room too: delivered in the room's order with theirs.
            drop(history);
            self.sequence_own(store, room, keep, position, (headers, payload, flags));
            return;
        }
        let kept = history.append_at(room, keep, now, position, headers, payload, flags);
        drop(history);
        if !kept && !store.loading.borrow().contains_key(room) {
            // Another node wrote the room, or the copy was dropped: read it again (the
            // stream has this publication too).
            self.rooms.history.borrow_mut().forget(room);
            self.load_room(store, room, keep);
        }
        self.note_history_usage();
        self.fan_out_kept(room, position, headers, payload, flags);
    }

    /// Keeps a publication in memory because Redis could not: the room goes on at a memory
    /// epoch, and Redis starts a new one when it is back.
    fn fall_back(
        &self,
        store: &RoomStore,
        room: &[u8],
        keep: Retention,
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) {
        self.metrics.add(Metric::HistoryFallbacks, 1);
        if store
            .diverged
            .borrow_mut()
            .insert(room.into(), ())
            .is_none()
        {
            self.rooms.history.borrow_mut().restart(room, keep);
        }
        let position = self.rooms.history.borrow_mut().append(
            room,
            keep,
            Instant::now(),
            headers,
            payload,
            flags,
        );
        self.note_history_usage();
        self.fan_out_kept(room, position, headers, payload, flags);
    }

    /// The room's stream is in the copy (or the memory took over): its waiting asks go on.
    fn loaded(&self, store: &RoomStore, room: &[u8]) {
        if let Some(options) = self.rooms.options(room) {
            // Publications first: the asks' replays and answers follow them.
            self.order_loaded(store, room, options.retention());
        }
        let waiting = store.loading.borrow_mut().remove(room).unwrap_or_default();
        for ask in &waiting {
            self.home_ask(ask);
        }
    }
}
