//! Faults: spawners that lose or refuse tasks, and executors shut down half-way. Each test says
//! what users get: no hang, nothing lost, every handle resolved.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynchronously::lifecycle::{
    BoxError, Component, ComponentExt, Lifecycle, LifecycleError, PhaseKind, Service,
};
use asynchronously::rt::{BoxFuture, JoinError, Runtime, Spawner, ThreadPerTask};
use asynchronously::testing::TestRuntime;
use asynchronously::{Periodic, TaskGroup, strict_gather_spawned};
use common::{DropCounter, bounded, pending_counted};

/// Spawns on a thread each, but drops every `drop_every`-th task unpolled, and panics on every
/// `panic_every`-th spawn (0: never).
struct Faulty {
    spawned: AtomicUsize,
    drop_every: usize,
    panic_every: usize,
}

impl Faulty {
    fn runtime(drop_every: usize, panic_every: usize) -> Runtime {
        Runtime::new(Self {
            spawned: AtomicUsize::new(0),
            drop_every,
            panic_every,
        })
    }
}

impl Spawner for Faulty {
    fn spawn_boxed(&self, task: BoxFuture<()>) {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst) + 1;
        if self.panic_every != 0 && n % self.panic_every == 0 {
            panic!("spawn {n} refused");
        }
        if self.drop_every != 0 && n % self.drop_every == 0 {
            drop(task);
            return;
        }
        ThreadPerTask.spawn_boxed(task);
    }
}

/// Waits until `rt` has no live task: a task's thread lets go of it just after its handle has
/// the output.
fn settle(rt: &Runtime) {
    while rt.live_tasks() != 0 {
        std::thread::yield_now();
    }
}

#[test]
fn a_spawner_that_drops_one_task_in_ten_cancels_exactly_those() {
    bounded(|| {
        let rt = Faulty::runtime(10, 0);
        let mut group = TaskGroup::new(&rt);
        for i in 0..30_u32 {
            group.spawn(async move { i });
        }
        let (mut outputs, mut cancelled) = (Vec::new(), 0);
        futures::executor::block_on(async {
            while let Some(output) = group.join_next().await {
                match output {
                    Ok(i) => outputs.push(i),
                    Err(error) => {
                        assert!(error.is_cancelled(), "{error}");
                        cancelled += 1;
                    }
                }
            }
        });
        outputs.sort_unstable();
        let expected: Vec<u32> = (0..30).filter(|i| (i + 1) % 10 != 0).collect();
        assert_eq!(
            (outputs, cancelled),
            (expected, 3),
            "the 10th, 20th and 30th are lost"
        );
        settle(&rt);
    });
}

#[test]
fn a_gather_whose_task_was_dropped_says_which() {
    bounded(|| {
        let rt = Faulty::runtime(3, 0);
        let futures = (0..5_u32).map(|i| async move { Ok::<_, ()>(i) });
        let panic = catch_unwind(AssertUnwindSafe(|| {
            futures::executor::block_on(strict_gather_spawned(&rt, futures))
        }))
        .expect_err("a task gave no result");
        let message = panic.downcast::<String>().unwrap();
        assert_eq!(
            *message,
            "strict_gather_spawned: task 2 gave no result: task was cancelled"
        );
        settle(&rt);
    });
}

#[test]
fn a_periodic_whose_loop_is_dropped_stops_at_once() {
    bounded(|| {
        let rt = Faulty::runtime(1, 0);
        let periodic = Periodic::builder(|| {}, Duration::from_millis(1))
            .runtime(&rt)
            .start()
            .unwrap();
        futures::executor::block_on(periodic.stop());
        assert_eq!(periodic.stats().runs, 0);
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn a_spawner_that_panics_on_every_fifth_spawn_loses_only_those() {
    bounded(|| {
        let rt = Faulty::runtime(0, 5);
        let mut group = TaskGroup::new(&rt);
        let mut refused = Vec::new();
        for i in 1..=10_u32 {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| group.spawn(async move { i }))) {
                refused.push((i, *panic.downcast::<String>().unwrap()));
            }
        }
        assert_eq!(
            refused,
            [
                (5, "spawn 5 refused".to_owned()),
                (10, "spawn 10 refused".to_owned())
            ]
        );
        assert_eq!(group.len(), 8, "a refused spawn is not in the group");
        let mut outputs = futures::executor::block_on(group.join_all());
        outputs.sort_unstable();
        assert_eq!(outputs, [1, 2, 3, 4, 6, 7, 8, 9]);
        settle(&rt); // the refused tasks left nothing behind
    });
}

/// Spawns every task, and then panics on every second spawn: the task it kept runs anyway.
struct PanicsAfterSpawning(AtomicUsize);

impl Spawner for PanicsAfterSpawning {
    fn spawn_boxed(&self, task: BoxFuture<()>) {
        ThreadPerTask.spawn_boxed(task);
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        if n % 2 == 0 {
            panic!("spawn {n} said it failed");
        }
    }
}

#[test]
fn a_task_whose_spawn_panicked_after_it_was_taken_runs_outside_the_group() {
    bounded(|| {
        let rt = Runtime::new(PanicsAfterSpawning(AtomicUsize::new(0)));
        let ran = Arc::new(AtomicUsize::new(0));
        let mut group = TaskGroup::new(&rt);
        let mut refused = 0;
        for i in 1..=6_u32 {
            let ran = ran.clone();
            let spawn = AssertUnwindSafe(|| {
                group.spawn(async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    i
                })
            });
            refused += usize::from(catch_unwind(spawn).is_err());
        }
        assert_eq!((refused, group.len()), (3, 3));
        let mut outputs = futures::executor::block_on(group.join_all());
        outputs.sort_unstable();
        assert_eq!(
            outputs,
            [1, 3, 5],
            "only the spawns that returned are in the group"
        );
        settle(&rt);
        assert_eq!(ran.load(Ordering::SeqCst), 6, "the kept tasks ran too");
    });
}

#[test]
fn a_group_reuses_the_slots_of_tasks_whose_spawn_panicked() {
    bounded(|| {
        let rt = Runtime::new(PanicsAfterSpawning(AtomicUsize::new(0)));
        let mut group = TaskGroup::new(&rt);
        // Under miri, whose threads run a hundred times slower, two rounds (within the
        // harness's 60 s).
        let rounds = if cfg!(miri) { 2 } else { 4 };
        for round in 0..rounds {
            for i in 0..10 {
                let spawn = AssertUnwindSafe(|| group.spawn(async move { round * 10 + i }));
                let _ = catch_unwind(spawn);
            }
            assert_eq!(group.len(), 5);
            let mut outputs = Vec::new();
            futures::executor::block_on(async {
                while let Some(output) = group.join_next().await {
                    outputs.push(output.unwrap());
                }
            });
            outputs.sort_unstable();
            let expected: Vec<u32> = (0..10).step_by(2).map(|i| round * 10 + i).collect();
            assert_eq!(outputs, expected, "round {round}");
            settle(&rt); // the kept tasks end, and give their slots back
        }
    });
}

/// A component whose init sleeps on the runtime's clock.
struct Slow {
    lifecycle: Lifecycle,
    rt: Runtime,
    runs: DropCounter,
}

impl Component for Slow {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.rt.sleep(Duration::from_secs(1)).await;
        Ok(())
    }
    fn on_run(&self) -> impl std::future::Future<Output = Result<(), BoxError>> + Send {
        // Counted when the part ends (a service never calls `on_run` but to run it).
        pending_counted(&self.runs)
    }
}

impl Slow {
    fn on(rt: &Runtime) -> Arc<Self> {
        Arc::new(Self {
            lifecycle: Lifecycle::new(),
            rt: rt.clone(),
            runs: DropCounter::new(),
        })
    }
}

#[derive(Default)]
struct Waiter {
    lifecycle: Lifecycle,
}

impl Component for Waiter {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
}

#[test]
fn an_executor_shut_down_during_an_init_cancels_it_and_fails_its_dependents() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let slow = Slow::on(&rt);
        let waiter = Waiter::default();
        waiter.depends_on(&*slow).unwrap();
        let init = rt.spawn({
            let slow = slow.clone();
            async move { slow.init().await }
        });
        test.run_until_stalled(); // the init sleeps
        assert_eq!(test.clock().sleepers(), 1);
        drop(test); // the executor goes, with its tasks
        assert!(matches!(
            futures::executor::block_on(init),
            Err(JoinError::Cancelled)
        ));
        assert!(slow.lifecycle().init_phase().is_failed());
        let error = futures::executor::block_on(waiter.init()).unwrap_err();
        assert!(
            matches!(&error, LifecycleError::DependencyFailed { dependency, phase: PhaseKind::Init, .. } if dependency == "Slow"),
            "{error:?}"
        );
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn an_executor_shut_down_during_join_next_gives_cancelled_for_each_task() {
    bounded(|| {
        let test = TestRuntime::new();
        let drops = DropCounter::new();
        let mut group = TaskGroup::new(&test.runtime());
        for _ in 0..3 {
            group.spawn(pending_counted::<()>(&drops));
        }
        test.run_until_stalled();
        drop(test);
        let outputs: Vec<_> = futures::executor::block_on(async {
            let mut outputs = Vec::new();
            while let Some(output) = group.join_next().await {
                outputs.push(output);
            }
            outputs
        });
        assert_eq!(outputs.len(), 3);
        assert!(
            outputs
                .iter()
                .all(|output| matches!(output, Err(JoinError::Cancelled)))
        );
        assert_eq!(drops.count(), 3, "every future was dropped");
    });
}

#[test]
fn an_executor_shut_down_during_a_service_run_leaves_nothing_running() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let slow = Slow::on(&rt);
        let service = rt.spawn({
            let slow = slow.clone();
            async move {
                Service::new(&*slow)
                    .shutdown_on(std::future::pending())
                    .run()
                    .await
                    .map(drop)
            }
        });
        test.advance(Duration::from_secs(1)); // up: its part runs
        assert!(slow.lifecycle().init_phase().finished().is_set());
        assert_eq!(slow.runs.count(), 0);
        drop(test);
        assert!(matches!(
            futures::executor::block_on(service),
            Err(JoinError::Cancelled)
        ));
        assert_eq!(
            slow.runs.count(),
            1,
            "its part was dropped with the service"
        );
        // The deinit was never scheduled: the component can still be taken down by hand.
        futures::executor::block_on(slow.deinit()).unwrap();
        assert_eq!(rt.live_tasks(), 0);
    });
}

/// A timer whose every sleep ends up to 100 ms late (a seeded draw each), on a `ManualClock`.
struct Late {
    clock: asynchronously::rt::ManualClock,
    draws: std::sync::Mutex<u64>,
}

impl Late {
    fn lateness(&self) -> Duration {
        let mut state = self.draws.lock().unwrap();
        // SplitMix64's step; any spread of draws will do.
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Duration::from_millis((z ^ (z >> 31)) % 100)
    }
}

impl asynchronously::rt::Timer for Late {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        self.clock.sleep(duration + self.lateness())
    }
    fn sleep_until(&self, deadline: std::time::Instant) -> BoxFuture<()> {
        self.clock.sleep_until(deadline + self.lateness())
    }
    fn now(&self) -> std::time::Instant {
        self.clock.now()
    }
}

#[test]
fn a_late_timer_delays_each_fixed_rate_run_but_loses_none_and_does_not_drift() {
    bounded(|| {
        let clock = asynchronously::rt::ManualClock::new();
        let late = Late {
            clock: clock.clone(),
            draws: std::sync::Mutex::new(7),
        };
        let rt = Runtime::with_timer(ThreadPerTask, late);
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let periodic = Periodic::builder(
            {
                let (starts, clock) = (starts.clone(), clock.clone());
                move || starts.lock().unwrap().push(clock.elapsed())
            },
            Duration::from_secs(1),
        )
        .fixed_rate(true)
        .runtime(&rt)
        .start()
        .unwrap();
        futures::executor::block_on(async {
            // Ten seconds and the last tick's lateness.
            for _ in 0..1_011 {
                clock.wait_for_sleepers(1).await; // the loop sleeps
                clock.advance(Duration::from_millis(10));
            }
            clock.wait_for_sleepers(1).await;
            periodic.stop().await;
        });
        let starts = starts.lock().unwrap().clone();
        // Ten seconds: a run for each tick, each within its 100 ms of lateness (and the 10 ms
        // step), never early; fixed rate keeps the schedule, so the lateness never adds up.
        assert_eq!(starts.len(), 10, "{starts:?}");
        for (tick, start) in (1..).zip(&starts) {
            let due = Duration::from_secs(tick);
            assert!(
                *start >= due && *start < due + Duration::from_millis(110),
                "run {tick} at {start:?}"
            );
        }
    });
}
