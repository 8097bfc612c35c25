//! Send times carried in payloads: the first 8 bytes of every payload are the nanoseconds since
//! the bench started at which the message was (meant to be) sent. With a fixed target rate the
//! *intended* send time is stamped, so a stall in the broker shows in the latency of every
//! message queued behind it (no coordinated omission).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Smallest payload that carries a stamp.
pub const MIN_PAYLOAD: usize = 8;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the bench's epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The instant `ns` after the epoch.
pub fn instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

/// Writes `ns` into the payload's first 8 bytes.
pub fn write(payload: &mut [u8], ns: u64) {
    if let Some(head) = payload.first_chunk_mut::<8>() {
        *head = ns.to_le_bytes();
    }
}

/// Reads the stamp of a payload (0 when it is too short to carry one).
pub fn read(payload: &[u8]) -> u64 {
    payload
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_le_bytes(*b))
}
