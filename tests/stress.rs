//! Stress: 100,000 tasks spawned and cancelled at random on each multi-threaded runtime. Every
//! future is dropped, `live_tasks()` returns to 0, and no memory is left behind (a counting
//! allocator, after every task of a round was alive at once and a warm-up round, which let the
//! executors grow their queues and task sets once).
#![cfg(any(feature = "tokio", feature = "smol", feature = "thread-pool"))]

mod common;

use std::alloc::System;
use std::future::Future;

use asynchronously::rt::{BoxFuture, Runtime};
use common::DropCounter;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const TASKS: usize = 100_000;

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One round: spawn `TASKS` tasks of random kinds and cancel, detach, abort or await them at
/// random; then drain. Every future must have been dropped.
fn round(rt: &Runtime, block_on: &dyn Fn(BoxFuture<()>), seed: u64) {
    let drops = DropCounter::new();
    let mut rng = Rng(seed);
    let mut kept = Vec::new();
    for _ in 0..TASKS {
        let token = drops.token();
        let kind = rng.below(4);
        let task = rt.spawn(async move {
            let _token = token;
            match kind {
                0 => {}
                1 => std::future::pending::<()>().await,
                2 => common::yield_now().await,
                _ => {
                    common::yield_now().await;
                    common::yield_now().await;
                }
            }
        });
        match (rng.below(3), kind) {
            (0, _) => drop(task),               // cancel
            (1, 1) => kept.push((task, true)),  // pending: abort it later
            (1, _) => kept.push((task, false)), // await it later
            (_, 1) => drop(task),               // a pending task cannot be detached for good
            _ => task.detach(),
        }
    }
    let rt2 = rt.clone();
    block_on(Box::pin(async move {
        for (task, abort) in kept {
            if abort {
                task.abort();
            }
            let outcome = task.await;
            assert_eq!(outcome.is_err(), abort);
        }
        rt2.wait_for_all_other_tasks().await;
    }));
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(drops.count(), TASKS, "every future was dropped");
}

/// Every task of a round alive at once, then cancelled: the executors' structures that grow with
/// the number of live tasks (smol's set of active tasks, for one) reach the largest size a round
/// can need before anything is measured. Without it, a measured round that happened to keep more
/// tasks alive at once than the warm-up did grew such a buffer once, and its 1 MiB counted as
/// "left behind" (2 runs in 8).
fn fill(rt: &Runtime, block_on: &dyn Fn(BoxFuture<()>)) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| rt.spawn(std::future::pending::<()>()))
        .collect();
    drop(tasks);
    let rt2 = rt.clone();
    block_on(Box::pin(
        async move { rt2.wait_for_all_other_tasks().await },
    ));
    assert_eq!(rt.live_tasks(), 0);
}

fn net_bytes(f: impl FnOnce()) -> i64 {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    // A realloc's growth or shrink is already in `bytes_allocated` / `bytes_deallocated`.
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

/// The allocation counter is process-wide: the stress tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stress(rt: Runtime, block_on: impl Fn(BoxFuture<()>) + Send + Sync + 'static) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    common::bounded(move || {
        fill(&rt, &block_on);
        round(&rt, &block_on, 0x9E37_79B9_7F4A_7C15); // warm-up: the executors grow their queues
        let leaked = net_bytes(|| round(&rt, &block_on, 0xD1B5_4A32_D192_ED03));
        // Measured: exactly 0 in 14 runs of 15, and -512 once (an executor freed during the
        // round a buffer it had made before). A task's state left behind would be at least
        // 100,000 times its size, so any few bytes an executor keeps for itself are allowed.
        assert!(
            leaked < 4096,
            "{leaked} bytes left behind after {TASKS} tasks"
        );
    });
}

fn block_on_with<F: Future<Output = ()>>(f: F) {
    futures::executor::block_on(f)
}

#[cfg(feature = "tokio")]
#[test]
#[cfg_attr(miri, ignore)]
fn stress_tokio_multi_thread() {
    let runtime = std::sync::Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let rt = {
        let tokio = asynchronously::rt::Tokio::new(runtime.handle().clone());
        Runtime::with_timer(tokio.clone(), tokio)
    };
    stress(rt, move |f| runtime.block_on(f));
}

#[cfg(feature = "smol")]
#[test]
#[cfg_attr(miri, ignore)]
fn stress_smol() {
    stress(Runtime::smol(), smol::block_on);
}

#[cfg(feature = "thread-pool")]
#[test]
#[cfg_attr(miri, ignore)]
fn stress_thread_pool() {
    let pool = asynchronously::rt::ThreadPool::with_threads(2).unwrap();
    stress(Runtime::with_timer(pool.clone(), pool), |f| {
        block_on_with(f)
    });
}
