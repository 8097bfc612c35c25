//! The router's publish decisions, with its caches, against a reference: routers of three
//! shards, fed each other's interest changes in order, through random subscribes, unsubscribes
//! and publishes. Every publish must reach exactly the matching plain subscribers here, exactly
//! the other shards with matching plain subscribers, and exactly one member of a matching queue
//! group wherever its members are.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use std::collections::BTreeSet;

mod common;

use proptest::prelude::*;
use shardbus_engine::routing::{Route, Router, ShardId, SubKey};
use shardbus_protocol::topic::matches;

const SHARDS: usize = 3;
const TOKENS: &[&str] = &["a", "b", "c"];

#[derive(Debug, Clone)]
enum Step {
    Subscribe {
        shard: usize,
        pattern: String,
        grouped: bool,
    },
    Unsubscribe {
        index: usize,
    },
    Publish {
        shard: usize,
        subject: String,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..SHARDS, common::pattern(TOKENS, 2), prop::bool::weighted(0.3))
            .prop_map(|(shard, pattern, grouped)| Step::Subscribe { shard, pattern, grouped }),
        2 => any::<usize>().prop_map(|index| Step::Unsubscribe { index }),
        4 => (0..SHARDS, common::subject(TOKENS, 3))
            .prop_map(|(shard, subject)| Step::Publish { shard, subject }),
    ]
}

/// A live subscription: its shard, pattern, whether it is in group "q", and its key.
type Live = (usize, String, bool, SubKey);

fn queue(grouped: bool) -> Option<&'static str> {
    grouped.then_some("q")
}

fn check_publish(
    router: &mut Router,
    me: usize,
    subject: &str,
    live: &[Live],
) -> Result<(), TestCaseError> {
    let mut route = Route::default();
    router.route_publish(subject.as_bytes(), u64::MAX, true, &mut route);
    let matching = || live.iter().filter(|l| matches(&l.1, subject));
    let ids = |k: &SubKey| (k.conn, k.sid);
    let local_plain: BTreeSet<(u64, u64)> = route
        .local
        .iter()
        .filter(|k| matching().any(|l| l.3 == **k && !l.2))
        .map(ids)
        .collect();
    let want_local: BTreeSet<(u64, u64)> = matching()
        .filter(|l| l.0 == me && !l.2)
        .map(|l| ids(&l.3))
        .collect();
    prop_assert_eq!(
        local_plain,
        want_local,
        "local plain, shard {}, {}",
        me,
        subject
    );
    let remote_plain: BTreeSet<ShardId> = route
        .remote
        .iter()
        .filter(|(_, g)| g.is_none())
        .map(|(s, _)| *s)
        .collect();
    let want_remote: BTreeSet<ShardId> = matching()
        .filter(|l| l.0 != me && !l.2)
        .map(|l| l.0 as ShardId)
        .collect();
    prop_assert_eq!(
        remote_plain,
        want_remote,
        "remote plain, shard {}, {}",
        me,
        subject
    );
    let local_picks = route
        .local
        .iter()
        .filter(|k| matching().any(|l| l.3 == **k && l.2))
        .count();
    let remote_picks = route.remote.iter().filter(|(_, g)| g.is_some()).count();
    let want_picks = usize::from(matching().any(|l| l.2));
    prop_assert_eq!(
        local_picks + remote_picks,
        want_picks,
        "group picks, {}",
        subject
    );
    prop_assert_eq!(
        route.local.len(),
        route.local.iter().map(ids).collect::<BTreeSet<_>>().len(),
        "a local subscriber twice"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn routers_fed_each_others_changes_route_every_publish_exactly(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        let mut routers: Vec<Router> = (0..SHARDS).map(|s| Router::new(s as ShardId, 4)).collect();
        let mut live: Vec<Live> = Vec::new();
        let mut next_sid = 0;
        for step in steps {
            let change = match step {
                Step::Subscribe { shard, pattern, grouped } => {
                    next_sid += 1;
                    let key = SubKey { conn: shard as u64, sid: next_sid };
                    let change = routers[shard].subscribe(pattern.as_bytes(), queue(grouped), key);
                    live.push((shard, pattern, grouped, key));
                    change
                }
                Step::Unsubscribe { index } => {
                    if live.is_empty() {
                        continue;
                    }
                    let (shard, pattern, grouped, key) = live.swap_remove(index % live.len());
                    routers[shard].unsubscribe(pattern.as_bytes(), queue(grouped), &key)
                }
                Step::Publish { shard, subject } => {
                    check_publish(&mut routers[shard], shard, &subject, &live)?;
                    None
                }
            };
            if let Some(change) = change {
                for (other, router) in routers.iter_mut().enumerate() {
                    if other != usize::from(change.shard) {
                        router.apply(&change);
                    }
                }
            }
        }
    }
}
