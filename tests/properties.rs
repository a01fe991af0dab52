//! Property tests (proptest, 1,000 cases each): the primitives against small reference models,
//! on a deterministic executor (`common::sim`) and `ManualClock`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use asynchronously::rt::{BoxFuture, ManualClock, Runtime, Timer};
use asynchronously::{
    Backoff, MissedTicks, Periodic, RetryPolicy, strict_gather, strict_gather_spawned,
};
use common::DropCounter;
use common::sim::Sim;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1_000,
        ..ProptestConfig::default()
    }
}

/// What one future of a gather does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Gives `Ok(index)` after this many yields.
    Ok(u8),
    /// Gives `Err(index)` after this many yields.
    Err(u8),
    /// Panics (with its index) after this many yields.
    Panic(u8),
    /// Never completes.
    Pending,
}

fn kind(panics: bool) -> impl Strategy<Value = Kind> {
    let mut options = vec![
        (6, (0..6_u8).prop_map(Kind::Ok).boxed()),
        (2, (0..6_u8).prop_map(Kind::Err).boxed()),
        (1, Just(Kind::Pending).boxed()),
    ];
    if panics {
        options.push((1, (0..6_u8).prop_map(Kind::Panic).boxed()));
    }
    proptest::strategy::Union::new_weighted(options)
}

/// Yields `n` times, then is ready.
struct Yields(u8);

impl std::future::Future for Yields {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn future_of(kind: Kind, index: usize, drops: &DropCounter) -> BoxFuture<Result<usize, usize>> {
    let token = drops.token();
    Box::pin(async move {
        let _token = token;
        match kind {
            Kind::Ok(n) => {
                Yields(n).await;
                Ok(index)
            }
            Kind::Err(n) => {
                Yields(n).await;
                Err(index)
            }
            Kind::Panic(n) => {
                Yields(n).await;
                std::panic::panic_any(index)
            }
            Kind::Pending => std::future::pending().await,
        }
    })
}

/// The failures that happen first in time (fewest yields); any of them may be the one returned.
fn first_failures(kinds: &[Kind]) -> Vec<usize> {
    let failing = |k: &Kind| match k {
        Kind::Err(n) | Kind::Panic(n) => Some(*n),
        _ => None,
    };
    let Some(first) = kinds.iter().filter_map(failing).min() else {
        return Vec::new();
    };
    (0..kinds.len())
        .filter(|&i| failing(&kinds[i]) == Some(first))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// strict_gather: the results in input order; or the first error in time, with every future
    /// dropped; or, with a future that never completes and no error, no result at all.
    #[test]
    fn strict_gather_model(kinds in proptest::collection::vec(kind(false), 0..40)) {
        let drops = DropCounter::new();
        let futures: Vec<_> = kinds.iter().enumerate().map(|(i, k)| future_of(*k, i, &drops)).collect();
        let sim = Sim::new();
        let outcome = sim.block_on(strict_gather(futures));
        prop_assert_eq!(drops.count(), kinds.len(), "every future is dropped");
        let first = first_failures(&kinds);
        match outcome {
            Some(Err(index)) => prop_assert!(first.contains(&index), "{} not in {:?}", index, first),
            Some(Ok(values)) => {
                prop_assert!(first.is_empty());
                prop_assert!(!kinds.contains(&Kind::Pending));
                prop_assert_eq!(values, (0..kinds.len()).collect::<Vec<_>>());
            }
            None => prop_assert!(first.is_empty() && kinds.contains(&Kind::Pending)),
        }
    }

    /// strict_gather_spawned: the same, with panics resumed on the caller, and every task gone
    /// (live_tasks back to 0) when it returns or is dropped.
    #[test]
    fn strict_gather_spawned_model(kinds in proptest::collection::vec(kind(true), 0..30)) {
        let drops = DropCounter::new();
        let sim = Sim::new();
        let rt = sim.runtime(&ManualClock::new());
        let futures: Vec<_> = kinds.iter().enumerate().map(|(i, k)| future_of(*k, i, &drops)).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| sim.block_on(strict_gather_spawned(&rt, futures))));
        sim.run_until_stalled(); // a dropped gather's aborted tasks drop their futures
        prop_assert_eq!(rt.live_tasks(), 0);
        prop_assert_eq!(drops.count(), kinds.len());
        let first = first_failures(&kinds);
        match outcome {
            Err(panic) => {
                let index = *panic.downcast_ref::<usize>().expect("the child's payload");
                prop_assert!(first.contains(&index) && matches!(kinds[index], Kind::Panic(_)));
            }
            Ok(Some(Err(index))) => prop_assert!(first.contains(&index) && matches!(kinds[index], Kind::Err(_))),
            Ok(Some(Ok(values))) => {
                prop_assert!(first.is_empty() && !kinds.contains(&Kind::Pending));
                prop_assert_eq!(values, (0..kinds.len()).collect::<Vec<_>>());
            }
            Ok(None) => prop_assert!(first.is_empty() && kinds.contains(&Kind::Pending)),
        }
    }
}

/// A timer whose sleeps are over at once and that records what it was asked to sleep.
#[derive(Clone, Default)]
struct RecordingTimer(Arc<Mutex<Vec<Duration>>>);

impl Timer for RecordingTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        self.0.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

proptest! {
    #![proptest_config(config())]

    /// retry: the number of calls, the result, and the time slept follow the model: a call; on
    /// an error, stop if the limit is spent or the error is not retryable; else sleep the
    /// backoff's delay for that retry and call again.
    #[test]
    fn retry_model(
        failures in 0..30_usize,
        retryable in proptest::collection::vec(prop::bool::weighted(0.9), 30),
        limit in prop::option::of(0..35_usize),
        exponential in any::<bool>(),
        initial_ms in 0..50_u64,
    ) {
        let backoff = if exponential {
            Backoff::exponential(Duration::from_millis(initial_ms)).max(Duration::from_secs(1))
        } else {
            Backoff::fixed(Duration::from_millis(initial_ms))
        };
        let timer = RecordingTimer::default();
        let rt = Runtime::with_timer(drop::<BoxFuture<()>>, timer.clone());
        let mut calls = 0_usize;
        let policy = RetryPolicy::new().attempts_limit(limit).backoff(backoff).runtime(&rt);
        let outcome = futures::executor::block_on(std::future::IntoFuture::into_future(
            policy.run(async || {
                calls += 1;
                if calls > failures { Ok(calls) } else { Err((calls, retryable[calls - 1])) }
            })
            .when(|error: &(usize, bool)| error.1),
        ));
        // The model.
        let (mut model_calls, mut retries, mut slept) = (0, 0, Vec::new());
        let model = loop {
            model_calls += 1;
            if model_calls > failures {
                break Ok(model_calls);
            }
            let error = (model_calls, retryable[model_calls - 1]);
            if limit.is_some_and(|limit| retries >= limit) || !error.1 {
                break Err(error);
            }
            retries += 1;
            let delay = backoff.delay(retries);
            if !delay.is_zero() {
                slept.push(delay);
            }
        };
        prop_assert_eq!(outcome, model);
        prop_assert_eq!(calls, model_calls);
        prop_assert_eq!(timer.0.lock().unwrap().clone(), slept, "a zero sleep touches no timer");
    }
}

#[derive(Debug, Clone, Copy)]
struct PeriodicCase {
    period: u64,
    fixed_rate: bool,
    policy: MissedTicks,
    total: u64,
}

/// The documented run times of a Periodic started at 0 and watched until `total` (all in ms):
/// the first run one period after start; fixed delay, a period after each run ends; fixed rate,
/// on a schedule from the first run, a missed tick handled by the policy.
fn periodic_model(case: PeriodicCase, durations: &[u64]) -> Vec<u64> {
    let (p, mut due, mut now) = (case.period, case.period, 0);
    let mut starts = Vec::new();
    loop {
        let start = due.max(now);
        if start > case.total {
            return starts;
        }
        let end = start + durations[starts.len() % durations.len()];
        starts.push(start);
        due = if !case.fixed_rate {
            end + p
        } else if due + p >= end {
            due + p
        } else {
            match case.policy {
                MissedTicks::Burst => due + p,
                MissedTicks::Delay => end,
                _ => due + (end - due).div_ceil(p) * p,
            }
        };
        now = end;
    }
}

fn policy() -> impl Strategy<Value = MissedTicks> {
    prop_oneof![
        Just(MissedTicks::Burst),
        Just(MissedTicks::Delay),
        Just(MissedTicks::Skip)
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Periodic on ManualClock: the run times equal the model, for random periods, job
    /// durations (stalls included), fixed delay or rate, and each missed-tick policy.
    #[test]
    fn periodic_model_holds(
        period in 1..40_u64,
        fixed_rate in any::<bool>(),
        policy in policy(),
        durations in proptest::collection::vec(prop_oneof![3 => 0..5_u64, 1 => 0..120_u64], 1..6),
        total in 0..300_u64,
    ) {
        let case = PeriodicCase { period, fixed_rate, policy, total };
        let clock = ManualClock::new();
        let sim = Sim::new();
        let rt = sim.runtime(&clock);
        let starts = Arc::new(Mutex::new(Vec::new()));
        let job = {
            let (rt, clock, starts, durations) = (rt.clone(), clock.clone(), starts.clone(), durations.clone());
            move || {
                let mut starts = starts.lock().unwrap();
                let duration = durations[starts.len() % durations.len()];
                starts.push(clock.elapsed().as_millis() as u64);
                let rt = rt.clone();
                async move { rt.sleep(Duration::from_millis(duration)).await }
            }
        };
        let periodic = Periodic::builder(job, Duration::from_millis(period))
            .fixed_rate(fixed_rate)
            .missed_ticks(policy)
            .runtime(&rt)
            .start()
            .unwrap();
        sim.run_until_stalled();
        for _ in 0..total {
            clock.advance(Duration::from_millis(1));
            sim.run_until_stalled();
        }
        let starts = starts.lock().unwrap().clone();
        prop_assert_eq!(starts, periodic_model(case, &durations), "{:?} {:?}", case, durations);
        drop(periodic);
        sim.run_until_stalled();
        prop_assert_eq!(rt.live_tasks(), 0);
    }
}
