//! The in-process engine bench's harness delivers what it claims: every message published on
//! shard 0 reaches every subscriber on every shard, counted once, with no sockets.

#![allow(clippy::unwrap_used)] // tests may panic

use shardbus_engine::config::Config;
use shardbus_engine::inproc::{self, Load};

fn small_load() -> Load {
    Load {
        subscribers_per_shard: 3,
        subject: "bench.engine".to_owned(),
        payload: 100,
        frames_per_read: 16,
        warmup_reads: 5,
        reads: 50,
    }
}

fn run(shards: usize) -> inproc::Report {
    let mut config = Config {
        shards,
        ..Config::default()
    };
    config.runtime.io_memory = 64 << 10;
    inproc::run(&config, &small_load()).unwrap()
}

#[test]
fn one_shard_delivers_every_message_to_every_subscriber() {
    let report = run(1);
    assert_eq!(report.shards, 1);
    assert_eq!(report.published, 50 * 16);
    assert_eq!(report.delivered, 50 * 16 * 3);
}

#[test]
fn two_shards_deliver_across_the_mesh() {
    let report = run(2);
    assert_eq!(report.shards, 2);
    assert_eq!(report.published, 50 * 16);
    assert_eq!(report.delivered, 50 * 16 * 3 * 2);
    assert!(report.deliveries_per_sec() > 0.0);
}
