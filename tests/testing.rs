//! `testing::TestRuntime`: auto-advance, deadlocks, seeds, spawning, dropping, bad input; and
//! `ManualClock::wait_for_sleepers`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynchronously::lifecycle::{BoxError, Component, Lifecycle, LifecycleError, Service};
use asynchronously::rt::{Runtime, ThreadPerTask};
use asynchronously::testing::TestRuntime;
use asynchronously::{Event, Periodic};
use common::{DropCounter, bounded, pending_counted};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let panic = catch_unwind(AssertUnwindSafe(f)).expect_err("it panics");
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic.downcast_ref::<&str>().expect("a message").to_string(),
    }
}

#[test]
fn auto_advance_lands_exactly_on_each_deadline() {
    bounded(|| {
        let test = TestRuntime::new();
        let (rt, clock) = (test.runtime(), test.clock().clone());
        let runs = Arc::new(Mutex::new(Vec::new()));
        let periodic = Periodic::builder(
            {
                let (runs, clock) = (runs.clone(), clock.clone());
                move || runs.lock().unwrap().push(clock.elapsed())
            },
            ms(100),
        )
        .fixed_rate(true)
        .runtime(&rt)
        .start()
        .unwrap();
        test.block_on(async {
            rt.sleep(ms(300)).await;
            // The sleep and the third run are due at once; let the run go first.
            rt.sleep(ms(1)).await;
            periodic.stop().await;
        });
        assert_eq!(*runs.lock().unwrap(), [ms(100), ms(200), ms(300)]);
        assert_eq!(clock.elapsed(), ms(301), "never past the last deadline");
    });
}

#[test]
fn a_deadlock_panics_with_its_message_instead_of_hanging() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let never = Event::new();
        let _waiters: Vec<_> = (0..2).map(|_| rt.spawn(never.wait())).collect();
        let message = panic_message(|| test.block_on(never.wait()));
        assert!(message.starts_with("TestRuntime deadlock: "), "{message}");
        assert!(message.contains("2 live tasks are idle"), "{message}");
        assert!(message.contains("no sleep is pending"), "{message}");
    });
}

/// What three tasks that yield between steps did, in order, on `seed`.
fn events(seed: u64) -> Vec<String> {
    let test = TestRuntime::with_seed(seed);
    let rt = test.runtime();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..3)
        .map(|task| {
            let log = log.clone();
            rt.spawn(async move {
                for step in 0..3 {
                    log.lock().unwrap().push(format!("{task}.{step}"));
                    common::yield_now().await;
                }
            })
        })
        .collect();
    test.block_on(futures::future::join_all(tasks));
    drop(test);
    Arc::try_unwrap(log)
        .expect("the tasks are gone")
        .into_inner()
        .unwrap()
}

#[test]
fn one_seed_gives_one_order_and_two_seeds_two() {
    bounded(|| {
        assert_eq!(
            events(0),
            [
                "0.0", "1.0", "2.0", "0.1", "1.1", "2.1", "0.2", "1.2", "2.2"
            ]
        );
        for seed in [1, 2, 3] {
            assert_eq!(events(seed), events(seed), "seed {seed} replays");
        }
        let orders: std::collections::HashSet<_> = (1..=8).map(events).collect();
        assert!(
            orders.len() > 1,
            "different seeds give different orders: {orders:?}"
        );
        assert!(
            orders.iter().any(|order| order != &events(0)),
            "a seed shuffles"
        );
    });
}

#[test]
fn spawn_works_from_inside_a_task_and_from_another_thread() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let inner = test.block_on({
            let rt = rt.clone();
            async move {
                let inner = rt.spawn(async { "from a task" });
                inner.await.unwrap()
            }
        });
        assert_eq!(inner, "from a task");

        let from_thread = std::thread::spawn({
            let rt = rt.clone();
            move || rt.spawn(async { "from a thread" })
        })
        .join()
        .unwrap();
        assert_eq!(test.block_on(from_thread).unwrap(), "from a thread");

        // A thread that spawns once block_on waits for it (the future says so as it first goes
        // pending): a wake from another thread, with no sleep to line the two up.
        let (sent, got) = futures::channel::oneshot::channel();
        let (waiting, waits) = std::sync::mpsc::channel();
        let later = std::thread::spawn({
            let rt = rt.clone();
            move || {
                waits.recv().unwrap();
                let task = rt.spawn(async { 7 });
                sent.send(task).unwrap();
            }
        });
        assert_eq!(
            test.block_on(async {
                waiting.send(()).unwrap();
                got.await.unwrap().await.unwrap()
            }),
            7
        );
        later.join().unwrap();
    });
}

#[test]
fn a_dropped_test_runtime_drops_its_live_tasks() {
    bounded(|| {
        let drops = DropCounter::new();
        let test = TestRuntime::new();
        let rt = test.runtime();
        let handles: Vec<_> = (0..3)
            .map(|_| rt.spawn(pending_counted::<()>(&drops)))
            .collect();
        // One holds the runtime (a cycle through the queue, unless the futures are dropped).
        let holder = rt.spawn({
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_secs(1)).await;
                drop(rt);
            }
        });
        test.run_until_stalled();
        assert_eq!((drops.count(), rt.live_tasks()), (0, 4));
        drop(test);
        assert_eq!(drops.count(), 3);
        assert_eq!(rt.live_tasks(), 0);
        for handle in handles {
            assert!(
                futures::executor::block_on(handle)
                    .unwrap_err()
                    .is_cancelled()
            );
        }
        assert!(
            futures::executor::block_on(holder)
                .unwrap_err()
                .is_cancelled()
        );
        // Spawned after the drop: dropped at once, cancelled.
        assert!(
            futures::executor::block_on(rt.spawn(async {}))
                .unwrap_err()
                .is_cancelled()
        );
    });
}

#[test]
fn advance_by_duration_max_saturates_and_fires_every_sleeper_once() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let runs = Arc::new(Mutex::new(0_u32));
        let periodic = Periodic::builder(
            {
                let runs = runs.clone();
                move || *runs.lock().unwrap() += 1
            },
            ms(1),
        )
        .runtime(&rt)
        .start()
        .unwrap();
        let long = rt.spawn({
            let rt = rt.clone();
            async move { rt.sleep(Duration::MAX).await }
        });
        test.run_until_stalled();
        test.advance(Duration::MAX);
        assert_eq!(test.clock().elapsed(), Duration::MAX);
        assert_eq!(*runs.lock().unwrap(), 1, "once, not for ever");
        assert!(long.is_finished());
        test.advance(Duration::MAX);
        assert_eq!(
            *runs.lock().unwrap(),
            1,
            "its next sleep is past the end of time"
        );
        test.block_on(periodic.stop());
    });
}

#[test]
fn a_nested_block_on_is_a_clear_panic_not_a_deadlock() {
    bounded(|| {
        let test = Arc::new(TestRuntime::new());
        let rt = test.runtime();
        let nested = rt.spawn({
            let test = test.clone();
            async move { test.block_on(async {}) }
        });
        let error = test.block_on(nested).unwrap_err();
        let message = error.into_panic().unwrap().downcast::<String>().unwrap();
        assert!(
            message
                .contains("TestRuntime::block_on called while the runtime is already being driven"),
            "{message}"
        );
        // The same from a task's `run_until_stalled`; the runtime still works after.
        let again = rt.spawn({
            let test = test.clone();
            async move { test.run_until_stalled() }
        });
        assert!(test.block_on(again).unwrap_err().is_panic());
        assert_eq!(test.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    });
}

#[test]
fn a_panic_in_block_on_resumes() {
    bounded(|| {
        let test = TestRuntime::with_seed(42);
        let message = panic_message(|| test.block_on(async { panic!("the test failed") }));
        assert_eq!(message, "the test failed");
        // The runtime is not left driven.
        assert_eq!(test.block_on(async { 2 }), 2);
    });
}

/// A service's deadline on the test runtime: no clock to step by hand.
#[test]
fn a_service_deadline_on_the_test_runtime() {
    bounded(|| {
        #[derive(Default)]
        struct Stuck {
            lifecycle: Lifecycle,
        }
        impl Component for Stuck {
            fn lifecycle(&self) -> &Lifecycle {
                &self.lifecycle
            }
            async fn on_deinit(&self) -> Result<(), BoxError> {
                std::future::pending().await
            }
        }
        let test = TestRuntime::new();
        let rt = test.runtime();
        let stuck = Stuck::default();
        let error = test
            .block_on(
                Service::new(&stuck)
                    .shutdown_on(rt.sleep(Duration::from_secs(60)))
                    .shutdown_timeout(Duration::from_secs(10))
                    .runtime(&rt)
                    .run(),
            )
            .unwrap_err();
        assert!(
            matches!(&error, LifecycleError::ShutdownTimedOut { stuck } if stuck == &["Stuck"])
        );
        assert_eq!(test.clock().elapsed(), Duration::from_secs(70));
    });
}

#[test]
fn wait_for_sleepers_on_another_executor() {
    bounded(|| {
        let clock = asynchronously::rt::ManualClock::new();
        let rt = Runtime::with_timer(ThreadPerTask, clock.clone());
        let naps: Vec<_> = (1..=3)
            .map(|n| {
                let rt = rt.clone();
                rt.clone()
                    .spawn(async move { rt.sleep(Duration::from_secs(n)).await })
            })
            .collect();
        futures::executor::block_on(async {
            clock.wait_for_sleepers(3).await;
            clock.advance(Duration::from_secs(1));
            clock.wait_for_sleepers(2).await; // down again, once the first nap is over
            clock.advance(Duration::from_secs(2));
            clock.wait_for_sleepers(0).await;
            futures::future::join_all(naps).await;
        });
    });
}

/// Past the size at which the runtime sweeps its list of tasks (64), the live ones stay in it:
/// dropping the runtime still drops every one of them, among many that finished.
#[test]
fn a_dropped_test_runtime_drops_its_live_tasks_among_many_finished() {
    bounded(|| {
        let drops = DropCounter::new();
        let test = TestRuntime::new();
        let rt = test.runtime();
        let mut handles = Vec::new();
        for i in 0..300 {
            if i % 3 == 0 {
                handles.push(rt.spawn(pending_counted::<()>(&drops)));
            } else {
                rt.spawn_detached(async {});
            }
            test.run_until_stalled();
        }
        assert_eq!((drops.count(), rt.live_tasks()), (0, 100));
        drop(test);
        assert_eq!((drops.count(), rt.live_tasks()), (100, 0));
        drop(handles);
    });
}

/// A `block_on` whose future is woken from another thread, with no task and no sleep, waits
/// for that wake instead of calling it a deadlock.
#[test]
fn block_on_waits_for_a_wake_from_another_thread() {
    bounded(|| {
        let test = TestRuntime::new();
        let mut handed = false;
        let woken = std::future::poll_fn(|cx| {
            if handed {
                return std::task::Poll::Ready("woken");
            }
            handed = true;
            let waker = cx.waker().clone();
            std::thread::spawn(move || waker.wake());
            std::task::Poll::Pending
        });
        assert_eq!(test.block_on(woken), "woken");
    });
}

#[test]
fn a_test_runtime_tells_its_seed() {
    assert_eq!(TestRuntime::new().seed(), 0);
    assert_eq!(TestRuntime::with_seed(9).seed(), 9);
}

/// A future given to `block_on` that yields (wakes itself) is polled again before the clock
/// moves: the clock advances only when nothing at all can run.
#[test]
fn a_yield_in_block_on_does_not_move_the_clock() {
    bounded(|| {
        let test = TestRuntime::new();
        let rt = test.runtime();
        let sleeper = rt.clone();
        rt.spawn_detached(async move { sleeper.sleep(ms(10)).await });
        test.block_on(async {
            for _ in 0..3 {
                common::yield_now().await;
                assert_eq!(test.clock().elapsed(), Duration::ZERO);
            }
            rt.sleep(ms(10)).await;
            assert_eq!(test.clock().elapsed(), ms(10));
        });
    });
}

/// A `TestRuntime` says its seed, how many tasks are ready, and its clock in its `Debug`.
#[test]
fn a_test_runtime_debugs_with_its_seed_and_clock() {
    let test = TestRuntime::with_seed(7);
    let debug = format!("{test:?}");
    assert!(
        debug.starts_with("TestRuntime { seed: 7, ready: 0, clock: ManualClock"),
        "{debug}"
    );
}
