//! The load scenarios and what they share: thread placement and joining.

pub mod conns;
pub mod flow;
mod readiness;
pub mod reqrep;
pub mod room;
mod subscriber;

use std::thread::JoinHandle;

use crate::error::BenchError;

/// Pins the calling thread to `core` if given.
pub fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// The core for the `index`th thread of a group that starts at `offset` (round robin).
pub fn core_for(cores: &[usize], offset: usize, index: usize) -> Option<usize> {
    if cores.is_empty() {
        return None;
    }
    cores.get((offset + index) % cores.len()).copied()
}

/// Joins load threads, turning a panic into an error.
pub fn join_all<T>(handles: Vec<JoinHandle<Result<T, BenchError>>>) -> Result<Vec<T>, BenchError> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| BenchError::Thread("panicked".to_owned()))?
        })
        .collect()
}
