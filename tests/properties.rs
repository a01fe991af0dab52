//! Property tests (proptest, 1,000 cases each): the primitives against small reference models,
//! on a deterministic executor (`common::sim`, or `testing::TestRuntime` under a seed of each
//! case's) and `ManualClock`.

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

/// 1,000 cases (4 under miri, which is some thousand times slower), or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 1_000 });
    ProptestConfig {
        cases,
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
        let _shutdown = sim.shutdown_on_drop();
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
        let _shutdown = sim.shutdown_on_drop();
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
            policy.run_mut(async || {
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
                // At once, as the tick of the schedule at or before `end`.
                _ => due + (end - due) / p * p,
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
        let test = asynchronously::testing::TestRuntime::new();
        let (rt, clock) = (test.runtime(), test.clock().clone());
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
        test.run_until_stalled();
        for _ in 0..total {
            test.advance(Duration::from_millis(1));
        }
        let starts = starts.lock().unwrap().clone();
        prop_assert_eq!(starts, periodic_model(case, &durations), "{:?} {:?}", case, durations);
        drop(periodic);
        test.run_until_stalled();
        prop_assert_eq!(rt.live_tasks(), 0);
    }
}

mod lifecycle_dags {
    use std::borrow::Cow;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use asynchronously::children;
    use asynchronously::lifecycle::{
        BoxError, Children, Component, ComponentExt, Lifecycle, LifecycleError, run_until,
    };
    use asynchronously::rt::Runtime;
    use asynchronously::testing::TestRuntime;
    use proptest::prelude::*;

    type Journal = Arc<Mutex<Vec<(usize, &'static str)>>>;

    struct Node {
        lifecycle: Lifecycle,
        index: usize,
        name: String,
        rt: Runtime,
        latency: u64,
        fails: bool,
        journal: Journal,
    }

    impl Component for Node {
        fn lifecycle(&self) -> &Lifecycle {
            &self.lifecycle
        }
        fn name(&self) -> Cow<'_, str> {
            Cow::Borrowed(&self.name)
        }
        async fn on_init(&self) -> Result<(), BoxError> {
            self.journal
                .lock()
                .unwrap()
                .push((self.index, "init begin"));
            self.rt.sleep(Duration::from_millis(self.latency)).await;
            if self.fails {
                self.journal
                    .lock()
                    .unwrap()
                    .push((self.index, "init failed"));
                return Err("init failed".into());
            }
            self.journal.lock().unwrap().push((self.index, "init end"));
            Ok(())
        }
        async fn on_deinit(&self) -> Result<(), BoxError> {
            self.journal
                .lock()
                .unwrap()
                .push((self.index, "deinit begin"));
            self.rt.sleep(Duration::from_millis(self.latency)).await;
            self.journal
                .lock()
                .unwrap()
                .push((self.index, "deinit end"));
            Ok(())
        }
    }

    struct Root {
        lifecycle: Lifecycle,
        nodes: Vec<Arc<Node>>,
    }

    impl Component for Root {
        fn lifecycle(&self) -> &Lifecycle {
            &self.lifecycle
        }
        fn name(&self) -> Cow<'_, str> {
            "root".into()
        }
        fn children(&self) -> Children<'_> {
            children![self.nodes]
        }
    }

    /// A random graph: `n` nodes, `deps[j]` the nodes that node `j` depends on.
    #[derive(Debug, Clone)]
    struct Graph {
        latencies: Vec<u64>,
        fails: Vec<bool>,
        deps: Vec<BTreeSet<usize>>,
    }

    /// A DAG (edges only from later to earlier nodes), with failures at `failure_rate`.
    fn dag(failure_rate: f64) -> impl Strategy<Value = Graph> {
        (1..50_usize).prop_flat_map(move |n| {
            (
                proptest::collection::vec(0..5_u64, n),
                proptest::collection::vec(prop::bool::weighted(failure_rate), n),
                proptest::collection::vec(
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
                    n,
                ),
            )
                .prop_map(|(latencies, fails, picks)| {
                    let deps = picks
                        .iter()
                        .enumerate()
                        .map(|(j, picks)| {
                            if j == 0 {
                                BTreeSet::new()
                            } else {
                                picks.iter().map(|p| p.index(j)).collect()
                            }
                        })
                        .collect();
                    Graph {
                        latencies,
                        fails,
                        deps,
                    }
                })
        })
    }

    fn build(graph: &Graph, rt: &Runtime, journal: &Journal) -> Arc<Root> {
        let nodes: Vec<Arc<Node>> = (0..graph.latencies.len())
            .map(|index| {
                Arc::new(Node {
                    lifecycle: Lifecycle::new(),
                    index,
                    name: format!("n{index}"),
                    rt: rt.clone(),
                    latency: graph.latencies[index],
                    fails: graph.fails[index],
                    journal: journal.clone(),
                })
            })
            .collect();
        for (j, deps) in graph.deps.iter().enumerate() {
            for &i in deps {
                nodes[j].depends_on(&*nodes[i]).unwrap();
            }
        }
        Arc::new(Root {
            lifecycle: Lifecycle::new(),
            nodes,
        })
    }

    /// Steps the clock 1 ms at a time (running every task in between) until `done`, at most
    /// `limit` steps: `false` if it was not done by then (it hangs).
    fn step_until(test: &TestRuntime, limit: u64, mut done: impl FnMut() -> bool) -> bool {
        test.run_until_stalled();
        for _ in 0..limit {
            if done() {
                return true;
            }
            test.advance(Duration::from_millis(1));
        }
        done()
    }

    fn position(journal: &[(usize, &str)], index: usize, what: &str) -> Option<usize> {
        journal.iter().position(|&(i, w)| i == index && w == what)
    }

    fn count(journal: &[(usize, &str)], index: usize, what: &str) -> usize {
        journal
            .iter()
            .filter(|&&(i, w)| i == index && w == what)
            .count()
    }

    proptest! {
        #![proptest_config(super::config())]

        /// No failure: every hook runs once, init respects every edge and deinit its reverse,
        /// and every component finishes both.
        #[test]
        fn without_failures_init_and_deinit_follow_the_edges(graph in dag(0.0), seed in any::<u64>()) {
            // The tasks run in an order drawn from the seed: 1,000 cases, 1,000 schedules.
            let (test, journal) = (TestRuntime::with_seed(seed), Journal::default());
            let rt = test.runtime();
            let root = build(&graph, &rt, &journal);
            let up = rt.spawn({ let root = root.clone(); async move { root.init().await } });
            prop_assert!(step_until(&test, 1_000, || up.is_finished()), "init hangs");
            prop_assert!(test.block_on(up).unwrap().is_ok());
            let down = rt.spawn({ let root = root.clone(); async move { root.deinit().await } });
            prop_assert!(step_until(&test, 1_000, || down.is_finished()), "deinit hangs");
            prop_assert!(test.block_on(down).unwrap().is_ok());
            let journal = journal.lock().unwrap().clone();
            for (j, deps) in graph.deps.iter().enumerate() {
                for what in ["init begin", "init end", "deinit begin", "deinit end"] {
                    prop_assert_eq!(count(&journal, j, what), 1, "n{} {}", j, what);
                }
                prop_assert!(root.nodes[j].lifecycle().init_phase().finished().is_set());
                prop_assert!(root.nodes[j].lifecycle().deinit_phase().finished().is_set());
                for &i in deps {
                    prop_assert!(position(&journal, i, "init end") < position(&journal, j, "init begin"), "init n{} after n{}", j, i);
                    prop_assert!(position(&journal, j, "deinit end") < position(&journal, i, "deinit begin"), "deinit n{} before n{}", j, i);
                }
            }
        }

        /// With failures: nothing hangs; each hook runs at most once; no dependent of a failed
        /// component runs its init, and its phase fails; run_until deinitialises exactly the
        /// components that finished init, in reverse order.
        #[test]
        fn with_failures_nothing_hangs_and_rollback_is_exact(graph in dag(0.15), seed in any::<u64>()) {
            let (test, journal) = (TestRuntime::with_seed(seed), Journal::default());
            let rt = test.runtime();
            let root = build(&graph, &rt, &journal);
            let service = rt.spawn({ let root = root.clone(); async move { run_until(&*root, std::future::pending()).await } });
            let any_failure = graph.fails.iter().any(|&f| f);
            let up = || root.lifecycle().init_phase().finished().is_set();
            let finished = step_until(&test, 2_000, || service.is_finished() || up());
            if !any_failure {
                // No failure: it is up, and waits for a shutdown that never comes.
                prop_assert!(finished && up() && !service.is_finished());
                return Ok(());
            }
            prop_assert!(finished, "run_until hangs after a failure");
            let result = test.block_on(service).unwrap();
            prop_assert!(matches!(result, Err(LifecycleError::Failed { .. })), "{:?}", result);
            let journal = journal.lock().unwrap().clone();
            let n = graph.latencies.len();
            // Dependents, transitively, of each failed component.
            let mut blocked = vec![false; n];
            for j in 0..n {
                blocked[j] = graph.deps[j].iter().any(|&i| graph.fails[i] || blocked[i]);
            }
            for (j, &blocked) in blocked.iter().enumerate() {
                for what in ["init begin", "deinit begin"] {
                    prop_assert!(count(&journal, j, what) <= 1, "n{} {} twice", j, what);
                }
                if blocked {
                    prop_assert_eq!(count(&journal, j, "init begin"), 0, "n{} ran after a failed dependency", j);
                    prop_assert!(root.nodes[j].lifecycle().init_phase().is_failed());
                }
                let came_up = count(&journal, j, "init end") == 1;
                prop_assert_eq!(came_up, count(&journal, j, "deinit begin") == 1, "n{}: rolled back iff it came up", j);
                prop_assert_eq!(came_up, root.nodes[j].lifecycle().init_phase().finished().is_set());
                for &i in &graph.deps[j] {
                    if came_up {
                        prop_assert!(position(&journal, j, "deinit end") < position(&journal, i, "deinit begin"));
                    }
                }
            }
        }

        /// A graph with a cycle: `Cycle` before any hook, with a path whose every step is a real
        /// wait (a dependency, or the root and a child), first and last the same.
        #[test]
        fn a_cycle_is_always_found_and_real(graph in dag(0.0), back in any::<prop::sample::Index>()) {
            let n = graph.latencies.len();
            let edges: Vec<(usize, usize)> = graph.deps.iter().enumerate().flat_map(|(j, d)| d.iter().map(move |&i| (j, i))).collect();
            let mut graph = graph;
            if edges.is_empty() {
                // One node after itself.
                graph.deps[n - 1].insert(n - 1);
            } else {
                // Reverse an edge: j depends on i, so now i depends on j too.
                let (j, i) = edges[back.index(edges.len())];
                graph.deps[i].insert(j);
            }
            let (test, journal) = (TestRuntime::new(), Journal::default());
            let rt = test.runtime();
            let root = {
                // `depends_on` refuses nothing here: nothing is scheduled yet.
                build(&graph, &rt, &journal)
            };
            let result = test.block_on(root.init());
            let Err(LifecycleError::Cycle { path }) = result else {
                return Err(TestCaseError::fail(format!("{result:?}")));
            };
            prop_assert!(journal.lock().unwrap().is_empty(), "no hook ran");
            prop_assert!(path.len() >= 2 && path.first() == path.last(), "{:?}", path);
            let index = |name: &str| name.strip_prefix('n').map(|i| i.parse::<usize>().unwrap());
            for step in path.windows(2) {
                let real = match (index(&step[0]), index(&step[1])) {
                    (Some(a), Some(b)) => graph.deps[a].contains(&b) || a == b,
                    // The root waits for its children, and its children start after it.
                    _ => step[0] == "root" || step[1] == "root",
                };
                prop_assert!(real, "{:?} is not a wait in {:?}", step, path);
            }
        }
    }
}

/// One step of a `TaskGroup` model.
#[derive(Debug, Clone)]
enum GroupOp {
    /// Spawns a task that waits for its release.
    Spawn,
    /// Releases task `n % spawned`: it ends with its output, or panics.
    Release {
        task: usize,
        panics: bool,
    },
    Abort(usize),
    /// Lets every woken task run.
    Run,
    /// `try_join_next`, after a run.
    TryJoin,
}

fn group_op() -> impl Strategy<Value = GroupOp> {
    prop_oneof![
        4 => Just(GroupOp::Spawn),
        3 => (any::<usize>(), proptest::bool::weighted(0.2)).prop_map(|(task, panics)| GroupOp::Release { task, panics }),
        1 => any::<usize>().prop_map(GroupOp::Abort),
        2 => Just(GroupOp::Run),
        2 => Just(GroupOp::TryJoin),
    ]
}

/// What a task of the model did, by its own account.
#[derive(Default)]
struct Told {
    finished: Vec<bool>,
    panicked: Vec<bool>,
}

/// Counts a task as running from its first poll until it is dropped, and keeps the most seen.
struct Running {
    now: Arc<Mutex<(usize, usize)>>,
}

impl Running {
    fn start(now: &Arc<Mutex<(usize, usize)>>) -> Self {
        let mut guard = now.lock().unwrap();
        guard.0 += 1;
        guard.1 = guard.1.max(guard.0);
        Self { now: now.clone() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.now.lock().unwrap().0 -= 1;
    }
}

proptest! {
    #![proptest_config(config())]

    /// A `TaskGroup` with a limit under random spawns, releases (outputs and panics), aborts,
    /// runs and joins: never more than `limit` tasks run at once; every task's outcome comes
    /// out exactly once and is the one it had (its output, its panic, or `Cancelled` if it was
    /// aborted before it ended); and once the group is dropped nothing is left.
    #[test]
    fn task_group_with_a_limit_model(limit in 1..4_usize, ops in proptest::collection::vec(group_op(), 0..60)) {
        let sim = Sim::new();
        let _shutdown = sim.shutdown_on_drop();
        let rt = sim.runtime(&ManualClock::new());
        let drops = DropCounter::new();
        let running = Arc::new(Mutex::new((0, 0)));
        let told = Arc::new(Mutex::new(Told::default()));
        let mut group = asynchronously::TaskGroup::with_limit(&rt, limit);
        let mut releases: Vec<Option<futures::channel::oneshot::Sender<bool>>> = Vec::new();
        let mut aborts = Vec::new();
        let mut ids = std::collections::HashMap::new();
        let mut delivered = Vec::new();
        let spawn = |group: &mut asynchronously::TaskGroup<usize>, index: usize, releases: &mut Vec<_>| {
            let (release, released) = futures::channel::oneshot::channel::<bool>();
            releases.push(Some(release));
            let (running, told, drop_token) = (running.clone(), told.clone(), drops.token());
            told.lock().unwrap().finished.push(false);
            told.lock().unwrap().panicked.push(false);
            group.spawn(async move {
                let _dropped = drop_token;
                let _running = Running::start(&running);
                // A task never released waits for ever (its sender is kept).
                let panics = released.await.unwrap_or(false);
                if panics {
                    told.lock().unwrap().panicked[index] = true;
                    std::panic::panic_any(index);
                }
                told.lock().unwrap().finished[index] = true;
                index
            })
        };
        for op in &ops {
            match *op {
                GroupOp::Spawn => {
                    let index = releases.len();
                    let abort = spawn(&mut group, index, &mut releases);
                    ids.insert(abort.id(), index);
                    aborts.push(abort);
                }
                GroupOp::Release { task, panics } if !releases.is_empty() => {
                    let task = task % releases.len();
                    if let Some(release) = releases[task].take() {
                        let _ = release.send(panics);
                    }
                }
                GroupOp::Abort(task) if !aborts.is_empty() => aborts[task % aborts.len()].abort(),
                GroupOp::Run => { sim.run_until_stalled(); }
                GroupOp::TryJoin => {
                    sim.run_until_stalled();
                    if let Some(outcome) = group.try_join_next() {
                        delivered.push(outcome);
                    }
                }
                _ => {}
            }
            prop_assert!(running.lock().unwrap().1 <= limit, "more than {} ran at once", limit);
        }
        // Release the rest (each ends with its output) and join everything.
        for release in releases.iter_mut().filter_map(Option::take) {
            let _ = release.send(false);
        }
        while let Some(outcome) = sim.block_on(group.join_next()).expect("the group can always make progress") {
            delivered.push(outcome);
        }
        prop_assert!(running.lock().unwrap().1 <= limit);
        let told = told.lock().unwrap();
        let spawned = releases.len();
        prop_assert_eq!(delivered.len(), spawned, "every task's outcome, once");
        let mut seen = vec![false; spawned];
        let mut cancelled = 0;
        for outcome in delivered {
            match outcome {
                Ok(index) => {
                    prop_assert!(told.finished[index] && !std::mem::replace(&mut seen[index], true));
                }
                Err(error) if error.is_panic() => {
                    let index = ids[&error.id().expect("a panic names its task")];
                    prop_assert!(told.panicked[index] && !std::mem::replace(&mut seen[index], true));
                }
                Err(error) => {
                    prop_assert!(error.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        let ended = (0..spawned).filter(|&i| told.finished[i] || told.panicked[i]).count();
        prop_assert_eq!(cancelled, spawned - ended, "Cancelled exactly for the tasks that did not end");
        drop(group);
        sim.run_until_stalled();
        prop_assert_eq!(rt.live_tasks(), 0);
        prop_assert_eq!(drops.count(), spawned);
    }
}
