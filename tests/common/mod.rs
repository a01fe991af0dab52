//! The test harness: one body, every enabled runtime, each run bounded by a timeout.
//!
//! `each_runtime!` turns `async fn name(rt, clock) { .. }` into a `#[test]` that runs the body once
//! per runtime flavour (a closure spawner, and each enabled adapter), each on a fresh `Runtime`
//! whose timer is a fresh `ManualClock`. `each_runtime_real_time!` does the same with each
//! adapter's own timer, for the tests of the timers themselves. A run that takes longer than
//! `TIMEOUT` fails the test instead of hanging it.
#![allow(dead_code, unreachable_pub)]

pub mod sim;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use asynchronously::rt::{BoxFuture, ManualClock, Runtime, Timer};
use futures::future::LocalBoxFuture;

/// How long one body may run on one runtime. Generous: CI has 2 cores and runs tests in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `async fn $name($rt, $clock) $body` on every flavour, with a `ManualClock`.
#[macro_export]
macro_rules! each_runtime {
    ($(#[$meta:meta])* async fn $name:ident($rt:ident, $clock:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        // Under miri, on the runtimes that need no I/O (built without their features), with
        // the watchdog on real time (`-Zmiri-disable-isolation`).
        fn $name() {
            $crate::common::run_each(
                stringify!($name),
                $crate::common::Clock::Manual,
                |$rt: ::asynchronously::rt::Runtime, $clock: ::asynchronously::rt::ManualClock| async move $body,
            );
        }
    };
}

/// Runs `async fn $name($rt) $body` on every flavour, with the flavour's own (real) timer.
#[macro_export]
macro_rules! each_runtime_real_time {
    ($(#[$meta:meta])* async fn $name:ident($rt:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        #[cfg_attr(miri, ignore)]
        fn $name() {
            $crate::common::run_each(
                stringify!($name),
                $crate::common::Clock::Real,
                |$rt: ::asynchronously::rt::Runtime, _: ::asynchronously::rt::ManualClock| async move $body,
            );
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Manual,
    Real,
}

/// The body's future is driven by `block_on` on the flavour's own thread, so it need not be
/// `Send` (a test of a borrowing async closure is not); `Send`-ness is tested on purpose
/// elsewhere (`tests/auto_traits.rs`).
type Body = Box<dyn Fn(Runtime, ManualClock) -> LocalBoxFuture<'static, ()> + Send + Sync>;

/// A way to build a runtime and drive a body to completion on it.
pub struct Flavor {
    pub name: &'static str,
    run: fn(Clock, &Body),
}

fn with_clock(
    spawner: impl asynchronously::rt::Spawner,
    timer: impl Timer,
    clock: Clock,
    manual: &ManualClock,
) -> Runtime {
    match clock {
        Clock::Manual => Runtime::with_timer(spawner, manual.clone()),
        Clock::Real => Runtime::with_timer(spawner, timer),
    }
}

/// The flavours enabled in this build.
pub fn flavors() -> Vec<Flavor> {
    #[allow(unused_mut)] // only pushed to when a runtime feature is on
    let mut all = vec![Flavor {
        name: "closure (thread per task)",
        run: |clock, body| {
            let manual = ManualClock::new();
            let spawner = |task: BoxFuture<()>| {
                std::thread::spawn(move || futures::executor::block_on(task));
            };
            // A closure runtime's own timer is the default one (futures-timer).
            let rt = match clock {
                Clock::Manual => Runtime::with_timer(spawner, manual.clone()),
                Clock::Real => Runtime::new(spawner),
            };
            futures::executor::block_on(body(rt, manual));
        },
    }];
    #[cfg(feature = "thread-pool")]
    all.push(Flavor {
        name: "thread-pool",
        run: |clock, body| {
            use asynchronously::rt::ThreadPool;
            let manual = ManualClock::new();
            let pool = ThreadPool::with_threads(2).unwrap();
            let rt = with_clock(pool.clone(), pool, clock, &manual);
            futures::executor::block_on(body(rt, manual));
        },
    });
    #[cfg(feature = "tokio")]
    {
        all.push(Flavor {
            name: "tokio current-thread",
            run: |clock, body| {
                use asynchronously::rt::Tokio;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let manual = ManualClock::new();
                let tokio = Tokio::new(runtime.handle().clone());
                let rt = with_clock(tokio.clone(), tokio, clock, &manual);
                runtime.block_on(body(rt, manual));
            },
        });
        all.push(Flavor {
            name: "tokio multi-thread",
            run: |clock, body| {
                use asynchronously::rt::Tokio;
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                let manual = ManualClock::new();
                let tokio = Tokio::new(runtime.handle().clone());
                let rt = with_clock(tokio.clone(), tokio, clock, &manual);
                runtime.block_on(body(rt, manual));
            },
        });
    }
    #[cfg(feature = "smol")]
    all.push(Flavor {
        name: "smol",
        run: |clock, body| {
            use asynchronously::rt::Smol;
            let manual = ManualClock::new();
            let rt = with_clock(Smol::global(), Smol::global(), clock, &manual);
            smol::block_on(body(rt, manual));
        },
    });
    #[cfg(feature = "async-std")]
    all.push(Flavor {
        name: "async-std",
        run: |clock, body| {
            use asynchronously::rt::AsyncStd;
            let manual = ManualClock::new();
            let rt = with_clock(AsyncStd, AsyncStd, clock, &manual);
            async_std::task::block_on(body(rt, manual));
        },
    });
    all
}

/// Runs `body` on every flavour, each in a thread of its own bounded by `TIMEOUT`.
pub fn run_each<F, Fut>(test: &str, clock: Clock, body: F)
where
    F: Fn(Runtime, ManualClock) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let body: Arc<Body> = Arc::new(Box::new(move |rt, clock| Box::pin(body(rt, clock))));
    for flavor in flavors() {
        let (done, finished) = mpsc::channel();
        let body = body.clone();
        let name = flavor.name;
        std::thread::Builder::new()
            .name(format!("{test} on {name}"))
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| (flavor.run)(clock, &body)));
                let _ = done.send(outcome);
            })
            .unwrap();
        match finished.recv_timeout(TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => {
                eprintln!("`{test}` failed on {name}");
                resume_unwind(panic);
            }
            Err(_) => panic!("`{test}` did not finish within {TIMEOUT:?} on {name}: it hangs"),
        }
    }
}

/// Yields to the executor once.
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}

/// Waits (yielding, never sleeping on a clock) until `condition` holds. The harness's timeout
/// bounds it: a condition that never holds fails the test instead of hanging it.
pub async fn until(mut condition: impl FnMut() -> bool) {
    let mut spins = 0_u32;
    while !condition() {
        yield_now().await;
        spins += 1;
        if spins > 64 {
            // Let the tasks' threads have the cores (this machine has two).
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Waits until `clock` has exactly `n` pending sleeps: the tasks under test reached their sleeps.
pub async fn sleepers(clock: &ManualClock, n: usize) {
    until(|| clock.sleepers() == n).await;
}

/// Counts drops of the values it hands out.
#[derive(Clone, Default, Debug)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its counter when dropped. Move one into a future to count the future's drop.
#[derive(Debug)]
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future that never completes and counts its drop.
pub fn pending_counted<T>(counter: &DropCounter) -> impl Future<Output = T> + Send + 'static {
    let token = counter.token();
    async move {
        let _token = token;
        std::future::pending::<T>().await
    }
}

/// Runs a test that blocks (on `block_on`, `join`, ...) in a thread of its own, bounded by
/// `TIMEOUT`: a hang fails the test instead of blocking the suite.
pub fn bounded(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let _ = done.send(outcome);
    });
    match finished.recv_timeout(TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("the test did not finish within {TIMEOUT:?}: it hangs"),
    }
}

/// Every log record of the test process, captured so that tests can assert what was logged.
/// Tests run in parallel in one process: filter by a name unique to the test.
pub mod logs {
    use std::sync::{Mutex, Once};

    use log::{Level, LevelFilter, Log, Metadata, Record};

    static RECORDS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

    struct Capture;

    impl Log for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &Record<'_>) {
            RECORDS
                .lock()
                .unwrap()
                .push((record.level(), record.args().to_string()));
        }
        fn flush(&self) {}
    }

    /// Starts capturing (once per process).
    pub fn capture() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&Capture).unwrap();
            log::set_max_level(LevelFilter::Trace);
        });
    }

    /// The captured records whose message contains `needle`.
    pub fn containing(needle: &str) -> Vec<(Level, String)> {
        RECORDS
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, message)| message.contains(needle))
            .cloned()
            .collect()
    }
}

/// A waker that does nothing and counts the clones of itself that are alive: a test polls
/// with it, drops what it polled, and checks that nothing kept a clone.
pub struct CountedWaker(Arc<NoWake>);

pub struct NoWake;

impl std::task::Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

impl CountedWaker {
    pub fn new() -> Self {
        Self(Arc::new(NoWake))
    }

    pub fn waker(&self) -> std::task::Waker {
        std::task::Waker::from(self.0.clone())
    }

    /// How many clones of the waker are alive.
    pub fn clones(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

/// The tasks spawned on a runtime from [`holding`], kept for the test to run by hand.
#[derive(Clone, Default)]
pub struct Held(Arc<std::sync::Mutex<Vec<BoxFuture<()>>>>);

impl Held {
    /// Every task spawned so far, oldest first.
    pub fn take_all(&self) -> Vec<BoxFuture<()>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The one task spawned so far.
    pub fn take_one(&self) -> BoxFuture<()> {
        let mut tasks = self.take_all();
        assert_eq!(tasks.len(), 1, "one task was spawned");
        tasks.pop().unwrap()
    }
}

/// A runtime on `timer` whose spawner polls nothing: it keeps each task, for the test to poll.
pub fn holding(timer: impl Timer) -> (Runtime, Held) {
    let held = Held::default();
    let keep = held.clone();
    let rt = Runtime::with_timer(move |task| keep.0.lock().unwrap().push(task), timer);
    (rt, held)
}
