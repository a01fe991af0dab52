//! `Periodic`: a job on a fixed period, fixed delay or fixed rate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use event_listener::EventListener;
use futures::task::AtomicWaker;

use crate::event::poll_until;
use crate::job::Job;
use crate::rt::{BoxFuture, Runtime};
use crate::sync::{Mutex, lock};

mod run;

use self::run::{Ended, run_loop};

/// Why a [`Periodic`] could not be built.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::{Periodic, PeriodicError};
///
/// let error = Periodic::builder(|| {}, Duration::ZERO).build().unwrap_err();
/// assert_eq!(error, PeriodicError::ZeroPeriod);
/// assert_eq!(error.to_string(), "a periodic job needs a period above zero");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodicError {
    /// A period of zero would run the job in a busy loop. (The builder that returns it knows
    /// which job it is, and logs the job's name at warning level.)
    #[error("a periodic job needs a period above zero")]
    ZeroPeriod,
}

/// What a fixed-rate [`Periodic`] does when a run starts late (a job overran, or the executor
/// stalled): the same choices as `tokio::time::MissedTickBehavior`.
///
/// With a period of 100 ms, runs due at 100, 200, 300, ..., and a first run that takes 250 ms
/// (so it ends at 350):
///
/// | policy | runs start at |
/// | --- | --- |
/// | `Burst` | 100, 350, 350, 400, 500, ... (the missed 200 and 300 at once, then on schedule) |
/// | `Delay` (default) | 100, 350, 450, 550, ... (at once, then the schedule moves) |
/// | `Skip` | 100, 350, 400, 500, ... (one run at once for the missed ones, then the original schedule) |
///
/// `Delay` is what the Python package does (it shortens the next sleep by the job's duration, to
/// no less than zero). With fixed delay (the default) there is nothing to miss: the next run is
/// always one period after the previous one finished.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::{MissedTicks, Periodic};
///
/// let periodic = Periodic::builder(|| {}, Duration::from_millis(100))
///     .fixed_rate(true)
///     .missed_ticks(MissedTicks::Skip)
///     .build()
///     .unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissedTicks {
    /// Run every missed tick at once, then go on with the original schedule.
    Burst,
    /// Run at once, then schedule from this run: the schedule shifts by the delay.
    #[default]
    Delay,
    /// Run once at once for the missed ticks, then at the next tick of the original schedule:
    /// tokio's `Skip` (the late tick fires, the others are dropped).
    Skip,
}

/// A [`Job`] with its marker erased, so that builders and handles are not generic.
type ErasedJob = Box<dyn FnMut() -> BoxFuture<Result<(), String>> + Send>;

/// Builds a [`Periodic`]: see [`Periodic::builder`].
///
/// # Defaults
///
/// | setting | default |
/// | --- | --- |
/// | first run | one period after start |
/// | [`fixed_rate`](PeriodicBuilder::fixed_rate) | `false`: fixed delay, a period between one run's end and the next's start |
/// | [`missed_ticks`](PeriodicBuilder::missed_ticks) | [`MissedTicks::Delay`] (fixed rate only) |
/// | [`jitter`](PeriodicBuilder::jitter) | none |
/// | [`runtime`](PeriodicBuilder::runtime) | [`default_runtime()`](crate::rt::default_runtime) |
/// | [`name`](PeriodicBuilder::name) | `"periodic"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::{Periodic, PeriodicBuilder};
///
/// let builder: PeriodicBuilder = Periodic::builder(|| {}, Duration::from_secs(10)).fixed_rate(true);
/// let periodic = builder.name("metrics").build().unwrap();
/// assert_eq!(periodic.name(), "metrics");
/// ```
#[must_use = "a PeriodicBuilder does nothing until .build() or .start()"]
pub struct PeriodicBuilder {
    job: ErasedJob,
    period: Duration,
    first: First,
    fixed_rate: bool,
    missed_ticks: MissedTicks,
    jitter: Duration,
    runtime: Option<Runtime>,
    /// `None`: the default name, kept without allocating.
    name: Option<Box<str>>,
}

impl PeriodicBuilder {
    /// Runs the job first at `at` (wall-clock time), then on its period. A moment in the past
    /// logs a warning and runs the job at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use asynchronously::Periodic;
    ///
    /// let in_a_minute = SystemTime::now() + Duration::from_secs(60);
    /// let report = Periodic::builder(|| {}, Duration::from_secs(3600)).first_at(in_a_minute).build();
    /// ```
    pub fn first_at(mut self, at: SystemTime) -> Self {
        self.first = First::At(at);
        self
    }

    /// Runs the job first at once when the loop starts, then on its period. (`first_at` with
    /// the present moment does the same, with a warning that it is in the past by the time the
    /// loop starts.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let warm_up = Periodic::builder(|| {}, Duration::from_secs(60)).first_run_now().build();
    /// ```
    pub fn first_run_now(mut self) -> Self {
        self.first = First::Now;
        self
    }

    /// With `true`, keeps `period` between the *starts* of runs (deadlines are computed from the
    /// first run, so no drift accumulates); Python's `decrease_sleep_time_by_evaluation_time`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let ticker = Periodic::builder(|| {}, Duration::from_secs(1)).fixed_rate(true).build();
    /// ```
    pub fn fixed_rate(mut self, yes: bool) -> Self {
        self.fixed_rate = yes;
        self
    }

    /// What a fixed-rate job does about runs that start late; see [`MissedTicks`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::{MissedTicks, Periodic};
    ///
    /// let ticker = Periodic::builder(|| {}, Duration::from_secs(1))
    ///     .fixed_rate(true)
    ///     .missed_ticks(MissedTicks::Burst)
    ///     .build();
    /// ```
    pub fn missed_ticks(mut self, policy: MissedTicks) -> Self {
        self.missed_ticks = policy;
        self
    }

    /// Lengthens each sleep by a random amount between zero and `max`, drawn afresh for every
    /// run, so that many processes started together do not run their jobs together. The
    /// schedule itself does not move: with fixed rate, each run is late by its own draw from
    /// its tick, and only a run that ends after the next tick (less its draw) has missed it. A
    /// run asked for now ([`first_run_now`](PeriodicBuilder::first_run_now),
    /// [`trigger`](Periodic::trigger)) is not delayed.
    ///
    /// The draws come from the runtime's [`Timer::random`](crate::rt::Timer::random): on a
    /// [`ManualClock`](crate::rt::ManualClock) they follow its seed, so a test knows every run's
    /// time. A huge jitter is safe: `jitter(Duration::MAX)` delays each run by up to 584 billion
    /// years, and a draw past what `Instant` can hold means that run never comes (the loop
    /// sleeps until [`trigger`](Periodic::trigger) or a stop, and [`stats`](Periodic::stats)
    /// shows no next run). Nothing panics or overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// // Every minute, each run up to 5 s late, so that a fleet spreads its reports.
    /// let report = Periodic::builder(|| {}, Duration::from_secs(60))
    ///     .jitter(Duration::from_secs(5))
    ///     .build();
    /// ```
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// Runs the loop, and sleeps, on `rt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    /// use asynchronously::rt::{ManualClock, Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::with_timer(ThreadPerTask, ManualClock::new());
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).runtime(&rt).build();
    /// ```
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.runtime = Some(rt.clone());
        self
    }

    /// The name used in logs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let health = Periodic::builder(|| {}, Duration::from_secs(1)).name("health").build().unwrap();
    /// assert_eq!(health.name(), "health");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into().into_boxed_str());
        self
    }

    /// A periodic job that is not running yet (Python's `is_active=False`); call
    /// [`Periodic::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).build().unwrap();
    /// assert!(!periodic.is_active());
    /// ```
    ///
    /// # Errors
    ///
    /// [`PeriodicError::ZeroPeriod`] for a zero period.
    pub fn build(self) -> Result<Periodic, PeriodicError> {
        if self.period.is_zero() {
            log::warn!(
                "periodic `{}`: a zero period is refused",
                name_or_default(&self.name)
            );
            return Err(PeriodicError::ZeroPeriod);
        }
        let rt = self.runtime.unwrap_or_else(crate::rt::default_runtime);
        Ok(Periodic {
            shared: Arc::new(Shared {
                name: self.name,
                active: AtomicBool::new(false),
                cancelled: AtomicBool::new(false),
                triggered: AtomicBool::new(false),
                ended: AtomicBool::new(false),
                loop_waker: AtomicWaker::new(),
                end: event_listener::Event::new(),
                state: Mutex::new(State {
                    unstarted: Some(Box::new(Unstarted {
                        job: self.job,
                        first: self.first,
                    })),
                    stats: PeriodicStats::default(),
                }),
                period: self.period,
                jitter: self.jitter,
                fixed_rate: self.fixed_rate,
                missed_ticks: self.missed_ticks,
                rt,
            }),
            detached: false,
        })
    }

    /// A periodic job that is running: Python's default, `is_active=True`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| println!("i'm ok"), Duration::from_secs(60)).start().unwrap();
    /// assert!(periodic.is_active());
    /// ```
    ///
    /// # Errors
    ///
    /// [`PeriodicError::ZeroPeriod`] for a zero period.
    pub fn start(self) -> Result<Periodic, PeriodicError> {
        let periodic = self.build()?;
        periodic.start();
        Ok(periodic)
    }
}

impl fmt::Debug for PeriodicBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicBuilder")
            .field("name", &self.name)
            .field("period", &self.period)
            .field("first", &self.first)
            .field("fixed_rate", &self.fixed_rate)
            .field("missed_ticks", &self.missed_ticks)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

/// Runs a sync or async job on a fixed period: Python's `Periodic`.
///
/// Without [`first_at`](PeriodicBuilder::first_at) the first run is one period after
/// [`start`](Periodic::start). By default the period is a fixed *delay* (from one run's end to
/// the next's start); [`fixed_rate(true)`](PeriodicBuilder::fixed_rate) keeps it between starts.
/// A job that returns `Err` or panics is logged at error level and the loop goes on.
///
/// The handle owns the loop: dropping it cancels the loop (and a run in progress); call
/// [`detach`](Periodic::detach) to let it run on its own. [`stop`](Periodic::stop) ends it
/// gracefully, waking it at once if it sleeps and letting a running job finish.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use asynchronously::Periodic;
/// # use asynchronously::testing::TestRuntime;
/// # let test = TestRuntime::new(); // time advances by itself; the test takes microseconds
/// # let rt = test.runtime();
///
/// let runs = Arc::new(AtomicU32::new(0));
/// let periodic = Periodic::builder({ let runs = runs.clone(); move || { runs.fetch_add(1, Ordering::SeqCst); } }, Duration::from_millis(100))
///     .runtime(&rt)
///     .start()
///     .unwrap();
/// # test.block_on(async {
/// rt.sleep(Duration::from_millis(350)).await; // runs at 100, 200 and 300 ms
/// periodic.stop().await;
/// assert_eq!(runs.load(Ordering::SeqCst), 3);
/// # });
/// ```
#[must_use = "dropping a Periodic cancels its loop; call .detach() to let it run"]
pub struct Periodic {
    shared: Arc<Shared>,
    detached: bool,
}

struct Shared {
    name: Option<Box<str>>,
    active: AtomicBool,
    /// Set when the handle is dropped (not detached): the loop's future is dropped at once,
    /// whatever it awaits, as an aborted task's is.
    cancelled: AtomicBool,
    /// Set by `trigger`, taken by the loop for a run now.
    triggered: AtomicBool,
    /// Set when the loop has ended, however it ended; `end` is notified then.
    ended: AtomicBool,
    /// The loop's task, woken by `deactivate` and by a cancel so that it sees them at once.
    loop_waker: AtomicWaker,
    /// Wakes `join` and `stop`. (Not an [`Event`](crate::Event): this one allocates only once
    /// someone listens, which an idle `Periodic` spares; the "bytes allocated per idle
    /// Periodic" row.)
    end: event_listener::Event,
    state: Mutex<State>,
    // The schedule's settings, flat so that their padding is shared with the flags'.
    period: Duration,
    /// Zero: none.
    jitter: Duration,
    fixed_rate: bool,
    missed_ticks: MissedTicks,
    rt: Runtime,
}

struct State {
    /// Taken by `start`. (Boxed: a started loop keeps only the pointer's room.)
    unstarted: Option<Box<Unstarted>>,
    stats: PeriodicStats,
}

/// What `start` hands to the loop.
struct Unstarted {
    job: ErasedJob,
    first: First,
}

/// What a [`Periodic`]'s loop has done so far, from [`Periodic::stats`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::{Periodic, PeriodicStats};
///
/// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).build().unwrap();
/// let PeriodicStats { runs, failures, last_started, next_run, .. } = periodic.stats();
/// assert_eq!((runs, failures, last_started, next_run), (0, 0, None, None));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeriodicStats {
    /// Runs that ended: returned, failed or panicked. A run in progress is not counted yet.
    pub runs: u64,
    /// Of those, the runs that returned `Err` or panicked.
    pub failures: u64,
    /// When the latest run started (on the runtime's clock), the one in progress if any.
    pub last_started: Option<Instant>,
    /// When the next run is due, jitter included. `None` before the loop starts, while a run is
    /// in progress (the next is planned when it ends), after the loop ended, and when the next
    /// run is past what `Instant` can hold.
    pub next_run: Option<Instant>,
}

/// When the first run is.
#[derive(Debug, Clone, Copy)]
enum First {
    /// One period after start.
    AfterPeriod,
    /// At start.
    Now,
    /// At this wall-clock moment (at once if it is past).
    At(SystemTime),
}

impl Periodic {
    /// A builder for `job` every `period`; see [`PeriodicBuilder`] for the settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| async { /* refresh a cache */ }, Duration::from_secs(30))
    ///     .name("cache refresh")
    ///     .start()
    ///     .unwrap();
    /// ```
    pub fn builder<M>(job: impl Job<M>, period: Duration) -> PeriodicBuilder {
        let mut job = job;
        PeriodicBuilder {
            job: Box::new(move || job.call()),
            period,
            first: First::AfterPeriod,
            fixed_rate: false,
            missed_ticks: MissedTicks::default(),
            jitter: Duration::ZERO,
            runtime: None,
            name: None,
        }
    }

    /// Starts the loop. A second call (also after [`stop`](Periodic::stop)) logs a warning and
    /// does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).build().unwrap();
    /// periodic.start();
    /// assert!(periodic.is_active());
    /// ```
    pub fn start(&self) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        let Some(unstarted) = state.unstarted.take() else {
            log::warn!("periodic `{}` was already started", shared.name());
            return;
        };
        let Unstarted { job, first } = *unstarted;
        let (due, jitter) = shared.first_run(first);
        state.stats.next_run = run::wake_at(due, jitter);
        shared.active.store(true, Ordering::SeqCst);
        log::info!(
            "periodic `{}` started: every {:?}{}",
            shared.name(),
            shared.period,
            if shared.fixed_rate {
                ", fixed rate"
            } else {
                ""
            }
        );
        drop(state);
        // Nobody joins the loop's task: `ended` tells when it is over, and a cancel ends it.
        shared
            .rt
            .spawn_detached(run_loop(Ended(shared.clone()), job, due, jitter));
    }

    /// Whether the loop is running and has not been asked to stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).start().unwrap();
    /// assert!(periodic.is_active());
    /// periodic.deactivate();
    /// assert!(!periodic.is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Asks the loop to end: a sleeping loop wakes at once, a running job finishes first. Python's
    /// `is_active = False`. Returns at once; [`stop`](Periodic::stop) also waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(86_400)).start().unwrap();
    /// periodic.deactivate();
    /// futures::executor::block_on(periodic.join()); // ends at once, not in a day
    /// ```
    pub fn deactivate(&self) {
        self.shared.active.store(false, Ordering::SeqCst);
        self.shared.loop_waker.wake();
    }

    /// Runs the job once now, then goes on with the schedule from this run: tokio's
    /// `Interval::reset_immediately`. With fixed rate, the next run is a period after the
    /// triggered one; with fixed delay, a period after it ends. A job that is running finishes
    /// first, and the triggered run follows at once.
    ///
    /// Does nothing if the loop never started, was deactivated, or has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let refresh = Periodic::builder(|| { /* reload the config */ }, Duration::from_secs(3600))
    ///     .start()
    ///     .unwrap();
    /// refresh.trigger(); // the config changed: reload now, and again an hour from now
    /// ```
    pub fn trigger(&self) {
        if !self.is_active() {
            return;
        }
        self.shared.triggered.store(true, Ordering::SeqCst);
        self.shared.loop_waker.wake();
    }

    /// Deactivates the loop and waits until it has ended. Does nothing if it never started.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(86_400)).start().unwrap();
    /// periodic.stop().await; // wakes the day-long sleep at once
    /// assert!(periodic.is_finished());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops waiting; the loop still ends.
    pub fn stop(&self) -> Stop<'_> {
        Stop {
            periodic: self,
            end: End::Unpolled,
        }
    }

    /// Waits until the loop has ended (after [`deactivate`](Periodic::deactivate) or
    /// [`stop`](Periodic::stop)); Python's `await periodic.future`. Returns at once if it never
    /// started.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).start().unwrap();
    /// periodic.deactivate();
    /// periodic.join().await;
    /// # });
    /// ```
    pub fn join(&self) -> Join<'_> {
        Join {
            periodic: self,
            end: End::Unpolled,
        }
    }

    /// Whether the loop has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).build().unwrap();
    /// assert!(!periodic.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.ended.load(Ordering::SeqCst)
    }

    /// What the loop has done so far: runs, failures, when the latest started and when the
    /// next is due.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    /// # use asynchronously::testing::TestRuntime;
    /// # let test = TestRuntime::new();
    /// # let (rt, clock) = (test.runtime(), test.clock().clone());
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(60)).runtime(&rt).start().unwrap();
    /// # test.block_on(async {
    /// rt.sleep(Duration::from_secs(90)).await;
    /// let stats = periodic.stats();
    /// assert_eq!(stats.runs, 1);
    /// assert_eq!(stats.next_run, Some(clock.origin() + Duration::from_secs(120)));
    /// periodic.stop().await;
    /// assert_eq!(periodic.stats().next_run, None);
    /// # });
    /// ```
    pub fn stats(&self) -> PeriodicStats {
        lock(&self.shared.state).stats
    }

    /// The name used in logs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// let periodic = Periodic::builder(|| {}, Duration::from_secs(1)).build().unwrap();
    /// assert_eq!(periodic.name(), "periodic");
    /// ```
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Lets the loop run on after this handle is dropped; it ends only with the process or its
    /// executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Periodic;
    ///
    /// Periodic::builder(|| {}, Duration::from_secs(60)).start().unwrap().detach();
    /// ```
    pub fn detach(mut self) {
        self.detached = true;
    }

    fn has_started(&self) -> bool {
        lock(&self.shared.state).unstarted.is_none()
    }
}

fn name_or_default(name: &Option<Box<str>>) -> &str {
    name.as_deref().unwrap_or("periodic")
}

impl Shared {
    fn name(&self) -> &str {
        name_or_default(&self.name)
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        if !self.detached {
            // Dropping the handle cancels the loop: it runs no job any more (`active`), and one
            // in progress is dropped (`cancelled`).
            self.shared.active.store(false, Ordering::SeqCst);
            self.shared.cancelled.store(true, Ordering::SeqCst);
            self.shared.loop_waker.wake();
        }
    }
}

impl fmt::Debug for Periodic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name())
            .field("is_active", &self.is_active())
            .field("is_finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// The future of [`Periodic::stop`]: deactivates the loop when first polled, then waits until
/// it has ended.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::{Periodic, Stop};
///
/// let periodic = Periodic::builder(|| {}, Duration::from_secs(60)).start().unwrap();
/// let stop: Stop<'_> = periodic.stop();
/// stop.await;
/// assert!(periodic.is_finished());
/// # });
/// ```
#[must_use = "a Stop does nothing unless awaited; deactivate() stops without waiting"]
pub struct Stop<'a> {
    periodic: &'a Periodic,
    end: End,
}

/// Where a [`Stop`] or [`Join`] is in waiting for the loop's end.
enum End {
    /// Not polled yet.
    Unpolled,
    /// Listening, once the loop was seen running.
    Waiting(Option<EventListener>),
    Over,
}

impl End {
    /// Waits for the loop's end. At the first poll, `begin` runs and tells whether the loop
    /// started (else there is nothing to wait for). `true` once the loop ended while waited for.
    fn poll(
        &mut self,
        periodic: &Periodic,
        begin: impl FnOnce() -> bool,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        if let End::Unpolled = self {
            *self = match begin() {
                true => End::Waiting(None),
                false => End::Over,
            };
        }
        let End::Waiting(listener) = self else {
            return Poll::Ready(false);
        };
        let shared = &periodic.shared;
        ready!(poll_until(&shared.end, listener, cx, || shared
            .ended
            .load(Ordering::SeqCst)));
        *self = End::Over;
        Poll::Ready(true)
    }
}

impl Future for Stop<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let periodic = self.periodic;
        let begin = || {
            let started = periodic.has_started();
            periodic.deactivate();
            started
        };
        if ready!(self.end.poll(periodic, begin, cx)) {
            log::info!("periodic `{}` stopped", periodic.name());
        }
        Poll::Ready(())
    }
}

impl fmt::Debug for Stop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stop")
            .field("periodic", &self.periodic.name())
            .finish_non_exhaustive()
    }
}

/// The future of [`Periodic::join`]: waits until the loop has ended; at once if it had not
/// started when first polled.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::{Join, Periodic};
///
/// let periodic = Periodic::builder(|| {}, Duration::from_secs(60)).start().unwrap();
/// periodic.deactivate();
/// let join: Join<'_> = periodic.join();
/// join.await;
/// # });
/// ```
#[must_use = "a Join does nothing unless awaited"]
pub struct Join<'a> {
    periodic: &'a Periodic,
    end: End,
}

impl Future for Join<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let periodic = self.periodic;
        ready!(self.end.poll(periodic, || periodic.has_started(), cx));
        Poll::Ready(())
    }
}

impl fmt::Debug for Join<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("periodic", &self.periodic.name())
            .finish_non_exhaustive()
    }
}
