//! loom models of the synchronisation the crate writes by hand: `Event`, `JoinHandle` completion
//! and cancellation, the task registry behind `live_tasks` / `wait_for_all_other_tasks`, the
//! links of the `CancellationToken` tree, the `TaskTracker`'s count, the slots a `TaskGroup`'s
//! tasks report into, and a `Service`'s stop of a running part against a shutdown from another
//! thread.
//!
//! loom runs each model under every interleaving of its threads (up to the preemption bound) and
//! fails on a deadlock, a leak of a loom `Arc`, or a failed assertion. Run them with:
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test -p asynchronously --release --no-default-features --test loom
//! ```
//!
//! The crate's primitives switch to loom's under `--cfg loom` (see `src/sync.rs`). The spawner
//! here runs each task on a loom thread, so every task is a thread loom schedules.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use asynchronously::lifecycle::{BoxError, Component, Lifecycle, Service};
use asynchronously::rt::{JoinError, Runtime};
use asynchronously::{CancellationToken, Event, TaskGroup, TaskTracker};
use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// A runtime whose every task is a loom thread.
fn runtime() -> Runtime {
    Runtime::new(|task| {
        thread::spawn(move || block_on(task));
    })
}

/// Sets its flag when dropped: proves a task's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Pending forever; holds a `DropFlag`.
struct Forever(#[allow(dead_code)] DropFlag);

impl Future for Forever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// Event

#[test]
fn event_set_on_another_thread_wakes_the_waiter() {
    loom::model(|| {
        let event = Event::new();
        let setter = thread::spawn({
            let event = event.clone();
            move || event.set()
        });
        block_on(event.wait());
        assert!(event.is_set());
        setter.join().unwrap();
    });
}

#[test]
fn event_set_is_not_lost_to_a_quick_clear() {
    loom::model(|| {
        let event = Event::new();
        let wait = event.wait();
        let toggler = thread::spawn({
            let event = event.clone();
            move || {
                event.set();
                event.clear();
            }
        });
        // Completes even if the flag is already down again when the waiter looks.
        block_on(wait);
        toggler.join().unwrap();
    });
}

#[test]
fn event_set_wakes_every_waiter() {
    loom::model(|| {
        let event = Event::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || block_on(event.wait()))
            })
            .collect();
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

#[test]
fn a_wait_begun_while_set_completes_despite_a_clear() {
    loom::model(|| {
        let event = Event::new();
        event.set();
        let wait = event.wait();
        let clearer = thread::spawn(move || event.clear());
        block_on(wait);
        clearer.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// JoinHandle

#[test]
fn join_handle_gets_the_output() {
    loom::model(|| {
        let rt = runtime();
        let handle = rt.spawn(async { 7 });
        assert_eq!(block_on(handle).unwrap(), 7);
    });
}

#[test]
fn abort_racing_completion_gives_one_outcome_after_the_drop() {
    loom::model(|| {
        let rt = runtime();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let handle = rt.spawn(async move {
            let _flag = flag;
            1
        });
        handle.abort();
        match block_on(handle) {
            Ok(value) => assert_eq!(value, 1),
            Err(err) => assert!(err.is_cancelled(), "{err}"),
        }
        // Either way, the task's future is gone before the handle reports.
        assert!(dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn abort_wakes_a_pending_task_and_drops_its_future() {
    loom::model(|| {
        let rt = runtime();
        let dropped = Arc::new(AtomicBool::new(false));
        let handle = rt.spawn(Forever(DropFlag(dropped.clone())));
        // The task thread may already be parked on its `Pending`: the abort must wake it.
        handle.abort();
        let outcome = block_on(handle);
        assert!(matches!(outcome, Err(JoinError::Cancelled)));
        assert!(dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn dropping_the_handle_cancels_the_task() {
    loom::model(|| {
        let rt = runtime();
        let dropped = Arc::new(AtomicBool::new(false));
        drop(rt.spawn(Forever(DropFlag(dropped.clone()))));
        block_on(rt.wait_for_all_other_tasks());
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn a_task_its_executor_drops_unpolled_is_cancelled() {
    loom::model(|| {
        let rt = Runtime::new(|task| {
            thread::spawn(move || drop(task));
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let handle = rt.spawn(Forever(DropFlag(dropped.clone())));
        assert!(block_on(handle).unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst));
    });
}

// ---------------------------------------------------------------------------------------------
// Task registry

#[test]
fn drain_waits_for_every_live_task() {
    loom::model(|| {
        let rt = runtime();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let done = done.clone();
            rt.spawn(async move {
                done.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
        }
        block_on(rt.wait_for_all_other_tasks());
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn drain_inside_a_task_does_not_wait_for_itself() {
    loom::model(|| {
        let rt = runtime();
        let done = Arc::new(AtomicBool::new(false));
        let other = rt.spawn({
            let done = done.clone();
            async move { done.store(true, Ordering::SeqCst) }
        });
        let drainer = rt.spawn({
            let rt = rt.clone();
            async move { rt.wait_for_all_other_tasks().await }
        });
        other.detach();
        block_on(drainer).unwrap();
        assert!(done.load(Ordering::SeqCst));
    });
}

#[test]
fn drain_counts_only_the_tasks_live_at_the_call() {
    loom::model(|| {
        let rt = runtime();
        let first_done = Arc::new(AtomicBool::new(false));
        rt.spawn({
            let first_done = first_done.clone();
            async move { first_done.store(true, Ordering::SeqCst) }
        })
        .detach();
        let drain = rt.wait_for_all_other_tasks();
        // A task spawned after the call, which may finish before the first one: it must not
        // count towards the drain.
        rt.spawn(async {}).detach();
        block_on(drain);
        assert!(first_done.load(Ordering::SeqCst));
    });
}

#[test]
fn drain_racing_a_spawn_never_hangs() {
    loom::model(|| {
        let rt = runtime();
        let spawner = thread::spawn({
            let rt = rt.clone();
            move || rt.spawn(async {}).detach()
        });
        // The racing task may or may not be counted; either way the drain completes.
        block_on(rt.wait_for_all_other_tasks());
        spawner.join().unwrap();
        block_on(rt.wait_for_all_other_tasks());
        assert_eq!(rt.live_tasks(), 0);
    });
}

#[test]
fn two_drains_at_once_each_wait_for_their_own_set() {
    loom::model(|| {
        let rt = runtime();
        let done = Arc::new(AtomicBool::new(false));
        rt.spawn({
            let done = done.clone();
            async move { done.store(true, Ordering::SeqCst) }
        })
        .detach();
        // A drain inside a task, and one outside that waits for that task too.
        let drainer = rt.spawn({
            let rt = rt.clone();
            async move { rt.wait_for_all_other_tasks().await }
        });
        block_on(rt.wait_for_all_other_tasks());
        assert!(done.load(Ordering::SeqCst));
        assert!(drainer.is_finished());
        block_on(drainer).unwrap();
        assert_eq!(rt.live_tasks(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// CancellationToken: the tree's links, under cancels, child creation and drops at once

#[test]
fn a_child_made_while_its_parent_is_cancelled_is_cancelled() {
    loom::model(|| {
        let parent = CancellationToken::new();
        let maker = thread::spawn({
            let parent = parent.clone();
            move || parent.child_token()
        });
        parent.cancel();
        let child = maker.join().unwrap();
        assert!(child.is_cancelled());
    });
}

#[test]
fn a_grandchild_moving_up_as_its_parent_drops_is_cancelled_by_a_racing_cancel() {
    loom::model(|| {
        let root = CancellationToken::new();
        let child = root.child_token();
        let grandchild = child.child_token();
        let dropper = thread::spawn(move || drop(child));
        root.cancel();
        dropper.join().unwrap();
        assert!(grandchild.is_cancelled());
    });
}

#[test]
fn siblings_dropped_at_once_leave_the_rest_linked() {
    loom::model(|| {
        let root = CancellationToken::new();
        let (a, b, c) = (root.child_token(), root.child_token(), root.child_token());
        let dropper = thread::spawn(move || drop(a));
        drop(b);
        dropper.join().unwrap();
        root.cancel();
        assert!(c.is_cancelled());
    });
}

#[test]
fn a_parent_and_its_child_dropped_at_once_leak_nothing() {
    // loom fails the model if a node's `Arc` is never freed (a parent/child cycle left behind).
    loom::model(|| {
        let root = CancellationToken::new();
        let child = root.child_token();
        let grandchild = child.child_token();
        let dropper = thread::spawn(move || drop(child));
        drop(root);
        dropper.join().unwrap();
        assert!(!grandchild.is_cancelled());
    });
}

#[test]
fn a_waiter_on_another_thread_wakes_at_the_cancel() {
    loom::model(|| {
        let token = CancellationToken::new();
        let waiter = thread::spawn({
            let token = token.child_token();
            move || block_on(token.cancelled_owned())
        });
        token.cancel();
        waiter.join().unwrap();
    });
}

#[test]
fn two_levels_dropping_while_the_root_is_cancelled_leave_the_leaf_cancelled() {
    loom::model(|| {
        let root = CancellationToken::new();
        let a = root.child_token();
        let b = a.child_token();
        let leaf = b.child_token();
        let dropper = thread::spawn(move || drop(a));
        let canceller = thread::spawn({
            let root = root.clone();
            move || root.cancel()
        });
        drop(b);
        dropper.join().unwrap();
        canceller.join().unwrap();
        assert!(leaf.is_cancelled());
    });
}

// ---------------------------------------------------------------------------------------------
// TaskTracker: close and reopen against the last task's exit

#[test]
fn a_close_racing_the_last_exit_ends_the_wait() {
    loom::model(|| {
        let tracker = TaskTracker::new(&runtime());
        let task = tracker.track_future(std::future::ready(()));
        let exiter = thread::spawn(move || drop(task));
        let closer = thread::spawn({
            let tracker = tracker.clone();
            move || tracker.close()
        });
        block_on(tracker.wait());
        assert!(tracker.is_empty() && tracker.is_closed());
        exiter.join().unwrap();
        closer.join().unwrap();
    });
}

#[test]
fn a_reopen_racing_the_last_exit_never_strands_a_wait() {
    loom::model(|| {
        let tracker = TaskTracker::new(&runtime());
        let task = tracker.track_future(std::future::ready(()));
        tracker.close();
        let wait = tracker.wait();
        let exiter = thread::spawn(move || drop(task));
        let reopener = thread::spawn({
            let tracker = tracker.clone();
            move || tracker.reopen()
        });
        exiter.join().unwrap();
        reopener.join().unwrap();
        // Whether or not the exit came before the reopen, a close now ends the wait.
        tracker.close();
        block_on(wait);
    });
}

// ---------------------------------------------------------------------------------------------
// TaskGroup: the limit

#[test]
fn a_group_with_a_limit_of_one_never_runs_two_at_once() {
    loom::model(|| {
        let mut group = TaskGroup::with_limit(&runtime(), 1);
        let running = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let running = running.clone();
            group.spawn(async move {
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        assert_eq!(block_on(group.join_all()).len(), 2);
    });
}

// ---------------------------------------------------------------------------------------------
// TaskGroup: the slots its tasks report into

#[test]
fn a_members_abort_racing_its_end_gives_one_outcome_after_the_drop() {
    loom::model(|| {
        let mut group = TaskGroup::new(&runtime());
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let abort = group.spawn(async move {
            drop(flag);
            5
        });
        let aborter = thread::spawn(move || abort.abort());
        let outcome = block_on(group.join_next()).unwrap();
        assert!(
            dropped.load(Ordering::SeqCst),
            "the outcome came before the drop"
        );
        match outcome {
            Ok(five) => assert_eq!(five, 5),
            Err(error) => assert!(error.is_cancelled()),
        }
        aborter.join().unwrap();
    });
}

#[test]
fn an_abort_from_another_thread_wakes_a_parked_member() {
    loom::model(|| {
        let mut group = TaskGroup::new(&runtime());
        let dropped = Arc::new(AtomicBool::new(false));
        let abort = group.spawn(Forever(DropFlag(dropped.clone())));
        let aborter = thread::spawn(move || abort.abort());
        let outcome = block_on(group.join_next()).unwrap();
        assert!(outcome.unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst));
        aborter.join().unwrap();
    });
}

#[test]
fn a_stale_abort_racing_the_reuse_of_its_slot_aborts_nothing() {
    loom::model(|| {
        let mut group = TaskGroup::new(&runtime());
        let stale = group.spawn(async { 1 });
        assert_eq!(block_on(group.join_next()).unwrap().unwrap(), 1);
        let aborter = thread::spawn(move || stale.abort());
        group.spawn(async { 2 });
        assert_eq!(block_on(group.join_next()).unwrap().unwrap(), 2);
        aborter.join().unwrap();
    });
}

#[test]
fn a_group_dropped_as_its_task_ends_drops_the_output() {
    loom::model(|| {
        let rt = runtime();
        let mut group = TaskGroup::new(&rt);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        group.spawn(async move { flag });
        drop(group);
        block_on(rt.wait_for_all_other_tasks());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the output outlived the group"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Service: a part stopped as its component's deinit begins

/// A component whose `on_run` part holds a `DropFlag`, and whose deinit checks that the part
/// was dropped first.
struct Server {
    lifecycle: Lifecycle,
    part_dropped: Arc<AtomicBool>,
    /// The part ends by itself at once, racing the shutdown; else it runs until stopped.
    ends_at_once: bool,
}

impl Component for Server {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    async fn on_run(&self) -> Result<(), BoxError> {
        let _flag = DropFlag(self.part_dropped.clone());
        if !self.ends_at_once {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn on_deinit(&self) -> Result<(), BoxError> {
        assert!(
            self.part_dropped.load(Ordering::SeqCst),
            "the deinit began before the part was dropped"
        );
        Ok(())
    }
}

fn serve_until_a_stop_from_another_thread(ends_at_once: bool) {
    let server = Server {
        lifecycle: Lifecycle::new(),
        part_dropped: Arc::new(AtomicBool::new(false)),
        ends_at_once,
    };
    let stop = Event::new();
    let stopper = thread::spawn({
        let stop = stop.clone();
        move || stop.set()
    });
    let report = block_on(
        Service::new(&server)
            .runtime(&runtime())
            .shutdown_on(stop.wait())
            .run_to_report(),
    );
    assert!(report.error.is_none(), "{report}");
    assert_eq!(report.exit_code(), 0);
    stopper.join().unwrap();
}

#[test]
fn a_running_part_is_dropped_before_its_deinit_begins() {
    loom::model(|| serve_until_a_stop_from_another_thread(false));
}

#[test]
fn a_part_that_ends_as_the_shutdown_begins_never_strands_the_deinit() {
    loom::model(|| serve_until_a_stop_from_another_thread(true));
}

#[test]
fn a_wait_dropped_while_the_token_is_cancelled_leaves_the_others_woken() {
    loom::model(|| {
        let token = CancellationToken::new();
        let waiter = thread::spawn({
            let token = token.clone();
            move || block_on(token.cancelled_owned())
        });
        let mut dropped = Box::pin(token.clone().cancelled_owned());
        let noop = std::task::Waker::noop();
        let _ = dropped.as_mut().poll(&mut Context::from_waker(noop));
        let dropper = thread::spawn(move || drop(dropped));
        token.cancel();
        waiter.join().unwrap();
        dropper.join().unwrap();
    });
}
