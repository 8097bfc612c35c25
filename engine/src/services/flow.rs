//! Flow control per service, kept by the service's home shard (`home_shard` of its name: one
//! owner for one ordered queue): at most `max_concurrent` requests in flight over all
//! instances and requesters, then a FIFO of at most `queue_limit` waiting for a slot for up to
//! `queue_timeout_ms`, then `SERVICE_BUSY`; and `rate_per_sec` over all requesters. A gate
//! exists while it has requests in flight or waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::options::ServiceConfig;
use crate::fast_map::FastMap;
use crate::routing::ShardId;
use crate::shard::rate::TokenBucket;

/// A request waiting for a slot: its requester's shard and key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) shard: ShardId,
    pub(crate) key: u64,
    until: Instant,
}

/// What the gate says to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go: it holds a slot until it is released.
    Admit,
    /// Wait in the queue; the gate admits or refuses it later.
    Wait,
    /// Refused: try again after this long.
    Busy(Duration),
}

#[derive(Debug)]
struct Gate {
    in_flight: u32,
    queue: VecDeque<Waiter>,
    rate: Option<TokenBucket>,
}

/// The gates of the services this shard is home to.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    gates: FastMap<Box<str>, Gate>,
}

impl Gates {
    /// Asks for a slot for request `key` of `shard` to service `name`.
    pub(crate) fn admit(
        &mut self,
        name: &str,
        options: &ServiceConfig,
        waiter: (ShardId, u64),
        now: Instant,
    ) -> Verdict {
        let gate = self.gates.entry(name.into()).or_insert_with(|| Gate {
            in_flight: 0,
            queue: VecDeque::new(),
            rate: (options.rate_per_sec > 0)
                .then(|| TokenBucket::new(u64::from(options.rate_per_sec), now)),
        });
        if let Some(rate) = &mut gate.rate
            && let Err(wait) = rate.take(1.0, now)
        {
            let verdict = Verdict::Busy(wait);
            self.forget_idle(name);
            return verdict;
        }
        let max = options.max_concurrent;
        if max == 0 || gate.in_flight < max {
            gate.in_flight += 1;
            return Verdict::Admit;
        }
        if gate.queue.len() < options.queue_limit as usize {
            let until = now + Duration::from_millis(options.queue_timeout_ms);
            let (shard, key) = waiter;
            gate.queue.push_back(Waiter { shard, key, until });
            return Verdict::Wait;
        }
        Verdict::Busy(Duration::from_millis(options.queue_timeout_ms.max(1)))
    }

    /// A request of `name` holding a slot ended; returns the waiter that gets the slot.
    pub(crate) fn release(&mut self, name: &str) -> Option<Waiter> {
        let gate = self.gates.get_mut(name)?;
        let next = gate.queue.pop_front();
        if next.is_none() {
            gate.in_flight = gate.in_flight.saturating_sub(1);
        }
        self.forget_idle(name);
        next
    }

    /// The waiters whose `queue_timeout_ms` passed by `now`, taken out of their queues.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Waiter> {
        let mut expired = Vec::new();
        for gate in self.gates.values_mut() {
            while gate.queue.front().is_some_and(|w| w.until <= now) {
                expired.extend(gate.queue.pop_front());
            }
        }
        self.gates
            .retain(|_, g| g.in_flight > 0 || !g.queue.is_empty());
        expired
    }

    /// When the earliest waiter's time is up.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.gates
            .values()
            .filter_map(|g| g.queue.front().map(|w| w.until))
            .min()
    }

    /// Requests `name` has in flight and waiting (0, 0 without a gate).
    pub(crate) fn depth(&self, name: &str) -> (u32, usize) {
        self.gates
            .get(name)
            .map_or((0, 0), |g| (g.in_flight, g.queue.len()))
    }

    /// The service has no instance left: its gate (and rate) goes; returns its waiters, who
    /// must still hear a verdict.
    pub(crate) fn forget(&mut self, name: &str) -> Vec<Waiter> {
        self.gates
            .remove(name)
            .map(|gate| gate.queue.into())
            .unwrap_or_default()
    }

    fn forget_idle(&mut self, name: &str) {
        if self
            .gates
            .get(name)
            .is_some_and(|g| g.in_flight == 0 && g.queue.is_empty() && g.rate.is_none())
        {
            self.gates.remove(name);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn options(max_concurrent: u32, queue_limit: u32) -> ServiceConfig {
        ServiceConfig {
            max_concurrent,
            queue_limit,
            queue_timeout_ms: 100,
            ..ServiceConfig::default()
        }
    }

    #[test]
    fn slots_then_a_fifo_then_busy_and_releases_admit_in_order() {
        let mut gates = Gates::default();
        let o = options(2, 2);
        let now = Instant::now();
        assert_eq!(gates.admit("s", &o, (0, 1), now), Verdict::Admit);
        assert_eq!(gates.admit("s", &o, (1, 2), now), Verdict::Admit);
        assert_eq!(gates.admit("s", &o, (0, 3), now), Verdict::Wait);
        assert_eq!(gates.admit("s", &o, (1, 4), now), Verdict::Wait);
        assert!(matches!(
            gates.admit("s", &o, (0, 5), now),
            Verdict::Busy(_)
        ));
        assert_eq!(gates.release("s").map(|w| w.key), Some(3));
        assert_eq!(gates.depth("s"), (2, 1));
        let later = now + Duration::from_millis(100);
        assert_eq!(
            gates
                .expire(later)
                .iter()
                .map(|w| w.key)
                .collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(gates.release("s"), None);
        assert_eq!(gates.release("s"), None);
        assert!(gates.gates.is_empty(), "an idle gate goes");
    }

    #[test]
    fn a_rate_limits_over_every_requester() {
        let mut gates = Gates::default();
        let o = ServiceConfig {
            rate_per_sec: 3,
            ..ServiceConfig::default()
        };
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..5).map(|k| gates.admit("r", &o, (0, k), now)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Admit).count(), 3);
        assert!(matches!(verdicts[4], Verdict::Busy(wait) if wait > Duration::ZERO));
    }
}
