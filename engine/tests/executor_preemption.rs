//! The patched glommio under every shard (`vendor/glommio`) keeps its preemption timer while
//! it runs, awake or asleep, instead of arming a fresh one on every poll. A task that never
//! suspends (a session whose socket always has input) yields only when that timer fires, so a
//! timer must be in the kernel whenever tasks run, whatever woke the executor and whenever the
//! kept one fired: a run without one never ends, and the shard's timers (heartbeat, keepalive)
//! stop. And a kept timer can fire before any woken task ran, which must not make the executor
//! take its queues for empty and park: nothing wakes it again for a task already woken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

/// Set from another thread, which then wakes the task waiting for it: a foreign wake, as the
/// Redis bridge and the cluster threads give a shard.
#[derive(Default)]
struct Signal {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn raise(&self) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> + '_ {
        SignalWait(self)
    }
}

struct SignalWait<'a>(&'a Arc<Signal>);

impl Future for SignalWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let signal = self.0;
        *signal.waker.lock().unwrap() = Some(cx.waker().clone());
        if signal.set.swap(false, Ordering::SeqCst) {
            signal.waker.lock().unwrap().take();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Rounds of: a foreign wake at a time that varies against the preemption timer, then a task
/// that never suspends until a timer it starts has fired. The executor must preempt the task
/// every time, so that the timer runs, and must never sleep through the wake.
#[test]
fn a_task_that_never_suspends_is_preempted_whatever_woke_the_executor() {
    const ROUNDS: u32 = 3_000;
    // Far above a preemption period (1 ms), far below the stall the bug causes (forever).
    const STUCK: Duration = Duration::from_secs(10);

    let signal = Arc::new(Signal::default());
    let (done_tx, done_rx) = mpsc::channel::<Result<(), Duration>>();
    let executor = {
        let signal = Arc::clone(&signal);
        LocalExecutorBuilder::new(Placement::Unbound)
            .preempt_timer(Duration::from_millis(1))
            .spawn(move || async move {
                for _ in 0..ROUNDS {
                    signal.wait().await;
                    let fired = Rc::new(Cell::new(false));
                    let timer = {
                        let fired = Rc::clone(&fired);
                        glommio::spawn_local(async move {
                            glommio::timer::sleep(Duration::from_micros(100)).await;
                            fired.set(true);
                        })
                    };
                    let started = Instant::now();
                    while !fired.get() {
                        if started.elapsed() > STUCK {
                            let _ = done_tx.send(Err(started.elapsed()));
                            return;
                        }
                        glommio::yield_if_needed().await;
                    }
                    timer.await;
                    if done_tx.send(Ok(())).is_err() {
                        return;
                    }
                }
            })
            .unwrap()
    };

    // The pause before each wake sweeps across two preemption periods, so some wakes and polls
    // land as a kept preemption timer fires.
    for round in 0..ROUNDS {
        std::thread::sleep(Duration::from_micros(u64::from(round % 41) * 50));
        signal.raise();
        match done_rx.recv_timeout(STUCK * 3) {
            Ok(Ok(())) => {}
            Ok(Err(stuck)) => panic!(
                "round {round}: a task that never suspends ran {stuck:?} without being \
                 preempted; the executor's timers did not run"
            ),
            Err(error) => panic!("round {round}: the executor did not answer: {error}"),
        }
    }
    executor.join().unwrap();
}

/// A ping-pong with a foreign thread, answered while the executor spins before parking. A
/// kept preemption timer that fires after a poll has queued the woken task but before any task
/// ran must not make the executor take the queue for empty and park: nothing would wake it for
/// a task already woken, and the ping would never be answered.
#[test]
fn a_woken_task_runs_before_the_executor_parks_whenever_the_preemption_timer_fires() {
    const ROUNDS: u32 = 300_000;
    // Far above a round trip (tens of microseconds), far below forever.
    const NO_ANSWER: Duration = Duration::from_secs(30);

    let signal = Arc::new(Signal::default());
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let executor = {
        let signal = Arc::clone(&signal);
        LocalExecutorBuilder::new(Placement::Unbound)
            .preempt_timer(Duration::from_millis(1))
            .spin_before_park(Duration::from_micros(200))
            .spawn(move || async move {
                for round in 0..ROUNDS {
                    signal.wait().await;
                    if done_tx.send(round).is_err() {
                        return;
                    }
                }
            })
            .unwrap()
    };

    for round in 0..ROUNDS {
        signal.raise();
        match done_rx.recv_timeout(NO_ANSWER) {
            Ok(answered) => assert_eq!(answered, round),
            Err(error) => panic!("round {round}: the executor did not answer: {error}"),
        }
    }
    executor.join().unwrap();
}
