//! The in-process engine bench: messages published on shard 0 and routed to
//! subscribers on every shard, through the server's own frame path, routing, mesh and
//! delivery, with no sockets ([`shardbus_engine::inproc`]). Counts routed deliveries (MSG frames
//! encoded into subscribers' outboxes) per second, at 1 and 2 shards, 3 runs each, and prints
//! each run and the median.
//!
//! `cargo run --release -p shardbus-perf --example engine_inproc -- [subscribers per shard] [payload bytes]`
//! (defaults 4 and 16; a third argument fixes the reads per run and a fourth the one shard count
//! to run, for callgrind).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a measurement harness, not a server path

use shardbus_engine::config::Config;
use shardbus_engine::inproc::{self, Load};

const RUNS: usize = 3;

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers_per_shard: usize = args.next().map_or(4, |a| a.parse().expect("subscribers"));
    let payload: usize = args
        .next()
        .map_or(16, |a| a.parse().expect("payload bytes"));
    // A third argument fixes the reads per run (for instruction counts under callgrind).
    let reads_override: Option<u64> = args.next().map(|a| a.parse().expect("reads"));
    // A fourth runs one shard count only.
    let only_shards: Option<usize> = args.next().map(|a| a.parse().expect("shards"));
    println!(
        "engine_inproc: {subscribers_per_shard} subscribers per shard, {payload} B payload, \
         256 PUB frames per read"
    );
    println!("shards  run  published   delivered      seconds  deliveries/s");
    for shards in [1, 2]
        .into_iter()
        .filter(|s| only_shards.is_none_or(|o| o == *s))
    {
        let config = Config {
            shards,
            ..Config::default()
        };
        let load = Load {
            subscribers_per_shard,
            subject: "bench.engine".to_owned(),
            payload,
            frames_per_read: 256,
            warmup_reads: 2_000,
            // About 30 M deliveries per run whatever the fan-out.
            reads: reads_override.unwrap_or(120_000 / (subscribers_per_shard * shards) as u64),
        };
        let mut rates = Vec::with_capacity(RUNS);
        for run in 1..=RUNS {
            let report = inproc::run(&config, &load).expect("engine bench");
            let rate = report.deliveries_per_sec();
            println!(
                "{shards:>6}  {run:>3}  {:>9}  {:>10}  {:>11.3}  {:>12.0}   cores {:?}",
                report.published,
                report.delivered,
                report.elapsed.as_secs_f64(),
                rate,
                report.cores
            );
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{shards:>6}  median {:.2} M deliveries/s (spread {:.2}–{:.2})",
            rates[RUNS / 2] / 1e6,
            rates[0] / 1e6,
            rates[RUNS - 1] / 1e6
        );
    }
}
