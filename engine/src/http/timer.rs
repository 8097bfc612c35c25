//! `ShardTimer`: hyper's timer (header-read deadlines against slowloris) on a shard. hyper wants
//! sleeps that are `Send + Sync`, which glommio's timers are not, so a sleep here is only its
//! deadline: polled (always on its own shard's thread) it registers its waker in the shard's
//! timer table, and one task per shard wakes the due ones. A sleep dropped before its deadline
//! takes its entry out again: every entry holds a clone of its connection task's waker, and a
//! glommio task's reference count is an `i16` — 32,768 requests on one kept-alive connection
//! within the header timeout (hyper makes a sleep per request) overflowed it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::shard::notify::Notify;

/// The shard's pending deadlines.
#[derive(Default)]
struct Table {
    due: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_id: std::cell::Cell<u64>,
    earlier: Notify,
}

thread_local! {
    static TABLE: RefCell<Option<Rc<Table>>> = const { RefCell::new(None) };
}

/// hyper's timer for connections served on this shard.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShardTimer;

impl ShardTimer {
    /// The timer for the calling shard; starts the shard's timer task on first use.
    pub(crate) fn start() -> ShardTimer {
        TABLE.with(|slot| {
            if slot.borrow().is_some() {
                return;
            }
            let table = Rc::new(Table::default());
            *slot.borrow_mut() = Some(Rc::clone(&table));
            glommio::spawn_local(wake_due(table)).detach();
        });
        ShardTimer
    }
}

impl hyper::rt::Timer for ShardTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            deadline,
            id: AtomicU64::new(0),
        })
    }
}

/// One deadline; `id` is its table entry's, 0 until registered.
struct Sleep {
    deadline: Instant,
    id: AtomicU64,
}

impl hyper::rt::Sleep for Sleep {}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        // One registration per sleep: hyper polls it from one connection task, whose waker
        // does not change.
        if self.id.load(Ordering::Relaxed) == 0 {
            TABLE.with(|slot| {
                if let Some(table) = slot.borrow().as_ref() {
                    let id = table.add(self.deadline, cx.waker().clone());
                    self.id.store(id, Ordering::Relaxed);
                }
            });
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let id = self.id.load(Ordering::Relaxed);
        if id == 0 {
            return;
        }
        // On another thread there is no table: the entry then ends at its deadline.
        TABLE.with(|slot| {
            if let Some(table) = slot.borrow().as_ref()
                && let Ok(mut due) = table.due.try_borrow_mut()
            {
                due.remove(&(self.deadline, id));
            }
        });
    }
}

impl Table {
    /// Registers `waker` for `deadline`; returns the entry's id (never 0).
    fn add(&self, deadline: Instant, waker: Waker) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let mut due = self.due.borrow_mut();
        let earliest = due.keys().next().is_none_or(|(first, _)| deadline < *first);
        due.insert((deadline, id), waker);
        drop(due);
        if earliest {
            self.earlier.notify();
        }
        id
    }

    /// Wakes every sleep that is due; returns the next deadline.
    fn wake_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due = self.due.borrow_mut();
        while let Some(entry) = due.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            entry.remove().wake();
        }
        None
    }
}

async fn wake_due(table: Rc<Table>) {
    loop {
        let earlier = table.earlier.notified();
        match table.wake_due() {
            Some(next) => {
                let wait = next.saturating_duration_since(Instant::now());
                futures_lite::future::or(glommio::timer::sleep(wait), earlier).await;
            }
            None => earlier.await,
        }
    }
}
