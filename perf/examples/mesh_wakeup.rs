//! Cross-shard wake-up latency: two glommio executors pinned to different cores ping-pong a
//! timestamp over a pair of `shared_channel`s (the mesh's building block), for each idle policy
//! (`spin_before_park` in µs, from the command line). The round trip includes two wake-ups of
//! an executor that had nothing else to do, which is what a request/response crossing shards
//! pays. Prints p50/p90/p99/p99.9/max per policy.
//!
//! `cargo run --release -p shardbus-perf --example mesh_wakeup -- 0 10 50 200`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement harness, not a server path

use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

const ROUND_TRIPS: usize = 20_000;
const WARM_UP: usize = 1_000;

/// An executor pinned to `core` with the idle policy under test.
fn executor(name: &str, core: usize, spin: Duration) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(Placement::Fixed(core))
        .name(name)
        .io_memory(1 << 20)
        .spin_before_park(spin)
}

fn measure(spin_us: u64, cores: (usize, usize)) -> Histogram<u64> {
    let (to_echo, from_pinger) = shared_channel::new_bounded::<Instant>(16);
    let (to_pinger, from_echo) = shared_channel::new_bounded::<Instant>(16);
    let spin = Duration::from_micros(spin_us);
    let echo = executor("echo", cores.1, spin)
        .spawn(move || async move {
            let rx = from_pinger.connect().await;
            let tx = to_pinger.connect().await;
            while let Some(sent) = rx.recv().await {
                if tx.send(sent).await.is_err() {
                    break;
                }
            }
        })
        .expect("echo executor");
    let pinger = executor("pinger", cores.0, spin)
        .spawn(move || async move {
            let tx = to_echo.connect().await;
            let rx = from_echo.connect().await;
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            for i in 0..WARM_UP + ROUND_TRIPS {
                // A pause between round trips lets both executors go idle, as they are between
                // requests on a lightly loaded broker.
                glommio::timer::sleep(Duration::from_micros(300)).await;
                tx.send(Instant::now()).await.unwrap();
                let sent = rx.recv().await.unwrap();
                if i >= WARM_UP {
                    histogram.record(sent.elapsed().as_nanos() as u64).unwrap();
                }
            }
            histogram
        })
        .expect("pinger executor");
    let histogram = pinger.join().expect("pinger");
    echo.join().expect("echo");
    histogram
}

fn main() {
    // core_affinity's rule applies to glommio too: read the CPU list before pinning anything.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = (0, if cpus > 1 { 1 } else { 0 });
    let policies: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let policies = if policies.is_empty() {
        vec![0, 10, 50, 200]
    } else {
        policies
    };
    println!("cross-shard round trip, {ROUND_TRIPS} samples, cores {cores:?}, nproc {cpus}");
    println!(
        "{:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "spin µs", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for spin in policies {
        let h = measure(spin, cores);
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:>10} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            spin,
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0
        );
    }
}
