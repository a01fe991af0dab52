//! `TaskTracker`: tokio-util's semantics (its suite's behaviours, in tests of our own), on every
//! runtime of the harness.

mod common;

use std::future::Future;

use asynchronously::TaskTracker;
use common::{DropCounter, pending_counted};
use futures::FutureExt;

/// A tracked future that never ends: holds one place in the tracker until dropped.
fn held(tracker: &TaskTracker) -> impl Future<Output = ()> + Unpin {
    Box::pin(tracker.track_future(std::future::pending::<()>()))
}

each_runtime! {
    async fn close_and_reopen_say_whether_they_changed_anything(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        assert!(!tracker.is_closed());
        assert!(!tracker.reopen(), "open already");
        assert!(tracker.close());
        assert!(tracker.is_closed());
        assert!(!tracker.close(), "closed already");
        assert!(tracker.reopen());
        assert!(!tracker.is_closed());
    }
}

each_runtime! {
    async fn len_counts_tracked_futures_until_they_are_dropped(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let (a, b) = (held(&tracker), held(&tracker));
        assert_eq!((tracker.len(), tracker.is_empty()), (2, false));
        drop(a);
        assert_eq!(tracker.len(), 1);
        drop(b);
        assert!(tracker.is_empty());
    }
}

each_runtime! {
    async fn a_wait_on_an_open_empty_tracker_is_pending(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let mut wait = tracker.wait();
        assert!((&mut wait).now_or_never().is_none());
        assert!((&mut wait).now_or_never().is_none());
    }
}

each_runtime! {
    async fn a_wait_made_while_closed_and_empty_is_over_even_after_a_reopen(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        tracker.close();
        assert!(tracker.wait().now_or_never().is_some());
        let mut wait = tracker.wait();
        tracker.reopen();
        assert!((&mut wait).now_or_never().is_some());
        assert!(
            tracker.wait().now_or_never().is_none(),
            "a wait made after the reopen waits"
        );
    }
}

each_runtime! {
    async fn a_close_ends_a_pending_wait_even_if_reopened_before_the_next_poll(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let mut wait = tracker.wait();
        assert!((&mut wait).now_or_never().is_none());
        tracker.close();
        tracker.reopen();
        assert!((&mut wait).now_or_never().is_some());
        // Made before the poll too: a wait made before an exit it never polled through is over.
        let mut unpolled = tracker.wait();
        tracker.close();
        tracker.reopen();
        assert!((&mut unpolled).now_or_never().is_some());
    }
}

each_runtime! {
    async fn the_last_task_ends_the_wait_of_a_closed_tracker_even_if_another_comes(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        tracker.close();
        let task = held(&tracker);
        let mut wait = tracker.wait();
        assert!((&mut wait).now_or_never().is_none());
        drop(task);
        let again = held(&tracker);
        assert!((&mut wait).now_or_never().is_some());
        drop(again);
    }
}

each_runtime! {
    async fn the_last_task_of_an_open_tracker_ends_no_wait(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let task = held(&tracker);
        let mut wait = tracker.wait();
        assert!((&mut wait).now_or_never().is_none());
        drop(task);
        let again = held(&tracker);
        assert!((&mut wait).now_or_never().is_none());
        drop(again);
    }
}

each_runtime! {
    async fn a_close_at_any_point_of_the_exits_ends_the_wait_only_when_empty(rt, _clock) {
        const TASKS: usize = 5;
        for close_at in 0..=TASKS {
            let tracker = TaskTracker::new(&rt);
            let tasks: Vec<_> = (0..TASKS).map(|_| held(&tracker)).collect();
            let mut wait = tracker.wait();
            for (i, task) in tasks.into_iter().enumerate() {
                assert!((&mut wait).now_or_never().is_none());
                if i == close_at {
                    tracker.close();
                    assert!((&mut wait).now_or_never().is_none(), "closed, not empty");
                }
                drop(task);
            }
            if close_at == TASKS {
                assert!((&mut wait).now_or_never().is_none(), "empty, not closed");
                tracker.close();
            }
            assert!((&mut wait).now_or_never().is_some(), "close at {close_at}");
        }
    }
}

each_runtime! {
    async fn a_close_ends_every_wait(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let mut waits: Vec<_> = (0..10).map(|_| tracker.wait()).collect();
        assert!(waits.iter_mut().all(|wait| wait.now_or_never().is_none()));
        tracker.close();
        assert!(waits.iter_mut().all(|wait| wait.now_or_never().is_some()));
    }
}

each_runtime! {
    /// Spawned tasks are tracked until they end; `wait` returns once the tracker is closed and
    /// the last one ended, and sees only its own tasks.
    async fn wait_returns_once_closed_and_every_spawned_task_ended(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let (release, released) = futures::channel::oneshot::channel::<()>();
        let slow = tracker.spawn(async move { released.await.unwrap() });
        let quick: Vec<_> = (0..8).map(|i| tracker.spawn(async move { i })).collect();
        // A task of the same runtime, not the tracker's: not waited for.
        let other = rt.spawn(std::future::pending::<()>());
        tracker.close();
        for (i, task) in quick.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i);
        }
        let mut wait = tracker.wait();
        assert_eq!(tracker.len(), 1);
        assert!((&mut wait).now_or_never().is_none());
        release.send(()).unwrap();
        wait.await;
        assert!(tracker.is_empty());
        slow.await.unwrap();
        drop(other);
    }
}

each_runtime! {
    /// A cancelled task counts off too: an aborted task's future is dropped, and with it its
    /// place in the tracker.
    async fn an_aborted_task_leaves_the_tracker(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let drops = DropCounter::new();
        let task = tracker.spawn(pending_counted::<()>(&drops));
        tracker.close();
        assert_eq!(tracker.len(), 1);
        task.abort();
        tracker.wait().await;
        assert_eq!(drops.count(), 1);
        assert!(task.await.unwrap_err().is_cancelled());
    }
}

each_runtime! {
    /// Waits on other tasks end when the tracker is closed and empty.
    async fn many_waiters_on_other_tasks_all_wake(rt, _clock) {
        let tracker = TaskTracker::new(&rt);
        let task = tracker.spawn(async {});
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let tracker = tracker.clone();
                rt.spawn(async move { tracker.wait().await })
            })
            .collect();
        task.await.unwrap();
        tracker.close();
        for waiter in waiters {
            waiter.await.unwrap();
        }
    }
}

/// `spawn_detached` runs the future on the tracker's runtime, tracked until it ends.
#[test]
fn spawn_detached_runs_the_future_and_the_tracker_waits_for_it() {
    common::bounded(|| {
        let rt = asynchronously::rt::Runtime::new(asynchronously::rt::ThreadPerTask);
        let tracker = TaskTracker::new(&rt);
        let (release, released) = futures::channel::oneshot::channel::<()>();
        let (ran, done) = futures::channel::oneshot::channel();
        tracker.spawn_detached(async move {
            released.await.unwrap();
            ran.send("ran").unwrap();
        });
        assert_eq!(tracker.len(), 1);
        tracker.close();
        let mut wait = Box::pin(tracker.wait());
        assert!(
            (&mut wait).now_or_never().is_none(),
            "the task is still tracked"
        );
        release.send(()).unwrap();
        futures::executor::block_on(wait);
        assert_eq!(futures::executor::block_on(done).unwrap(), "ran");
        assert!(tracker.is_empty());
    });
}

/// A wait says in its `Debug` whether it is over: not while the tracker is open, at once when
/// it is closed and empty.
#[test]
fn a_wait_debugs_with_whether_it_is_over() {
    let tracker = TaskTracker::new(&asynchronously::rt::Runtime::new(
        asynchronously::rt::ThreadPerTask,
    ));
    assert_eq!(
        format!("{:?}", tracker.wait()),
        "TaskTrackerWaitFuture { is_over: false }"
    );
    let made_open = tracker.wait();
    tracker.close();
    assert_eq!(
        format!("{:?}", tracker.wait()),
        "TaskTrackerWaitFuture { is_over: true }"
    );
    assert_eq!(
        format!("{made_open:?}"),
        "TaskTrackerWaitFuture { is_over: true }",
        "a wait made before the close is over too"
    );
    assert_eq!(
        format!("{tracker:?}"),
        "TaskTracker { len: 0, is_closed: true }"
    );
}

/// A tracked future names itself in its `Debug`.
#[test]
fn a_tracked_future_debugs_with_its_name() {
    let tracker = TaskTracker::new(&asynchronously::rt::Runtime::new(
        asynchronously::rt::ThreadPerTask,
    ));
    assert_eq!(
        format!("{:?}", tracker.track_future(async {})),
        "TrackedFuture { .. }"
    );
}
