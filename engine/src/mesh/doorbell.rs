//! `Doorbell`: how a shard that hands another shard work wakes it when it is idle. The idle
//! shard keeps a read on one end of a socket pair in its ring and says, before it waits, that
//! it is waiting; a shard that has just queued work for it writes one byte to the other end,
//! and only when it is waiting. The server rings every shard's bell too, whether it waits or
//! not, to *nudge* it: a shutdown or a reload was published (`Shared::nudge_shards`).
//!
//! glommio's `shared_channel`, which the mesh used before, also writes the *sending* shard's
//! eventfd on every receive, so that a sender waiting for room would know. A sender that has
//! handed its batch over and parked is woken by that for nothing: a whole wake, a poll cycle
//! and a park (with its membarrier) per mesh hop, two per cross-shard request and its answer
//! (perf/RESULTS.md, "request/reply across shards: where the CPU goes").

use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};

use futures_lite::AsyncReadExt;

/// Bytes one wait takes from the socket: rings are one byte each and come at most once per
/// wait, so a few cover what can have piled up.
const READ_AT_ONCE: usize = 64;

#[derive(Debug)]
struct State {
    waiting: AtomicBool,
    ring: UnixStream,
}

/// The side other shards ring. Cheap to clone: one per sending link.
#[derive(Clone, Debug)]
pub(crate) struct Bell {
    state: Arc<State>,
}

/// The idle shard's end before its executor takes it over ([`Ear::into_waiter`]).
pub(crate) struct Ear {
    state: Arc<State>,
    listen: UnixStream,
}

/// The idle shard's end, read through its own ring.
pub(crate) struct Waiter {
    state: Arc<State>,
    listen: glommio::net::UnixStream,
}

/// A new doorbell: the bell for the shards that send, the ear for the one that waits.
pub(crate) fn new() -> std::io::Result<(Bell, Ear)> {
    let (ring, listen) = UnixStream::pair()?;
    // A ring must never block the ringing shard: when the socket is full the waiter has
    // unread rings and wakes anyway.
    ring.set_nonblocking(true)?;
    let state = Arc::new(State {
        waiting: AtomicBool::new(false),
        ring,
    });
    Ok((
        Bell {
            state: Arc::clone(&state),
        },
        Ear { state, listen },
    ))
}

impl Bell {
    /// Wakes the waiting shard if it is waiting. Call after the work is queued: the fence
    /// orders the queueing before the look at `waiting`, as [`Waiter::arm`] orders its look at
    /// the queues after setting it, so either this sees it waiting or it sees the work.
    pub(crate) fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.state.waiting.swap(false, Ordering::SeqCst) {
            self.write();
        }
    }

    /// Wakes the waiting shard whether or not it waits (a channel closing).
    pub(crate) fn ring_always(&self) {
        self.state.waiting.store(false, Ordering::SeqCst);
        self.write();
    }

    fn write(&self) {
        // WouldBlock means rings are already unread; anything else means the waiter is gone.
        let _ = (&self.state.ring).write(&[1]);
    }
}

impl Ear {
    /// The waiting end, in the calling shard's executor.
    pub(crate) fn into_waiter(self) -> Waiter {
        let fd = self.listen.into_raw_fd();
        // SAFETY: `fd` is one end of a Unix socket pair created by `new` and owned by nothing
        // else once `into_raw_fd` gave it up; the glommio stream closes it when dropped.
        #[allow(unsafe_code)]
        let listen = unsafe { glommio::net::UnixStream::from_raw_fd(fd) };
        Waiter {
            state: self.state,
            listen,
        }
    }
}

impl Waiter {
    /// Says this shard is about to wait. Look at the queues after this and before
    /// [`Waiter::wait`]: work queued from here on rings.
    pub(crate) fn arm(&self) {
        self.state.waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Takes back [`Waiter::arm`] when the look found work. A ring that raced this leaves a
    /// byte behind, and the next wait returns at once: one extra look, never a lost wake.
    pub(crate) fn disarm(&self) {
        self.state.waiting.store(false, Ordering::Relaxed);
    }

    /// Waits for a ring. False when the socket failed, which does not happen while the
    /// bells live; the caller stops receiving then.
    pub(crate) async fn wait(&mut self) -> bool {
        let mut rings = [0u8; READ_AT_ONCE];
        matches!(self.listen.read(&mut rings).await, Ok(n) if n > 0)
    }
}
