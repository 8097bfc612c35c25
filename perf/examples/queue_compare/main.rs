//! The queue decision: the hazard-pointer MPMC queue (`haphazard`, a Michael-Scott
//! queue on its raw API) against `crossbeam-queue` (`ArrayQueue`, `SegQueue`), on the two
//! paths where a shared queue could serve:
//!
//! - **mesh**: one shard hands another batches of forwarded messages — one producer, one
//!   consumer, pinned to different cores; items are `Vec`s of 64 message handles, the way the
//!   mesh batches per poll cycle. glommio's `shared_channel` (what the mesh uses) runs the same
//!   transfer between two pinned executors.
//! - **work**: queue-group work distribution through one shared queue — 2 producers and 2
//!   consumers on 2 cores, single `u64` items.
//!
//! Each case moves a fixed number of items, checks every item arrived exactly once (sum and
//! count), and prints millions of items per second, best of 3.
//!
//! `cargo run --release -p shardbus-perf --example queue_compare`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod ms_queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_queue::{ArrayQueue, SegQueue};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use haphazard::HazardPointer;
use ms_queue::MsQueue;

const BATCH: usize = 64;
const MESH_ITEMS: u64 = 20_000_000;
const WORK_ITEMS: u64 = 4_000_000;
const RUNS: usize = 3;

/// A queue as the harness drives it: per-thread state (hazard pointers) plus push/pop.
trait Queue<T>: Send + Sync {
    type Local;
    fn local(&self) -> Self::Local;
    fn push(&self, local: &mut Self::Local, item: T) -> Result<(), T>;
    fn pop(&self, local: &mut Self::Local) -> Option<T>;
}

impl<T: Send> Queue<T> for ArrayQueue<T> {
    type Local = ();
    fn local(&self) {}
    fn push(&self, _: &mut (), item: T) -> Result<(), T> {
        ArrayQueue::push(self, item)
    }
    fn pop(&self, _: &mut ()) -> Option<T> {
        ArrayQueue::pop(self)
    }
}

impl<T: Send> Queue<T> for SegQueue<T> {
    type Local = ();
    fn local(&self) {}
    fn push(&self, _: &mut (), item: T) -> Result<(), T> {
        SegQueue::push(self, item);
        Ok(())
    }
    fn pop(&self, _: &mut ()) -> Option<T> {
        SegQueue::pop(self)
    }
}

impl<T: Send> Queue<T> for MsQueue<T> {
    type Local = (HazardPointer<'static>, HazardPointer<'static>);
    fn local(&self) -> Self::Local {
        (HazardPointer::new(), HazardPointer::new())
    }
    fn push(&self, local: &mut Self::Local, item: T) -> Result<(), T> {
        MsQueue::push(self, item, &mut local.0);
        Ok(())
    }
    fn pop(&self, local: &mut Self::Local) -> Option<T> {
        MsQueue::pop(self, &mut local.0, &mut local.1)
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// `producers` threads push `items` in total (batched as `Vec`s when `batched`), `consumers`
/// threads pop until all arrived. Returns items per second.
fn transfer<Q>(
    queue: Arc<Q>,
    producers: usize,
    consumers: usize,
    items: u64,
    cores: &[usize],
) -> f64
where
    Q: Queue<Vec<u64>> + 'static,
{
    let received = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let per_producer = items / producers as u64;
    let mut threads = Vec::new();
    for p in 0..producers {
        let queue = Arc::clone(&queue);
        let core = cores.get(p % cores.len().max(1)).copied();
        threads.push(std::thread::spawn(move || {
            pin(core);
            let mut local = queue.local();
            let first = p as u64 * per_producer;
            let mut next = first;
            while next < first + per_producer {
                let end = (next + BATCH as u64).min(first + per_producer);
                let mut batch: Vec<u64> = (next..end).collect();
                loop {
                    match queue.push(&mut local, batch) {
                        Ok(()) => break,
                        Err(back) => {
                            batch = back;
                            std::hint::spin_loop();
                        }
                    }
                }
                next = end;
            }
        }));
    }
    for c in 0..consumers {
        let queue = Arc::clone(&queue);
        let (received, sum) = (Arc::clone(&received), Arc::clone(&sum));
        let core = cores.get((producers + c) % cores.len().max(1)).copied();
        let total = per_producer * producers as u64;
        threads.push(std::thread::spawn(move || {
            pin(core);
            let mut local = queue.local();
            while received.load(Ordering::Relaxed) < total {
                match queue.pop(&mut local) {
                    Some(batch) => {
                        sum.fetch_add(batch.iter().sum::<u64>(), Ordering::Relaxed);
                        received.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    None => std::hint::spin_loop(),
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    let total = per_producer * producers as u64;
    assert_eq!(
        received.load(Ordering::Relaxed),
        total,
        "every item arrived once"
    );
    assert_eq!(
        sum.load(Ordering::Relaxed),
        total * (total - 1) / 2,
        "and no item twice"
    );
    total as f64 / elapsed.as_secs_f64()
}

/// The same one-way transfer of `Vec` batches over glommio's `shared_channel`.
fn shared_channel_transfer(items: u64, cores: &[usize]) -> f64 {
    let (tx, rx) = shared_channel::new_bounded::<Vec<u64>>(1024);
    let core = |i: usize| {
        cores
            .get(i)
            .copied()
            .map_or(Placement::Unbound, Placement::Fixed)
    };
    let start = Instant::now();
    let consumer = LocalExecutorBuilder::new(core(1))
        .io_memory(64 << 10)
        .spawn(move || async move {
            let rx = rx.connect().await;
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(batch) = rx.recv().await {
                n += batch.len() as u64;
                sum += batch.iter().sum::<u64>();
            }
            (n, sum)
        })
        .unwrap();
    let producer = LocalExecutorBuilder::new(core(0))
        .io_memory(64 << 10)
        .spawn(move || async move {
            let tx = tx.connect().await;
            let mut next = 0;
            while next < items {
                let end = (next + BATCH as u64).min(items);
                tx.send((next..end).collect()).await.unwrap();
                next = end;
            }
        })
        .unwrap();
    producer.join().unwrap();
    let (n, sum) = consumer.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!((n, sum), (items, items * (items - 1) / 2));
    items as f64 / elapsed.as_secs_f64()
}

fn best(mut run: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| run()).fold(0.0, f64::max) / 1e6
}

fn main() {
    // get_core_ids returns the calling thread's mask: read it before pinning anything.
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    println!(
        "nproc {}, cores {cores:?}, best of {RUNS}, M items/s",
        cores.len()
    );
    println!("mesh: 1 producer → 1 consumer, pinned, Vec batches of {BATCH}, {MESH_ITEMS} items");
    let mesh = [
        (
            "crossbeam ArrayQueue(1024)",
            best(|| transfer(Arc::new(ArrayQueue::new(1024)), 1, 1, MESH_ITEMS, &cores)),
        ),
        (
            "crossbeam SegQueue",
            best(|| transfer(Arc::new(SegQueue::new()), 1, 1, MESH_ITEMS, &cores)),
        ),
        (
            "haphazard MS queue",
            best(|| transfer(Arc::new(MsQueue::new()), 1, 1, MESH_ITEMS, &cores)),
        ),
        (
            "glommio shared_channel(1024)",
            best(|| shared_channel_transfer(MESH_ITEMS, &cores)),
        ),
    ];
    for (name, rate) in mesh {
        println!("  {name:<30} {rate:>8.1}");
    }
    println!("work: 2 producers → 2 consumers, unpinned, single items, {WORK_ITEMS} items");
    let work = [
        (
            "crossbeam ArrayQueue(1024)",
            best(|| single(Arc::new(ArrayQueue::new(1024)))),
        ),
        (
            "crossbeam SegQueue",
            best(|| single(Arc::new(SegQueue::new()))),
        ),
        (
            "haphazard MS queue",
            best(|| single(Arc::new(MsQueue::new()))),
        ),
    ];
    for (name, rate) in work {
        println!("  {name:<30} {rate:>8.1}");
    }
}

/// The work-distribution case: single `u64` items.
fn single<Q>(queue: Arc<Q>) -> f64
where
    Q: Queue<u64> + 'static,
{
    let received = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let per_producer = WORK_ITEMS / 2;
    let start = Instant::now();
    let mut threads = Vec::new();
    for p in 0..2u64 {
        let queue = Arc::clone(&queue);
        threads.push(std::thread::spawn(move || {
            let mut local = queue.local();
            for i in p * per_producer..(p + 1) * per_producer {
                let mut item = i;
                while let Err(back) = queue.push(&mut local, item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        }));
    }
    for _ in 0..2 {
        let queue = Arc::clone(&queue);
        let (received, sum) = (Arc::clone(&received), Arc::clone(&sum));
        threads.push(std::thread::spawn(move || {
            let mut local = queue.local();
            while received.load(Ordering::Relaxed) < WORK_ITEMS {
                match queue.pop(&mut local) {
                    Some(item) => {
                        sum.fetch_add(item, Ordering::Relaxed);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    None => std::thread::yield_now(),
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(received.load(Ordering::Relaxed), WORK_ITEMS);
    assert_eq!(
        sum.load(Ordering::Relaxed),
        WORK_ITEMS * (WORK_ITEMS - 1) / 2
    );
    WORK_ITEMS as f64 / elapsed.as_secs_f64()
}
