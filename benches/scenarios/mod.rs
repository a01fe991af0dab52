//! The scenarios of `benches/compare.rs` and `benches/primitives.rs`: each primitive of this
//! crate beside its nearest peer, doing the same work.
//!
//! Ours runs on this crate's adapters (`rt::Tokio`, `rt::Smol`), as a user of tokio or smol
//! does: `benches/compare.rs` needs the `tokio` and `smol` features, and turns them on itself.
//! Without them (`cargo bench --bench primitives` with the default features), the runtimes are
//! built through the public `Spawner` and `Timer` traits instead, as for any other executor.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::{pending, ready};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use asynchronously::lifecycle::{Children, Component, ComponentExt, Lifecycle, Service};
use asynchronously::rt::Runtime;
use asynchronously::{
    Event, MissedTicks, Periodic, await_map_values, retry, retry_mut, strict_gather,
    strict_gather_spawned,
};
use futures::future::{Either, join_all, try_join_all};
use futures::stream::{FuturesUnordered, TryStreamExt};

pub mod bytes;
pub mod structured;

/// What a scenario measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    /// Microseconds per item: the run's time divided by its items.
    MicrosPerItem,
    /// Milliseconds (a mean lateness).
    Millis,
    /// Bytes per item (net allocated while the items are alive).
    BytesPerItem,
}

/// One run of one side: gives the measured quantity (seconds, or bytes) for `items` items.
pub type Run = Box<dyn FnMut() -> f64>;

pub struct Scenario {
    pub name: &'static str,
    pub peer: &'static str,
    pub goal: f64,
    pub unit: Unit,
    pub items: usize,
    pub ours: Run,
    pub theirs: Run,
}

/// Times `f`, the part of a run that is measured; under `compare --count`, also counts the
/// instructions it executes, on every thread (see `instructions.rs`).
fn timed(f: impl FnOnce()) -> f64 {
    let counting = crate::instructions::measuring();
    let start = Instant::now();
    f();
    let elapsed = start.elapsed().as_secs_f64();
    if counting {
        crate::instructions::stop();
    }
    elapsed
}

/// A tokio runtime with 2 workers.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Our `Runtime` on a tokio runtime: the adapter, as its users run it.
pub fn on_tokio(runtime: &tokio::runtime::Runtime) -> Runtime {
    let tokio = asynchronously::rt::Tokio::new(runtime.handle().clone());
    Runtime::with_timer(tokio.clone(), tokio)
}

/// Our `Runtime` on smol's global executor: the adapter.
pub fn on_smol() -> Runtime {
    Runtime::smol()
}

pub const N: usize = 10_000;

pub fn strict_gather_ready() -> Scenario {
    Scenario {
        name: "strict_gather 10k ready Ok",
        peer: "futures::try_join_all",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            timed(|| {
                let out = futures::executor::block_on(strict_gather(
                    (0..N as u64).map(|i| ready(Ok::<_, ()>(i))),
                ));
                assert_eq!(out.unwrap().len(), N);
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                let out = futures::executor::block_on(try_join_all(
                    (0..N as u64).map(|i| ready(Ok::<_, ()>(i))),
                ));
                assert_eq!(out.unwrap().len(), N);
            })
        }),
    }
}

/// A future that never completes, or one that fails at once.
type PendingOrFailed =
    Either<std::future::Pending<Result<u64, u64>>, std::future::Ready<Result<u64, u64>>>;

/// 10,000 futures: all pending but the last, which fails.
fn last_fails() -> impl Iterator<Item = PendingOrFailed> {
    (0..N).map(|i| {
        if i == N - 1 {
            Either::Right(ready(Err(i as u64)))
        } else {
            Either::Left(pending())
        }
    })
}

pub fn strict_gather_fail_fast() -> Scenario {
    Scenario {
        name: "strict_gather 10k, last fails, rest pending",
        peer: "FuturesUnordered + try_collect",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            timed(|| {
                let out = futures::executor::block_on(strict_gather(last_fails()));
                assert!(out.is_err());
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                let out = futures::executor::block_on(
                    last_fails()
                        .collect::<FuturesUnordered<_>>()
                        .try_collect::<Vec<_>>(),
                );
                assert!(out.is_err());
            })
        }),
    }
}

pub fn await_map_values_hashmap() -> Scenario {
    Scenario {
        name: "await_map_values 10k into HashMap",
        peer: "try_join_all + collect",
        goal: 1.2,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            timed(|| {
                let pairs = (0..N as u64).map(|i| (i, ready(Ok::<_, ()>(i))));
                let map: HashMap<u64, u64> =
                    futures::executor::block_on(await_map_values(pairs)).unwrap();
                assert_eq!(map.len(), N);
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                let (keys, futures): (Vec<u64>, Vec<_>) =
                    (0..N as u64).map(|i| (i, ready(Ok::<_, ()>(i)))).unzip();
                let values = futures::executor::block_on(try_join_all(futures)).unwrap();
                let map: HashMap<u64, u64> = keys.into_iter().zip(values).collect();
                assert_eq!(map.len(), N);
            })
        }),
    }
}

pub fn strict_gather_spawned_tokio() -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "strict_gather_spawned 10k trivial, tokio 2 workers",
        peer: "tokio JoinSet spawn + join",
        goal: 1.2,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| {
                let out = runtime.block_on(strict_gather_spawned(
                    &rt,
                    (0..N as u64).map(|i| async move { Ok::<_, ()>(i) }),
                ));
                assert_eq!(out.unwrap().len(), N);
            })
        }),
        theirs: Box::new(move || timed(|| assert_eq!(join_set_of_trivial_tasks(&peer_runtime), N))),
    }
}

/// The peer of the spawn-and-join rows: `N` trivial tasks in a tokio `JoinSet`, joined; how
/// many came back.
pub fn join_set_of_trivial_tasks(runtime: &tokio::runtime::Runtime) -> usize {
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..N as u64 {
            set.spawn(async move { i });
        }
        let mut count = 0;
        while let Some(result) = set.join_next().await {
            result.unwrap();
            count += 1;
        }
        count
    })
}

/// Fire-and-forget tasks, then a drain: ours spawns them with `spawn_detached`, the API for tasks
/// nobody joins, as the peer's tracker keeps no handle either. (`spawn(..).detach()` costs a
/// second allocation per task, the state a `JoinHandle` shares with its task.)
pub fn drain_tokio() -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "spawn 10k + wait_for_all_other_tasks, tokio",
        peer: "tokio-util TaskTracker spawn + close + wait",
        goal: 1.3,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| {
                runtime.block_on(async {
                    for _ in 0..N {
                        rt.spawn_detached(async {});
                    }
                    rt.wait_for_all_other_tasks().await;
                });
            })
        }),
        theirs: Box::new(move || {
            timed(|| {
                peer_runtime.block_on(async {
                    let tracker = tokio_util::task::TaskTracker::new();
                    for _ in 0..N {
                        tracker.spawn(async {});
                    }
                    tracker.close();
                    tracker.wait().await;
                });
            })
        }),
    }
}

pub fn drain_smol() -> Scenario {
    let rt = on_smol();
    Scenario {
        name: "spawn 10k + wait_for_all_other_tasks, smol",
        peer: "smol spawn + join all",
        goal: 1.3,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| {
                smol::block_on(async {
                    for _ in 0..N {
                        rt.spawn_detached(async {});
                    }
                    rt.wait_for_all_other_tasks().await;
                });
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                smol::block_on(async {
                    let tasks: Vec<_> = (0..N).map(|_| smol::spawn(async {})).collect();
                    join_all(tasks).await;
                });
            })
        }),
    }
}

/// The peer's event: a flag and a raw `event_listener::Event`, with the same protocol as ours.
#[derive(Default)]
struct RawEvent {
    flag: AtomicBool,
    event: event_listener::Event,
}

impl RawEvent {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }
    fn clear(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }
    async fn wait(&self) {
        loop {
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

pub const ROUND_TRIPS: usize = 10_000;

/// What a ping-pong needs of an event; implemented by ours and by the raw peer, so that both run
/// the very same protocol.
trait Flag: Default {
    fn set(&self);
    fn clear(&self);
    fn wait(&self) -> impl std::future::Future<Output = ()>;
}

impl Flag for Event {
    fn set(&self) {
        Event::set(self)
    }
    fn clear(&self) {
        Event::clear(self)
    }
    fn wait(&self) -> impl std::future::Future<Output = ()> {
        Event::wait(self)
    }
}

impl Flag for RawEvent {
    fn set(&self) {
        RawEvent::set(self)
    }
    fn clear(&self) {
        RawEvent::clear(self)
    }
    fn wait(&self) -> impl std::future::Future<Output = ()> {
        RawEvent::wait(self)
    }
}

/// `ROUND_TRIPS` set/wait round trips between two tasks (two futures on one thread).
fn ping_pong<F: Flag>() -> f64 {
    let (ping, pong) = (F::default(), F::default());
    timed(|| {
        futures::executor::block_on(futures::future::join(
            async {
                for _ in 0..ROUND_TRIPS {
                    ping.wait().await;
                    ping.clear();
                    pong.set();
                }
            },
            async {
                for _ in 0..ROUND_TRIPS {
                    ping.set();
                    pong.wait().await;
                    pong.clear();
                }
            },
        ));
    })
}

pub fn event_round_trip() -> Scenario {
    Scenario {
        name: "Event set/wait round trip between two tasks, 10k",
        peer: "raw event_listener::Event",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: ROUND_TRIPS,
        ours: Box::new(ping_pong::<Event>),
        theirs: Box::new(ping_pong::<RawEvent>),
    }
}

/// A component with nothing to do but take part.
#[derive(Default)]
pub struct Leaf {
    lifecycle: Lifecycle,
}

impl Component for Leaf {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
}

#[derive(Default)]
pub struct Root {
    lifecycle: Lifecycle,
    leaves: Vec<Leaf>,
}

impl Component for Root {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn children(&self) -> Children<'_> {
        asynchronously::children![self.leaves]
    }
}

/// The floor of the wide rows: `N` empty async blocks joined.
fn join_all_of_empty_blocks() -> f64 {
    timed(|| {
        futures::executor::block_on(join_all((0..N).map(|_| async {})));
    })
}

/// A root with `N` leaves.
fn wide_root() -> Root {
    Root {
        lifecycle: Lifecycle::new(),
        leaves: (0..N).map(|_| Leaf::default()).collect(),
    }
}

pub fn lifecycle_wide() -> Scenario {
    Scenario {
        name: "lifecycle init + deinit, 1 root + 10k leaves",
        peer: "join_all of 10k no-op async blocks (floor)",
        goal: 3.0,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            // Building the tree is the user's code; the lifecycle is what is timed.
            let root = wide_root();
            timed(|| {
                futures::executor::block_on(async {
                    root.init().await.unwrap();
                    root.deinit().await.unwrap();
                });
            })
        }),
        theirs: Box::new(join_all_of_empty_blocks),
    }
}

pub fn service_wide() -> Scenario {
    Scenario {
        name: "Service::run (init, shutdown, deinit), 1 root + 10k leaves",
        peer: "join_all of 10k no-op async blocks (floor)",
        goal: 3.0,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            let root = wide_root();
            timed(|| {
                let report =
                    futures::executor::block_on(Service::new(&root).shutdown_on(async {}).run());
                // The leaves have no hook: only the root's deinit is timed.
                assert_eq!(report.unwrap().phases.len(), 1);
            })
        }),
        theirs: Box::new(join_all_of_empty_blocks),
    }
}

pub const CHAIN: usize = 1_000;

pub fn lifecycle_chain() -> Scenario {
    Scenario {
        name: "lifecycle init, chain of 1k (each after the previous)",
        peer: "1k sequential event-listener round trips",
        goal: 1.5,
        unit: Unit::MicrosPerItem,
        items: CHAIN,
        ours: Box::new(|| {
            let root = Root {
                lifecycle: Lifecycle::new(),
                leaves: (0..CHAIN).map(|_| Leaf::default()).collect(),
            };
            for pair in root.leaves.windows(2) {
                pair[1]
                    .lifecycle()
                    .init_phase()
                    .after(pair[0].lifecycle().init_phase())
                    .unwrap();
            }
            timed(|| futures::executor::block_on(root.init()).unwrap())
        }),
        theirs: Box::new(|| {
            let events: Vec<RawEvent> = (0..CHAIN).map(|_| RawEvent::default()).collect();
            timed(|| {
                futures::executor::block_on(join_all((0..CHAIN).map(|i| {
                    let events = &events;
                    async move {
                        if i > 0 {
                            events[i - 1].wait().await;
                        }
                        events[i].set();
                    }
                })));
            })
        }),
    }
}

pub const FAILURES: usize = 1_000;

pub fn retry_zero_sleep() -> Scenario {
    Scenario {
        name: "retry of an op failing 1k times, zero sleep",
        peer: "backon, yielding as often (every 32nd retry)",
        goal: 1.0,
        unit: Unit::MicrosPerItem,
        items: FAILURES,
        ours: Box::new(|| {
            timed(|| {
                let mut calls = 0;
                let out = futures::executor::block_on(
                    retry_mut(async || {
                        calls += 1;
                        if calls <= FAILURES {
                            Err(calls)
                        } else {
                            Ok(calls)
                        }
                    })
                    .sleep(Duration::ZERO)
                    .into_future_for_bench(),
                );
                assert_eq!(out, Ok(FAILURES + 1));
            })
        }),
        theirs: Box::new(|| {
            use backon::Retryable;
            timed(|| {
                let calls = std::cell::Cell::new(0);
                let op = || async {
                    calls.set(calls.get() + 1);
                    if calls.get() <= FAILURES {
                        Err(calls.get())
                    } else {
                        Ok(calls.get())
                    }
                };
                let backoff = backon_zero_sleep();
                // Ours yields every 32nd zero-sleep retry (so that a busy retry cannot starve its
                // thread); the peer's sleeper does the same, so that both pay for as many yields.
                let out = futures::executor::block_on(op.retry(backoff).sleep(yield_every_32nd()));
                assert_eq!(out, Ok(FAILURES + 1));
            })
        }),
    }
}

/// `.await` needs an async context; this spells `IntoFuture` out.
pub trait IntoFutureForBench: std::future::IntoFuture + Sized {
    fn into_future_for_bench(self) -> Self::IntoFuture {
        std::future::IntoFuture::into_future(self)
    }
}
impl<T: std::future::IntoFuture> IntoFutureForBench for T {}

/// An operation that borrows its state, as a library's client does: fails `FAILURES` times.
struct Flaky {
    calls: std::cell::Cell<usize>,
}

impl Flaky {
    async fn call(&self) -> Result<usize, usize> {
        let calls = self.calls.get() + 1;
        self.calls.set(calls);
        if calls <= FAILURES {
            Err(calls)
        } else {
            Ok(calls)
        }
    }
}

/// The peer's backoff: no sleep, `FAILURES` retries at most.
fn backon_zero_sleep() -> backon::ConstantBuilder {
    backon::ConstantBuilder::default()
        .with_delay(Duration::ZERO)
        .with_max_times(FAILURES)
}

/// The peer's sleeper: a yield every 32nd retry, as ours does for a zero sleep.
fn yield_every_32nd() -> impl Fn(Duration) -> YieldIf {
    let retries = std::rc::Rc::new(std::cell::Cell::new(0_usize));
    move |_| {
        retries.set(retries.get() + 1);
        YieldIf(retries.get() % 32 == 0)
    }
}

pub fn retry_borrowing_fn_mut() -> Scenario {
    Scenario {
        name: "retry of a borrowing op, FnMut form, zero sleep",
        peer: "backon, yielding as often (every 32nd retry)",
        goal: 1.0,
        unit: Unit::MicrosPerItem,
        items: FAILURES,
        ours: Box::new(|| {
            timed(|| {
                let client = Flaky {
                    calls: std::cell::Cell::new(0),
                };
                let out =
                    futures::executor::block_on(retry(|| client.call()).sleep(Duration::ZERO));
                assert_eq!(out, Ok(FAILURES + 1));
            })
        }),
        theirs: Box::new(|| {
            use backon::Retryable;
            timed(|| {
                let client = Flaky {
                    calls: std::cell::Cell::new(0),
                };
                let backoff = backon_zero_sleep();
                let op = || client.call();
                let out = futures::executor::block_on(op.retry(backoff).sleep(yield_every_32nd()));
                assert_eq!(out, Ok(FAILURES + 1));
            })
        }),
    }
}

/// Yields to the executor once if told to, else is ready at once.
pub struct YieldIf(bool);

impl std::future::Future for YieldIf {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if !self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = false;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Yields to the executor once.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

pub const TICKS: u32 = 100;
pub const TICK: Duration = Duration::from_millis(10);

/// The mean lateness (seconds) of `TICKS` ticks: each run's start minus when it was due.
fn mean_lateness(latenesses: &Mutex<Vec<Duration>>) -> f64 {
    let latenesses = latenesses.lock().unwrap();
    latenesses.iter().map(Duration::as_secs_f64).sum::<f64>() / latenesses.len() as f64
}

/// A start 2 to 3 ms ahead, on the same sub-millisecond phase after `reference` every time: tokio
/// rounds every deadline up to its 1 ms wheel, so runs that start at different phases of it would
/// compare luck, not overhead.
fn aligned_start(reference: Instant) -> Instant {
    let since = Instant::now().duration_since(reference);
    reference + Duration::from_millis(since.as_millis() as u64 + 2) + Duration::from_micros(100)
}

pub fn periodic_lateness() -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    let reference = Instant::now();
    Scenario {
        name: "Periodic fixed rate 10ms x 100, mean lateness, tokio",
        peer: "tokio::time::interval",
        goal: 1.0,
        unit: Unit::Millis,
        items: 1,
        ours: Box::new(move || {
            let latenesses = Arc::new(Mutex::new(Vec::new()));
            let done = Event::new();
            let start = aligned_start(reference);
            let first_at = SystemTime::now() + (start + TICK).duration_since(Instant::now());
            let mut tick = 0_u32;
            let job = {
                let (latenesses, done) = (latenesses.clone(), done.clone());
                move || {
                    tick += 1;
                    let due = start + TICK * tick;
                    latenesses
                        .lock()
                        .unwrap()
                        .push(Instant::now().saturating_duration_since(due));
                    if tick == TICKS {
                        done.set();
                    }
                }
            };
            // Burst, as tokio's interval does by default: after a stall (the machine is a VM),
            // both catch up with the schedule rather than move it (`Delay`, our default, would
            // count every later tick as late by the stall).
            let periodic = Periodic::builder(job, TICK)
                .first_at(first_at)
                .fixed_rate(true)
                .missed_ticks(MissedTicks::Burst)
                .runtime(&rt)
                .start()
                .unwrap();
            runtime.block_on(done.wait());
            runtime.block_on(periodic.stop());
            mean_lateness(&latenesses)
        }),
        theirs: Box::new(move || {
            let latenesses = Arc::new(Mutex::new(Vec::new()));
            let start = aligned_start(reference);
            let task = peer_runtime.spawn({
                let latenesses = latenesses.clone();
                async move {
                    let mut interval = tokio::time::interval_at((start + TICK).into(), TICK);
                    for tick in 1..=TICKS {
                        interval.tick().await;
                        let due = start + TICK * tick;
                        latenesses
                            .lock()
                            .unwrap()
                            .push(Instant::now().saturating_duration_since(due));
                    }
                }
            });
            peer_runtime.block_on(task).unwrap();
            mean_lateness(&latenesses)
        }),
    }
}

/// Runs of the simulated hour: one a millisecond.
const SIMULATED_RUNS: u64 = 3_600_000;

pub fn periodic_simulated_hour() -> Scenario {
    Scenario {
        name: "Periodic 1ms for one simulated hour (3.6M runs), TestRuntime",
        peer: "tokio interval under start_paused",
        goal: 1.0,
        unit: Unit::MicrosPerItem,
        items: SIMULATED_RUNS as usize,
        ours: Box::new(|| {
            let test = asynchronously::testing::TestRuntime::new();
            let rt = test.runtime();
            let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let elapsed = timed(|| {
                let job = {
                    let runs = runs.clone();
                    move || {
                        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                };
                let periodic = Periodic::builder(job, Duration::from_millis(1))
                    .runtime(&rt)
                    .start()
                    .unwrap();
                test.block_on(async {
                    rt.sleep(Duration::from_secs(3600)).await;
                    periodic.stop().await;
                });
            });
            // The last run and the hour's end are due at once: either may go first.
            let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
            assert!(runs >= SIMULATED_RUNS - 1, "{runs}");
            elapsed
        }),
        theirs: Box::new(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            timed(|| {
                let runs = runtime.block_on(async {
                    let end = tokio::time::Instant::now() + Duration::from_secs(3600);
                    let mut interval = tokio::time::interval(Duration::from_millis(1));
                    interval.tick().await; // at once, as tokio's first tick is
                    let mut runs = 0;
                    while interval.tick().await < end {
                        runs += 1;
                    }
                    runs
                });
                assert_eq!(runs, SIMULATED_RUNS - 1);
            })
        }),
    }
}

/// Every scenario that measures time, in the order of the table.
pub fn timed_scenarios() -> Vec<Scenario> {
    vec![
        strict_gather_ready(),
        strict_gather_fail_fast(),
        await_map_values_hashmap(),
        strict_gather_spawned_tokio(),
        drain_tokio(),
        drain_smol(),
        event_round_trip(),
        lifecycle_wide(),
        service_wide(),
        lifecycle_chain(),
        periodic_simulated_hour(),
        retry_zero_sleep(),
        retry_borrowing_fn_mut(),
        structured::token_cancel_with_waiters(),
        structured::token_tree_cancel(),
        structured::task_group_tokio(),
        structured::task_group_smol(),
        structured::task_tracker_tokio(),
    ]
}
