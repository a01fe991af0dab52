//! `Service`: a component tree run as a service (up, `on_run` parts, shutdown, report), and
//! `run_until` on it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use super::graph::ByAddress;
use super::run::{Moment, Observer, Teardown, run_observed};
use super::{BoxError, Component, DynComponent, Lifecycle, LifecycleError, PhaseKind};
use crate::event::{Event, EventWait};
use crate::rt::{PanicPayload, Runtime, default_runtime};

/// A component tree run as a service: up in dependency order, each component's
/// [`on_run`](Component::on_run) part while it is up, down in reverse once a shutdown trigger
/// (or a signal, or a failure) says so, within one deadline, and a [`ShutdownReport`] of what
/// happened.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::Event;
/// use asynchronously::lifecycle::{Component, Lifecycle, Service, ShutdownCause};
///
/// #[derive(Default)]
/// struct App { lifecycle: Lifecycle }
/// impl Component for App {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// let app = App::default();
/// let stop = Event::new();
/// stop.set(); // an admin endpoint, a test, ...
/// let report = Service::new(&app)
///     .shutdown_on(stop.wait())
///     .shutdown_timeout(std::time::Duration::from_secs(10))
///     .run()
///     .await?;
/// assert_eq!(report.cause, ShutdownCause::Trigger(0));
/// assert_eq!(report.exit_code(), 0);
/// # Ok::<(), asynchronously::lifecycle::LifecycleError>(()) }).unwrap();
/// ```
///
/// With the feature `signal`, `catch_signals()` makes SIGINT and SIGTERM (Ctrl-C on Windows)
/// triggers too; a service's `main` is then:
///
/// ```no_run
/// # #[cfg(feature = "signal")]
/// # fn main() -> std::process::ExitCode {
/// # use asynchronously::lifecycle::{Component, Lifecycle, Service};
/// # #[derive(Default)] struct App { lifecycle: Lifecycle }
/// # impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
/// let app = App::default();
/// let report = futures::executor::block_on(
///     Service::new(&app)
///         .catch_signals()
///         .shutdown_timeout(std::time::Duration::from_secs(10))
///         .run_to_report(),
/// );
/// eprintln!("{report}");
/// report.exit_code().into()
/// # }
/// # #[cfg(not(feature = "signal"))] fn main() {}
/// ```
#[must_use = "a Service does nothing until `run` is awaited"]
pub struct Service<'a, C> {
    root: &'a C,
    triggers: Vec<BoxFuture<'a, ()>>,
    /// How many times `catch_signals` was called (more than once is an error at `run`).
    catch_signals: u32,
    timeout: Option<Duration>,
    rt: Option<Runtime>,
}

impl<C> fmt::Debug for Service<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("triggers", &self.triggers.len())
            .field("catch_signals", &(self.catch_signals > 0))
            .field("shutdown_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<'a, C: Component> Service<'a, C> {
    /// A service of `root` and its tree, with no trigger (it runs until a component fails), no
    /// deadline, on [`default_runtime()`]'s timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::{Component, Lifecycle, Service};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let app = App::default();
    /// let service = Service::new(&app);
    /// ```
    pub fn new(root: &'a C) -> Self {
        Self {
            root,
            triggers: Vec::new(),
            catch_signals: 0,
            timeout: None,
            rt: None,
        }
    }

    /// Shuts the service down once `trigger` completes; with several, the first to complete.
    /// The report's cause names it by its place among them ([`ShutdownCause::Trigger`], from
    /// 0). A trigger that completes during init cancels the init, and what came up goes down.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::Event;
    /// use asynchronously::lifecycle::{Component, Lifecycle, Service, ShutdownCause};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let (app, admin, done) = (App::default(), Event::new(), Event::new());
    /// done.set();
    /// let report = Service::new(&app)
    ///     .shutdown_on(admin.wait())
    ///     .shutdown_on(done.wait())
    ///     .run()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(report.cause, ShutdownCause::Trigger(1));
    /// # });
    /// ```
    pub fn shutdown_on(mut self, trigger: impl Future<Output = ()> + Send + 'a) -> Self {
        self.triggers.push(Box::pin(trigger));
        self
    }

    /// Shuts the service down on SIGINT or SIGTERM (Ctrl-C on Windows, where there is no
    /// SIGTERM), through [`async-signal`](https://docs.rs/async-signal), which works on any
    /// runtime. A signal during the shutdown (the second, when a signal started it) ends `run`
    /// at once with [`LifecycleError::ForcedShutdown`], exit code 130.
    ///
    /// The signals are caught from the start of `run` to its end. As with tokio's signals,
    /// the default action is not restored after that: the process then ignores SIGINT and
    /// SIGTERM (a service's `main` returns once `run` has).
    ///
    /// # Errors
    ///
    /// `run` gives [`LifecycleError::CatchSignals`], before anything starts, if this is called
    /// twice, if another service of the process is running with `catch_signals`, or if the OS
    /// refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{Component, Lifecycle, LifecycleError, Service};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let app = App::default();
    /// let twice = Service::new(&app).catch_signals().catch_signals().run().await;
    /// assert!(matches!(twice, Err(LifecycleError::CatchSignals { .. })));
    /// assert!(!app.lifecycle().init_phase().scheduled().is_set()); // nothing started
    /// # });
    /// ```
    #[cfg(feature = "signal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
    pub fn catch_signals(mut self) -> Self {
        self.catch_signals += 1;
        self
    }

    /// One deadline for the whole shutdown, counted from its start. Past it, `run` returns
    /// [`LifecycleError::ShutdownTimedOut`] naming every component whose `on_deinit` was still
    /// running; each unfinished hook's future is dropped (its destructors run; nothing is left
    /// half-awaited), and its phase marked failed. `Duration::ZERO` abandons every hook that
    /// does not finish at its first poll.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::lifecycle::{BoxError, Component, Lifecycle, LifecycleError, Service};
    ///
    /// #[derive(Default)]
    /// struct Stuck { lifecycle: Lifecycle }
    /// impl Component for Stuck {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    ///     async fn on_deinit(&self) -> Result<(), BoxError> {
    ///         std::future::pending().await
    ///     }
    /// }
    ///
    /// let stuck = Stuck::default();
    /// let error = Service::new(&stuck)
    ///     .shutdown_on(async {})
    ///     .shutdown_timeout(Duration::ZERO)
    ///     .run()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(&error, LifecycleError::ShutdownTimedOut { stuck } if stuck == &["Stuck"]));
    /// # });
    /// ```
    pub fn shutdown_timeout(mut self, deadline: Duration) -> Self {
        self.timeout = Some(deadline);
        self
    }

    /// Times the shutdown (its deadline, the report's durations) on `rt`'s timer: a
    /// `ManualClock` in tests.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::{Component, Lifecycle, Service};
    /// use asynchronously::rt::{ManualClock, Runtime};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let rt = Runtime::with_timer(|task| drop(task), ManualClock::new());
    /// let app = App::default();
    /// let service = Service::new(&app).runtime(&rt);
    /// ```
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.rt = Some(rt.clone());
        self
    }

    /// Runs the service: init; the `on_run` parts, each once its component is up; on the first
    /// trigger, signal or failure, the shutdown (what is up goes down in reverse); then the
    /// report.
    ///
    /// - If init fails, what finished init goes down, and the init error is returned.
    /// - If a trigger completes during init, the init is cancelled and what finished init
    ///   goes down.
    /// - An `on_run` that fails (or panics) starts the shutdown; its error is returned after it.
    /// - Otherwise the first deinit error is returned; the rest of the tree still goes down.
    ///
    /// A root whose init was called and finished is run as it is (its init is not called
    /// again); see the errors for the rest.
    ///
    /// # Errors
    ///
    /// The first error: of init, of an `on_run`, or of deinit; or
    /// [`ShutdownTimedOut`](LifecycleError::ShutdownTimedOut),
    /// [`ForcedShutdown`](LifecycleError::ForcedShutdown), or, before anything started,
    /// [`AlreadyCalled`](LifecycleError::AlreadyCalled) (the root's init was called and did not
    /// finish, or its deinit was called) and [`CatchSignals`](LifecycleError::CatchSignals).
    /// [`run_to_report`](Service::run_to_report) gives the report in every case.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{BoxError, Component, Lifecycle, Service};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    ///     async fn on_deinit(&self) -> Result<(), BoxError> { Ok(()) }
    /// }
    ///
    /// let app = App::default();
    /// let report = Service::new(&app).shutdown_on(async {}).run().await.unwrap();
    /// assert_eq!(report.phases.len(), 1);
    /// assert_eq!(report.phases[0].component, "App");
    /// # });
    /// ```
    pub async fn run(self) -> Result<ShutdownReport, LifecycleError> {
        self.run_to_report().await.into_result()
    }

    /// [`run`](Service::run), with the report in every case: its
    /// [`error`](ShutdownReport::error) is what `run` would return as `Err`. For a service's
    /// `main`, which prints the report and exits with its [`exit_code`](ShutdownReport::exit_code).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{BoxError, Component, Lifecycle, Service, ShutdownCause};
    ///
    /// #[derive(Default)]
    /// struct Broken { lifecycle: Lifecycle }
    /// impl Component for Broken {
    ///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
    ///     async fn on_init(&self) -> Result<(), BoxError> { Err("no disk".into()) }
    /// }
    ///
    /// let broken = Broken::default();
    /// let report = Service::new(&broken).run_to_report().await;
    /// assert_eq!(report.cause, ShutdownCause::Failed("Broken".into()));
    /// assert_eq!(report.exit_code(), 1);
    /// assert!(report.error.is_some());
    /// # });
    /// ```
    pub async fn run_to_report(self) -> ShutdownReport {
        self.run_with(std::future::pending()).await
    }

    /// The run, with one more trigger, which need not be `Send` (`run_until`'s).
    async fn run_with(self, extra: impl Future<Output = ()>) -> ShutdownReport {
        let Service {
            root,
            triggers,
            catch_signals,
            timeout,
            rt,
        } = self;
        let root: &'a dyn DynComponent = root;
        let name = root.dyn_name();
        let refused = |error| ShutdownReport {
            cause: ShutdownCause::NotStarted,
            phases: Vec::new(),
            error: Some(error),
        };
        let (init_phase, deinit_phase) = (
            root.dyn_lifecycle().init_phase(),
            root.dyn_lifecycle().deinit_phase(),
        );
        let called = |phase| LifecycleError::AlreadyCalled {
            component: name.clone().into_owned(),
            phase,
        };
        if deinit_phase.is_scheduled() {
            return refused(called(PhaseKind::Deinit));
        }
        let up_already = init_phase.is_scheduled();
        if up_already && !init_phase.finished().is_set() {
            return refused(called(PhaseKind::Init));
        }
        let mut signals = match os::Signals::open(catch_signals) {
            Ok(signals) => signals,
            Err(source) => return refused(LifecycleError::CatchSignals { source }),
        };
        let mut triggers: FuturesUnordered<_> = triggers
            .into_iter()
            .enumerate()
            .map(|(index, trigger)| trigger.map(move |()| index))
            .collect();
        let extra_index = triggers.len();
        let mut extra = pin!(extra.fuse());

        let rt = rt.unwrap_or_else(default_runtime);
        let observer = Observer::new(rt.clone());
        let mut parts = Parts::default();
        if up_already {
            log::info!("{name}: init was called and finished; running it as it is");
            parts.start_initialized(root);
        }

        // Up, until the first trigger, signal or failure.
        let mut first_error = None;
        let (cause, init_finished) = {
            let mut init = pin!(
                async {
                    if up_already {
                        return Ok(());
                    }
                    run_observed(root, PhaseKind::Init, Teardown::All, Some(&observer)).await
                }
                .fuse()
            );
            let mut finished = up_already;
            let cause = poll_fn(|cx| {
                if !finished {
                    if let Poll::Ready(result) = init.as_mut().poll(cx) {
                        match result {
                            Ok(()) => {
                                finished = true;
                                log::info!("{name}: up, running until shutdown");
                            }
                            Err(error) => {
                                log::error!("{name}: init failed, rolling back: {error}");
                                let cause = ShutdownCause::Failed(error.component().to_owned());
                                first_error = Some(error);
                                return Poll::Ready(cause);
                            }
                        }
                    }
                }
                parts.take(&observer);
                if let Poll::Ready(error) = parts.poll_failure(cx) {
                    let cause = ShutdownCause::Failed(error.component().to_owned());
                    log::error!("{name}: {error}, shutting down");
                    first_error = Some(error);
                    return Poll::Ready(cause);
                }
                if let Poll::Ready(Some(index)) = triggers.poll_next_unpin(cx) {
                    return Poll::Ready(ShutdownCause::Trigger(index));
                }
                if let Poll::Ready(()) = extra.as_mut().poll(cx) {
                    return Poll::Ready(ShutdownCause::Trigger(extra_index));
                }
                if let Poll::Ready(signal) = signals.poll_signal(cx) {
                    return Poll::Ready(ShutdownCause::Signal(signal));
                }
                Poll::Pending
            })
            .await;
            (cause, finished)
        };
        drop((triggers, extra));
        let teardown = match init_finished {
            true => {
                log::info!("{name}: shutting down ({cause})");
                Teardown::All
            }
            false => {
                if first_error.is_none() {
                    log::info!("{name}: shutdown during init ({cause}), rolling back");
                }
                Teardown::OnlyInitialized
            }
        };

        // Down, within the deadline, unless a signal forces it.
        let end = {
            let span = crate::trace::shutdown(&name, &cause);
            let mut deinit = pin!(crate::trace::within(
                &span,
                run_observed(root, PhaseKind::Deinit, teardown, Some(&observer))
            ));
            let mut deadline = timeout.map(|timeout| Box::pin(rt.sleep(timeout)));
            poll_fn(|cx| {
                // A deinit that stops a part goes on once the part is dropped: at once, so that
                // nothing but the hooks themselves takes time (a zero deadline included).
                loop {
                    if let Poll::Ready(result) = deinit.as_mut().poll(cx) {
                        return Poll::Ready(End::Down(result));
                    }
                    // The parts still up run on (and may fail) until their deinit drops them.
                    match parts.poll_ended(cx) {
                        (0, _) => break,
                        (_, errors) => {
                            for error in errors {
                                log::error!("{name}: {error}, during the shutdown");
                                first_error.get_or_insert(error);
                            }
                        }
                    }
                }
                if let Poll::Ready(signal) = signals.poll_signal(cx) {
                    return Poll::Ready(End::Forced(signal));
                }
                match deadline.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(End::TimedOut),
                    _ => Poll::Pending,
                }
            })
            .await
        };
        // The deinit's futures are dropped (its unfinished phases failed) before the stuck are
        // named, and the parts after it.
        drop(parts);
        let seen = std::mem::take(&mut observer.seen().marks);
        let (phases, stuck) = times(seen);
        let error = match end {
            End::Down(Ok(())) => None,
            End::Down(Err(error)) => {
                if first_error.is_some() {
                    log::error!("{name}: deinit failed too: {error}");
                }
                Some(error)
            }
            End::TimedOut => Some(LifecycleError::ShutdownTimedOut { stuck }),
            End::Forced(signal) => {
                log::warn!("{name}: {signal} during the shutdown, forcing it");
                Some(LifecycleError::ForcedShutdown { stuck })
            }
        };
        let error = match (first_error, error) {
            // A forced or timed-out shutdown says so, whatever started it.
            (
                Some(first),
                Some(
                    last @ (LifecycleError::ForcedShutdown { .. }
                    | LifecycleError::ShutdownTimedOut { .. }),
                ),
            ) => {
                log::error!("{name}: the shutdown followed: {first}");
                Some(last)
            }
            (Some(first), _) => Some(first),
            (None, last) => last,
        };
        match &error {
            None => log::info!("{name}: down"),
            Some(error) => log::error!("{name}: down with an error: {error}"),
        }
        ShutdownReport {
            cause,
            phases,
            error,
        }
    }
}

/// How the shutdown ended.
enum End {
    Down(Result<(), LifecycleError>),
    TimedOut,
    Forced(Signal),
}

/// Each component's deinit time, in the order their deinits started (by the clock), and the
/// components whose hook was still running (in the same order).
fn times(marks: Vec<super::run::Mark<'_>>) -> (Vec<PhaseTime>, Vec<String>) {
    let name = |component: &dyn DynComponent| {
        component
            .dyn_lifecycle()
            .deinit_phase()
            .inner()
            .recorded_name()
    };
    let mut phases: Vec<PhaseTime> = Vec::with_capacity(marks.len());
    let mut starts: Vec<Option<Instant>> = Vec::with_capacity(marks.len());
    let mut running = Vec::new();
    // The phases that took more than one mark, by their lifecycle's address.
    let mut open: HashMap<*const Lifecycle, usize, ByAddress> = HashMap::default();
    for mark in marks {
        let component = mark.component;
        if let Moment::Whole {
            name,
            started,
            took,
            failed,
        } = mark.moment
        {
            phases.push(PhaseTime {
                component: name,
                took: Some(took),
                failed,
            });
            starts.push(Some(started));
            continue;
        }
        let key: *const Lifecycle = component.dyn_lifecycle();
        let at = *open.entry(key).or_insert_with(|| {
            phases.push(PhaseTime {
                component: name(component),
                took: None,
                // Until it is over: a phase that did not finish was failed as its run was
                // dropped.
                failed: true,
            });
            starts.push(None);
            phases.len() - 1
        });
        match mark.moment {
            Moment::Started(started) => starts[at] = Some(started),
            Moment::HookPending => running.push(at),
            Moment::HookDone => running.retain(|&index| index != at),
            Moment::Over { at: ended, failed } => {
                running.retain(|&index| index != at);
                phases[at].failed = failed;
                phases[at].took = starts[at].map(|start| ended.saturating_duration_since(start));
            }
            Moment::Whole { .. } => unreachable!("handled above"),
        }
    }
    // The stuck in the order they started (ties: in the order they were seen).
    running.sort_by_key(|&index| (starts[index], index));
    let stuck = running
        .iter()
        .map(|&index| phases[index].component.clone().into_owned())
        .collect();
    // Runs hand their marks over as they end: a component with a timeout of its own (a run of
    // its own) before its parent. A stable sort keeps the order of those that started together.
    if !starts.is_sorted() {
        let mut keyed: Vec<_> = starts.into_iter().zip(phases).collect();
        keyed.sort_by_key(|(start, _)| *start);
        phases = keyed.into_iter().map(|(_, phase)| phase).collect();
    }
    (phases, stuck)
}

/// The `on_run` parts that are up.
#[derive(Default)]
struct Parts<'a> {
    running: FuturesUnordered<Part<'a>>,
}

impl<'a> Parts<'a> {
    /// Starts the parts of the components whose init finished since the last call.
    fn take(&mut self, observer: &Observer<'a>) {
        let up = std::mem::take(&mut observer.seen().up);
        for component in up {
            self.start(component);
        }
    }

    /// Starts the parts of a tree initialised before the service ran: each component whose init
    /// finished, once (a child shared by two parents is one component).
    fn start_initialized(&mut self, root: &'a dyn DynComponent) {
        let mut seen: std::collections::HashSet<*const Lifecycle, ByAddress> = Default::default();
        let mut stack = vec![root];
        while let Some(component) = stack.pop() {
            let lifecycle: *const Lifecycle = component.dyn_lifecycle();
            if !seen.insert(lifecycle) {
                continue;
            }
            if component.dyn_has_on_run()
                && component.dyn_lifecycle().init_phase().finished().is_set()
            {
                self.start(component);
            }
            stack.extend(component.dyn_children().into_items());
        }
    }

    /// Starts `component`'s part, and makes its deinit drop it first; unless its deinit was
    /// already scheduled (by hand): then it is not started.
    fn start(&mut self, component: &'a dyn DynComponent) {
        let (stop, dropped) = (Event::new(), Event::new());
        let stopper = {
            let (stop, dropped) = (stop.clone(), dropped.wait());
            async move {
                stop.set();
                dropped.await;
            }
        };
        let deinit = component.dyn_lifecycle().deinit_phase();
        if deinit.stop_before(stopper).is_err() {
            return;
        }
        log::debug!("{}: run started", component.dyn_name());
        self.running.push(Part {
            component,
            run: Some(component.dyn_on_run()),
            stop: stop.wait(),
            dropped,
        });
    }

    /// How many parts ended (stopped, returned or failed), and the errors of those that failed.
    fn poll_ended(&mut self, cx: &mut Context<'_>) -> (usize, Vec<LifecycleError>) {
        let (mut ended, mut errors) = (0, Vec::new());
        while let Poll::Ready(Some(error)) = self.running.poll_next_unpin(cx) {
            ended += 1;
            errors.extend(error);
        }
        (ended, errors)
    }

    /// The first part to fail, if one did; parts that ended are gone.
    fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<LifecycleError> {
        loop {
            match self.running.poll_next_unpin(cx) {
                Poll::Ready(Some(Some(error))) => return Poll::Ready(error),
                Poll::Ready(Some(None)) => {}
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A component's `on_run`, until it ends or its deinit stops it.
struct Part<'a> {
    component: &'a dyn DynComponent,
    run: Option<BoxFuture<'a, Result<(), BoxError>>>,
    /// Set by the component's deinit, which then waits for `dropped`.
    stop: EventWait,
    /// Set once `run` is dropped.
    dropped: Event,
}

impl Part<'_> {
    fn end(&mut self) {
        self.run = None;
        self.dropped.set();
    }
}

impl Drop for Part<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

impl Future for Part<'_> {
    /// Its error, if it failed.
    type Output = Option<LifecycleError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let name = this.component.dyn_name();
        if Pin::new(&mut this.stop).poll(cx).is_ready() {
            this.end();
            log::debug!("{name}: run stopped, as its deinit starts");
            return Poll::Ready(None);
        }
        let Some(run) = &mut this.run else {
            return Poll::Ready(None);
        };
        let result = match catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(panic) => Err(Box::new(PanicPayload::new(panic)) as BoxError),
        };
        this.end();
        match result {
            Ok(()) => {
                log::debug!("{name}: run ended");
                Poll::Ready(None)
            }
            Err(source) => Poll::Ready(Some(LifecycleError::Failed {
                component: name.into_owned(),
                phase: PhaseKind::Run,
                source,
            })),
        }
    }
}

/// What a [`Service`]'s run gives: why it shut down, how long each component's deinit took,
/// and its error, if any. Its [`Display`](fmt::Display) is a few lines for a service to print.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::lifecycle::{Component, Lifecycle, Service};
///
/// #[derive(Default)]
/// struct App { lifecycle: Lifecycle }
/// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
///
/// let app = App::default();
/// let report = Service::new(&app).shutdown_on(async {}).run_to_report().await;
/// assert!(report.to_string().starts_with("shutdown trigger 0: clean, exit code 0"));
/// # });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// What started the shutdown.
    pub cause: ShutdownCause,
    /// Each component whose deinit started, in that order, with how long it took; except those
    /// with no `on_deinit` and no children that went down at once (they do nothing of their
    /// own in their deinit, and a tree can have thousands).
    pub phases: Vec<PhaseTime>,
    /// What [`Service::run`] returns as `Err`; `None` for a clean run.
    pub error: Option<LifecycleError>,
}

impl ShutdownReport {
    /// What a service's `main` exits with: 0 for a clean run, 130 for a shutdown forced by a
    /// second signal (as a shell reports a process ended by SIGINT), 1 for any other error.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{Component, Lifecycle, Service};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let app = App::default();
    /// let report = Service::new(&app).shutdown_on(async {}).run_to_report().await;
    /// let code: std::process::ExitCode = report.exit_code().into();
    /// assert_eq!(report.exit_code(), 0);
    /// # });
    /// ```
    pub fn exit_code(&self) -> u8 {
        match &self.error {
            None => 0,
            Some(LifecycleError::ForcedShutdown { .. }) => 130,
            Some(_) => 1,
        }
    }

    /// `Ok(self)` for a clean run, else `Err` of its error: what [`Service::run`] returns.
    ///
    /// # Errors
    ///
    /// The report's error, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::lifecycle::{Component, Lifecycle, Service};
    ///
    /// #[derive(Default)]
    /// struct App { lifecycle: Lifecycle }
    /// impl Component for App { fn lifecycle(&self) -> &Lifecycle { &self.lifecycle } }
    ///
    /// let app = App::default();
    /// let report = Service::new(&app).shutdown_on(async {}).run_to_report().await;
    /// assert!(report.into_result().is_ok());
    /// # });
    /// ```
    pub fn into_result(mut self) -> Result<Self, LifecycleError> {
        match self.error.take() {
            None => Ok(self),
            Some(error) => Err(error),
        }
    }
}

/// `SIGTERM: clean, exit code 0`, then a line per component: `  store: deinit took 2ms`.
impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.cause)?;
        match &self.error {
            None => f.write_str("clean")?,
            Some(error) => {
                write!(f, "{error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
            }
        }
        write!(f, ", exit code {}", self.exit_code())?;
        for phase in &self.phases {
            write!(f, "\n  {}: ", phase.component)?;
            match (phase.took, phase.failed) {
                (Some(took), false) => write!(f, "deinit took {took:?}")?,
                (Some(took), true) => write!(f, "deinit failed after {took:?}")?,
                (None, _) => f.write_str("deinit abandoned")?,
            }
        }
        Ok(())
    }
}

/// How long one component's deinit took: from its start (its dependents were down) to its end
/// (its hook returned and its children were down).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::lifecycle::{BoxError, Component, Lifecycle, Service};
/// use asynchronously::testing::TestRuntime;
///
/// struct Pool { lifecycle: Lifecycle, rt: asynchronously::rt::Runtime }
/// impl Component for Pool {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
///     async fn on_deinit(&self) -> Result<(), BoxError> {
///         self.rt.sleep(Duration::from_millis(250)).await; // drain the connections
///         Ok(())
///     }
/// }
///
/// let test = TestRuntime::new();
/// let pool = Pool { lifecycle: Lifecycle::new(), rt: test.runtime() };
/// let report = test.block_on(Service::new(&pool).shutdown_on(async {}).runtime(&test.runtime()).run()).unwrap();
/// let time = &report.phases[0];
/// assert_eq!((&*time.component, time.took, time.failed), ("Pool", Some(Duration::from_millis(250)), false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseTime {
    /// The component's name.
    pub component: Cow<'static, str>,
    /// `None` if it did not finish: the shutdown was abandoned first.
    pub took: Option<Duration>,
    /// Whether it failed (or was abandoned).
    pub failed: bool,
}

/// What started a [`Service`]'s shutdown.
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::{ShutdownCause, Signal};
///
/// assert_eq!(ShutdownCause::Signal(Signal::Terminate).to_string(), "SIGTERM");
/// assert_eq!(ShutdownCause::Trigger(0).to_string(), "shutdown trigger 0");
/// assert_eq!(ShutdownCause::Failed("store".into()).to_string(), "component `store` failed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// A [`shutdown_on`](Service::shutdown_on) future completed: the first given is 0
    /// (`run_until`'s shutdown is 0).
    Trigger(usize),
    /// A signal came ([`catch_signals`](Service::catch_signals)).
    Signal(Signal),
    /// The component of this name failed, in its init or its `on_run`; the report's error
    /// says how.
    Failed(String),
    /// The service did not start; the report's error says why.
    NotStarted,
}

impl fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trigger(index) => write!(f, "shutdown trigger {index}"),
            Self::Signal(signal) => signal.fmt(f),
            Self::Failed(component) => write!(f, "component `{component}` failed"),
            Self::NotStarted => f.write_str("not started"),
        }
    }
}

/// A signal that shuts a service down ([`Service::catch_signals`]).
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::Signal;
///
/// assert_eq!(Signal::Interrupt.to_string(), "SIGINT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT: Ctrl-C (on Windows, the console's Ctrl-C).
    Interrupt,
    /// SIGTERM: what `kill`, systemd and Kubernetes send.
    Terminate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        })
    }
}

/// The service main loop of the seed's Quick Start: `Service::new(root).shutdown_on(shutdown)`,
/// run, without its report.
///
/// - If init fails, what finished init is de-initialised (in the reverse order that
///   [`depends_on`](super::ComponentExt::depends_on) and the tree give), and the init error
///   returned.
/// - If `shutdown` completes while init is still running, init is cancelled, what finished
///   init is de-initialised, and the first error of that is returned.
/// - Otherwise, after `shutdown`, the whole tree is de-initialised and its first error returned.
///
/// An error of the rollback after a failed init is logged, and the init error returned.
/// Unlike [`Service::shutdown_on`], `shutdown` need not be `Send`.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::Event;
/// use asynchronously::lifecycle::{Component, Lifecycle, run_until};
///
/// #[derive(Default)]
/// struct Service { lifecycle: Lifecycle }
/// impl Component for Service {
///     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// }
///
/// let service = Service::default();
/// let shutdown = Event::new();
/// shutdown.set(); // Ctrl-C, in a real service
/// run_until(&service, shutdown.wait()).await?;
/// assert!(service.lifecycle().deinit_phase().finished().is_set());
/// # Ok::<(), asynchronously::lifecycle::LifecycleError>(()) }).unwrap();
/// ```
///
/// # Errors
///
/// As [`Service::run`]'s.
pub async fn run_until<C: Component>(
    root: &C,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LifecycleError> {
    Service::new(root)
        .run_with(shutdown)
        .await
        .into_result()
        .map(drop)
}

/// The OS's signals, with the feature `signal`.
#[cfg(feature = "signal")]
mod os {
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    use futures::StreamExt;

    use super::Signal;

    /// Whether a running service of the process catches the signals.
    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// The signals a running service catches, if it does.
    pub(super) struct Signals(Option<Caught>);

    struct Caught {
        signals: async_signal::Signals,
    }

    impl Drop for Caught {
        fn drop(&mut self) {
            TAKEN.store(false, Ordering::Release);
        }
    }

    impl Signals {
        /// Catches the signals if `catch_signals` was called once.
        pub(super) fn open(calls: u32) -> io::Result<Self> {
            match calls {
                0 => return Ok(Self(None)),
                1 => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "`catch_signals` was called twice on one service",
                    ));
                }
            }
            if TAKEN.swap(true, Ordering::AcqRel) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "another running service of this process catches them",
                ));
            }
            #[cfg(unix)]
            let wanted = [async_signal::Signal::Int, async_signal::Signal::Term];
            #[cfg(not(unix))]
            let wanted = [async_signal::Signal::Int];
            match async_signal::Signals::new(wanted) {
                Ok(signals) => Ok(Self(Some(Caught { signals }))),
                Err(error) => {
                    TAKEN.store(false, Ordering::Release);
                    Err(error)
                }
            }
        }

        pub(super) fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            let Some(caught) = &mut self.0 else {
                return Poll::Pending;
            };
            match caught.signals.poll_next_unpin(cx) {
                #[cfg(unix)]
                Poll::Ready(Some(Ok(async_signal::Signal::Term))) => Poll::Ready(Signal::Terminate),
                Poll::Ready(Some(Ok(_))) => Poll::Ready(Signal::Interrupt),
                Poll::Ready(Some(Err(error))) => {
                    // Not retried, which could spin: the service goes on without signals.
                    log::error!("reading a signal failed, no longer catching them: {error}");
                    self.0 = None;
                    Poll::Pending
                }
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            }
        }
    }
}

/// Without the feature `signal`, no signal is ever caught.
#[cfg(not(feature = "signal"))]
mod os {
    use std::task::{Context, Poll};

    use super::Signal;

    pub(super) struct Signals;

    impl Signals {
        pub(super) fn open(_: u32) -> std::io::Result<Self> {
            Ok(Self)
        }

        pub(super) fn poll_signal(&mut self, _: &mut Context<'_>) -> Poll<Signal> {
            Poll::Pending
        }
    }
}
