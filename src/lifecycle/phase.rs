//! `Lifecycle` and `Phase`: the state a component embeds.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::event::Event;
use crate::rt::{BoxFuture, Runtime};
use crate::sync::{Mutex, lock};

use super::{LifecycleError, PhaseKind};

/// The lifecycle state a component embeds: an init [`Phase`] and a deinit [`Phase`], plus the
/// optional timeouts of each.
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::{Component, Lifecycle};
///
/// struct Database {
///     lifecycle: Lifecycle,
/// }
///
/// impl Component for Database {
///     fn lifecycle(&self) -> &Lifecycle {
///         &self.lifecycle
///     }
/// }
///
/// let db = Database { lifecycle: Lifecycle::new() };
/// assert!(!db.lifecycle().init_phase().scheduled().is_set());
/// ```
pub struct Lifecycle {
    init: Phase,
    deinit: Phase,
    init_timeout: Option<Duration>,
    deinit_timeout: Option<Duration>,
    runtime: Option<Runtime>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        let record = Arc::new(Mutex::new(Record::default()));
        Self {
            init: Phase::new(PhaseKind::Init, record.clone()),
            deinit: Phase::new(PhaseKind::Deinit, record),
            init_timeout: None,
            deinit_timeout: None,
            runtime: None,
        }
    }
}

impl Lifecycle {
    /// A lifecycle with no timeouts; both phases not scheduled.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Lifecycle;
    ///
    /// let lifecycle = Lifecycle::new();
    /// assert!(!lifecycle.deinit_phase().finished().is_set());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A lifecycle whose init and deinit each fail with
    /// [`LifecycleError::TimedOut`] when they take longer than the given time (`None`: no
    /// limit). The time counts from the moment the phase is scheduled: waiting for dependencies,
    /// children and the hook.
    ///
    /// The timeouts sleep on the [`runtime`](Lifecycle::runtime)'s timer, by default
    /// [`default_runtime()`](crate::rt::default_runtime)'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::lifecycle::{BoxError, Component, ComponentExt, Lifecycle, LifecycleError};
    /// # use asynchronously::testing::TestRuntime;
    /// # let test = TestRuntime::new(); // the 30 s pass in microseconds
    /// # let rt = test.runtime();
    ///
    /// struct Slow { lifecycle: Lifecycle }
    /// impl Component for Slow {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    ///     async fn on_init(&self) -> Result<(), BoxError> {
    ///         std::future::pending().await // a connection that never answers
    ///     }
    /// }
    ///
    /// let slow = Slow { lifecycle: Lifecycle::with_timeouts(Duration::from_secs(30), None) };
    /// # let slow = Slow { lifecycle: Lifecycle::with_timeouts(Duration::from_secs(30), None).runtime(&rt) };
    /// # test.block_on(async {
    /// let error = slow.init().await.unwrap_err();
    /// assert!(matches!(error, LifecycleError::TimedOut { .. }));
    /// # });
    /// # assert_eq!(test.clock().elapsed(), Duration::from_secs(30));
    /// ```
    pub fn with_timeouts(
        init: impl Into<Option<Duration>>,
        deinit: impl Into<Option<Duration>>,
    ) -> Self {
        Self {
            init_timeout: init.into(),
            deinit_timeout: deinit.into(),
            ..Self::default()
        }
    }

    /// Uses `rt`'s timer for the timeouts (a `ManualClock` in tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::lifecycle::Lifecycle;
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let lifecycle = Lifecycle::with_timeouts(Duration::from_secs(1), Duration::from_secs(1))
    ///     .runtime(&test.runtime());
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.runtime = Some(rt.clone());
        self
    }

    /// The init phase: its events, and what it waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Lifecycle;
    ///
    /// let lifecycle = Lifecycle::new();
    /// let finished = lifecycle.init_phase().finished().clone(); // wait on it elsewhere
    /// ```
    pub fn init_phase(&self) -> &Phase {
        &self.init
    }

    /// The deinit phase: its events, and what it waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Lifecycle;
    ///
    /// let lifecycle = Lifecycle::new();
    /// assert!(!lifecycle.deinit_phase().started().is_set());
    /// ```
    pub fn deinit_phase(&self) -> &Phase {
        &self.deinit
    }

    pub(crate) fn phase(&self, kind: PhaseKind) -> &Phase {
        match kind {
            PhaseKind::Init => &self.init,
            PhaseKind::Deinit => &self.deinit,
            PhaseKind::Run => unreachable!("`on_run` is not a phase of the lifecycle"),
        }
    }

    pub(crate) fn timeout(&self, kind: PhaseKind) -> Option<Duration> {
        match kind {
            PhaseKind::Init => self.init_timeout,
            PhaseKind::Deinit => self.deinit_timeout,
            PhaseKind::Run => None,
        }
    }

    pub(crate) fn timer_runtime(&self) -> Runtime {
        self.runtime
            .clone()
            .unwrap_or_else(crate::rt::default_runtime)
    }
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("init", &self.init)
            .field("deinit", &self.deinit)
            .field("init_timeout", &self.init_timeout)
            .field("deinit_timeout", &self.deinit_timeout)
            .finish_non_exhaustive()
    }
}

/// One phase of a component's life (init or deinit): three events that mark its progress, and
/// the things it waits for before its hook runs.
///
/// | event | set when |
/// | --- | --- |
/// | [`scheduled`](Phase::scheduled) | `init()` / `deinit()` was called (the work may not have started) |
/// | [`started`](Phase::started) | every [`wait_before`](Phase::wait_before) future and [`after`](Phase::after) phase completed |
/// | [`finished`](Phase::finished) | the phase is over: its children and its own hook finished with `Ok` |
///
/// A phase that fails (its hook errs or panics, a dependency fails, it times out, or its future
/// is dropped before it finishes) never sets `finished`; [`is_failed`](Phase::is_failed) tells
/// it, and every phase waiting on it with `after` fails too instead of hanging.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};
///
/// struct Cache { lifecycle: Lifecycle }
/// impl Component for Cache {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// let cache = Cache { lifecycle: Lifecycle::new() };
/// let phase = cache.lifecycle().init_phase();
/// let finished = phase.finished().wait();
/// cache.init().await.unwrap();
/// finished.await;
/// assert!(phase.scheduled().is_set() && phase.started().is_set() && !phase.is_failed());
/// # });
/// ```
pub struct Phase {
    inner: Arc<PhaseInner>,
}

/// What a phase shares with the phases that wait for it (through a `Weak`, with
/// [`Phase::after`]).
pub(crate) struct PhaseInner {
    kind: PhaseKind,
    scheduled: Event,
    started: Event,
    finished: Event,
    /// Set once the phase is over, finished or failed: what dependents wait on.
    over: Event,
    failed: AtomicBool,
    /// Whether the phase was scheduled: written only under the `record` lock (so that `after`
    /// and `wait_before` see it consistently there), read without it elsewhere.
    is_scheduled: AtomicBool,
    /// Whether its `afters` are not empty, readable without the lock (the cycle check reads it
    /// on every component).
    has_afters: AtomicBool,
    /// What its lifecycle records, shared with the other phase.
    record: Arc<Mutex<Record>>,
}

/// What the two phases of a lifecycle record, under one lock.
#[derive(Default)]
struct Record {
    /// The component's name, recorded when a phase is scheduled or a dependency declared, for
    /// the errors of other phases.
    name: Option<Cow<'static, str>>,
    init: Waits,
    deinit: Waits,
}

impl Record {
    fn waits(&mut self, kind: PhaseKind) -> &mut Waits {
        match kind {
            PhaseKind::Init => &mut self.init,
            PhaseKind::Deinit => &mut self.deinit,
            PhaseKind::Run => unreachable!("`on_run` is not a phase of the lifecycle"),
        }
    }

    fn name(&self) -> String {
        self.name.as_deref().unwrap_or("<unnamed>").to_owned()
    }
}

#[derive(Default)]
struct Waits {
    /// `wait_before` futures, taken when the phase is scheduled.
    futures: Vec<BoxFuture<()>>,
    /// `after` edges, kept for the cycle check.
    afters: Vec<Weak<PhaseInner>>,
    /// A service's stops of the component's `on_run` (deinit only), taken when the phase is
    /// scheduled and awaited after everything else it waits for.
    stops: Vec<BoxFuture<()>>,
}

impl PhaseInner {
    /// The component's name as recorded, for errors about it.
    pub(crate) fn name(&self) -> String {
        lock(&self.record).name()
    }

    /// The component's name as recorded, without a copy of a name that is `'static`.
    pub(crate) fn recorded_name(&self) -> Cow<'static, str> {
        lock(&self.record)
            .name
            .clone()
            .unwrap_or(Cow::Borrowed("<unnamed>"))
    }

    /// Calls `each` on every phase this one is `after`, as a `Weak` (a dropped one's too: it
    /// cannot be upgraded).
    pub(crate) fn each_after(&self, each: impl FnMut(&Weak<PhaseInner>)) {
        lock(&self.record)
            .waits(self.kind)
            .afters
            .iter()
            .for_each(each);
    }

    pub(crate) fn has_afters(&self) -> bool {
        self.has_afters.load(Ordering::Acquire)
    }

    pub(crate) fn is_over(&self) -> bool {
        self.over.is_set()
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.is_set()
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Waits until the phase is over; `true` if it finished, `false` if it failed.
    pub(crate) async fn outcome(&self) -> bool {
        if !self.is_over() {
            self.over.wait().await;
        }
        !self.is_failed()
    }
}

/// What scheduling a phase found.
pub(crate) enum Scheduled {
    /// Someone scheduled it before.
    Already,
    /// Scheduled now, with nothing to wait for.
    Free,
    /// Scheduled now; it waits for these first.
    Waits(Dependencies),
}

/// What a phase waits for before it starts, handed over when it is scheduled.
#[derive(Default)]
pub(crate) struct Dependencies {
    /// The futures given to `wait_before`.
    pub(crate) futures: Vec<BoxFuture<()>>,
    /// The phases it is `after` that are not over yet (or failed).
    pub(crate) afters: Vec<Arc<PhaseInner>>,
    /// `after` targets dropped before this phase was scheduled.
    pub(crate) dropped_afters: usize,
    /// A service's stops of `on_run`, awaited last.
    pub(crate) stops: Vec<BoxFuture<()>>,
}

impl Dependencies {
    /// Nothing to wait for before the phase starts.
    pub(crate) fn is_empty(&self) -> bool {
        self.futures.is_empty()
            && self.afters.is_empty()
            && self.dropped_afters == 0
            && self.stops.is_empty()
    }
}

impl Phase {
    /// Set once `init()` / `deinit()` was called on the component.
    ///
    /// # Examples
    ///
    /// ```
    /// let lifecycle = asynchronously::lifecycle::Lifecycle::new();
    /// assert!(!lifecycle.init_phase().scheduled().is_set());
    /// ```
    pub fn scheduled(&self) -> &Event {
        &self.inner.scheduled
    }

    /// Set once every `wait_before` future and `after` phase has completed, just before the
    /// children and the hook run.
    ///
    /// # Examples
    ///
    /// ```
    /// let lifecycle = asynchronously::lifecycle::Lifecycle::new();
    /// assert!(!lifecycle.init_phase().started().is_set());
    /// ```
    pub fn started(&self) -> &Event {
        &self.inner.started
    }

    /// Set once the phase is over: for init, the children finished init and `on_init` returned
    /// `Ok`; for deinit, `on_deinit` returned `Ok` (or had nothing to undo) and the children
    /// finished deinit.
    ///
    /// # Examples
    ///
    /// ```
    /// let lifecycle = asynchronously::lifecycle::Lifecycle::new();
    /// let done = lifecycle.init_phase().finished().wait(); // a 'static future to hand out
    /// ```
    pub fn finished(&self) -> &Event {
        &self.inner.finished
    }

    /// Whether the phase failed: its hook erred or panicked, a dependency failed, it timed out,
    /// or it was cancelled before it finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let lifecycle = asynchronously::lifecycle::Lifecycle::new();
    /// assert!(!lifecycle.init_phase().is_failed());
    /// ```
    pub fn is_failed(&self) -> bool {
        self.inner.is_failed()
    }

    /// Makes the phase wait for `future` before its hook runs: Python's
    /// `wait_before_async_init_for`. Any future will do; to wait for another component, prefer
    /// [`after`](Phase::after), which the cycle check can see and which fails instead of hanging
    /// when the other component fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::{Event, lifecycle::Lifecycle};
    ///
    /// let migrations_done = Event::new();
    /// let lifecycle = Lifecycle::new();
    /// lifecycle.init_phase().wait_before(migrations_done.wait()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`LifecycleError::AlreadyScheduled`] once the phase was scheduled (Python raises
    /// `RuntimeError`).
    pub fn wait_before(
        &self,
        future: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LifecycleError> {
        self.add_wait(|waits| &mut waits.futures, Box::pin(future))
    }

    /// Makes the phase run `stop` last before it starts, after its `after` phases and
    /// `wait_before` futures: how a service drops a component's `on_run` as its deinit starts.
    pub(crate) fn stop_before(
        &self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LifecycleError> {
        self.add_wait(|waits| &mut waits.stops, Box::pin(stop))
    }

    /// Adds `future` to the list `list` picks, unless the phase was scheduled.
    fn add_wait(
        &self,
        list: fn(&mut Waits) -> &mut Vec<BoxFuture<()>>,
        future: BoxFuture<()>,
    ) -> Result<(), LifecycleError> {
        let mut record = lock(&self.inner.record);
        if self.is_scheduled() {
            return Err(self.already_scheduled(&record));
        }
        list(record.waits(self.kind())).push(future);
        Ok(())
    }

    /// Makes this phase wait until `other` has finished.
    ///
    /// Recorded as an edge, so that a cycle is reported by `init()` / `deinit()` as
    /// [`LifecycleError::Cycle`] before any hook runs. If `other` fails, an init phase fails with
    /// [`LifecycleError::DependencyFailed`] instead of hanging; a deinit phase goes on (teardown
    /// is best effort: one failed close does not leave the rest open).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::Lifecycle;
    ///
    /// let (database, server) = (Lifecycle::new(), Lifecycle::new());
    /// // The server starts after the database, and stops before it.
    /// server.init_phase().after(database.init_phase()).unwrap();
    /// database.deinit_phase().after(server.deinit_phase()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`LifecycleError::AlreadyScheduled`] once this phase was scheduled.
    pub fn after(&self, other: &Phase) -> Result<(), LifecycleError> {
        let mut record = lock(&self.inner.record);
        if self.is_scheduled() {
            return Err(self.already_scheduled(&record));
        }
        record
            .waits(self.kind())
            .afters
            .push(Arc::downgrade(&other.inner));
        self.inner.has_afters.store(true, Ordering::Release);
        Ok(())
    }

    fn new(kind: PhaseKind, record: Arc<Mutex<Record>>) -> Self {
        Self {
            inner: Arc::new(PhaseInner {
                kind,
                scheduled: Event::new(),
                started: Event::new(),
                finished: Event::new(),
                over: Event::new(),
                failed: AtomicBool::new(false),
                is_scheduled: AtomicBool::new(false),
                has_afters: AtomicBool::new(false),
                record,
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<PhaseInner> {
        &self.inner
    }

    pub(crate) fn kind(&self) -> PhaseKind {
        self.inner.kind
    }

    pub(crate) fn is_scheduled(&self) -> bool {
        self.inner.is_scheduled.load(Ordering::Acquire)
    }

    /// Records the component's name, unless one is recorded already.
    pub(crate) fn record_name(&self, name: impl FnOnce() -> Cow<'static, str>) {
        lock(&self.inner.record).name.get_or_insert_with(name);
    }

    /// Schedules the phase and hands over what it waits for, unless it was scheduled already.
    pub(crate) fn schedule(&self, name: impl FnOnce() -> Cow<'static, str>) -> Scheduled {
        let scheduled = {
            let mut record = lock(&self.inner.record);
            record.name.get_or_insert_with(name);
            if self.is_scheduled() {
                return Scheduled::Already;
            }
            let waits = record.waits(self.kind());
            self.inner.is_scheduled.store(true, Ordering::Release);
            if waits.futures.is_empty() && waits.afters.is_empty() && waits.stops.is_empty() {
                // Most phases wait for nothing.
                drop(record);
                self.inner.scheduled.set();
                return Scheduled::Free;
            }
            let mut dependencies = Dependencies {
                futures: std::mem::take(&mut waits.futures),
                stops: std::mem::take(&mut waits.stops),
                ..Dependencies::default()
            };
            for after in &waits.afters {
                match after.upgrade() {
                    None => dependencies.dropped_afters += 1,
                    // Finished already (as in a chain run in order): nothing to wait for.
                    Some(after) if after.is_over() && !after.is_failed() => {}
                    Some(after) => dependencies.afters.push(after),
                }
            }
            match dependencies.is_empty() {
                true => Scheduled::Free,
                false => Scheduled::Waits(dependencies),
            }
        };
        self.inner.scheduled.set();
        scheduled
    }

    pub(crate) fn start(&self) {
        self.inner.started.set();
    }

    pub(crate) fn finish(&self) {
        self.inner.finished.set();
        self.inner.over.set();
    }

    pub(crate) fn fail(&self) {
        self.inner.failed.store(true, Ordering::Release);
        self.inner.over.set();
    }

    pub(crate) fn is_over(&self) -> bool {
        self.inner.is_over()
    }

    /// The error of a dependency added too late; `record` is the phase's, locked.
    fn already_scheduled(&self, record: &Record) -> LifecycleError {
        LifecycleError::AlreadyScheduled {
            component: record.name(),
            phase: self.inner.kind,
        }
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Phase")
            .field("scheduled", &self.inner.scheduled.is_set())
            .field("started", &self.inner.started.is_set())
            .field("finished", &self.inner.finished.is_set())
            .field("failed", &self.inner.is_failed())
            .finish()
    }
}
