//! `rt`: spawning, JoinHandle semantics, the task registry, and the clocks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynchronously::Event;
use asynchronously::rt::{JoinError, ManualClock, Runtime, ThreadPerTask, Timer};
use common::{DropCounter, pending_counted, sleepers, until};
use futures::FutureExt;

each_runtime! {
    async fn spawn_gives_the_output(rt, _clock) {
        let task = rt.spawn(async { 40 + 2 });
        assert_eq!(task.await.unwrap(), 42);
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// Dropping a JoinHandle cancels the task: its future is dropped and it leaves the registry.
    async fn dropping_the_handle_cancels_the_task(rt, _clock) {
        let drops = DropCounter::new();
        let task = rt.spawn(pending_counted::<()>(&drops));
        assert_eq!(rt.live_tasks(), 1);
        drop(task);
        until(|| drops.count() == 1).await;
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    async fn a_detached_task_runs_to_completion(rt, _clock) {
        let go = Event::new();
        let done = Event::new();
        let drops = DropCounter::new();
        let task = rt.spawn({
            let (go, done, token) = (go.clone(), done.clone(), drops.token());
            async move {
                go.wait().await;
                done.set();
                drop(token);
            }
        });
        task.detach();
        assert_eq!(drops.count(), 0, "detaching does not cancel");
        go.set();
        done.wait().await;
        until(|| drops.count() == 1 && rt.live_tasks() == 0).await;
    }
}

/// A future whose destructor takes a while, so that a handle that reported `Cancelled` before
/// the destructor finished would be caught.
struct SlowDrop(DropCounter);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(20));
        drop(self.0.token()); // counts the drop only once the slow part is over
    }
}

each_runtime! {
    /// `abort()` then `.await` gives `Cancelled` only once the task's future has been dropped:
    /// `Abortable` alone reports the abort before the destructor runs.
    async fn abort_then_await_sees_the_destructor_already_run(rt, _clock) {
        for _ in 0..5 {
            let drops = DropCounter::new();
            let started = Event::new();
            let task = rt.spawn({
                let slow = SlowDrop(drops.clone());
                let started = started.clone();
                async move {
                    let _slow = slow;
                    started.set();
                    std::future::pending::<()>().await
                }
            });
            started.wait().await;
            task.abort();
            let outcome = task.await;
            assert!(outcome.unwrap_err().is_cancelled());
            assert_eq!(drops.count(), 1, "the destructor ran before the handle resolved");
        }
    }
}

each_runtime! {
    /// Aborting a task that has not been polled yet also drops its future before resolving.
    async fn abort_before_the_first_poll(rt, _clock) {
        let drops = DropCounter::new();
        let task = rt.spawn(pending_counted::<()>(&drops));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(drops.count(), 1);
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// A handle is a `FusedFuture`: terminated once it gave the output, never before.
    async fn a_handle_is_terminated_once_it_gave_the_output(rt, _clock) {
        use futures::future::FusedFuture;
        let mut task = rt.spawn(async { 7 });
        until(|| task.is_finished()).await;
        assert!(!task.is_terminated(), "finished, but its output was not taken");
        assert_eq!((&mut task).await.unwrap(), 7);
        assert!(task.is_terminated());
    }
}

each_runtime! {
    async fn abort_after_completion_keeps_the_output(rt, _clock) {
        let task = rt.spawn(async { "finished" });
        until(|| task.is_finished()).await;
        task.abort();
        assert_eq!(task.await.unwrap(), "finished");
    }
}

each_runtime! {
    async fn a_panic_becomes_a_value(rt, _clock) {
        // An argument the compiler cannot fold into the literal gives a `String` payload.
        let disk = std::hint::black_box(3);
        let task = rt.spawn(async move { panic!("disk {disk} is full") });
        let id = task.id();
        let error = task.await.unwrap_err();
        assert!(error.is_panic());
        assert_eq!(error.id(), Some(id));
        assert_eq!(error.to_string(), format!("task {id} panicked with message \"disk 3 is full\""));
        let JoinError::Panicked(payload) = error else { unreachable!() };
        assert_eq!(payload.message(), Some("disk 3 is full"));
        assert_eq!(format!("{payload:?}"), "PanicPayload { message: Some(\"disk 3 is full\"), .. }");
        assert_eq!(payload.into_inner().downcast_ref::<String>().unwrap(), "disk 3 is full");
        // The runtime is intact.
        assert_eq!(rt.spawn(async { 1 }).await.unwrap(), 1);
        until(|| rt.live_tasks() == 0).await;
    }
}

/// Panics as it is dropped: a future holding one has a panicking destructor.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor failed");
    }
}

each_runtime! {
    /// A future whose destructor panics after it completed is reported as a panic, and the
    /// executor survives it.
    async fn a_panicking_destructor_is_reported(rt, _clock) {
        let task = rt.spawn(async {
            let _guard = PanicOnDrop;
            7
        });
        let id = task.id();
        let error = task.await.unwrap_err();
        assert_eq!(error.to_string(), format!("task {id} panicked with message \"destructor failed\""));
        assert_eq!(rt.spawn(async { 8 }).await.unwrap(), 8);
    }
}

/// Records, as it is dropped, whether a panic was unwinding: what a guard that commits "unless
/// panicking" (scopeguard's `defer_on_success`, a transaction) looks at.
struct Witness {
    name: &'static str,
    journal: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let unwinding = std::thread::panicking();
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} dropped, panicking: {unwinding}", self.name));
    }
}

/// A future that keeps a `Witness` as a field, yields once, then panics or completes: its state
/// is the task's to drop (an async block drops the locals in scope as a panic leaves it, but not
/// what it captured, nor a hand-written future's fields).
struct HoldsWitness {
    _witness: Witness,
    yielded: bool,
    panics: bool,
}

impl std::future::Future for HoldsWitness {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        assert!(!self.panics, "boom");
        std::task::Poll::Ready(())
    }
}

each_runtime! {
    /// A task's panic unwinds through its future, as in tokio and in a std thread: the state the
    /// future holds is dropped while the panic unwinds, and sees `std::thread::panicking()`.
    /// (It used to be dropped after the panic was caught, and saw `false`: a guard that acts
    /// "on success unless panicking" acted as if the task had succeeded.)
    async fn a_panicking_task_drops_its_state_while_unwinding(rt, _clock) {
        let journal = Arc::new(std::sync::Mutex::new(Vec::new()));
        let witness = |name| Witness { name, journal: journal.clone() };
        let task = rt.spawn(HoldsWitness { _witness: witness("panicking"), yielded: false, panics: true });
        let id = task.id();
        let error = task.await.unwrap_err();
        journal.lock().unwrap().push(format!("handle: {error}").replace(&id.to_string(), "N"));
        rt.spawn(HoldsWitness { _witness: witness("succeeding"), yielded: false, panics: false })
            .await
            .unwrap();
        assert_eq!(
            *journal.lock().unwrap(),
            [
                "panicking dropped, panicking: true",
                "handle: task N panicked with message \"boom\"",
                "succeeding dropped, panicking: false",
            ]
        );
    }
}

each_runtime! {
    /// The order of events as an aborted task and a panicking task end: each one's state is
    /// dropped before its handle resolves, and before the runtime counts it off; an aborted
    /// task's state is dropped with no panic unwinding.
    async fn aborted_and_panicking_tasks_drop_their_state_before_they_report(rt, _clock) {
        let journal = Arc::new(std::sync::Mutex::new(Vec::new()));
        let witness = |name| Witness { name, journal: journal.clone() };
        let note = |entry: String| journal.lock().unwrap().push(entry);
        let (started, began) = futures::channel::oneshot::channel();
        let aborted = rt.spawn({
            let guard = witness("aborted");
            async move {
                let _guard = guard;
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            }
        });
        began.await.unwrap();
        aborted.abort();
        let error = aborted.await.unwrap_err();
        note(format!("aborted handle: {error}"));
        let panicking = rt.spawn(HoldsWitness { _witness: witness("panicking"), yielded: false, panics: true });
        let id = panicking.id();
        let error = panicking.await.unwrap_err();
        note(format!("panicking handle: {error}").replace(&id.to_string(), "N"));
        until(|| rt.live_tasks() == 0).await;
        note("none live".to_string());
        assert_eq!(
            *journal.lock().unwrap(),
            [
                "aborted dropped, panicking: false",
                "aborted handle: task was cancelled",
                "panicking dropped, panicking: true",
                "panicking handle: task N panicked with message \"boom\"",
                "none live",
            ]
        );
    }
}

each_runtime! {
    /// Aborting a task whose future panics as it is dropped reports that panic, on every
    /// executor (on tokio, tokio's abort drops the task), and the executor survives it.
    async fn an_aborted_task_with_a_panicking_destructor_reports_the_panic(rt, _clock) {
        let (started, began) = futures::channel::oneshot::channel();
        let task = rt.spawn(async move {
            let _guard = PanicOnDrop;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        began.await.unwrap();
        task.abort();
        let id = task.id();
        let error = task.await.unwrap_err();
        assert_eq!(error.to_string(), format!("task {id} panicked with message \"destructor failed\""));
        until(|| rt.live_tasks() == 0).await;
        assert_eq!(rt.spawn(async { 8 }).await.unwrap(), 8);
    }
}

each_runtime! {
    /// A detached task runs to completion, counts as live until its future is dropped, is
    /// drained like any other, and a drain inside one does not wait for itself; a panic in one
    /// is caught and the executor lives on.
    async fn spawn_detached_runs_counts_and_drains(rt, _clock) {
        let drops = DropCounter::new();
        let (go, gate) = futures::channel::oneshot::channel::<()>();
        let token = drops.token();
        rt.spawn_detached(async move {
            let _token = token;
            gate.await.unwrap();
            7 // an output, dropped
        });
        assert_eq!(rt.live_tasks(), 1);
        rt.spawn_detached(async { panic!("detached and broken") });
        go.send(()).unwrap();
        rt.wait_for_all_other_tasks().await;
        assert_eq!(drops.count(), 1, "drained means its future was dropped");
        assert_eq!(rt.live_tasks(), 0);

        let (done, finished) = futures::channel::oneshot::channel();
        let inner = rt.clone();
        rt.spawn_detached(async move {
            inner.wait_for_all_other_tasks().await; // not waiting for itself
            done.send(()).unwrap();
        });
        finished.await.unwrap();
        assert_eq!(rt.spawn(async { 8 }).await.unwrap(), 8);
    }
}

each_runtime! {
    async fn is_finished_follows_the_task(rt, _clock) {
        let go = Event::new();
        let task = rt.spawn({
            let go = go.clone();
            async move { go.wait().await }
        });
        assert!(!task.is_finished());
        go.set();
        until(|| task.is_finished()).await;
        task.await.unwrap();
    }
}

each_runtime! {
    /// The guarantee `wait_for_all_other_tasks` exists for: called from inside a task, it
    /// returns (it does not wait for its caller), after every other live task finished.
    async fn wait_for_all_other_tasks_from_inside_a_task_returns(rt, _clock) {
        let go = Event::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (go, finished) = (go.clone(), finished.clone());
            rt.spawn(async move {
                go.wait().await;
                finished.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
        }
        let drainer = rt.spawn({
            let (rt, finished) = (rt.clone(), finished.clone());
            async move {
                rt.wait_for_all_other_tasks().await;
                finished.load(Ordering::SeqCst)
            }
        });
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert!(!drainer.is_finished(), "the drain waits for the three tasks");
        go.set();
        assert_eq!(drainer.await.unwrap(), 3);
    }
}

each_runtime! {
    /// Tasks spawned after the call are not waited for; tasks live at the call are.
    async fn wait_for_all_other_tasks_ignores_later_tasks(rt, _clock) {
        let go = Event::new();
        let early = rt.spawn({
            let go = go.clone();
            async move { go.wait().await }
        });
        let mut drain = Box::pin(rt.wait_for_all_other_tasks());
        let later = rt.spawn(std::future::pending::<()>());
        assert!((&mut drain).now_or_never().is_none(), "the early task is still live");
        go.set();
        drain.await; // returns although `later` never finishes
        assert!(early.is_finished());
        assert!(!later.is_finished());
    }
}

each_runtime! {
    async fn wait_for_all_other_tasks_with_nothing_live_returns_at_once(rt, _clock) {
        rt.wait_for_all_other_tasks().now_or_never().expect("nothing to wait for");
    }
}

each_runtime! {
    /// A drain dropped before it finished leaves nothing behind: later drains still work.
    async fn a_dropped_drain_is_forgotten(rt, _clock) {
        let go = Event::new();
        rt.spawn({
            let go = go.clone();
            async move { go.wait().await }
        })
        .detach();
        let mut first = Box::pin(rt.wait_for_all_other_tasks());
        assert!((&mut first).now_or_never().is_none());
        drop(first);
        let second = rt.wait_for_all_other_tasks();
        go.set();
        second.await;
        assert_eq!(rt.live_tasks(), 0);
    }
}

each_runtime! {
    async fn live_tasks_counts_until_each_task_ends(rt, _clock) {
        let go = Event::new();
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let go = go.clone();
                rt.spawn(async move { go.wait().await })
            })
            .collect();
        assert_eq!(rt.live_tasks(), 5);
        go.set();
        for handle in handles {
            handle.await.unwrap();
        }
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// Sleeps on the runtime's timer follow the ManualClock, to the nanosecond.
    async fn sleeps_follow_the_manual_clock(rt, clock) {
        let woke = rt.spawn({
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_millis(30)).await;
                rt.timer().now()
            }
        });
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(29));
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert!(!woke.is_finished(), "29 ms of 30 have passed");
        clock.advance(Duration::from_millis(1));
        let at = woke.await.unwrap();
        assert_eq!(at - clock.origin(), Duration::from_millis(30));
    }
}

each_runtime! {
    /// A sleep of `Duration::MAX` neither panics nor overflows, and can be cancelled.
    async fn a_sleep_of_duration_max_on_the_manual_clock(rt, clock) {
        let forever = rt.spawn({
            let rt = rt.clone();
            async move { rt.sleep(Duration::MAX).await }
        });
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_secs(100 * 365 * 86_400));
        assert_eq!(clock.sleepers(), 1, "a century is not forever");
        assert!(!forever.is_finished());
        forever.abort();
        assert!(forever.await.unwrap_err().is_cancelled());
        assert_eq!(clock.sleepers(), 0);
        let _ = rt.timer().now(); // time far ahead is still representable
        let _ = rt.timer().system_now();
    }
}

each_runtime_real_time! {
    /// Each real timer: a short sleep completes, a zero sleep is ready at once, and a sleep of
    /// `Duration::MAX` neither panics nor completes.
    async fn real_timers_sleep_and_never_overflow(rt) {
        rt.sleep(Duration::ZERO).now_or_never().expect("a zero sleep is over at once");
        let before = rt.timer().now();
        rt.sleep(Duration::from_millis(5)).await;
        assert!(rt.timer().now() - before >= Duration::from_millis(5));
        // sleep_until: a deadline ahead is waited for, one behind is over at once.
        let deadline = rt.timer().now() + Duration::from_millis(5);
        rt.timer().sleep_until(deadline).await;
        assert!(rt.timer().now() >= deadline);
        rt.timer().sleep_until(before).await;

        let forever = rt.spawn({
            let rt = rt.clone();
            async move { rt.sleep(Duration::MAX).await }
        });
        rt.sleep(Duration::from_millis(20)).await;
        assert!(!forever.is_finished());
        forever.abort();
        assert!(forever.await.unwrap_err().is_cancelled());
    }
}

#[test]
fn manual_clock_sleep_until_is_exact() {
    let clock = ManualClock::new();
    let mut due = clock.sleep_until(clock.origin() + Duration::from_millis(30));
    assert!((&mut due).now_or_never().is_none());
    clock.advance(Duration::from_millis(29));
    assert!((&mut due).now_or_never().is_none());
    clock.advance(Duration::from_millis(1));
    assert!(due.now_or_never().is_some());
    assert!(
        clock.sleep_until(clock.origin()).now_or_never().is_some(),
        "a past deadline"
    );
}

#[test]
fn manual_clock_zero_sleep_is_ready_at_once() {
    let clock = ManualClock::new();
    assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn manual_clock_moves_both_clocks_and_saturates() {
    let clock = ManualClock::new();
    let wall = clock.system_now();
    clock.advance(Duration::from_secs(90));
    assert_eq!(clock.now() - clock.origin(), Duration::from_secs(90));
    assert_eq!(
        clock.system_now().duration_since(wall).unwrap(),
        Duration::from_secs(90)
    );
    clock.advance(Duration::MAX);
    assert_eq!(clock.elapsed(), Duration::MAX);
    assert!(clock.now() > clock.origin());
    assert!(clock.system_now() > wall);
}

#[test]
fn manual_clock_wakes_only_the_sleeps_that_are_due() {
    let clock = ManualClock::new();
    let mut short = clock.sleep(Duration::from_secs(1));
    let mut long = clock.sleep(Duration::from_secs(2));
    assert!((&mut short).now_or_never().is_none());
    assert!((&mut long).now_or_never().is_none());
    assert_eq!(clock.sleepers(), 2);
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.sleepers(), 1);
    assert!(short.now_or_never().is_some());
    assert!((&mut long).now_or_never().is_none());
    clock.advance(Duration::from_secs(1));
    assert!(long.now_or_never().is_some());
}

/// A spawner whose executor is gone drops every task: the handle resolves to `Cancelled`.
#[test]
fn spawning_where_the_executor_is_gone_gives_cancelled() {
    common::bounded(|| {
        let rt = Runtime::new(drop::<asynchronously::rt::BoxFuture<()>>);
        let drops = DropCounter::new();
        let task = rt.spawn(pending_counted::<u8>(&drops));
        assert_eq!(drops.count(), 1);
        assert!(
            futures::executor::block_on(task)
                .unwrap_err()
                .is_cancelled()
        );
        assert_eq!(rt.live_tasks(), 0);
    });
}

/// An executor that drops a task unpolled, whose future panics as it is dropped: the handle
/// gets the panic, and it does not unwind into the executor.
#[test]
fn a_task_dropped_unpolled_with_a_panicking_destructor_reports_the_panic() {
    common::bounded(|| {
        let rt = Runtime::new(drop::<asynchronously::rt::BoxFuture<()>>);
        let guard = PanicOnDrop;
        let task = rt.spawn(async move {
            let _guard = guard;
        });
        let id = task.id();
        let error = futures::executor::block_on(task).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("task {id} panicked with message \"destructor failed\"")
        );
        assert_eq!(rt.live_tasks(), 0);
    });
}

/// A spawner that panics cancels the task, leaves the registry clean, and the panic resumes.
#[test]
fn a_panicking_spawner_leaves_nothing_behind() {
    let rt = Runtime::new(|_task: asynchronously::rt::BoxFuture<()>| panic!("executor refused"));
    let drops = DropCounter::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(rt.spawn(pending_counted::<()>(&drops)))
    }));
    assert!(outcome.is_err());
    assert_eq!(drops.count(), 1);
    assert_eq!(rt.live_tasks(), 0);
}

#[test]
fn debug_shows_state_not_contents() {
    let rt = Runtime::new(drop::<asynchronously::rt::BoxFuture<()>>);
    assert_eq!(format!("{rt:?}"), "Runtime { live_tasks: 0, .. }");
    let clock = ManualClock::new();
    assert_eq!(
        format!("{clock:?}"),
        "ManualClock { elapsed: 0ns, sleepers: 0 }"
    );
    assert_eq!(format!("{:?}", JoinError::Cancelled), "Cancelled");
    assert_eq!(JoinError::Cancelled.to_string(), "task was cancelled");
}

each_runtime! {
    /// Every task with a handle has an id of its own; the handle, its abort handles and its
    /// panic's error all give the same one.
    async fn task_ids_are_unique_and_travel_with_the_task(rt, _clock) {
        let tasks: Vec<_> = (0..100).map(|i| rt.spawn(async move { i })).collect();
        let mut ids: Vec<_> = tasks.iter().map(asynchronously::rt::JoinHandle::id).collect();
        assert!(tasks.iter().all(|task| task.abort_handle().id() == task.id()));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 100);
        for task in tasks {
            task.await.unwrap();
        }
        let panicking = rt.spawn(async { std::panic::panic_any(7_u8) });
        let id = panicking.id();
        let error = panicking.await.unwrap_err();
        assert_eq!(error.id(), Some(id));
        // A payload that is not a string: no message, as tokio words it.
        assert_eq!(error.to_string(), format!("task {id} panicked"));
    }
}

each_runtime! {
    /// An `AbortHandle` (and each of its clones) cancels the task without owning it: its future
    /// is dropped, the handle gives `Cancelled`, and both say finished. After the task finished,
    /// or once the output was taken, aborting does nothing.
    async fn an_abort_handle_cancels_the_task_it_came_from(rt, _clock) {
        let drops = DropCounter::new();
        let task = rt.spawn(pending_counted::<()>(&drops));
        let abort = task.abort_handle();
        let clone = abort.clone();
        assert!(!abort.is_finished());
        drop(abort); // dropping one does nothing
        assert!(!task.is_finished());
        clone.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(drops.count(), 1);
        assert!(clone.is_finished());

        let done = rt.spawn(async { "output" });
        let abort = done.abort_handle();
        until(|| abort.is_finished()).await;
        abort.abort();
        assert_eq!(done.await.unwrap(), "output");

        let mut taken = rt.spawn(async { 1 });
        assert_eq!((&mut taken).await.unwrap(), 1);
        let late = taken.abort_handle();
        assert!(late.is_finished());
        assert_eq!(late.id(), taken.id());
        late.abort();
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// An abort handle keeps working after the `JoinHandle` is detached: the task runs on until
    /// it is aborted through it.
    async fn an_abort_handle_outlives_a_detached_join_handle(rt, _clock) {
        let drops = DropCounter::new();
        let task = rt.spawn(pending_counted::<()>(&drops));
        let abort = task.abort_handle();
        task.detach();
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert_eq!(drops.count(), 0);
        abort.abort();
        until(|| abort.is_finished()).await;
        assert_eq!(drops.count(), 1);
        until(|| rt.live_tasks() == 0).await;
    }
}

/// A timer that keeps `Timer::random`'s default draws from the thread's generator: two draws
/// differ (a chance of 2^-64 that they do not).
#[test]
fn the_default_random_of_a_timer_draws_anew_each_time() {
    let rt = Runtime::new(asynchronously::rt::ThreadPerTask);
    assert_ne!(rt.timer().random(), rt.timer().random());
}

/// `WaitForSleepers` names itself, how many it waits for, and how many there are.
#[test]
fn wait_for_sleepers_debugs_with_its_count() {
    let clock = ManualClock::new();
    let debug = format!("{:?}", clock.wait_for_sleepers(2));
    assert_eq!(debug, "WaitForSleepers { n: 2, sleepers: 0 }");
}

each_runtime! {
    /// A task of one runtime that waits for every task of another is not one of them: the wait
    /// counts all of the other runtime's tasks.
    async fn a_wait_on_another_runtime_counts_all_of_its_tasks(rt, _clock) {
        let other = Runtime::new(asynchronously::rt::ThreadPerTask);
        let release = Event::new();
        other.spawn_detached({
            let release = release.clone();
            async move { release.wait().await }
        });
        let waiting = rt.spawn({
            let other = other.clone();
            async move { other.wait_for_all_other_tasks().await }
        });
        for _ in 0..100 {
            common::yield_now().await;
        }
        assert!(!waiting.is_finished(), "the wait ended with a task of the other runtime live");
        release.set();
        waiting.await.unwrap();
    }
}

/// A `ManualClock` draws from its own seed: the same seed gives the same draws, and the draws
/// of one clock differ from one another.
#[test]
fn a_manual_clock_draws_from_its_seed() {
    let (a, b) = (ManualClock::with_seed(7), ManualClock::with_seed(7));
    let draws = [a.random(), a.random()];
    assert_eq!(draws, [b.random(), b.random()]);
    assert_ne!(draws[0], draws[1]);
    assert_ne!(ManualClock::with_seed(8).random(), draws[0]);
}

/// A drain dropped while it waits lets go of its waker: the runtime keeps nothing of it.
#[test]
fn a_dropped_drain_lets_go_of_its_waker() {
    let rt = Runtime::new(asynchronously::rt::ThreadPerTask);
    let release = Event::new();
    rt.spawn_detached({
        let release = release.clone();
        async move { release.wait().await }
    });
    let counted = common::CountedWaker::new();
    let waker = counted.waker();
    {
        let mut drain = std::pin::pin!(rt.wait_for_all_other_tasks());
        let polled = drain
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_pending());
        assert_eq!(counted.clones(), 2, "the drain keeps a clone");
    }
    assert_eq!(counted.clones(), 1, "the dropped drain keeps none");
    release.set();
}

/// A panic's payload displays its message, and its error is not a cancel.
#[test]
fn a_panic_displays_its_message_and_is_not_a_cancel() {
    let rt = Runtime::new(asynchronously::rt::ThreadPerTask);
    let error = futures::executor::block_on(rt.spawn(async { panic!("disk full") })).unwrap_err();
    assert!(error.is_panic() && !error.is_cancelled());
    let JoinError::Panicked(payload) = error else {
        unreachable!()
    };
    assert_eq!(payload.to_string(), "panicked: disk full");
    assert!(JoinError::Cancelled.is_cancelled() && !JoinError::Cancelled.is_panic());
}

/// A handle and an abort handle name their task and say whether it finished.
#[test]
fn handles_debug_with_their_task() {
    let rt = Runtime::new(asynchronously::rt::ThreadPerTask);
    let task = rt.spawn(std::future::pending::<()>());
    let abort = task.abort_handle();
    let id = task.id();
    assert_eq!(
        format!("{abort:?}"),
        format!("AbortHandle {{ id: TaskId({id}), is_finished: false }}")
    );
    assert!(format!("{task:?}").starts_with(&format!(
        "JoinHandle {{ id: TaskId({id}), is_finished: false"
    )));
}

each_runtime! {
    /// A drain counts off only the tasks that were live when it started: a task spawned after
    /// it, which sees a second drain start, counts off that one alone.
    async fn a_task_spawned_after_a_drain_counts_off_only_the_drains_of_its_life(rt, _clock) {
        let (finish_a, a_done) = futures::channel::oneshot::channel::<()>();
        let a = rt.spawn(async move { a_done.await.unwrap() });
        let mut first = rt.wait_for_all_other_tasks(); // waits for `a`
        let (finish_b, b_done) = futures::channel::oneshot::channel::<()>();
        let b = rt.spawn(async move { b_done.await.unwrap() });
        let mut second = rt.wait_for_all_other_tasks(); // waits for `a` and `b`
        finish_b.send(()).unwrap();
        b.await.unwrap();
        until(|| rt.live_tasks() == 1).await;
        assert!((&mut first).now_or_never().is_none(), "the first drain still waits for `a`");
        assert!((&mut second).now_or_never().is_none(), "so does the second");
        finish_a.send(()).unwrap();
        a.await.unwrap();
        first.await;
        second.await;
    }
}

/// Counts its wakes.
struct Wakes(AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_abort_wakes_its_task_once() {
    use std::task::{Context, Waker};
    let (rt, held) = common::holding(ManualClock::new());
    let task = rt.spawn(std::future::pending::<()>());
    let mut run = held.take_one();
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(run.as_mut().poll(&mut cx).is_pending());
    let abort = task.abort_handle();
    abort.abort();
    abort.abort();
    task.abort();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "the later aborts find it aborted"
    );
    assert!(run.as_mut().poll(&mut cx).is_ready());
    abort.abort();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "nor is it woken once it ended"
    );
    assert!(
        futures::executor::block_on(task)
            .unwrap_err()
            .is_cancelled()
    );
}

/// A drain says in its `Debug` whether it is over.
#[test]
fn a_drain_debugs_with_whether_it_is_over() {
    let (rt, held) = common::holding(ManualClock::new());
    assert_eq!(
        format!("{:?}", rt.wait_for_all_other_tasks()),
        "WaitForAllOtherTasks { is_over: true, .. }",
        "nothing to wait for"
    );
    rt.spawn_detached(async {});
    assert_eq!(
        format!("{:?}", rt.wait_for_all_other_tasks()),
        "WaitForAllOtherTasks { is_over: false, .. }"
    );
    futures::executor::block_on(held.take_one());
}

/// A sleep says in its `Debug` whether it is over: a zero sleep is over at once.
#[test]
fn a_sleep_debugs_with_whether_it_is_over() {
    let rt = Runtime::with_timer(ThreadPerTask, ManualClock::new());
    assert_eq!(
        format!("{:?}", rt.sleep(Duration::from_secs(1))),
        "Sleep { is_over: false }"
    );
    assert_eq!(
        format!("{:?}", rt.sleep(Duration::ZERO)),
        "Sleep { is_over: true }"
    );
}

/// A drain made inside a task is counted off by the other tasks, each by its own key: a task
/// that ends is never taken for the drain's caller (tasks polled by hand, one thread).
#[test]
fn a_drain_inside_a_task_is_counted_off_by_the_others() {
    use std::task::{Context, Waker};
    let (rt, held) = common::holding(ManualClock::new());
    let (go, gate) = futures::channel::oneshot::channel::<()>();
    rt.spawn_detached(async move { gate.await.unwrap() });
    let inner = rt.clone();
    let drainer = rt.spawn(async move { inner.wait_for_all_other_tasks().await });
    let mut tasks = held.take_all();
    assert_eq!(tasks.len(), 2);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        tasks[0].as_mut().poll(&mut cx).is_pending(),
        "the other task waits"
    );
    assert!(
        tasks[1].as_mut().poll(&mut cx).is_pending(),
        "the drain waits for it"
    );
    go.send(()).unwrap();
    assert!(tasks[0].as_mut().poll(&mut cx).is_ready());
    drop(tasks.remove(0)); // a task counts off as it is dropped
    assert!(
        tasks[0].as_mut().poll(&mut cx).is_ready(),
        "the drain was counted off"
    );
    futures::executor::block_on(drainer).unwrap();
}
