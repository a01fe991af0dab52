//! Running a phase over a component tree, and `run_until`.
//!
//! A run is flat. Every component's phase is a [`PhaseRun`] in one list, and what one waits for
//! (its dependencies, its hook, a phase that another run scheduled) is a [`Step`] in one
//! `FuturesUnordered`. A parent waits for its children by counting them, and what follows from
//! an event (a child is over, so its parent's hook runs, so the parent is over, ...) is queued as
//! [`Todo`]s on a stack and done in a loop: a tree as deep as its data costs no stack per level,
//! and neither does dropping a run.
//!
//! A component with a timeout is the exception: its subtree is a run of its own, raced against
//! its deadline, so that the deadline drops exactly that subtree.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use futures::FutureExt;
use futures::future::{BoxFuture, Either, select};
use futures::stream::{FuturesUnordered, StreamExt};
use std::time::Instant;

use super::phase::{Dependencies, Phase, Scheduled};
use super::{BoxError, Component, DynComponent, LifecycleError, PhaseKind, graph};
use crate::gather::strict_gather;
use crate::rt::{PanicPayload, Runtime};
use crate::sync::{Mutex, lock};

/// Which components a deinit takes down.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// Every component except those whose init was scheduled and did not finish.
    All,
    /// Only those whose init finished: the rollback of a failed init.
    OnlyInitialized,
}

/// What a [`Service`](super::Service) watches in the runs it makes: which components finished
/// init (to start their `on_run`), and in deinit, when each phase started and ended, and whose
/// hook is running. Runs of `init()` and `deinit()` have none.
pub(crate) struct Observer<'a> {
    timer: Runtime,
    seen: Mutex<Seen<'a>>,
}

#[derive(Default)]
pub(crate) struct Seen<'a> {
    /// Components that finished init and have an `on_run`, not yet taken by the service.
    pub(crate) up: Vec<&'a dyn DynComponent>,
    /// What happened in deinit, in order.
    pub(crate) marks: Vec<Mark<'a>>,
}

pub(crate) struct Mark<'a> {
    pub(crate) component: &'a dyn DynComponent,
    pub(crate) moment: Moment,
}

#[derive(Debug)]
pub(crate) enum Moment {
    Started(Instant),
    /// Its hook did not return at once.
    HookPending,
    HookDone,
    Over {
        at: Instant,
        failed: bool,
    },
    /// Started and over in one step of the run (as a leaf with a quick hook is): one mark, with
    /// the name, taken while the component is in the cache (a report of a wide tree read each
    /// from memory again).
    Whole {
        name: std::borrow::Cow<'static, str>,
        started: Instant,
        took: std::time::Duration,
        failed: bool,
    },
}

impl<'a> Observer<'a> {
    pub(crate) fn new(timer: Runtime) -> Self {
        Self {
            timer,
            seen: Mutex::new(Seen::default()),
        }
    }

    pub(crate) fn seen(&self) -> crate::sync::MutexGuard<'_, Seen<'a>> {
        lock(&self.seen)
    }
}

/// What a deinit run watched by a service notes, kept in the run (no lock per mark) and handed
/// to the observer when the run ends or is dropped.
struct Timing<'a> {
    observer: &'a Observer<'a>,
    marks: Vec<Mark<'a>>,
    /// The phase started last, until a mark of another comes: a phase over before anything else
    /// happened is one mark.
    open: Option<(&'a dyn DynComponent, Instant)>,
    /// The clock's last reading in this poll of the run. A phase that starts in the same poll
    /// starts then: nothing but the run's own bookkeeping happened since (a hook that takes
    /// time is read when it returns). One reading a phase instead of two (the "Service::run"
    /// row).
    last: Option<Instant>,
}

impl<'a> Timing<'a> {
    fn now(&mut self) -> Instant {
        let now = self.observer.timer.timer().now();
        self.last = Some(now);
        now
    }

    fn mark(&mut self, component: &'a dyn DynComponent, moment: Moment) {
        self.marks.push(Mark { component, moment });
    }

    fn close_open(&mut self) {
        if let Some((component, started)) = self.open.take() {
            self.mark(component, Moment::Started(started));
        }
    }

    #[inline(never)]
    fn started(&mut self, component: &'a dyn DynComponent) {
        self.close_open();
        let now = match self.last {
            Some(last) => last,
            None => self.now(),
        };
        self.open = Some((component, now));
    }

    fn over(&mut self, component: &'a dyn DynComponent, failed: bool) {
        if let Some((open, _)) = self.open {
            // Over in the step it started in, with no hook and (so) no children: it did nothing
            // of its own, and is not reported (a wide tree of such leaves would be timed for
            // nothing: 110 ns a leaf on the "Service::run" row).
            if std::ptr::addr_eq(open, component) && !component.dyn_has_deinit_hook() && !failed {
                self.open = None;
                return;
            }
        }
        let at = self.now();
        match self.open.take() {
            // The same component: the same data pointer.
            Some((open, started)) if std::ptr::addr_eq(open, component) => {
                let name = component
                    .dyn_lifecycle()
                    .deinit_phase()
                    .inner()
                    .recorded_name();
                let took = at.saturating_duration_since(started);
                self.mark(
                    component,
                    Moment::Whole {
                        name,
                        started,
                        took,
                        failed,
                    },
                );
            }
            open => {
                self.open = open;
                self.close_open();
                self.mark(component, Moment::Over { at, failed });
            }
        }
    }

    #[inline(never)]
    fn hook(&mut self, component: &'a dyn DynComponent, moment: Moment) {
        self.close_open();
        self.mark(component, moment);
    }

    /// Hands the marks over.
    fn flush(&mut self) {
        self.close_open();
        let mut seen = self.observer.seen();
        if seen.marks.is_empty() {
            std::mem::swap(&mut seen.marks, &mut self.marks);
        } else {
            seen.marks.append(&mut self.marks);
        }
    }
}

/// A component's identity: its lifecycle's address.
#[cfg(feature = "tracing")]
fn address(component: &dyn DynComponent) -> usize {
    std::ptr::from_ref(component.dyn_lifecycle()) as usize
}

/// `init()` / `deinit()` on a root: a second call warns; then the cycle check; then the run.
pub(crate) async fn run_top<C: Component>(
    component: &C,
    kind: PhaseKind,
    teardown: Teardown,
) -> Result<(), LifecycleError> {
    run_observed(component, kind, teardown, None).await
}

/// [`run_top`], watched by a service.
pub(crate) async fn run_observed<'a>(
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    observer: Option<&'a Observer<'a>>,
) -> Result<(), LifecycleError> {
    if component.dyn_lifecycle().phase(kind).is_scheduled() {
        log::warn!(
            "{}: {kind} was already called; this call does nothing",
            component.dyn_name()
        );
        return Ok(());
    }
    graph::check(component, kind)?;
    run_subtree(component, kind, teardown, None, observer).await
}

/// Runs phase `kind` of `component` and its subtree, within the component's timeout if it has
/// one. `parent` is the component whose run this one is part of, if any.
fn run_subtree<'a>(
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    parent: Option<&'a dyn DynComponent>,
    observer: Option<&'a Observer<'a>>,
) -> impl Future<Output = Result<(), LifecycleError>> + Send + 'a {
    // Made now, not when first polled: a run dropped unpolled still fails its phase as
    // cancelled before it started.
    let run = Run::new(component, kind, teardown, parent, observer);
    let lifecycle = component.dyn_lifecycle();
    async move {
        let Some(limit) = lifecycle.timeout(kind) else {
            return run.await;
        };
        let deadline = lifecycle.timer_runtime().sleep(limit);
        match select(run, pin!(deadline)).await {
            Either::Left((result, _)) => result,
            // The run is dropped, which fails every phase in it that is not over.
            Either::Right(((), _)) => Err(LifecycleError::TimedOut {
                component: component.dyn_name().into_owned(),
                phase: kind,
                after: limit,
            }),
        }
    }
}

/// A phase's error, boxed while the run passes it on: a result is moved a few times per phase,
/// and errors are rare.
type Failure = Box<LifecycleError>;

/// A phase of the run that waits for something: a step, or its children. (A phase that is over
/// as soon as it is scheduled, as a leaf with a quick hook is, never gets one.) It is also the
/// guard that fails the phase, and the children it had not scheduled, if the run is dropped
/// first.
struct PhaseRun<'a> {
    component: &'a dyn DynComponent,
    phase: &'a Phase,
    /// Its parent's index in the run.
    parent: Option<usize>,
    state: State,
    /// Its children; those from `next_child` on are not scheduled yet.
    children: Vec<&'a dyn DynComponent>,
    next_child: usize,
    /// Children scheduled and not over yet.
    children_left: usize,
    /// Whether it waits for its children (it went on once they were all over).
    awaits_children: bool,
    /// Deinit: the first error of its hook or of a child, returned once all are over. Once it is
    /// over: its error, for its parent to take.
    error: Option<Failure>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not scheduled yet (the root, before the run is first polled).
    Made,
    /// Scheduled by this run.
    Running,
    /// Scheduled by someone else (a diamond's other parent), or run by a run of its own (it has a
    /// timeout): this run only waits for it.
    Elsewhere,
    Over,
}

impl Drop for PhaseRun<'_> {
    fn drop(&mut self) {
        let (phase, kind) = (self.phase, self.phase.kind());
        match self.state {
            State::Made => cancel_before_start(self.component, kind),
            State::Running if !phase.is_over() => {
                phase.fail();
                log::debug!("{}: {kind} cancelled", self.component.dyn_name());
            }
            State::Running | State::Elsewhere | State::Over => {}
        }
        for &child in &self.children[self.next_child..] {
            cancel_before_start(child, kind);
        }
    }
}

/// Schedules and fails a phase that was to be run, so that nothing waits on it forever; unless
/// someone else scheduled it.
fn cancel_before_start(component: &dyn DynComponent, kind: PhaseKind) {
    let phase = component.dyn_lifecycle().phase(kind);
    if !matches!(
        phase.schedule(|| component.dyn_name_to_record()),
        Scheduled::Already
    ) {
        phase.fail();
        log::debug!(
            "{}: {kind} cancelled before it started",
            component.dyn_name()
        );
    }
}

/// A phase being run: its entry in the run, or, until it needs one, its component and parent.
#[derive(Clone, Copy)]
enum At<'a> {
    Entry(usize),
    Fresh(&'a dyn DynComponent, usize),
}

/// Where a phase is after a step of its run.
enum Now {
    /// Over, with this result, without an entry: for its parent to count.
    Over(Result<(), Failure>),
    /// It has an entry and reports through it when it is over.
    Waiting,
    /// It has an entry, with children to schedule: before anything else, so that the run goes
    /// depth first, as nested futures would.
    Opened(usize),
}

/// What is to be done next, on the run's stack.
enum Todo {
    /// Schedule the next children of this entry.
    NextChild(usize),
    /// This child entry is over: its parent counts it.
    ChildOver(usize),
}

/// Something a phase of the run waits for.
struct Step<'a> {
    index: usize,
    wait: Wait<'a>,
}

enum Wait<'a> {
    /// Its `wait_before` futures and `after` phases.
    Dependencies(BoxFuture<'a, Result<(), LifecycleError>>),
    /// Deinit: the init in progress.
    Init(BoxFuture<'a, bool>),
    Hook(BoxFuture<'a, Result<(), BoxError>>),
    /// The outcome of a phase scheduled elsewhere.
    Elsewhere(BoxFuture<'a, bool>),
    /// The subtree of a child with a timeout.
    Subtree(BoxFuture<'a, Result<(), LifecycleError>>),
}

/// What a step gave.
enum Outcome {
    Dependencies(Result<(), LifecycleError>),
    Init,
    Hook(Result<(), BoxError>),
    /// `true` if the phase finished.
    Elsewhere(bool),
    Subtree(Result<(), LifecycleError>),
}

impl Future for Step<'_> {
    type Output = (usize, Outcome);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(usize, Outcome)> {
        let outcome = match &mut self.wait {
            Wait::Dependencies(future) => Outcome::Dependencies(ready!(future.as_mut().poll(cx))),
            Wait::Init(future) => {
                ready!(future.as_mut().poll(cx));
                Outcome::Init
            }
            Wait::Hook(future) => Outcome::Hook(ready!(poll_hook(future, cx))),
            Wait::Elsewhere(future) => Outcome::Elsewhere(ready!(future.as_mut().poll(cx))),
            Wait::Subtree(future) => Outcome::Subtree(ready!(future.as_mut().poll(cx))),
        };
        Poll::Ready((self.index, outcome))
    }
}

/// Polls a hook; a panic is its error.
#[inline(always)]
fn poll_hook(
    hook: &mut BoxFuture<'_, Result<(), BoxError>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), BoxError>> {
    catch_unwind(AssertUnwindSafe(|| hook.as_mut().poll(cx))).unwrap_or_else(|panic| {
        let payload: BoxError = Box::new(PanicPayload::new(panic));
        Poll::Ready(Err(payload))
    })
}

/// One phase over a subtree: the future of [`run_subtree`] without its timeout.
struct Run<'a> {
    kind: PhaseKind,
    teardown: Teardown,
    /// The component outside this run that it is part of, for a diamond's error.
    parent: Option<&'a dyn DynComponent>,
    observer: Option<&'a Observer<'a>>,
    /// A deinit run's marks, if a service watches it.
    timing: Option<Timing<'a>>,
    /// The span of each phase in progress, by its lifecycle's address, and when it started.
    #[cfg(feature = "tracing")]
    spans: std::collections::HashMap<usize, (crate::trace::Span, Instant)>,
    /// What the phases wait for. Dropped before `phases`: a cancelled hook is gone before its
    /// phase fails.
    steps: FuturesUnordered<Step<'a>>,
    /// The phases that wait for something, the root's first.
    phases: Vec<PhaseRun<'a>>,
    /// What is to be done now, the last first.
    todo: Vec<Todo>,
    /// The run's result, once it is over.
    result: Option<Result<(), Failure>>,
}

/// The steps of a phase are `#[inline(always)]`, so that a leaf's whole phase runs in the loop that
/// schedules it (the "lifecycle init + deinit" row: 1,333 instructions a leaf as separate calls,
/// 910 inlined).
impl<'a> Run<'a> {
    fn new(
        root: &'a dyn DynComponent,
        kind: PhaseKind,
        teardown: Teardown,
        parent: Option<&'a dyn DynComponent>,
        observer: Option<&'a Observer<'a>>,
    ) -> Self {
        Self {
            kind,
            teardown,
            parent,
            observer,
            timing: observer
                .filter(|_| kind == PhaseKind::Deinit)
                .map(|observer| Timing {
                    observer,
                    marks: Vec::new(),
                    open: None,
                    last: None,
                }),
            #[cfg(feature = "tracing")]
            spans: std::collections::HashMap::new(),
            steps: FuturesUnordered::new(),
            phases: vec![PhaseRun {
                component: root,
                phase: root.dyn_lifecycle().phase(kind),
                parent: None,
                state: State::Made,
                children: Vec::new(),
                next_child: 0,
                children_left: 0,
                awaits_children: false,
                error: None,
            }],
            todo: Vec::new(),
            result: None,
        }
    }

    #[inline(always)]
    fn component(&self, at: At<'a>) -> &'a dyn DynComponent {
        match at {
            At::Entry(index) => self.phases[index].component,
            At::Fresh(component, _) => component,
        }
    }

    /// The entry of the phase at `at`, made now if it has none, in `state`.
    #[inline(always)]
    fn entry(&mut self, at: At<'a>, state: State) -> usize {
        match at {
            At::Entry(index) => {
                self.phases[index].state = state;
                index
            }
            At::Fresh(component, parent) => {
                self.phases.push(PhaseRun {
                    component,
                    phase: component.dyn_lifecycle().phase(self.kind),
                    parent: Some(parent),
                    state,
                    children: Vec::new(),
                    next_child: 0,
                    children_left: 0,
                    awaits_children: false,
                    error: None,
                });
                self.phases.len() - 1
            }
        }
    }

    /// Makes the phase at `at` wait for `wait`.
    #[inline(always)]
    fn wait(&mut self, at: At<'a>, state: State, wait: Wait<'a>) -> Now {
        let index = self.entry(at, state);
        self.steps.push(Step { index, wait });
        Now::Waiting
    }

    /// The phase at `at` waits for its children: they are scheduled next.
    #[inline(always)]
    fn open(&mut self, at: At<'a>, children: Vec<&'a dyn DynComponent>) -> Now {
        let index = self.entry(at, State::Running);
        if let Some(timing) = &mut self.timing {
            // A mark each, and the parent's start and end.
            timing.marks.reserve(children.len() + 2);
        }
        let run = &mut self.phases[index];
        run.children = children;
        run.awaits_children = true;
        Now::Opened(index)
    }

    /// After a step of an entry: its children, if it opened them, are scheduled next.
    fn settle(&mut self, now: Now) {
        if let Now::Opened(index) = now {
            self.todo.push(Todo::NextChild(index));
        }
    }

    #[inline(always)]
    fn schedule(&mut self, at: At<'a>, cx: &mut Context<'_>) -> Now {
        let (kind, teardown) = (self.kind, self.teardown);
        let component = self.component(at);
        let lifecycle = component.dyn_lifecycle();
        if let At::Fresh(_, parent) = at {
            if lifecycle.timeout(kind).is_some() {
                // Its subtree is a run of its own, within its timeout.
                let parent = self.phases[parent].component;
                let subtree = run_subtree(component, kind, teardown, Some(parent), self.observer);
                return self.wait(at, State::Elsewhere, Wait::Subtree(Box::pin(subtree)));
            }
        }
        let phase = lifecycle.phase(kind);
        let dependencies = match phase.schedule(|| component.dyn_name_to_record()) {
            Scheduled::Already => {
                // Scheduled by another parent (a diamond): wait for it, so that "parent
                // finished" means "subtree finished".
                if phase.is_over() {
                    let finished = !phase.inner().is_failed();
                    return Now::Over(self.elsewhere_result(at, finished));
                }
                let outcome = Box::pin(phase.inner().outcome());
                return self.wait(at, State::Elsewhere, Wait::Elsewhere(outcome));
            }
            Scheduled::Free => None,
            Scheduled::Waits(dependencies) => Some(dependencies),
        };
        log::debug!("{}: {kind} scheduled", component.dyn_name());
        if let At::Entry(index) = at {
            self.phases[index].state = State::Running;
        }
        match dependencies {
            None => self.start(at, cx),
            Some(dependencies) => {
                let wait = Box::pin(wait_for_dependencies(dependencies, component, kind));
                self.wait(at, State::Running, Wait::Dependencies(wait))
            }
        }
    }

    /// The result of a phase scheduled elsewhere, for the phase that waited for it.
    #[inline]
    fn elsewhere_result(&self, at: At<'a>, finished: bool) -> Result<(), Failure> {
        if finished {
            return Ok(());
        }
        let component = self.component(at);
        let parent = match at {
            At::Fresh(_, parent) => Some(self.phases[parent].component),
            At::Entry(index) => match self.phases[index].parent {
                Some(parent) => Some(self.phases[parent].component),
                None => self.parent,
            },
        };
        Err(Box::new(LifecycleError::DependencyFailed {
            component: parent.unwrap_or(component).dyn_name().into_owned(),
            dependency: component.dyn_name().into_owned(),
            phase: self.kind,
        }))
    }

    #[inline(always)]
    fn start(&mut self, at: At<'a>, cx: &mut Context<'_>) -> Now {
        let component = self.component(at);
        let lifecycle = component.dyn_lifecycle();
        lifecycle.phase(self.kind).start();
        if let Some(timing) = &mut self.timing {
            timing.started(component); // out of line: the common run has no timing
        }
        #[cfg(feature = "tracing")]
        self.open_span(at, component);
        log::debug!("{}: {} started", component.dyn_name(), self.kind);
        match self.kind {
            PhaseKind::Init => {
                let children = component.dyn_children().into_items();
                if children.is_empty() {
                    self.hook(at, cx)
                } else {
                    self.open(at, children)
                }
            }
            PhaseKind::Deinit | PhaseKind::Run => {
                let init = lifecycle.init_phase();
                if init.is_scheduled() && !init.is_over() {
                    // Deinit after init: let an init in progress end first.
                    let outcome = Box::pin(init.inner().outcome());
                    self.wait(at, State::Running, Wait::Init(outcome))
                } else {
                    self.undo(at, cx)
                }
            }
        }
    }

    /// Deinit: runs the hook if init left something to undo.
    #[inline(always)]
    fn undo(&mut self, at: At<'a>, cx: &mut Context<'_>) -> Now {
        let component = self.component(at);
        let init = component.dyn_lifecycle().init_phase();
        let something_to_undo = match self.teardown {
            Teardown::All => !init.is_scheduled() || init.finished().is_set(),
            Teardown::OnlyInitialized => init.finished().is_set(),
        };
        if something_to_undo {
            self.hook(at, cx)
        } else {
            log::debug!(
                "{}: init did not finish, nothing to deinit",
                component.dyn_name()
            );
            self.hook_done(at, Ok(()))
        }
    }

    /// Makes the hook's future and polls it once in place: a hook that is done at once (as the
    /// default hooks are) takes no step.
    #[inline(always)]
    fn hook(&mut self, at: At<'a>, cx: &mut Context<'_>) -> Now {
        let (component, kind) = (self.component(at), self.kind);
        let mut hook = match catch_unwind(AssertUnwindSafe(|| component.dyn_hook(kind))) {
            Ok(hook) => hook,
            Err(panic) => return self.hook_done(at, Err(Box::new(PanicPayload::new(panic)))),
        };
        #[cfg(feature = "tracing")]
        if let Some((span, _)) = self.spans.get(&address(component)) {
            hook = Box::pin(crate::trace::within(span, hook));
        }
        match poll_hook(&mut hook, cx) {
            Poll::Ready(result) => self.hook_done(at, result),
            Poll::Pending => {
                if let Some(timing) = &mut self.timing {
                    timing.hook(component, Moment::HookPending);
                }
                self.wait(at, State::Running, Wait::Hook(hook))
            }
        }
    }

    #[inline(always)]
    fn hook_done(&mut self, at: At<'a>, result: Result<(), BoxError>) -> Now {
        let component = self.component(at);
        let result = result.map_err(|source| {
            Box::new(LifecycleError::Failed {
                component: component.dyn_name().into_owned(),
                phase: self.kind,
                source,
            })
        });
        if self.kind == PhaseKind::Deinit {
            // Best effort: the children go down even if the hook failed.
            let children = component.dyn_children().into_items();
            if !children.is_empty() {
                let now = self.open(at, children);
                if let Now::Opened(index) = now {
                    self.phases[index].error = result.err();
                }
                return now;
            }
        }
        self.finish(at, result)
    }

    /// Opens the span of the phase at `at`, a child of its parent component's.
    #[cfg(feature = "tracing")]
    #[inline(never)]
    fn open_span(&mut self, at: At<'a>, component: &'a dyn DynComponent) {
        let parent = match at {
            At::Fresh(_, parent) => Some(parent),
            At::Entry(index) => self.phases[index].parent,
        };
        let parent = parent
            .and_then(|parent| self.spans.get(&address(self.phases[parent].component)))
            .map(|(span, _)| span);
        let span = crate::trace::phase(parent, &component.dyn_name(), self.kind);
        if crate::trace::enabled(&span) {
            self.spans
                .insert(address(component), (span, Instant::now()));
        }
    }

    /// Tells a service that `component`'s phase is over: its deinit's time, or that it is up.
    #[inline(never)]
    fn observe_over(&mut self, component: &'a dyn DynComponent, ok: bool) {
        if let Some(timing) = &mut self.timing {
            timing.over(component, !ok);
        } else if let Some(observer) = self.observer {
            if self.kind == PhaseKind::Init && ok && component.dyn_has_on_run() {
                observer.seen().up.push(component);
            }
        }
    }

    /// The phase is over: finished, or failed with `result`'s error.
    #[inline(always)]
    fn finish(&mut self, at: At<'a>, result: Result<(), Failure>) -> Now {
        let component = self.component(at);
        let phase = component.dyn_lifecycle().phase(self.kind);
        if self.observer.is_some() {
            self.observe_over(component, result.is_ok());
        }
        #[cfg(feature = "tracing")]
        if let Some((span, started)) = self.spans.remove(&address(component)) {
            crate::trace::phase_over(&span, result.is_ok(), started.elapsed());
        }
        match &result {
            Ok(()) => {
                phase.finish();
                log::debug!("{}: {} finished", component.dyn_name(), self.kind);
            }
            Err(error) => {
                phase.fail();
                log::debug!("{}: {} failed: {error}", component.dyn_name(), self.kind);
            }
        }
        match at {
            At::Fresh(..) => Now::Over(result),
            At::Entry(index) => {
                self.report(index, result);
                Now::Waiting
            }
        }
    }

    /// An entry is over: its parent counts it next, or the run is over.
    fn report(&mut self, index: usize, result: Result<(), Failure>) {
        let run = &mut self.phases[index];
        run.state = State::Over;
        match run.parent {
            None => self.result = Some(result),
            Some(_) => {
                run.error = result.err();
                self.todo.push(Todo::ChildOver(index));
            }
        }
    }

    /// Schedules the children of an entry in turn, until one opens children of its own (which
    /// go first) or all are scheduled.
    fn next_child(&mut self, index: usize, cx: &mut Context<'_>) {
        loop {
            let run = &mut self.phases[index];
            let Some(&child) = run.children.get(run.next_child) else {
                break;
            };
            run.next_child += 1;
            run.children_left += 1;
            match self.schedule(At::Fresh(child, index), cx) {
                Now::Over(result) => self.count_child(index, result),
                Now::Waiting => {}
                Now::Opened(child) => {
                    self.todo.push(Todo::NextChild(index));
                    self.todo.push(Todo::NextChild(child));
                    return;
                }
            }
            if self.result.is_some() {
                return;
            }
        }
        self.children_over(index, cx);
    }

    /// Counts a child of `index` off, with its result. An init error ends the run: init fails
    /// fast, and each ancestor would fail with it, up to the root.
    #[inline(always)]
    fn count_child(&mut self, index: usize, result: Result<(), Failure>) {
        let run = &mut self.phases[index];
        run.children_left -= 1;
        if let Err(error) = result {
            match self.kind {
                PhaseKind::Init => self.result = Some(Err(error)),
                PhaseKind::Deinit | PhaseKind::Run => {
                    run.error.get_or_insert(error);
                }
            }
        }
    }

    /// Goes on with an entry whose children may all be over.
    fn children_over(&mut self, index: usize, cx: &mut Context<'_>) {
        let run = &mut self.phases[index];
        if !run.awaits_children || run.children_left > 0 || run.next_child < run.children.len() {
            return;
        }
        run.awaits_children = false;
        let now = match self.kind {
            PhaseKind::Init => self.hook(At::Entry(index), cx),
            PhaseKind::Deinit | PhaseKind::Run => {
                let result = run.error.take().map_or(Ok(()), Err);
                self.finish(At::Entry(index), result)
            }
        };
        self.settle(now);
    }

    fn resume(&mut self, index: usize, outcome: Outcome, cx: &mut Context<'_>) {
        let at = At::Entry(index);
        let now = match outcome {
            Outcome::Dependencies(Ok(())) => self.start(at, cx),
            Outcome::Dependencies(Err(error)) => self.finish(at, Err(Box::new(error))),
            Outcome::Init => self.undo(at, cx),
            Outcome::Hook(result) => {
                if let Some(timing) = &mut self.timing {
                    timing.hook(self.phases[index].component, Moment::HookDone);
                }
                self.hook_done(at, result)
            }
            Outcome::Elsewhere(finished) => {
                let result = self.elsewhere_result(at, finished);
                self.report(index, result);
                Now::Waiting
            }
            Outcome::Subtree(result) => {
                self.report(index, result.map_err(Box::new));
                Now::Waiting
            }
        };
        self.settle(now);
    }

    fn do_next(&mut self, todo: Todo, cx: &mut Context<'_>) {
        match todo {
            Todo::NextChild(index) => self.next_child(index, cx),
            Todo::ChildOver(child) => {
                let run = &mut self.phases[child];
                let parent = run.parent.expect("a child entry has a parent");
                let result = run.error.take().map_or(Ok(()), Err);
                self.count_child(parent, result);
                if self.result.is_none() {
                    self.children_over(parent, cx);
                }
            }
        }
    }

    /// Drops what is in progress, then fails every phase that is not over, the last added
    /// (the deepest) first.
    fn cancel(&mut self) {
        self.steps.clear();
        self.todo.clear();
        while let Some(run) = self.phases.pop() {
            drop(run);
        }
        if let Some(timing) = &mut self.timing {
            timing.flush();
        }
    }
}

impl Future for Run<'_> {
    type Output = Result<(), LifecycleError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(timing) = &mut this.timing {
            timing.last = None; // time passed since the last poll
        }
        if this.phases[0].state == State::Made {
            let now = this.schedule(At::Entry(0), cx);
            this.settle(now);
        }
        loop {
            while this.result.is_none() {
                let Some(todo) = this.todo.pop() else { break };
                this.do_next(todo, cx);
            }
            if let Some(result) = this.result.take() {
                this.cancel();
                return Poll::Ready(result.map_err(|error| *error));
            }
            // A phase that is not over waits for a step or for its children, who wait for one.
            let step = ready!(this.steps.poll_next_unpin(cx));
            let (index, outcome) =
                step.expect("a lifecycle run that is not over has a step to wait for");
            this.resume(index, outcome, cx);
        }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

async fn wait_for_dependencies(
    dependencies: Dependencies,
    component: &dyn DynComponent,
    kind: PhaseKind,
) -> Result<(), LifecycleError> {
    let failed = |dependency: String| LifecycleError::DependencyFailed {
        component: component.dyn_name().into_owned(),
        dependency,
        phase: kind,
    };
    let Dependencies {
        futures: waits,
        afters,
        dropped_afters,
        stops,
    } = dependencies;
    if dropped_afters > 0 && kind == PhaseKind::Init {
        return Err(failed("<dropped component>".to_owned()));
    }
    // The futures given to `wait_before`: a panic in one fails the phase.
    let futures = async {
        match AssertUnwindSafe(futures::future::join_all(waits))
            .catch_unwind()
            .await
        {
            Ok(_) => Ok(()),
            Err(panic) => Err(panicked(panic, component, kind)),
        }
    };
    // Init waits for what it needs to be up; deinit only for the order (best effort).
    let afters = strict_gather(afters.iter().map(|dependency| async {
        if dependency.outcome().await || kind == PhaseKind::Deinit {
            Ok(())
        } else {
            Err(failed(dependency.name()))
        }
    }));
    let result = futures::future::try_join(futures, afters).await;
    // A service's stops of `on_run`, once what the phase waits for is over (even if that failed:
    // a component's deinit drops its `on_run` first).
    futures::future::join_all(stops).await;
    result.map(drop)
}

fn panicked(
    panic: Box<dyn Any + Send>,
    component: &dyn DynComponent,
    kind: PhaseKind,
) -> LifecycleError {
    LifecycleError::Failed {
        component: component.dyn_name().into_owned(),
        phase: kind,
        source: Box::new(PanicPayload::new(panic)),
    }
}
