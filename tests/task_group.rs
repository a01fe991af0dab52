//! `TaskGroup`: tokio's `JoinSet` semantics (its suite's behaviours, in tests of our own), and
//! the limit, on every runtime of the harness.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use asynchronously::TaskGroup;
use asynchronously::rt::{Runtime, ThreadPerTask};
use common::{DropCounter, pending_counted, until};
use futures::FutureExt;
use futures::channel::oneshot;

each_runtime! {
    /// `join_next` gives outputs in the order the tasks finish, not the order they were
    /// spawned, and `None` once the group is empty.
    async fn join_next_follows_completion_order(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let mut releases = Vec::new();
        for i in 0..3 {
            let (release, released) = oneshot::channel::<()>();
            releases.push(Some(release));
            group.spawn(async move {
                released.await.unwrap();
                i
            });
        }
        let mut order = Vec::new();
        for i in [2, 0, 1] {
            releases[i].take().unwrap().send(()).unwrap();
            order.push(group.join_next().await.unwrap().unwrap());
        }
        assert_eq!(order, [2, 0, 1]);
        assert!(group.join_next().await.is_none());
        assert!(group.join_next().now_or_never().unwrap().is_none(), "None at once when empty");
    }
}

each_runtime! {
    /// `len` counts every task not yet joined, finished ones too; `try_join_next` never waits.
    async fn len_and_try_join_next(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        assert!(group.try_join_next().is_none());
        let (release, released) = oneshot::channel::<()>();
        group.spawn(async move { released.await.unwrap(); "slow" });
        group.spawn(async { "quick" });
        assert_eq!(group.len(), 2);
        let quick = loop {
            if let Some(output) = group.try_join_next() {
                break output.unwrap();
            }
            common::yield_now().await;
        };
        assert_eq!(quick, "quick");
        assert_eq!(group.len(), 1);
        assert!(group.try_join_next().is_none(), "the slow one is not done");
        release.send(()).unwrap();
        assert_eq!(group.join_next().await.unwrap().unwrap(), "slow");
        assert!(group.is_empty());
    }
}

each_runtime! {
    /// `try_join_next` finds a finished task among many unfinished ones (behind the yields of
    /// the set it polls).
    async fn try_join_next_finds_one_finished_task_among_many(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        for _ in 0..200 {
            group.spawn(pending_counted::<u32>(&drops));
        }
        let quick = group.spawn(async { 7 });
        until(|| quick.is_finished()).await;
        // One call finds it, though the group has 200 others to poll first.
        assert_eq!(group.try_join_next().unwrap().unwrap(), 7);
        group.shutdown().await;
        assert_eq!(drops.count(), 200);
    }
}

each_runtime! {
    /// An abort handle from `spawn` cancels that task alone: its future is dropped and
    /// `join_next` gives its `Cancelled`.
    async fn an_abort_handle_cancels_one_task(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        let doomed = group.spawn(pending_counted::<&str>(&drops));
        group.spawn(async { "kept" });
        doomed.abort();
        let mut outcomes = Vec::new();
        while let Some(outcome) = group.join_next().await {
            outcomes.push(outcome.map_err(|error| error.is_cancelled()));
        }
        outcomes.sort();
        assert_eq!(outcomes, [Ok("kept"), Err(true)]);
        assert_eq!(drops.count(), 1);
        assert!(doomed.is_finished());
    }
}

each_runtime! {
    /// `abort_all` cancels every task, which stay until joined; a task that had finished gives
    /// its output.
    async fn abort_all_cancels_every_task_but_keeps_them_to_join(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        for _ in 0..5 {
            group.spawn(pending_counted::<u32>(&drops));
        }
        let done = group.spawn(async { 1 });
        until(|| done.is_finished()).await;
        group.abort_all();
        assert_eq!(group.len(), 6);
        let (mut cancelled, mut outputs) = (0, Vec::new());
        while let Some(outcome) = group.join_next().await {
            match outcome {
                Ok(output) => outputs.push(output),
                Err(error) => {
                    assert!(error.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert_eq!((cancelled, outputs), (5, vec![1]));
        assert_eq!(drops.count(), 5);
    }
}

each_runtime! {
    /// `shutdown` returns once every future was dropped, and leaves the group empty and usable.
    async fn shutdown_waits_until_every_future_was_dropped(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        for _ in 0..10 {
            group.spawn(pending_counted::<()>(&drops));
        }
        group.shutdown().await;
        assert_eq!(drops.count(), 10);
        assert!(group.is_empty());
        group.spawn(async {});
        assert!(group.join_next().await.unwrap().is_ok());
    }
}

each_runtime! {
    /// Dropping the group aborts its tasks: every future is dropped, and the runtime counts
    /// them off.
    async fn dropping_the_group_aborts_its_tasks(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        for _ in 0..10 {
            group.spawn(pending_counted::<()>(&drops));
        }
        drop(group);
        until(|| drops.count() == 10).await;
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// `detach_all` empties the group without aborting: the tasks run to their end after the
    /// group is dropped.
    async fn detach_all_lets_the_tasks_run_on(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let ran = Arc::new(AtomicUsize::new(0));
        let (release, released) = futures::channel::oneshot::channel::<()>();
        let released = released.shared();
        for _ in 0..4 {
            let (ran, released) = (ran.clone(), released.clone());
            group.spawn(async move {
                released.await.unwrap();
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        group.detach_all();
        assert!(group.is_empty());
        drop(group);
        release.send(()).unwrap();
        until(|| ran.load(Ordering::SeqCst) == 4).await;
    }
}

each_runtime! {
    /// A task's panic comes out of `join_next` as an error with its message and id; `join_all`
    /// resumes it.
    async fn a_panic_is_an_error_of_join_next_and_resumes_in_join_all(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let id = group.spawn(async { panic!("boom") }).id();
        let error = group.join_next().await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), format!("task {id} panicked with message \"boom\""));

        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        group.spawn(async { panic!("boom") });
        group.spawn(pending_counted(&drops));
        let panic = AssertUnwindSafe(group.join_all()).catch_unwind().await.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
        until(|| drops.count() == 1).await; // the other task, aborted with the group
    }
}

each_runtime! {
    /// `join_all` gives every output, in completion order.
    async fn join_all_gives_every_output(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        for i in 0..50 {
            group.spawn(async move { i });
        }
        let mut all = group.join_all().await;
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}

each_runtime! {
    /// With a limit of 3, never more than 3 tasks run at once, every task runs, and a task
    /// aborted while it waits its turn never starts.
    async fn a_limit_bounds_how_many_run_at_once(rt, _clock) {
        let mut group = TaskGroup::with_limit(&rt, 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, released) = futures::channel::oneshot::channel::<()>();
        let released = released.shared();
        for _ in 0..20 {
            let (running, most, released) = (running.clone(), most.clone(), released.clone());
            group.spawn(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = released.await;
                common::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let started = Arc::new(AtomicBool::new(false));
        let queued = group.spawn({
            let started = started.clone();
            async move { started.store(true, Ordering::SeqCst) }
        });
        until(|| running.load(Ordering::SeqCst) == 3).await;
        for _ in 0..20 {
            common::yield_now().await;
        }
        assert_eq!(running.load(Ordering::SeqCst), 3, "the others wait");
        queued.abort();
        release.send(()).unwrap();
        let (mut ok, mut cancelled) = (0, 0);
        while let Some(outcome) = group.join_next().await {
            match outcome {
                Ok(()) => ok += 1,
                Err(error) => {
                    assert!(error.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert_eq!((ok, cancelled), (20, 1));
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert!(!started.load(Ordering::SeqCst), "an aborted queued task never starts");
    }
}

#[test]
#[should_panic(expected = "a TaskGroup with a limit of 0 could never run a task")]
fn a_limit_of_zero_is_refused_at_construction() {
    let _ = TaskGroup::<()>::with_limit(&Runtime::new(ThreadPerTask), 0);
}

each_runtime! {
    /// `try_join_all`: every `Ok` in spawn order, though the tasks end in another order.
    async fn try_join_all_gives_the_oks_in_spawn_order(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let mut releases = Vec::new();
        for i in 0..4 {
            let (release, released) = oneshot::channel::<()>();
            releases.push(release);
            group.spawn(async move {
                released.await.unwrap();
                Ok::<_, String>(i)
            });
        }
        let joined = rt.spawn(group.try_join_all());
        for release in releases.into_iter().rev() {
            release.send(()).unwrap();
            common::yield_now().await;
        }
        assert_eq!(joined.await.unwrap(), Ok(vec![0, 1, 2, 3]));
    }
}

each_runtime! {
    /// `try_join_all`: the first `Err` aborts the rest, which are dropped before it returns.
    async fn try_join_all_returns_the_first_error_after_the_rest_were_dropped(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        for _ in 0..5 {
            group.spawn(pending_counted::<Result<(), String>>(&drops));
        }
        group.spawn(async { Err("refused".to_string()) });
        assert_eq!(group.try_join_all().await, Err("refused".to_string()));
        assert_eq!(drops.count(), 5, "every other future was dropped first");
    }
}

each_runtime! {
    /// `try_join_all`: a panic before any `Err` resumes once the other tasks were aborted and
    /// their futures dropped, as an `Err` comes back.
    async fn try_join_all_resumes_a_panic(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let drops = DropCounter::new();
        group.spawn(pending_counted::<Result<(), String>>(&drops));
        group.spawn(async { panic!("boom") });
        let panic = AssertUnwindSafe(group.try_join_all()).catch_unwind().await.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(drops.count(), 1, "the other future was dropped before the panic resumed");
    }
}

each_runtime! {
    /// A task aborted by its handle cannot give `join_all` an output: it panics, naming the task
    /// in tokio's words.
    async fn join_all_panics_naming_an_aborted_task(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let aborted = group.spawn(std::future::pending::<()>());
        aborted.abort();
        let panic = AssertUnwindSafe(group.join_all()).catch_unwind().await.unwrap_err();
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert_eq!(*message, format!("task {} was cancelled", aborted.id()));
    }
}

each_runtime! {
    /// A group is used again and again: joined one by one while others are spawned, emptied,
    /// and filled anew.
    async fn a_group_is_reused_as_it_empties_and_fills(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        group.spawn(async {});
        group.spawn(async {});
        for _ in 0..16 {
            group.join_next().await.unwrap().unwrap();
            assert_eq!(group.len(), 1);
            group.spawn(async {});
            assert_eq!(group.len(), 2);
        }
        group.detach_all();
        assert!(group.join_next().await.is_none());
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = ran.clone();
            group.spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(group.join_all().await.len(), 10);
        assert_eq!(ran.load(Ordering::SeqCst), 10);
    }
}

each_runtime! {
    /// A task's slot is reused once its output was taken: the old task's `AbortHandle` finds it
    /// finished and aborts nothing, and the new task's handle is its own.
    async fn a_stale_abort_handle_does_not_abort_the_task_that_took_its_slot(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let first = group.spawn(async { "first" });
        assert_eq!(group.join_next().await.unwrap().unwrap(), "first");
        let (release, released) = oneshot::channel::<()>();
        let second = group.spawn(async move {
            released.await.unwrap();
            "second"
        });
        assert_ne!(first.id(), second.id());
        assert!(first.is_finished());
        assert!(!second.is_finished());
        first.abort();
        release.send(()).unwrap();
        assert_eq!(group.join_next().await.unwrap().unwrap(), "second");
        until(|| second.is_finished()).await;
    }
}

each_runtime! {
    /// An abort that comes after the task ended, its output not yet joined, leaves the output.
    async fn an_abort_after_the_task_ended_leaves_its_output(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let handle = group.spawn(async { 7 });
        until(|| handle.is_finished()).await;
        handle.abort();
        group.abort_all();
        assert_eq!(group.join_next().await.unwrap().unwrap(), 7);
    }
}

each_runtime! {
    /// Tasks detached while they run give their slots back as they end; the group meanwhile
    /// runs and joins its new tasks, and only theirs.
    async fn detached_tasks_give_their_slots_back_as_they_end(rt, _clock) {
        let mut group = TaskGroup::new(&rt);
        let (release, released) = oneshot::channel::<()>();
        let released = released.shared();
        let detached: Vec<_> = (0..3)
            .map(|i| {
                let released = released.clone();
                group.spawn(async move {
                    released.await.unwrap();
                    i
                })
            })
            .collect();
        group.spawn(async { 100 }); // ends, and its output is dropped by `detach_all`
        until(|| rt.live_tasks() == 3).await;
        group.detach_all();
        assert!(group.is_empty());
        for i in 10..20 {
            group.spawn(async move { i });
        }
        release.send(()).unwrap();
        until(|| detached.iter().all(|task| task.is_finished())).await;
        for i in 20..40 {
            group.spawn(async move { i });
        }
        let mut all = group.join_all().await;
        all.sort_unstable();
        assert_eq!(all, (10..40).collect::<Vec<_>>(), "no output of a detached task");
    }
}

each_runtime! {
    /// The outputs not joined are dropped with the group, and so are those of tasks detached
    /// and still running when it was dropped, as they end.
    async fn outputs_nobody_joins_are_dropped(rt, _clock) {
        let drops = DropCounter::new();
        let mut group = TaskGroup::new(&rt);
        let (release, released) = oneshot::channel::<()>();
        let token = drops.token();
        group.spawn(async move {
            released.await.unwrap();
            token
        });
        group.detach_all();
        for _ in 0..3 {
            let token = drops.token();
            group.spawn(async move { token });
        }
        until(|| rt.live_tasks() == 1).await;
        assert_eq!(drops.count(), 0, "the outputs wait to be joined");
        drop(group);
        assert_eq!(drops.count(), 3, "dropped with the group");
        release.send(()).unwrap();
        until(|| drops.count() == 4).await;
        until(|| rt.live_tasks() == 0).await;
    }
}

/// A group whose executor is gone: each of its tasks comes out as `Cancelled`, as a `JoinSet`'s
/// on a runtime that was dropped.
#[cfg(feature = "tokio")]
#[test]
fn a_group_on_an_executor_that_is_gone_gives_cancelled() {
    common::bounded(|| {
        let mut group = {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let tokio = asynchronously::rt::Tokio::new(runtime.handle().clone());
            let mut group = TaskGroup::new(&Runtime::with_timer(tokio.clone(), tokio));
            group.spawn(async { 1 });
            group.spawn(std::future::pending());
            group
        };
        for _ in 0..2 {
            let outcome = futures::executor::block_on(group.join_next()).unwrap();
            assert!(outcome.unwrap_err().is_cancelled());
        }
        assert!(futures::executor::block_on(group.join_next()).is_none());
    });
}

/// The group and each of its futures name themselves in their `Debug`, with the group's size.
#[test]
fn the_group_and_its_futures_debug_with_their_names() {
    let rt = Runtime::new(ThreadPerTask);
    let mut group = TaskGroup::<Result<(), ()>>::with_limit(&rt, 2);
    group.spawn(std::future::pending());
    let debug = format!("{group:?}");
    assert!(
        debug.starts_with("TaskGroup")
            && debug.contains("len: 1")
            && debug.contains("limited: true"),
        "{debug}"
    );
    let debug = format!("{:?}", group.join_next());
    assert!(
        debug.starts_with("JoinNext") && debug.contains("len: 1"),
        "{debug}"
    );
    let debug = format!("{:?}", group.shutdown());
    assert!(
        debug.starts_with("GroupShutdown") && debug.contains("len: 1"),
        "{debug}"
    );
    let mut second = TaskGroup::<Result<(), ()>>::new(&rt);
    second.spawn(std::future::pending());
    let debug = format!("{:?}", second.try_join_all());
    assert!(
        debug.starts_with("TryJoinAll") && debug.contains("failed: false"),
        "{debug}"
    );
    let debug = format!("{:?}", group.join_all());
    assert!(
        debug.starts_with("JoinAll") && debug.contains("len: 1"),
        "{debug}"
    );
}

/// A task that ends after its group was dropped (it was inside its poll as the group went, too
/// late for the abort) has its output dropped at once, even while its `AbortHandle` lives.
#[test]
fn the_output_of_a_task_that_ends_after_its_group_is_dropped_at_once() {
    common::bounded(|| {
        let rt = Runtime::new(ThreadPerTask);
        let drops = DropCounter::new();
        let mut group = TaskGroup::new(&rt);
        let (entered, inside) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let token = drops.token();
        let handle = group.spawn(async move {
            entered.send(()).unwrap();
            released.recv().unwrap(); // blocks the task's own thread, inside its poll
            token
        });
        inside.recv().unwrap();
        drop(group);
        release.send(()).unwrap();
        while rt.live_tasks() != 0 {
            std::thread::yield_now();
        }
        assert_eq!(drops.count(), 1, "the output was kept");
        assert!(handle.is_finished());
    });
}

each_runtime! {
    /// A group past a few hundred tasks keeps its slots in several leaves and branches and its
    /// outcomes in several blocks: every outcome still comes out once, in the order the tasks
    /// ended, the blocks are reused, and `detach_all` drops the outcomes of every block.
    async fn outcomes_cross_the_leaves_and_blocks_of_a_large_group(rt, _clock) {
        // Past a branch of slots (512) and many blocks of outcomes (41 each, and fewer at first).
        let n = if cfg!(miri) { 40 } else { 600 };
        let mut group = TaskGroup::new(&rt);
        let mut releases = Vec::new();
        for i in 0..n {
            let (release, released) = oneshot::channel::<()>();
            releases.push(Some(release));
            group.spawn(async move {
                released.await.unwrap();
                i
            });
        }
        for k in 0..n {
            let i = (k * 7 + 3) % n; // a permutation: 7 and 600 (and 40) are coprime
            releases[i].take().unwrap().send(()).unwrap();
            assert_eq!(group.join_next().await.unwrap().unwrap(), i);
        }
        assert!(group.is_empty());

        for round in 0..2 {
            let ended = Arc::new(AtomicUsize::new(0));
            for i in 0..n {
                let ended = ended.clone();
                group.spawn(async move {
                    ended.fetch_add(1, Ordering::SeqCst);
                    i
                });
            }
            until(|| ended.load(Ordering::SeqCst) == n).await;
            let mut outputs = Vec::new();
            while let Some(output) = group.join_next().await {
                outputs.push(output.unwrap());
            }
            outputs.sort_unstable();
            assert_eq!(outputs, (0..n).collect::<Vec<_>>(), "round {round}");
        }

        let drops = DropCounter::new();
        let ended = Arc::new(AtomicUsize::new(0));
        let mut tokens = TaskGroup::new(&rt);
        for _ in 0..n {
            let (token, ended) = (drops.token(), ended.clone());
            tokens.spawn(async move {
                ended.fetch_add(1, Ordering::SeqCst);
                token
            });
        }
        until(|| ended.load(Ordering::SeqCst) == n).await;
        assert_eq!(drops.count(), 0, "the outputs wait in the group");
        tokens.detach_all();
        assert_eq!(drops.count(), n, "detach_all drops every output not joined");
        assert!(tokens.is_empty());
        let token = drops.token();
        tokens.spawn(async move { token });
        drop(tokens.join_next().await.unwrap().unwrap());
        assert_eq!(drops.count(), n + 1);
    }
}

/// A task of a group aborted before its first poll is never polled: its output cannot win
/// over the abort (a spawner that runs the task only when the test says so).
#[test]
fn a_member_aborted_before_its_first_poll_is_never_polled() {
    use std::task::{Context, Waker};
    let (rt, held) = common::holding(asynchronously::rt::ManualClock::new());
    let mut group = TaskGroup::new(&rt);
    let polled = Arc::new(AtomicBool::new(false));
    let abort = group.spawn({
        let polled = polled.clone();
        async move {
            polled.store(true, Ordering::SeqCst);
            5
        }
    });
    abort.abort();
    let mut run = held.take_one();
    assert!(
        run.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
    assert!(!polled.load(Ordering::SeqCst));
    let outcome = futures::executor::block_on(group.join_next()).unwrap();
    assert!(outcome.unwrap_err().is_cancelled());
    assert!(abort.is_finished());
}
