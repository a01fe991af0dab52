//! `retry`: every seed behaviour, and the Beyond points, on `ManualClock`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use asynchronously::rt::{BoxFuture, ManualClock, Runtime, Timer};
use asynchronously::{AttemptTimedOut, Backoff, RetryPolicy, retry, retry_mut, retry_with};
use common::{DropCounter, sleepers, until};

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, PartialEq, Clone)]
enum Error {
    Connection(usize),
    Fatal,
    TimedOut,
}

impl From<AttemptTimedOut> for Error {
    fn from(_: AttemptTimedOut) -> Self {
        Error::TimedOut
    }
}

each_runtime! {
    /// `attempts_limit = 3`: 4 calls, and the 4th call's error comes back unchanged.
    async fn a_limit_of_three_calls_four_times(rt, _clock) {
        let mut calls = 0;
        let result: Result<(), Error> = retry_mut(async || {
            calls += 1;
            Err(Error::Connection(calls))
        })
        .attempts_limit(3)
        .sleep(Duration::ZERO)
        .await;
        assert_eq!(result, Err(Error::Connection(4)));
        assert_eq!(calls, 4);
        let _ = rt;
    }
}

each_runtime! {
    async fn a_limit_of_zero_calls_once(rt, _clock) {
        let mut calls = 0;
        let result: Result<(), Error> = retry_mut(async || {
            calls += 1;
            Err(Error::Connection(calls))
        })
        .attempts_limit(0)
        .await;
        assert_eq!((result, calls), (Err(Error::Connection(1)), 1));
        let _ = rt;
    }
}

each_runtime! {
    /// The predicate (Python's `retrying_exceptions`) stops at once on any other error.
    async fn the_predicate_stops_on_other_errors(rt, _clock) {
        let mut calls = 0;
        let result: Result<(), Error> = retry_mut(async || {
            calls += 1;
            Err(if calls < 3 { Error::Connection(calls) } else { Error::Fatal })
        })
        .sleep(Duration::ZERO)
        .when(|error| matches!(error, Error::Connection(_)))
        .await;
        assert_eq!((result, calls), (Err(Error::Fatal), 3));
        let _ = rt;
    }
}

each_runtime! {
    /// Success after failures returns the value; no limit means forever.
    async fn success_after_failures(rt, _clock) {
        let mut calls = 0;
        let result = retry_mut(async || {
            calls += 1;
            if calls < 100 { Err(Error::Connection(calls)) } else { Ok(calls) }
        })
        .sleep(Duration::ZERO)
        .await;
        assert_eq!(result, Ok(100));
        let _ = rt;
    }
}

each_runtime! {
    /// Each retry is logged at error level as `Retry: K/N`, `inf` when unlimited.
    async fn each_retry_is_logged(rt, _clock) {
        common::logs::capture();
        let _ = retry_mut(async || Err::<(), _>("down")).attempts_limit(2).sleep(Duration::ZERO).await;
        let mut calls = 0;
        let _ = retry_mut(async || { calls += 1; if calls < 2 { Err("once") } else { Ok(()) } }).sleep(Duration::ZERO).await;
        for line in ["Retry: 1/2", "Retry: 2/2", "Retry: 1/inf"] {
            let found = common::logs::containing(line);
            assert!(found.iter().any(|(level, m)| *level == log::Level::Error && m == line), "{line}: {found:?}");
        }
        let _ = rt;
    }
}

each_runtime! {
    /// The default sleep is 5 s, on the runtime's clock.
    async fn the_default_sleep_is_five_seconds(rt, clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (rt, calls) = (rt.clone(), calls.clone());
            async move {
                retry_mut(async move || -> Result<(), &'static str> {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("busy") } else { Ok(()) }
                })
                .runtime(&rt)
                .await
            }
        });
        for call in 1..=2 {
            sleepers(&clock, 1).await; // asleep after call `call` failed
            assert_eq!(calls.load(Ordering::SeqCst), call);
            clock.advance(Duration::from_millis(4_999));
            for _ in 0..10 {
                common::yield_now().await;
            }
            assert_eq!(calls.load(Ordering::SeqCst), call, "still sleeping at 4.999 s");
            clock.advance(MS);
            // Wait for the next call, not for "no sleepers": the retry may be asleep again by then.
            until(|| calls.load(Ordering::SeqCst) == call + 1).await;
        }
        assert_eq!(task.await.unwrap(), Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(clock.elapsed(), Duration::from_secs(10));
    }
}

/// Runs an always-failing retry with `policy` on `clock`, advancing the clock by each sleep as it
/// starts, and gives the clock time (in ms) of every call.
async fn call_times(
    rt: &Runtime,
    clock: &ManualClock,
    policy: RetryPolicy,
    calls: usize,
) -> Vec<u128> {
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = rt.spawn({
        let (times, clock, rt) = (times.clone(), clock.clone(), rt.clone());
        async move {
            let _ = policy
                .runtime(&rt)
                .run_mut(async move || {
                    times.lock().unwrap().push(clock.elapsed().as_millis());
                    Err::<(), _>("down")
                })
                .await;
        }
    });
    while times.lock().unwrap().len() < calls {
        let before = times.lock().unwrap().len();
        sleepers(clock, 1).await;
        // Advance in 1 ms steps until the next call happens.
        while times.lock().unwrap().len() == before {
            clock.advance(MS);
            until(|| clock.sleepers() == 1 || times.lock().unwrap().len() > before).await;
        }
    }
    drop(task);
    times.lock().unwrap().clone()
}

each_runtime! {
    /// Exponential backoff with a cap: sleeps of 100, 200, 300, 300 ms.
    async fn exponential_backoff_on_the_clock(rt, clock) {
        let policy = RetryPolicy::new().backoff(Backoff::exponential(100 * MS).max(300 * MS));
        assert_eq!(call_times(&rt, &clock, policy, 5).await, [0, 100, 300, 600, 900]);
    }
}

each_runtime! {
    /// Factor 3 and a fixed sleep, on the clock.
    async fn other_backoffs_on_the_clock(rt, _clock) {
        let clock = ManualClock::new();
        let rt2 = Runtime::with_timer({ let rt = rt.clone(); move |t| rt.spawn(t).detach() }, clock.clone());
        let policy = RetryPolicy::new().backoff(Backoff::exponential(10 * MS).factor(3.0));
        assert_eq!(call_times(&rt2, &clock, policy, 4).await, [0, 10, 40, 130]);
        let clock = ManualClock::new();
        let rt3 = Runtime::with_timer({ let rt = rt.clone(); move |t| rt.spawn(t).detach() }, clock.clone());
        let policy = RetryPolicy::new().sleep(20 * MS);
        assert_eq!(call_times(&rt3, &clock, policy, 3).await, [0, 20, 40]);
    }
}

/// A retry on a fixed backoff with jitter sleeps a fraction of the delay before each retry, not
/// the delay itself (a fixed backoff without jitter takes a shortcut; this one must not).
#[test]
fn a_retry_on_a_fixed_backoff_with_jitter_sleeps_a_fraction_of_it() {
    common::bounded(|| {
        let test = asynchronously::testing::TestRuntime::new();
        let sleeps = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sleeps.clone();
        let result = test.block_on(
            RetryPolicy::new()
                .backoff(Backoff::fixed(100 * MS).jitter())
                .attempts_limit(50)
                .runtime(&test.runtime())
                .run(|| async { Err::<(), _>("down") })
                .notify(move |_, attempt| seen.lock().unwrap().push(attempt.sleep)),
        );
        assert_eq!(result, Err("down"));
        let sleeps = sleeps.lock().unwrap();
        assert_eq!(sleeps.len(), 50);
        assert!(sleeps.iter().all(|&sleep| sleep <= 100 * MS), "{sleeps:?}");
        // A draw of the whole delay has a chance of about 2^-53; fifty of them, none.
        assert!(sleeps.iter().any(|&sleep| sleep < 100 * MS), "{sleeps:?}");
    });
}

#[test]
fn jitter_stays_between_zero_and_the_delay() {
    let backoff = Backoff::exponential(100 * MS)
        .max(Duration::from_secs(1))
        .jitter();
    let (mut seen_below_half, mut seen_above_half) = (false, false);
    for retry in 1..=200 {
        let sleep = backoff.sleep_for(retry % 6 + 1);
        assert!(sleep <= backoff.delay(retry % 6 + 1), "{sleep:?}");
        seen_below_half |= sleep < backoff.delay(retry % 6 + 1) / 2;
        seen_above_half |= sleep > backoff.delay(retry % 6 + 1) / 2;
    }
    // Each has a chance of 2^-200 to fail.
    assert!(
        seen_below_half && seen_above_half,
        "the jitter spreads the sleeps"
    );
    assert_eq!(
        Backoff::fixed(Duration::ZERO).jitter().sleep_for(3),
        Duration::ZERO
    );
}

#[test]
fn backoff_never_overflows() {
    let backoff = Backoff::exponential(Duration::from_secs(1));
    assert_eq!(backoff.delay(usize::MAX), Duration::MAX);
    assert_eq!(Backoff::exponential(Duration::MAX).delay(2), Duration::MAX);
    assert_eq!(
        Backoff::exponential(MS).factor(f64::NAN).delay(10),
        MS,
        "a bad factor is 1"
    );
    assert_eq!(Backoff::exponential(MS).factor(0.5).delay(10), MS);
}

each_runtime! {
    /// An attempt slower than `attempt_timeout` is dropped and fails with E::from(AttemptTimedOut).
    async fn attempt_timeout_drops_slow_attempts(rt, clock) {
        let drops = DropCounter::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (rt, drops, calls) = (rt.clone(), drops.clone(), calls.clone());
            async move {
                retry_mut(async move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _token = drops.token();
                    std::future::pending::<Result<(), Error>>().await
                })
                .attempts_limit(2)
                .sleep(Duration::ZERO)
                .attempt_timeout(50 * MS)
                .runtime(&rt)
                .await
            }
        });
        for attempt in 1..=3 {
            sleepers(&clock, 1).await;
            assert_eq!(calls.load(Ordering::SeqCst), attempt);
            clock.advance(50 * MS);
            until(|| drops.count() == attempt).await;
        }
        assert_eq!(task.await.unwrap(), Err(Error::TimedOut));
        assert_eq!(clock.elapsed(), 150 * MS);
    }
}

/// The times (ms on `clock`) of the calls of a retry that always fails, sleeps 100 ms and has
/// a `max_elapsed` of `budget`, with the clock stepped by each sleep twice.
async fn calls_within(rt: &Runtime, clock: &ManualClock, budget: Duration) -> Vec<u128> {
    let policy = RetryPolicy::new().sleep(100 * MS).max_elapsed(budget);
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = rt.spawn({
        let (times, clock, rt) = (times.clone(), clock.clone(), rt.clone());
        async move {
            policy
                .runtime(&rt)
                .run_mut(async move || {
                    times.lock().unwrap().push(clock.elapsed().as_millis());
                    Err::<(), _>("down")
                })
                .await
        }
    });
    for _ in 0..2 {
        sleepers(clock, 1).await;
        clock.advance(100 * MS);
    }
    assert_eq!(task.await.unwrap(), Err("down"));
    times.lock().unwrap().clone()
}

each_runtime! {
    /// `max_elapsed`: no retry whose sleep would end past the budget.
    async fn max_elapsed_gives_up_in_time(rt, clock) {
        // Calls at 0, 100, 200; a retry at 300 would pass 250.
        assert_eq!(calls_within(&rt, &clock, 250 * MS).await, [0, 100, 200]);
    }
}

each_runtime! {
    /// A retry whose sleep ends exactly at the `max_elapsed` budget is still made.
    async fn a_sleep_that_ends_at_the_budget_is_within_it(rt, clock) {
        let times = calls_within(&rt, &clock, 200 * MS).await;
        assert_eq!(times, [0, 100, 200], "the call at 200 is within 200");
    }
}

/// A retry names itself and its policy in its `Debug`.
#[test]
fn a_retry_debugs_with_its_policy() {
    let retry = RetryPolicy::new()
        .attempts_limit(2)
        .run(|| async { Ok::<_, ()>(1) });
    let debug = format!("{retry:?}");
    assert!(
        debug.starts_with("Retry { policy: Some(RetryPolicy")
            && debug.contains("attempts_limit: Some(2)"),
        "{debug}"
    );
}

/// A policy names its settings in its `Debug`.
#[test]
fn a_policy_debugs_with_its_settings() {
    let debug = format!(
        "{:?}",
        RetryPolicy::new()
            .attempts_limit(3)
            .max_elapsed(Duration::from_secs(9))
    );
    assert!(
        debug.starts_with("RetryPolicy")
            && debug.contains("attempts_limit: Some(3)")
            && debug.contains("max_elapsed: Some(9s)"),
        "{debug}"
    );
}

each_runtime! {
    /// Dropping the retry future mid-sleep cancels it at once: no more calls, no pending sleep.
    async fn dropping_the_retry_cancels_it_mid_sleep(rt, clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (rt, calls) = (rt.clone(), calls.clone());
            async move {
                retry_mut(async move || { calls.fetch_add(1, Ordering::SeqCst); Err::<(), _>("down") })
                    .sleep(Duration::from_secs(86_400))
                    .runtime(&rt)
                    .await
            }
        });
        sleepers(&clock, 1).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(clock.sleepers(), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

each_runtime! {
    /// Dropping the retry mid-attempt drops the attempt's future.
    async fn dropping_the_retry_cancels_the_attempt(rt, _clock) {
        let drops = DropCounter::new();
        let started = asynchronously::Event::new();
        let task = rt.spawn({
            let (drops, started) = (drops.clone(), started.clone());
            async move {
                retry_mut(async move || {
                    let _token = drops.token();
                    started.set();
                    std::future::pending::<Result<(), ()>>().await
                })
                .await
            }
        });
        started.wait().await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(drops.count(), 1);
    }
}

/// A timer that counts its sleeps, to prove that a zero sleep never touches the timer.
#[derive(Clone, Default)]
struct CountingTimer(Arc<AtomicUsize>);

impl Timer for CountingTimer {
    fn sleep(&self, _: Duration) -> BoxFuture<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[test]
fn a_zero_sleep_never_touches_a_timer() {
    common::bounded(|| {
        let timer = CountingTimer::default();
        let rt = Runtime::with_timer(drop::<BoxFuture<()>>, timer.clone());
        let mut calls = 0;
        let result = futures::executor::block_on(
            retry_mut(async || {
                calls += 1;
                Err::<(), _>(calls)
            })
            .attempts_limit(1_000)
            .sleep(Duration::ZERO)
            .runtime(&rt)
            .into_future_for_test(),
        );
        assert_eq!(result, Err(1_001));
        assert_eq!(timer.0.load(Ordering::SeqCst), 0);
    });
}

/// `.await` needs an async context; this spells `IntoFuture` out for a blocking test.
trait IntoFutureForTest: std::future::IntoFuture + Sized {
    fn into_future_for_test(self) -> Self::IntoFuture {
        std::future::IntoFuture::into_future(self)
    }
}
impl<T: std::future::IntoFuture> IntoFutureForTest for T {}

each_runtime! {
    /// `retry_with` passes `&mut` state in and out: it borrows the caller's state mutably.
    async fn retry_with_borrows_state_mutably(rt, _clock) {
        struct Client { calls: usize }
        let mut client = Client { calls: 0 };
        let result = retry_with(&mut client, |client| async move {
            client.calls += 1;
            let result = if client.calls < 3 { Err(Error::Connection(client.calls)) } else { Ok(client.calls) };
            (client, result)
        })
        .sleep(Duration::ZERO)
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(client.calls, 3);
        let _ = rt;
    }
}

each_runtime! {
    /// With `retry_with`, a timed-out attempt takes the context with it: the retry ends with the
    /// timeout error instead of calling again without it.
    async fn retry_with_ends_when_a_timeout_takes_the_context(rt, clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (rt, calls) = (rt.clone(), calls.clone());
            async move {
                retry_with(String::from("context"), |ctx| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                        (ctx, Ok::<(), Error>(()))
                    }
                })
                .sleep(Duration::ZERO)
                .attempt_timeout(10 * MS)
                .runtime(&rt)
                .await
            }
        });
        sleepers(&clock, 1).await;
        clock.advance(10 * MS);
        assert_eq!(task.await.unwrap(), Err(Error::TimedOut));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

each_runtime! {
    /// `notify` sees each error and the retry about to happen, with its sleep.
    async fn notify_sees_every_retry(rt, _clock) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let result = retry_mut(async || Err::<(), _>("down"))
            .attempts_limit(3)
            .backoff(Backoff::fixed(Duration::ZERO))
            .notify({
                let seen = seen.clone();
                move |error, attempt| seen.lock().unwrap().push((*error, attempt.retry, attempt.limit))
            })
            .await;
        assert_eq!(result, Err("down"));
        assert_eq!(*seen.lock().unwrap(), [("down", 1, Some(3)), ("down", 2, Some(3)), ("down", 3, Some(3))]);
        let _ = rt;
    }
}

each_runtime! {
    /// A policy is reusable: the same settings for two operations.
    async fn a_policy_is_reusable(rt, _clock) {
        let policy = RetryPolicy::new().attempts_limit(1).sleep(Duration::ZERO);
        let mut first = 0;
        let mut second = 0;
        let _ = policy.run_mut(async || { first += 1; Err::<(), _>(()) }).await;
        let _ = policy.clone().run_mut(async || { second += 1; Err::<(), _>(()) }).await;
        assert_eq!((first, second), (2, 2));
        let _ = rt;
    }
}

each_runtime! {
    /// A retry that fails at once forever, with no sleep, still lets other tasks run (it yields),
    /// so it can be cancelled even on a one-thread executor.
    async fn a_busy_retry_yields_and_can_be_cancelled(rt, _clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let calls = calls.clone();
            async move {
                retry_mut(async move || { calls.fetch_add(1, Ordering::SeqCst); Err::<(), _>(()) })
                    .sleep(Duration::ZERO)
                    .await
            }
        });
        until(|| calls.load(Ordering::SeqCst) > 1_000).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
}

#[cfg(feature = "tokio")]
#[test]
fn an_owning_retry_can_be_spawned_on_tokio() {
    common::bounded(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let client = Arc::new(AtomicUsize::new(0));
        let result = runtime.block_on(async move {
            tokio::spawn(async move {
                retry_mut(async move || {
                    if client.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(String::from("busy"))
                    } else {
                        Ok(7_u32)
                    }
                })
                .sleep(Duration::ZERO)
                .await
            })
            .await
        });
        assert_eq!(result.unwrap(), Ok(7));
        let mut state = 0;
        let with = runtime.block_on(async {
            // retry_with over `&mut` state inside a spawned task (scoped by block_on here).
            retry_with(&mut state, |s| async move {
                *s += 1;
                (s, Ok::<_, ()>(()))
            })
            .await
        });
        assert_eq!((with, state), (Ok(()), 1));
    });
}

each_runtime! {
    /// `adjust` takes each sleep from the error, as a `Retry-After` header gives it: calls at 0,
    /// 7 s and 10 s of the clock, though the backoff says 5 s.
    async fn adjust_takes_the_sleep_from_the_error(rt, clock) {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = rt.spawn({
            let (rt, clock, calls) = (rt.clone(), clock.clone(), calls.clone());
            async move {
                retry_mut(async move || {
                    let mut calls = calls.lock().unwrap();
                    calls.push(clock.elapsed().as_secs());
                    // The server's Retry-After, in seconds: 7, then 3, then success.
                    match calls.len() {
                        1 => Err(7),
                        2 => Err(3),
                        n => Ok(n),
                    }
                })
                .adjust(|retry_after, planned| {
                    assert_eq!(planned, Some(Duration::from_secs(5)), "the backoff's plan");
                    Some(Duration::from_secs(*retry_after))
                })
                .runtime(&rt)
                .await
            }
        });
        for (sleep, calls_after) in [(7, 2), (3, 3)] {
            sleepers(&clock, 1).await;
            clock.advance(Duration::from_secs(sleep) - MS);
            for _ in 0..10 {
                common::yield_now().await;
            }
            assert_eq!(calls.lock().unwrap().len(), calls_after - 1, "still asleep");
            clock.advance(MS);
            until(|| calls.lock().unwrap().len() == calls_after).await;
        }
        assert_eq!(task.await.unwrap(), Ok(3));
        assert_eq!(*calls.lock().unwrap(), [0, 7, 10]);
    }
}

each_runtime! {
    /// `adjust` gives up with the last error when it answers `None` or `Duration::MAX` (a sleep
    /// that would never end); it is told `None` once the attempts are spent, and may still ask
    /// for one more retry then, as backon's `adjust` may.
    async fn adjust_can_give_up_and_sees_when_the_attempts_are_spent(rt, _clock) {
        for (stop, expected_calls) in [(None, 2), (Some(Duration::MAX), 2)] {
            let mut calls = 0;
            let result = retry_mut(async || {
                calls += 1;
                Err::<(), _>(calls)
            })
            .sleep(Duration::ZERO)
            .adjust(|&error, planned| if error < 2 { planned } else { stop })
            .runtime(&rt)
            .await;
            assert_eq!(result, Err(2), "{stop:?}: the last error, unchanged");
            assert_eq!(calls, expected_calls);
        }
        let mut planned_seen = Vec::new();
        let mut calls = 0;
        let result = retry_mut(async || {
            calls += 1;
            Err::<(), _>(calls)
        })
        .attempts_limit(1)
        .sleep(Duration::ZERO)
        .adjust(|_, planned| {
            planned_seen.push(planned);
            // One retry past the limit, then give up.
            match planned_seen.len() {
                1 | 2 => Some(Duration::ZERO),
                _ => None,
            }
        })
        .runtime(&rt)
        .await;
        assert_eq!(result, Err(3));
        assert_eq!(planned_seen, [Some(Duration::ZERO), None, None]);
    }
}

each_runtime! {
    /// `when` may keep state (it is `FnMut`): here it allows two retries of any error.
    async fn when_may_keep_state(rt, _clock) {
        let mut calls = 0;
        let mut retries_allowed = 2;
        let result = retry_mut(async || {
            calls += 1;
            Err::<(), _>("flaky")
        })
        .sleep(Duration::ZERO)
        .when(|_| {
            retries_allowed -= 1;
            retries_allowed >= 0
        })
        .runtime(&rt)
        .await;
        assert_eq!(result, Err("flaky"));
        assert_eq!(calls, 3);
    }
}

/// A client whose calls borrow it and their arguments, as a library's do.
struct Client {
    calls: AtomicUsize,
}

impl Client {
    async fn get(&self, path: &str) -> Result<usize, String> {
        common::yield_now().await;
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(format!("{path}: busy")),
            _ => Ok(path.len()),
        }
    }

    /// The helper a library writes: a retry whose operation borrows `self` and `path`.
    async fn get_with_retry(&self, path: &str) -> Result<usize, String> {
        retry(|| self.get(path)).sleep(Duration::ZERO).await
    }
}

/// Compiles only if `future` is `Send` (and runs it, to be sure it is the retry we think).
fn assert_send<F: std::future::Future + Send>(future: F) -> F {
    future
}

#[test]
#[cfg_attr(miri, ignore)]
fn the_fn_mut_form_borrows_and_is_send() {
    let client = Client {
        calls: AtomicUsize::new(0),
    };
    let path = String::from("/health");
    let found = futures::executor::block_on(assert_send(client.get_with_retry(&path)));
    assert_eq!(found, Ok(7));
    assert_eq!(client.calls.load(Ordering::SeqCst), 2);
}

/// A borrowing retry runs inside `tokio::spawn`, and a `Retry` goes to `tokio::spawn` and to
/// `block_on` as it is: it is a future.
#[cfg(feature = "tokio")]
#[test]
#[cfg_attr(miri, ignore)]
fn retries_go_into_tokio_spawn_and_block_on() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spawned = tokio::spawn(async {
            let client = Client {
                calls: AtomicUsize::new(0),
            };
            client.get_with_retry("/users").await
        });
        assert_eq!(spawned.await.unwrap(), Ok(6));
        let mut tries = 0;
        let retry_itself = tokio::spawn(
            retry(move || {
                tries += 1;
                let result = if tries < 3 { Err("busy") } else { Ok(tries) };
                std::future::ready(result)
            })
            .sleep(Duration::ZERO),
        );
        assert_eq!(retry_itself.await.unwrap(), Ok(3));
    });
    let plain = futures::executor::block_on(retry(|| async { Ok::<_, ()>(5) }));
    assert_eq!(plain, Ok(5));
}

/// A component's hook retries a call that borrows `self`: the hook's future must be `Send`,
/// which the `FnMut` form is.
#[test]
#[cfg_attr(miri, ignore)]
fn a_hook_retries_a_call_that_borrows_self() {
    use asynchronously::lifecycle::{BoxError, Component, ComponentExt, Lifecycle};

    struct Store {
        lifecycle: Lifecycle,
        client: Client,
    }

    impl Component for Store {
        fn lifecycle(&self) -> &Lifecycle {
            &self.lifecycle
        }
        async fn on_init(&self) -> Result<(), BoxError> {
            retry(|| self.client.get("/schema"))
                .sleep(Duration::ZERO)
                .await?;
            Ok(())
        }
    }

    let store = Store {
        lifecycle: Lifecycle::new(),
        client: Client {
            calls: AtomicUsize::new(0),
        },
    };
    futures::executor::block_on(store.init()).unwrap();
    assert_eq!(store.client.calls.load(Ordering::SeqCst), 2);
}

each_runtime! {
    /// `retry_if_ok` retries a usable-looking `Ok` on the backoff's clock (a job polled until it
    /// is done, 2 s apart), and gives back the last `Ok` once the attempts are spent.
    async fn retry_if_ok_polls_until_the_result_is_usable(rt, clock) {
        let polls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = rt.spawn({
            let (rt, clock, polls) = (rt.clone(), clock.clone(), polls.clone());
            async move {
                retry_mut(async move || {
                    let mut polls = polls.lock().unwrap();
                    polls.push(clock.elapsed().as_secs());
                    Ok::<_, ()>(if polls.len() < 3 { "running" } else { "done" })
                })
                .retry_if_ok(|status| *status == "running")
                .sleep(Duration::from_secs(2))
                .runtime(&rt)
                .await
            }
        });
        for polls_after in [2, 3] {
            sleepers(&clock, 1).await;
            clock.advance(Duration::from_secs(2));
            until(|| polls.lock().unwrap().len() == polls_after).await;
        }
        assert_eq!(task.await.unwrap(), Ok("done"));
        assert_eq!(*polls.lock().unwrap(), [0, 2, 4]);

        // Spent: the last `Ok` comes back, as it is.
        let mut polls = 0;
        let status = retry_mut(async || {
            polls += 1;
            Ok::<_, ()>(polls)
        })
        .retry_if_ok(|_| true)
        .attempts_limit(2)
        .sleep(Duration::ZERO)
        .runtime(&rt)
        .await;
        assert_eq!(status, Ok(3));
        // An error is still an error: `retry_if_ok` does not touch it.
        let failed = retry_mut(async || Err::<u8, _>("down"))
            .retry_if_ok(|_| true)
            .attempts_limit(0)
            .runtime(&rt)
            .await;
        assert_eq!(failed, Err("down"));
    }
}

/// A retry with no sleep yields once every 32 retries, not more: 96 retries of an operation
/// that fails at once are three `Pending`s, then its last error.
#[test]
fn a_zero_sleep_retry_yields_once_every_32_retries() {
    use std::task::{Context, Poll, Waker};
    let calls = AtomicUsize::new(0);
    let retrying = retry(|| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err::<(), _>("refused"))
    })
    .sleep(Duration::ZERO)
    .attempts_limit(96);
    let mut retrying = std::pin::pin!(retrying);
    let mut pendings = 0;
    let outcome = loop {
        match retrying
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(outcome) => break outcome,
            Poll::Pending => pendings += 1,
        }
    };
    assert_eq!(outcome, Err("refused"));
    assert_eq!((calls.load(Ordering::SeqCst), pendings), (97, 3));
}

/// A retry whose first call fails and whose sleep is a second, spawned: no second call before
/// the clock passes the sleep, and then its output.
async fn second_call_after_the_sleep(
    clock: &ManualClock,
    calls: &AtomicUsize,
    task: asynchronously::rt::JoinHandle<Result<usize, &'static str>>,
) {
    sleepers(clock, 1).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no second call before the sleep is over"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(task.await.unwrap(), Ok(1));
}

each_runtime! {
    /// `retry_with` sleeps between its calls on the runtime's clock too.
    async fn the_context_form_sleeps_between_its_calls(rt, clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (calls, rt) = (calls.clone(), rt.clone());
            async move {
                retry_with(0_usize, move |tries| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let result = if tries == 0 { Err("refused") } else { Ok(tries) };
                    std::future::ready((tries + 1, result))
                })
                .sleep(Duration::from_secs(1))
                .runtime(&rt)
                .await
            }
        });
        second_call_after_the_sleep(&clock, &calls, task).await;
    }
}

each_runtime! {
    /// The `FnMut` form sleeps between its calls on the runtime's clock, as the async-closure
    /// form does.
    async fn the_fnmut_form_sleeps_between_its_calls(rt, clock) {
        let calls = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (calls, rt) = (calls.clone(), rt.clone());
            async move {
                retry(move || {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(if call == 0 { Err("refused") } else { Ok(call) })
                })
                .sleep(Duration::from_secs(1))
                .runtime(&rt)
                .await
            }
        });
        second_call_after_the_sleep(&clock, &calls, task).await;
    }
}
