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

/// Waits up to `timeout` for input on the sockets `wanted` names, and sets `ready[i]` for each
/// socket that has some (or hung up, which its next read reports).
///
/// # Errors
/// ppoll failed.
pub fn wait(
    sockets: &[TcpStream],
    wanted: impl Fn(usize) -> bool,
    timeout: Duration,
    ready: &mut [bool],
) -> io::Result<()> {
    let mut fds: Vec<PollFd<'_>> = sockets
        .iter()
        .enumerate()
        .map(|(i, socket)| {
            let events = if wanted(i) {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            PollFd::new(socket, events)
        })
        .collect();
    ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None).map_err(io::Error::from)?;
    for (flag, fd) in ready.iter_mut().zip(&fds) {
        *flag = fd.revents().is_some_and(|r| !r.is_empty());
    }
    Ok(())
}
