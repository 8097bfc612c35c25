//! One order per room across the nodes of a cluster, for rooms whose history Redis keeps
//! (ARCHITECTURE.md, *Rooms across nodes*). Redis gives every publication of a room its offset
//! whichever node wrote it; each node's home of the room delivers them to its own subscribers
//! in that order — its own publications once Redis has answered, the other nodes' as they
//! arrive — each only after the one before it, keeping its copy of the stream current as it
//! goes:
//!
//! - a publication that follows the copy's last is delivered and kept;
//! - one that is already in the copy is dropped (it was delivered here);
//! - one past a gap is held; the gap is another node's publication still on its way, or one
//!   that will never come (its node died between Redis and the cluster channel): after
//!   `GAP_WAIT` the copy is read again from Redis and what was missed is delivered from it;
//! - one of a room with no copy yet, or of another epoch, is held while the copy loads.
//!
//! While Redis is away the other nodes' publications are delivered as they come.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Weak;
use std::time::{Duration, Instant};

use super::Shard;
use super::room_store::RoomStore;
use crate::cluster::wire;
use crate::fast_map::FastMap;
use crate::history::{Position, Query, Retention};
use crate::metrics::Metric;
use crate::rooms::positions::{positioned, read_position, strip_positions};

/// How long a publication past a gap waits for the one before it.
const GAP_WAIT: Duration = Duration::from_millis(250);
/// Publications a room holds at most while it waits; past it they are dropped and counted.
const MAX_HELD: usize = 4096;

/// A publication to put in order: this node's (`own`: fanned out everywhere) or another's
/// (delivered to this node's subscribers only); `headers` without the position headers,
/// `stamped` with them as another node's publication arrived (empty: written when delivered).
#[derive(Clone, Copy)]
struct Part<'a> {
    own: bool,
    headers: &'a [u8],
    stamped: &'a [u8],
    payload: &'a [u8],
    flags: u8,
    plain: bool,
    groups: &'a [u8],
}

struct Held {
    epoch: u64,
    own: bool,
    headers: Vec<u8>,
    payload: Vec<u8>,
    flags: u8,
    plain: bool,
    groups: Vec<u8>,
}

impl Held {
    fn part(&self) -> Part<'_> {
        Part {
            own: self.own,
            headers: &self.headers,
            stamped: &[],
            payload: &self.payload,
            flags: self.flags,
            plain: self.plain,
            groups: &self.groups,
        }
    }
}

#[derive(Default)]
struct Waiting {
    /// By offset.
    held: BTreeMap<u64, Held>,
    /// The copy's last when it was dropped for a gap: what had been delivered here.
    reload_from: Option<Position>,
    gap_watched: bool,
}

/// A home shard's rooms waiting for a publication.
#[derive(Default)]
pub(crate) struct RoomOrder {
    rooms: RefCell<FastMap<Box<[u8]>, Waiting>>,
    /// An arrival's headers without its position.
    scratch: RefCell<Vec<u8>>,
}

enum Next {
    Deliver,
    Drop,
    Hold,
    Load,
    Gap,
}

impl Shard {
    /// Whether another node's publication to `subject` goes to its room's home to be put in
    /// order (rooms whose history Redis keeps, while Redis is up).
    pub(super) fn ordered_across_nodes(&self, subject: &[u8]) -> bool {
        self.rooms_any.get()
            && self.rooms.store.as_ref().is_some_and(|store| store.is_up())
            && self
                .rooms
                .options(subject)
                .is_some_and(|options| options.ordered())
    }

    /// Another node's publication to a room this shard is home to.
    pub(super) fn room_arrived(&self, arrived: &wire::Message<'_>) {
        let store = self.rooms.store.as_ref();
        let options = self.rooms.options(arrived.subject);
        let position = read_position(arrived.headers);
        let (Some(store), Some(options), Some(position)) = (store, options, position) else {
            self.deliver_arrived(arrived);
            return;
        };
        let mut headers = std::mem::take(&mut *self.rooms.order.scratch.borrow_mut());
        strip_positions(arrived.headers, &mut headers);
        let part = Part {
            own: false,
            headers: &headers,
            stamped: arrived.headers,
            payload: arrived.payload,
            flags: arrived.flags,
            plain: arrived.plain,
            groups: arrived.groups,
        };
        self.sequence(store, arrived.subject, options.retention(), position, part);
        *self.rooms.order.scratch.borrow_mut() = headers;
    }

    /// This node's publication, at the `position` Redis gave it.
    pub(super) fn sequence_own(
        &self,
        store: &RoomStore,
        room: &[u8],
        keep: Retention,
        position: Position,
        (headers, payload, flags): (&[u8], &[u8], u8),
    ) {
        let part = Part {
            own: true,
            headers,
            stamped: &[],
            payload,
            flags,
            plain: true,
            groups: &[],
        };
        self.sequence(store, room, keep, position, part);
    }

    fn sequence(
        &self,
        store: &RoomStore,
        room: &[u8],
        keep: Retention,
        position: Position,
        part: Part<'_>,
    ) {
        let next = if store.is_loading(room) {
            Next::Hold
        } else if !self.rooms.history.borrow().contains(room) {
            Next::Load
        } else {
            let top = self
                .rooms
                .history
                .borrow_mut()
                .top(room, keep, Instant::now());
            if position.epoch != top.epoch {
                Next::Load
            } else if position.offset <= top.offset {
                Next::Drop
            } else if position.offset == top.offset + 1 {
                Next::Deliver
            } else {
                Next::Gap
            }
        };
        match next {
            Next::Deliver => {
                self.deliver_in_order(room, keep, position, part);
                self.drain_held(room, keep);
            }
            Next::Drop => {}
            Next::Hold => self.hold(room, position, part),
            Next::Load => {
                self.hold(room, position, part);
                self.rooms.history.borrow_mut().forget(room);
                self.load_room(store, room, keep);
            }
            Next::Gap => {
                self.hold(room, position, part);
                self.watch_gap(room);
            }
        }
    }

    fn hold(&self, room: &[u8], position: Position, part: Part<'_>) {
        let mut rooms = self.rooms.order.rooms.borrow_mut();
        if !rooms.contains_key(room) {
            rooms.insert(room.into(), Waiting::default());
        }
        let Some(waiting) = rooms.get_mut(room) else {
            return;
        };
        if waiting.held.len() >= MAX_HELD {
            self.metrics.add(Metric::HistoryOverflows, 1);
            return;
        }
        let held = Held {
            epoch: position.epoch,
            own: part.own,
            headers: part.headers.to_vec(),
            payload: part.payload.to_vec(),
            flags: part.flags,
            plain: part.plain,
            groups: part.groups.to_vec(),
        };
        waiting.held.insert(position.offset, held);
    }

    /// Keeps `part` in the copy (it follows the copy's last) and delivers it.
    fn deliver_in_order(&self, room: &[u8], keep: Retention, position: Position, part: Part<'_>) {
        self.rooms.history.borrow_mut().append_at(
            room,
            keep,
            Instant::now(),
            position,
            part.headers,
            part.payload,
            part.flags,
        );
        self.note_history_usage();
        self.deliver_part(room, position, part);
    }

    fn deliver_part(&self, room: &[u8], position: Position, part: Part<'_>) {
        if part.own {
            self.fan_out_kept(room, position, part.headers, part.payload, part.flags);
            return;
        }
        let message = |headers| wire::Message {
            subject: room,
            headers,
            payload: part.payload,
            flags: part.flags,
            plain: part.plain,
            groups: part.groups,
        };
        if !part.stamped.is_empty() {
            // Delivered as it came: its headers already carry this position.
            self.deliver_arrived(&message(part.stamped));
            return;
        }
        let mut stamped = std::mem::take(&mut self.rooms.headers.borrow_mut().1);
        positioned(position, part.headers, &mut stamped);
        self.deliver_arrived(&message(&stamped));
        self.rooms.headers.borrow_mut().1 = stamped;
    }

    /// Delivers what was held and now follows the copy's last, until a gap.
    fn drain_held(&self, room: &[u8], keep: Retention) {
        loop {
            let top = self
                .rooms
                .history
                .borrow_mut()
                .top(room, keep, Instant::now());
            let first = {
                let mut rooms = self.rooms.order.rooms.borrow_mut();
                let Some(waiting) = rooms.get_mut(room) else {
                    return;
                };
                let Some(entry) = waiting.held.first_entry() else {
                    rooms.remove(room);
                    return;
                };
                let offset = *entry.key();
                if entry.get().epoch != top.epoch || offset <= top.offset {
                    entry.remove();
                    continue;
                }
                if offset != top.offset + 1 {
                    None
                } else {
                    Some((offset, entry.remove()))
                }
            };
            let Some((offset, held)) = first else {
                self.watch_gap(room);
                return;
            };
            let position = Position {
                epoch: top.epoch,
                offset,
            };
            self.deliver_in_order(room, keep, position, held.part());
        }
    }

    /// Reads the copy again if the gap in `room` is still there after `GAP_WAIT`.
    fn watch_gap(&self, room: &[u8]) {
        {
            let mut rooms = self.rooms.order.rooms.borrow_mut();
            let Some(waiting) = rooms.get_mut(room) else {
                return;
            };
            if std::mem::replace(&mut waiting.gap_watched, true) {
                return;
            }
        }
        let Some(shard) = self.this.get().and_then(Weak::upgrade) else {
            return;
        };
        let room: Box<[u8]> = room.into();
        glommio::spawn_local(async move {
            glommio::timer::sleep(GAP_WAIT).await;
            shard.gap_expired(&room);
        })
        .detach();
    }

    fn gap_expired(&self, room: &[u8]) {
        let (Some(store), Some(options)) = (&self.rooms.store, self.rooms.options(room)) else {
            return;
        };
        let keep = options.retention();
        if store.is_loading(room) || !self.rooms.history.borrow().contains(room) {
            return;
        }
        let top = self
            .rooms
            .history
            .borrow_mut()
            .top(room, keep, Instant::now());
        {
            let mut rooms = self.rooms.order.rooms.borrow_mut();
            let Some(waiting) = rooms.get_mut(room) else {
                return;
            };
            waiting.gap_watched = false;
            let gap = waiting
                .held
                .keys()
                .next()
                .is_some_and(|&first| first > top.offset + 1);
            if !gap {
                return;
            }
            waiting.reload_from = Some(top);
        }
        self.metrics.add(Metric::HistoryGapReloads, 1);
        self.rooms.history.borrow_mut().forget(room);
        self.load_room(store, room, keep);
    }

    /// The room's copy was (re)loaded: what it has that was not delivered here is, in order
    /// with what was held; then what follows.
    pub(super) fn order_loaded(&self, store: &RoomStore, room: &[u8], keep: Retention) {
        let Some(mut waiting) = self.rooms.order.rooms.borrow_mut().remove(room) else {
            return;
        };
        if store.diverged(room) {
            // The load failed: what was held is delivered as it is, in offset order.
            for (offset, held) in &waiting.held {
                let position = Position {
                    epoch: held.epoch,
                    offset: *offset,
                };
                self.deliver_part(room, position, held.part());
            }
            return;
        }
        let now = Instant::now();
        let top = self.rooms.history.borrow_mut().top(room, keep, now);
        // Whatever the copy has after what was delivered here, unless it was held.
        let mut missed = BTreeMap::new();
        if let Some(from) = waiting.reload_from.filter(|from| from.epoch == top.epoch) {
            let query = Query {
                after: Some(from),
                limit: usize::MAX,
                reverse: false,
            };
            self.rooms
                .history
                .borrow_mut()
                .read(room, keep, now, query, &mut |stored| {
                    let held = Held {
                        epoch: top.epoch,
                        own: false,
                        headers: stored.headers().to_vec(),
                        payload: stored.payload().to_vec(),
                        flags: stored.flags,
                        plain: true,
                        groups: Vec::new(),
                    };
                    missed.insert(stored.offset, held);
                });
        }
        let later = waiting.held.split_off(&(top.offset + 1));
        for (offset, held) in std::mem::take(&mut waiting.held) {
            if held.epoch == top.epoch {
                missed.insert(offset, held);
            }
        }
        for (offset, held) in &missed {
            let position = Position {
                epoch: top.epoch,
                offset: *offset,
            };
            self.deliver_part(room, position, held.part());
        }
        if !later.is_empty() {
            let waiting = Waiting {
                held: later,
                ..Waiting::default()
            };
            self.rooms
                .order
                .rooms
                .borrow_mut()
                .insert(room.into(), waiting);
            self.drain_held(room, keep);
        }
    }
}
