//! The locked-memory check that runs before any shard starts.
//!
//! Each shard registers `io_memory` bytes of buffers on three io_uring rings, so a process needs
//! `(3 × io_memory + 256 KiB) × shards` bytes of locked memory (ARCHITECTURE.md, "The
//! dependencies as measured", and the headroom measured here). That holds only with transparent huge pages off for the process,
//! which `Server::start` sees to: mimalloc's huge pages made each buffer count as 2 MiB. When the limit is
//! lower, glommio only logs a warning and silently falls back to slower unregistered buffers;
//! shardbus refuses to start instead and says what to change. Root with `CAP_IPC_LOCK` is not
//! bound by the limit.

/// Rings per shard that register the I/O memory.
pub const RINGS_PER_SHARD: u64 = 3;

/// Locked memory a shard pins beyond its registered buffers. Measured as an unprivileged
/// user on kernel 6.18: 2 shards of 1 MiB failed to register at exactly 6 MiB and succeeded
/// at 6.25 MiB (perf/RESULTS.md); 256 KiB per shard leaves a margin.
pub const HEADROOM_PER_SHARD: u64 = 256 << 10;

/// The `CAP_IPC_LOCK` capability bit.
const CAP_IPC_LOCK: u32 = 14;

/// Locked memory the shards need, in bytes.
pub fn required_bytes(io_memory: usize, shards: usize) -> u64 {
    RINGS_PER_SHARD
        .saturating_mul(io_memory as u64)
        .saturating_add(HEADROOM_PER_SHARD)
        .saturating_mul(shards as u64)
}

/// The process's locked-memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemlockLimit {
    /// No limit, or the process holds `CAP_IPC_LOCK`.
    Unlimited,
    /// The soft limit, in bytes.
    Bytes(u64),
}

/// Not enough locked memory for the shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not enough locked memory: {shards} shards × (3 rings × {io_memory} bytes of io_memory + \
     256 KiB) need {needed} bytes, but `ulimit -l` allows {limit} bytes. Raise it (`ulimit -l {needed_kib}` \
     in kibibytes, or memlock in /etc/security/limits.conf), or lower --shards or \
     runtime.io_memory"
)]
pub struct MemlockError {
    /// Bytes needed.
    pub needed: u64,
    /// `needed` in KiB, rounded up, as `ulimit -l` takes it.
    pub needed_kib: u64,
    /// The limit in bytes.
    pub limit: u64,
    /// Shards configured.
    pub shards: usize,
    /// Bytes of I/O memory per shard.
    pub io_memory: usize,
}

/// Checks `limit` against what `shards` shards of `io_memory` need.
///
/// # Errors
/// [`MemlockError`] with the numbers and the remedy.
pub fn check(limit: MemlockLimit, io_memory: usize, shards: usize) -> Result<(), MemlockError> {
    let needed = required_bytes(io_memory, shards);
    match limit {
        MemlockLimit::Bytes(limit) if limit < needed => Err(MemlockError {
            needed,
            needed_kib: needed.div_ceil(1024),
            limit,
            shards,
            io_memory,
        }),
        _ => Ok(()),
    }
}

/// Reads this process's limit from `/proc/self/limits` and `/proc/self/status`. When either
/// cannot be read, reports `Unlimited` and leaves the decision to the kernel.
pub fn current_limit() -> MemlockLimit {
    let has_cap = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_cap_eff(&status))
        .is_some_and(|caps| caps & (1u64 << CAP_IPC_LOCK) != 0);
    if has_cap {
        return MemlockLimit::Unlimited;
    }
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| parse_limits(&limits))
        .unwrap_or(MemlockLimit::Unlimited)
}

/// The effective capability mask from `/proc/self/status` text.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// The soft "Max locked memory" limit from `/proc/self/limits` text.
pub fn parse_limits(limits: &str) -> Option<MemlockLimit> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line
        .trim_start_matches("Max locked memory")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(MemlockLimit::Unlimited);
    }
    soft.parse().ok().map(MemlockLimit::Bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max open files            1024                 524288               files     \n\
Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn reads_the_soft_limit_and_the_capability() {
        assert_eq!(parse_limits(LIMITS), Some(MemlockLimit::Bytes(8_388_608)));
        let unlimited = LIMITS.replace(
            "8388608              8388608",
            "unlimited            unlimited",
        );
        assert_eq!(parse_limits(&unlimited), Some(MemlockLimit::Unlimited));
        assert_eq!(
            parse_cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
        assert_eq!(parse_cap_eff("CapEff:\t0000000000000000\n"), Some(0));
    }

    #[test]
    fn refuses_too_little_locked_memory_with_the_numbers_and_the_remedy() {
        assert_eq!(required_bytes(1 << 20, 2), (6 << 20) + (512 << 10));
        assert!(check(MemlockLimit::Bytes(8 << 20), 1 << 20, 2).is_ok());
        assert!(check(MemlockLimit::Bytes(6 << 20), 1 << 20, 2).is_err());
        assert!(check(MemlockLimit::Unlimited, 10 << 20, 64).is_ok());
        let err = check(MemlockLimit::Bytes(8 << 20), 10 << 20, 2).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("63438848 bytes"), "{text}");
        assert!(text.contains("ulimit -l 61952"), "{text}");
        assert!(text.contains("8388608 bytes"), "{text}");
    }
}
