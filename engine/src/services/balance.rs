//! Picking one instance for a request: health first (instances that are unhealthy, draining
//! or tripped get nothing; degraded ones only when no instance is `ok`), then the service's
//! strategy among the rest. Everything here is this shard's view: its replica of the
//! registry and the requests it has in flight itself.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use shardbus_protocol::Health;

use super::options::Strategy;
use super::registry::Instance;

/// How well an instance may serve now: `None` when it may not at all.
fn tier(instance: &Instance, now: Instant) -> Option<u8> {
    if instance.tripped_until.is_some_and(|until| until > now) {
        return None;
    }
    match instance.health {
        Health::Ok => Some(0),
        Health::Degraded => Some(1),
        Health::Draining | Health::Unhealthy => None,
    }
}

/// The index in `instances` of the one to send to: among those `offers` accepts (it lists the
/// endpoint, it is not the one that just vanished) in the best tier, as `strategy` picks.
/// `cursor` is the service's rotation, `key` the sticky key for `consistent_hash`.
pub(crate) fn pick(
    instances: &mut [Instance],
    strategy: Strategy,
    cursor: &mut usize,
    key: Option<&[u8]>,
    now: Instant,
    offers: impl Fn(&Instance) -> bool,
) -> Option<usize> {
    let best = instances
        .iter()
        .filter(|i| offers(i))
        .filter_map(|i| tier(i, now))
        .min()?;
    let eligible = |i: &Instance| offers(i) && tier(i, now) == Some(best);
    let n = instances.len();
    let start = *cursor % n.max(1);
    *cursor = cursor.wrapping_add(1);
    // Every index once, from the rotation's place: ties go round.
    let rotation = (0..n).map(|k| (start + k) % n);
    match (strategy, key) {
        (Strategy::RoundRobin, _) | (Strategy::ConsistentHash, None) => rotation
            .into_iter()
            .find(|&k| instances.get(k).is_some_and(eligible)),
        (Strategy::LeastPending, _) => rotation
            .filter(|&k| instances.get(k).is_some_and(eligible))
            .min_by_key(|&k| instances.get(k).map_or(u32::MAX, |i| i.pending)),
        (Strategy::Weighted, _) => smooth_weighted(instances, &eligible),
        (Strategy::ConsistentHash, Some(key)) => instances
            .iter()
            .enumerate()
            .filter(|(_, i)| eligible(i))
            .max_by_key(|(_, i)| rendezvous(key, i.id))
            .map(|(k, _)| k),
    }
}

/// nginx's smooth weighted round robin: every eligible instance gains its weight, the richest
/// is picked and pays the total. Over any window each gets its share, interleaved.
fn smooth_weighted(
    instances: &mut [Instance],
    eligible: &impl Fn(&Instance) -> bool,
) -> Option<usize> {
    let mut total = 0i64;
    let mut chosen: Option<usize> = None;
    let mut richest = i64::MIN;
    for (k, instance) in instances.iter_mut().enumerate() {
        if !eligible(instance) {
            continue;
        }
        let weight = i64::from(instance.weight.max(1));
        instance.credit += weight;
        total += weight;
        if instance.credit > richest {
            richest = instance.credit;
            chosen = Some(k);
        }
    }
    let instance = instances.get_mut(chosen?)?;
    instance.credit -= total;
    chosen
}

/// Rendezvous (highest random weight) score of `key` on instance `id`: the same on every
/// shard and every run, so a key sticks to one instance while it lives.
fn rendezvous(key: &[u8], id: u64) -> u64 {
    // Fixed keys: the score must agree across shards, which a random hasher would not.
    let mut hasher = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
    hasher.write(key);
    hasher.write_u64(id);
    hasher.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;
    use std::time::Duration;

    fn instances(n: u64) -> Vec<Instance> {
        (1..=n).map(Instance::for_test).collect()
    }

    fn picks(list: &mut [Instance], strategy: Strategy, key: Option<&[u8]>, n: usize) -> Vec<u64> {
        let mut cursor = 0;
        let now = Instant::now();
        (0..n)
            .map(|_| {
                let k = pick(list, strategy, &mut cursor, key, now, |_| true).unwrap();
                list[k].id
            })
            .collect()
    }

    #[test]
    fn round_robin_goes_round_and_skips_who_may_not_serve() {
        let mut list = instances(3);
        assert_eq!(
            picks(&mut list, Strategy::RoundRobin, None, 6),
            [1, 2, 3, 1, 2, 3]
        );
        list[1].health = Health::Draining;
        list[2].tripped_until = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(picks(&mut list, Strategy::RoundRobin, None, 3), [1, 1, 1]);
        list[0].health = Health::Degraded;
        list[2].tripped_until = None;
        assert_eq!(
            picks(&mut list, Strategy::RoundRobin, None, 2),
            [3, 3],
            "ok before degraded"
        );
        for i in &mut list {
            i.health = Health::Unhealthy;
        }
        let mut cursor = 0;
        assert!(
            pick(
                &mut list,
                Strategy::RoundRobin,
                &mut cursor,
                None,
                Instant::now(),
                |_| true
            )
            .is_none()
        );
    }

    #[test]
    fn least_pending_avoids_the_busy_one() {
        let mut list = instances(3);
        list[0].pending = 5;
        list[1].pending = 1;
        list[2].pending = 1;
        let chosen = picks(&mut list, Strategy::LeastPending, None, 4);
        assert!(!chosen.contains(&1));
        assert!(
            chosen.contains(&2) && chosen.contains(&3),
            "ties go round: {chosen:?}"
        );
    }

    #[test]
    fn weighted_gives_each_its_share_interleaved() {
        let mut list = instances(3);
        list[0].weight = 5;
        list[1].weight = 1;
        list[2].weight = 1;
        let chosen = picks(&mut list, Strategy::Weighted, None, 70);
        let count = |id| chosen.iter().filter(|&&c| c == id).count();
        assert_eq!((count(1), count(2), count(3)), (50, 10, 10));
        assert!(
            chosen.windows(2).take(7).any(|w| w[0] != w[1]),
            "interleaved"
        );
    }

    #[test]
    fn consistent_hash_sticks_and_moves_only_the_gone_ones_keys() {
        let mut list = instances(4);
        let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
        let before: Vec<u64> = keys
            .iter()
            .map(|k| picks(&mut list, Strategy::ConsistentHash, Some(k.as_bytes()), 2))
            .map(|p| {
                assert_eq!(p[0], p[1], "sticky");
                p[0]
            })
            .collect();
        list[2].health = Health::Unhealthy; // instance 3 gone
        for (key, was) in keys.iter().zip(&before) {
            let now = picks(&mut list, Strategy::ConsistentHash, Some(key.as_bytes()), 1)[0];
            if *was != 3 {
                assert_eq!(now, *was, "{key} moved though its instance stayed");
            } else {
                assert_ne!(now, 3);
            }
        }
        let spread: std::collections::HashSet<&u64> = before.iter().collect();
        assert_eq!(spread.len(), 4);
    }
}
