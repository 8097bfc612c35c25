//! Waiting on many connections from one load thread: each wire's socket (a duplicate
//! descriptor) and ppoll(2) with a sub-millisecond timeout, so one thread can drive many
//! connections without a thread, a wake-up and a context switch per connection.

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;

use crate::error::BenchError;
use crate::wire::Wire;

/// The sockets of `wires`, in order.
///
/// # Errors
/// A wire has no socket poll can wait on (a WebSocket's reader holds input of its own).
pub fn sockets<'a>(
    wires: impl Iterator<Item = &'a dyn Wire>,
) -> Result<Vec<TcpStream>, BenchError> {
    wires
        .map(|wire| {
            wire.poll_socket().ok_or_else(|| {
                BenchError::Setup(
                    "this target has no socket to poll: use a thread per connection".into(),
                )
            })
        })
        .collect()
}

/// The poll set of a thread's sockets, kept across waits (no allocation per wait).
pub struct Readiness<'s> {
    fds: Vec<PollFd<'s>>,
}

impl<'s> Readiness<'s> {
    /// A poll set over `sockets`, in order.
    pub fn new(sockets: &'s [TcpStream]) -> Readiness<'s> {
        Readiness {
            fds: sockets
                .iter()
                .map(|socket| PollFd::new(socket, PollFlags::POLLIN))
                .collect(),
        }
    }

    /// Waits up to `timeout` for input on the sockets `wanted` names; [`Readiness::ready`]
    /// then says which have some (or hung up, which their next read reports).
    ///
    /// # Errors
    /// ppoll failed.
    pub fn wait(&mut self, wanted: impl Fn(usize) -> bool, timeout: Duration) -> io::Result<()> {
        for (i, fd) in self.fds.iter_mut().enumerate() {
            fd.set_events(if wanted(i) {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            });
        }
        ppoll(&mut self.fds, Some(TimeSpec::from_duration(timeout)), None)
            .map_err(io::Error::from)?;
        Ok(())
    }

    /// Whether the `i`th socket had something at the last wait.
    pub fn ready(&self, i: usize) -> bool {
        self.fds
            .get(i)
            .is_some_and(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
    }
}
