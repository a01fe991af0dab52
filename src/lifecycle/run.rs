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

use super::phase::{Dependencies, Phase};
use super::{BoxError, Component, ComponentExt, DynComponent, LifecycleError, PhaseKind, graph};
use crate::gather::strict_gather;
use crate::rt::PanicPayload;

/// Which components a deinit takes down.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// Every component except those whose init was scheduled and did not finish.
    All,
    /// Only those whose init finished: the rollback of a failed init.
    OnlyInitialized,
}

/// `init()` / `deinit()` on a root: a second call warns; then the cycle check; then the run.
pub(crate) async fn run_top<C: Component>(
    component: &C,
    kind: PhaseKind,
    teardown: Teardown,
) -> Result<(), LifecycleError> {
    let component: &dyn DynComponent = component;
    if component.dyn_lifecycle().phase(kind).is_scheduled() {
        log::warn!(
            "{}: {kind} was already called; this call does nothing",
            component.dyn_name()
        );
        return Ok(());
    }
    graph::check(component, kind)?;
    run_subtree(component, kind, teardown, None).await
}

/// Runs phase `kind` of `component` and its subtree, within the component's timeout if it has
/// one. `parent` is the component whose run this one is part of, if any.
fn run_subtree<'a>(
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    parent: Option<&'a dyn DynComponent>,
) -> impl Future<Output = Result<(), LifecycleError>> + Send + 'a {
    // Made now, not when first polled: a run dropped unpolled still fails its phase as
    // cancelled before it started.
    let run = Run::new(component, kind, teardown, parent);
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

/// One component's phase in a run, and the guard that fails it if the run is dropped first.
struct PhaseRun<'a> {
    component: &'a dyn DynComponent,
    phase: &'a Phase,
    /// Its parent's index in the run.
    parent: Option<usize>,
    state: State,
    /// Children not over yet.
    children_left: usize,
    /// The first error of its deinit hook or of a child's deinit, returned once all are over.
    error: Option<LifecycleError>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not scheduled yet.
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
            State::Made => {
                // Scheduled and failed, so that nothing waits on it forever; unless someone else
                // scheduled it.
                if phase
                    .schedule(|| self.component.dyn_name().into_owned())
                    .is_some()
                {
                    phase.fail();
                    log::debug!(
                        "{}: {kind} cancelled before it started",
                        self.component.dyn_name()
                    );
                }
            }
            State::Running if !phase.is_over() => {
                phase.fail();
                log::debug!("{}: {kind} cancelled", self.component.dyn_name());
            }
            State::Running | State::Elsewhere | State::Over => {}
        }
    }
}

/// What is to be done next for a phase of the run.
enum Todo {
    Schedule,
    /// Its dependencies are over.
    Start,
    /// Deinit: run the hook if init left something to undo.
    Undo,
    RunHook,
    HookDone(Result<(), BoxError>),
    Finish(Result<(), LifecycleError>),
    /// One of its children is over, with this result.
    ChildOver(Result<(), LifecycleError>),
    /// A phase run elsewhere is over: `true` if it finished.
    ElsewhereOver(bool),
}

/// Something a phase of the run waits for, and what follows when it is over.
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

impl Future for Step<'_> {
    type Output = (usize, Todo);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(usize, Todo)> {
        let todo = match &mut self.wait {
            Wait::Dependencies(future) => match ready!(future.as_mut().poll(cx)) {
                Ok(()) => Todo::Start,
                Err(error) => Todo::Finish(Err(error)),
            },
            Wait::Init(future) => {
                ready!(future.as_mut().poll(cx));
                Todo::Undo
            }
            Wait::Hook(future) => Todo::HookDone(ready!(poll_hook(future, cx))),
            Wait::Elsewhere(future) => Todo::ElsewhereOver(ready!(future.as_mut().poll(cx))),
            Wait::Subtree(future) => Todo::Finish(ready!(future.as_mut().poll(cx))),
        };
        Poll::Ready((self.index, todo))
    }
}

/// Polls a hook; a panic is its error.
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
    /// What the phases wait for. Dropped before `phases`: a cancelled hook is gone before its
    /// phase fails.
    steps: FuturesUnordered<Step<'a>>,
    /// Every phase of the run: the root's first, each child's after its parent's.
    phases: Vec<PhaseRun<'a>>,
    /// What is to be done now, the last first.
    todo: Vec<(usize, Todo)>,
    /// The run's result, once it is over.
    result: Option<Result<(), LifecycleError>>,
}

impl<'a> Run<'a> {
    fn new(
        root: &'a dyn DynComponent,
        kind: PhaseKind,
        teardown: Teardown,
        parent: Option<&'a dyn DynComponent>,
    ) -> Self {
        let mut run = Self {
            kind,
            teardown,
            parent,
            steps: FuturesUnordered::new(),
            phases: Vec::new(),
            todo: vec![(0, Todo::Schedule)],
            result: None,
        };
        run.add(root, None);
        run
    }

    fn add(&mut self, component: &'a dyn DynComponent, parent: Option<usize>) -> usize {
        self.phases.push(PhaseRun {
            component,
            phase: component.dyn_lifecycle().phase(self.kind),
            parent,
            state: State::Made,
            children_left: 0,
            error: None,
        });
        self.phases.len() - 1
    }

    fn wait(&mut self, index: usize, wait: Wait<'a>) {
        self.steps.push(Step { index, wait });
    }

    fn then(&mut self, index: usize, todo: Todo) {
        self.todo.push((index, todo));
    }

    fn name(&self, index: usize) -> String {
        self.phases[index].component.dyn_name().into_owned()
    }

    fn do_next(&mut self, index: usize, todo: Todo, cx: &mut Context<'_>) {
        match todo {
            Todo::Schedule => self.schedule(index),
            Todo::Start => self.start(index),
            Todo::Undo => self.undo(index),
            Todo::RunHook => self.run_hook(index, cx),
            Todo::HookDone(result) => self.hook_done(index, result),
            Todo::Finish(result) => self.finish(index, result),
            Todo::ChildOver(result) => self.child_over(index, result),
            Todo::ElsewhereOver(finished) => {
                let result = if finished {
                    Ok(())
                } else {
                    let waiting = match self.phases[index].parent {
                        Some(parent) => self.name(parent),
                        None => self.parent.map_or_else(
                            || self.name(index),
                            |parent| parent.dyn_name().into_owned(),
                        ),
                    };
                    Err(LifecycleError::DependencyFailed {
                        component: waiting,
                        dependency: self.name(index),
                        phase: self.kind,
                    })
                };
                self.finish(index, result);
            }
        }
    }

    fn schedule(&mut self, index: usize) {
        let (kind, teardown) = (self.kind, self.teardown);
        let (component, parent) = (self.phases[index].component, self.phases[index].parent);
        if let Some(parent) = parent {
            if component.dyn_lifecycle().timeout(kind).is_some() {
                // Its subtree is a run of its own, within its timeout.
                self.phases[index].state = State::Elsewhere;
                let parent = self.phases[parent].component;
                let subtree = run_subtree(component, kind, teardown, Some(parent));
                return self.wait(index, Wait::Subtree(Box::pin(subtree)));
            }
        }
        let run = &mut self.phases[index];
        let phase = run.phase;
        let Some(dependencies) = phase.schedule(|| component.dyn_name().into_owned()) else {
            // Scheduled already, by another parent (a diamond): wait for it, so that "parent
            // finished" means "subtree finished".
            run.state = State::Elsewhere;
            let outcome = phase.inner().outcome();
            self.wait(index, Wait::Elsewhere(Box::pin(outcome)));
            return;
        };
        run.state = State::Running;
        log::debug!("{}: {kind} scheduled", component.dyn_name());
        if dependencies.is_empty() {
            self.start(index);
        } else {
            let wait = wait_for_dependencies(dependencies, component, kind);
            self.wait(index, Wait::Dependencies(Box::pin(wait)));
        }
    }

    fn start(&mut self, index: usize) {
        let run = &self.phases[index];
        run.phase.start();
        log::debug!("{}: {} started", run.component.dyn_name(), self.kind);
        match self.kind {
            PhaseKind::Init => {
                if !self.open_children(index) {
                    self.then(index, Todo::RunHook);
                }
            }
            PhaseKind::Deinit => {
                let init = run.component.dyn_lifecycle().init_phase();
                if init.is_scheduled() && !init.is_over() {
                    // Deinit after init: let an init in progress end first.
                    let outcome = init.inner().outcome();
                    self.wait(index, Wait::Init(Box::pin(outcome)));
                } else {
                    self.then(index, Todo::Undo);
                }
            }
        }
    }

    fn undo(&mut self, index: usize) {
        let run = &self.phases[index];
        let init = run.component.dyn_lifecycle().init_phase();
        let something_to_undo = match self.teardown {
            Teardown::All => !init.is_scheduled() || init.finished().is_set(),
            Teardown::OnlyInitialized => init.finished().is_set(),
        };
        if something_to_undo {
            self.then(index, Todo::RunHook);
        } else {
            log::debug!(
                "{}: init did not finish, nothing to deinit",
                run.component.dyn_name()
            );
            self.then(index, Todo::HookDone(Ok(())));
        }
    }

    /// Makes the hook's future and polls it once in place: a hook that is done at once (as the
    /// default hooks are) takes no step.
    fn run_hook(&mut self, index: usize, cx: &mut Context<'_>) {
        let component = self.phases[index].component;
        let kind = self.kind;
        let mut hook = match catch_unwind(AssertUnwindSafe(|| component.dyn_hook(kind))) {
            Ok(hook) => hook,
            Err(panic) => {
                let payload: BoxError = Box::new(PanicPayload::new(panic));
                return self.then(index, Todo::HookDone(Err(payload)));
            }
        };
        match poll_hook(&mut hook, cx) {
            Poll::Ready(result) => self.then(index, Todo::HookDone(result)),
            Poll::Pending => self.wait(index, Wait::Hook(hook)),
        }
    }

    fn hook_done(&mut self, index: usize, result: Result<(), BoxError>) {
        let result = result.map_err(|source| LifecycleError::Failed {
            component: self.name(index),
            phase: self.kind,
            source,
        });
        match self.kind {
            PhaseKind::Init => self.then(index, Todo::Finish(result)),
            PhaseKind::Deinit => {
                // Best effort: the children go down even if the hook failed.
                self.phases[index].error = result.err();
                if !self.open_children(index) {
                    let result = self.phases[index].error.take().map_or(Ok(()), Err);
                    self.then(index, Todo::Finish(result));
                }
            }
        }
    }

    /// Adds the children of a phase to the run and queues their scheduling, the first child
    /// first; `false` if it has none.
    fn open_children(&mut self, index: usize) -> bool {
        let children = self.phases[index].component.dyn_children().into_items();
        if children.is_empty() {
            return false;
        }
        self.phases[index].children_left = children.len();
        let first = self.phases.len();
        self.phases.reserve(children.len());
        for child in children {
            self.add(child, Some(index));
        }
        let last = self.phases.len();
        self.todo
            .extend((first..last).rev().map(|child| (child, Todo::Schedule)));
        true
    }

    fn finish(&mut self, index: usize, result: Result<(), LifecycleError>) {
        let run = &mut self.phases[index];
        if run.state == State::Running {
            match &result {
                Ok(()) => {
                    run.phase.finish();
                    log::debug!("{}: {} finished", run.component.dyn_name(), self.kind);
                }
                Err(error) => {
                    run.phase.fail();
                    log::debug!(
                        "{}: {} failed: {error}",
                        run.component.dyn_name(),
                        self.kind
                    );
                }
            }
        }
        run.state = State::Over;
        match run.parent {
            None => self.result = Some(result),
            Some(parent) => self.then(parent, Todo::ChildOver(result)),
        }
    }

    fn child_over(&mut self, index: usize, result: Result<(), LifecycleError>) {
        let run = &mut self.phases[index];
        run.children_left -= 1;
        if let Err(error) = result {
            match self.kind {
                // Init fails fast: the error ends the run, which drops every phase in progress.
                // Each ancestor would fail with it, up to the root.
                PhaseKind::Init => {
                    self.result = Some(Err(error));
                    return;
                }
                PhaseKind::Deinit => {
                    run.error.get_or_insert(error);
                }
            }
        }
        if run.children_left > 0 {
            return;
        }
        match self.kind {
            PhaseKind::Init => self.then(index, Todo::RunHook),
            PhaseKind::Deinit => {
                let result = run.error.take().map_or(Ok(()), Err);
                self.then(index, Todo::Finish(result));
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
    }
}

impl Future for Run<'_> {
    type Output = Result<(), LifecycleError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            while let Some((index, todo)) = this.todo.pop() {
                this.do_next(index, todo, cx);
                if let Some(result) = this.result.take() {
                    this.cancel();
                    return Poll::Ready(result);
                }
            }
            let step = ready!(this.steps.poll_next_unpin(cx));
            // A phase that is not over waits for a step or for its children, who wait for one.
            let (index, todo) =
                step.expect("a lifecycle run that is not over has a step to wait for");
            this.then(index, todo);
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
    if dependencies.dropped_afters > 0 && kind == PhaseKind::Init {
        return Err(failed("<dropped component>".to_owned()));
    }
    // The futures given to `wait_before`: a panic in one fails the phase.
    let futures = async {
        match AssertUnwindSafe(futures::future::join_all(dependencies.futures))
            .catch_unwind()
            .await
        {
            Ok(_) => Ok(()),
            Err(panic) => Err(panicked(panic, component, kind)),
        }
    };
    // Init waits for what it needs to be up; deinit only for the order (best effort).
    let afters = strict_gather(dependencies.afters.iter().map(|dependency| async {
        if dependency.outcome().await || kind == PhaseKind::Deinit {
            Ok(())
        } else {
            Err(failed(dependency.name()))
        }
    }));
    futures::future::try_join(futures, afters).await.map(drop)
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

/// The service main loop of the seed's Quick Start: init the tree, wait for `shutdown`, deinit.
///
/// - If init fails, what finished init is de-initialised (in the reverse order that
///   [`depends_on`](ComponentExt::depends_on) and the tree give), and the init error returned.
/// - If `shutdown` completes while init is still running, init is cancelled, what finished init
///   is de-initialised, and `Ok(())` returned.
/// - Otherwise, after `shutdown`, the whole tree is de-initialised and its first error returned.
///
/// An error of the rollback itself is logged, and the init error returned.
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
/// The init error, or else the first deinit error.
pub async fn run_until<C: Component>(
    root: &C,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LifecycleError> {
    let mut shutdown = pin!(shutdown);
    let init = {
        let init = pin!(root.init());
        match select(init, shutdown.as_mut()).await {
            Either::Left((result, _)) => Some(result),
            Either::Right(((), _cancelled_init)) => None,
        }
    };
    let rollback = || async {
        if let Err(error) = run_top(root, PhaseKind::Deinit, Teardown::OnlyInitialized).await {
            log::error!("{}: rollback after init failed too: {error}", root.name());
        }
    };
    match init {
        Some(Ok(())) => {
            log::info!("{}: up, running until shutdown", root.name());
            shutdown.await;
            log::info!("{}: shutting down", root.name());
            root.deinit().await
        }
        Some(Err(error)) => {
            log::error!("{}: init failed, rolling back: {error}", root.name());
            rollback().await;
            Err(error)
        }
        None => {
            log::info!("{}: shutdown during init, rolling back", root.name());
            rollback().await;
            Ok(())
        }
    }
}
