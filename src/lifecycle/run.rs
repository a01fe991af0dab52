//! Running a phase over a component tree, and `run_until`.

use std::any::Any;
use std::future::Future;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::task::Poll;

use futures::FutureExt;
use futures::future::{BoxFuture, Either, select};
use futures::stream::{FuturesUnordered, StreamExt};

use super::phase::{Pending, PhaseInner, outcome};
use super::{
    BoxError, Component, ComponentExt, DynComponent, LifecycleError, Phase, PhaseKind, graph,
};
use crate::rt::PanicPayload;
use crate::strict_gather;

/// Which components a deinit takes down.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// Every component except those whose init was scheduled and did not finish.
    All,
    /// Only those whose init finished: the rollback of a failed init.
    OnlyInitialized,
}

/// `init()` / `deinit()` on a root: a second call warns; then the cycle check; then the phase.
pub(crate) async fn run_top<C: Component>(
    component: &C,
    kind: PhaseKind,
    teardown: Teardown,
) -> Result<(), LifecycleError> {
    let component: &dyn DynComponent = component;
    let phase = component.dyn_lifecycle().phase(kind);
    if phase.is_scheduled() {
        log::warn!(
            "{}: {kind} was already called; this call does nothing",
            component.dyn_name()
        );
        return Ok(());
    }
    graph::check(component, kind)?;
    component.dyn_run_phase(kind, teardown, None).await
}

/// Marks the phase failed if its future is dropped before the phase is over, so that nothing
/// waits on a cancelled phase forever.
struct FailIfCancelled<'a>(&'a Phase, &'a str, PhaseKind);

impl Drop for FailIfCancelled<'_> {
    fn drop(&mut self) {
        if !self.0.is_over() {
            self.0.fail();
            log::debug!("{}: {} cancelled", self.1, self.2);
        }
    }
}

/// Fails the phase if the future that was to run it is dropped before it started (a sibling's
/// failure cancels children that were not polled yet): without it, a phase that was never
/// scheduled would leave whatever waits on it waiting for ever. Does nothing if the phase was
/// scheduled by someone else (a diamond's other parent).
struct FailIfNeverStarted<'a> {
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    armed: bool,
}

impl Drop for FailIfNeverStarted<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let phase = self.component.dyn_lifecycle().phase(self.kind);
        let name = self.component.dyn_kept_name();
        if phase.schedule(name.clone(), self.kind).is_some() {
            phase.fail();
            log::debug!("{name}: {} cancelled before it started", self.kind);
        }
    }
}

/// Runs `kind` of `component` and its subtree. `parent` is set when a parent runs it.
///
/// Generic over the component, so that its hook lives inside this future: with the box a child
/// gets from [`DynComponent::dyn_run_phase`], one allocation per component and phase. What few
/// components need (dependencies, a timeout, children) is boxed on the side when they have it,
/// so that a leaf's future stays small.
pub(crate) fn run_phase<'a, C: Component>(
    component: &'a C,
    kind: PhaseKind,
    teardown: Teardown,
    parent: Option<&'a str>,
) -> impl Future<Output = Result<(), LifecycleError>> + Send + 'a {
    // Made here, outside the async fn, so that it fires even if the future is dropped unpolled.
    let never_started = FailIfNeverStarted {
        component,
        kind,
        armed: true,
    };
    // An async block, not an async fn: its state keeps each argument once (an async fn keeps
    // its arguments beside the locals it moves them into). This future is most of the
    // allocation each component's phase costs.
    async move {
        let lifecycle = component.lifecycle();
        let phase = lifecycle.phase(kind);
        let name = component.name();
        // What is set up before the first await stays out of this future's state (a helper's
        // locals).
        let Some(dependencies) = schedule(phase, &name, kind, never_started) else {
            // Scheduled already, by another parent (a diamond): wait for it, so that "parent
            // finished" means "subtree finished".
            return Box::pin(scheduled_elsewhere(phase, &name, kind, parent)).await;
        };
        let cancelled = FailIfCancelled(phase, &name, kind);
        // The body is made in each arm, so that the state has room for it once.
        let result = match lifecycle.timeout(kind) {
            None => run_body(component, phase, &name, kind, teardown, dependencies).await,
            Some(limit) => {
                let body = run_body(component, phase, &name, kind, teardown, dependencies);
                Box::pin(timed(body, lifecycle, &name, kind, limit)).await
            }
        };
        match &result {
            Ok(()) => {
                phase.finish();
                log::debug!("{name}: {kind} finished");
            }
            Err(error) => {
                phase.fail();
                log::debug!("{name}: {kind} failed: {error}");
            }
        }
        drop(cancelled);
        result
    }
}

/// `body`, failed with `TimedOut` if it takes longer than `limit` (and then dropped).
async fn timed(
    body: impl Future<Output = Result<(), LifecycleError>>,
    lifecycle: &super::Lifecycle,
    name: &str,
    kind: PhaseKind,
    limit: std::time::Duration,
) -> Result<(), LifecycleError> {
    let deadline = Box::pin(lifecycle.timer_runtime().sleep(limit));
    match select(pin!(body), deadline).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(LifecycleError::TimedOut {
            component: name.to_string(),
            phase: kind,
            after: limit,
        }),
    }
}

/// Schedules the phase: `None` if it was scheduled already, else what it waits for first (boxed,
/// and only if there is anything: most components wait for nothing).
fn schedule<'a>(
    phase: &Phase,
    name: &'a str,
    kind: PhaseKind,
    mut never_started: FailIfNeverStarted<'_>,
) -> Option<Option<BoxFuture<'a, Result<(), LifecycleError>>>> {
    let scheduled = phase.schedule(super::kept_name(name), kind);
    never_started.armed = false;
    let pending = scheduled?;
    log::debug!("{name}: {kind} scheduled");
    Some(
        (!pending.is_empty())
            .then(|| Box::pin(wait_for_dependencies(pending, name, kind)) as BoxFuture<'a, _>),
    )
}

/// A phase another parent scheduled (a diamond): its outcome, as this parent's dependency.
async fn scheduled_elsewhere(
    phase: &Phase,
    name: &str,
    kind: PhaseKind,
    parent: Option<&str>,
) -> Result<(), LifecycleError> {
    if outcome(phase.inner()).await {
        Ok(())
    } else {
        Err(LifecycleError::DependencyFailed {
            component: parent.unwrap_or(name).to_owned(),
            dependency: name.to_owned(),
            phase: kind,
        })
    }
}

/// Dependencies, `started`, then children and hook in the phase's order. A panic in a hook or in
/// a future given to `wait_before` fails the phase, with the panic as its source (the children
/// catch their own).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in its state"
)]
fn run_body<'a, C: Component>(
    component: &'a C,
    phase: &'a Phase,
    name: &'a str,
    kind: PhaseKind,
    teardown: Teardown,
    dependencies: Option<BoxFuture<'a, Result<(), LifecycleError>>>,
) -> impl Future<Output = Result<(), LifecycleError>> + Send + 'a {
    // An async block: see `run_phase`.
    async move {
        if let Some(dependencies) = dependencies {
            dependencies.await?;
        }
        phase.start();
        log::debug!("{name}: {kind} started");
        match kind {
            PhaseKind::Init => {
                if let Some(children) = run_children(component, kind, teardown, name) {
                    children.await?;
                }
                hook(|| component.on_init(), name, kind).await
            }
            PhaseKind::Deinit => {
                let init = component.lifecycle().init_phase();
                if init.is_scheduled() && !init.is_over() {
                    // Deinit after init: let an init in progress end first.
                    Box::pin(outcome(init.inner())).await;
                }
                let has_something_to_undo = match teardown {
                    Teardown::All => !init.is_scheduled() || init.finished().is_set(),
                    Teardown::OnlyInitialized => init.finished().is_set(),
                };
                // Boxed if it is an error: it is kept while the children go down.
                let hook = if has_something_to_undo {
                    hook(|| component.on_deinit(), name, kind)
                        .await
                        .map_err(Box::new)
                } else {
                    log::debug!("{name}: init did not finish, nothing to deinit");
                    Ok(())
                };
                // Best effort: the children go down even if the hook failed.
                let children = match run_children(component, kind, teardown, name) {
                    Some(children) => children.await,
                    None => Ok(()),
                };
                hook.map_err(|error| *error).and(children)
            }
        }
    }
}

async fn wait_for_dependencies(
    pending: Pending,
    name: &str,
    kind: PhaseKind,
) -> Result<(), LifecycleError> {
    let failed = |dependency: String| LifecycleError::DependencyFailed {
        component: name.to_owned(),
        dependency,
        phase: kind,
    };
    if pending.dropped_afters > 0 && kind == PhaseKind::Init {
        return Err(failed("<dropped component>".to_owned()));
    }
    // Init waits for what it needs to be up; deinit only for the order (best effort).
    let wait_for = async |dependency: &PhaseInner| {
        if outcome(dependency).await || kind == PhaseKind::Deinit {
            Ok(())
        } else {
            Err(failed(dependency.name()))
        }
    };
    if let ([], [dependency]) = (&pending.waits[..], &pending.afters[..]) {
        // One `after` and nothing else, as in a chain: no gather.
        return wait_for(dependency).await;
    }
    // The futures given to `wait_before`: a panic in one fails the phase.
    let waits = async {
        match AssertUnwindSafe(futures::future::join_all(pending.waits))
            .catch_unwind()
            .await
        {
            Ok(_) => Ok(()),
            Err(panic) => Err(panicked(panic, name, kind)),
        }
    };
    let afters = strict_gather(pending.afters.iter().map(|dependency| wait_for(dependency)));
    futures::future::try_join(waits, afters).await.map(drop)
}

/// Runs a hook: its error, or its panic (in the call that makes its future, or in the future),
/// as the phase's.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in its state"
)]
fn hook<'a, F: Future<Output = Result<(), BoxError>> + 'a>(
    make: impl FnOnce() -> F + 'a,
    name: &'a str,
    kind: PhaseKind,
) -> impl Future<Output = Result<(), LifecycleError>> + 'a {
    // An async block: see `run_phase`.
    async move {
        let future = std::panic::catch_unwind(AssertUnwindSafe(make))
            .map_err(|panic| panicked(panic, name, kind))?;
        match AssertUnwindSafe(future).catch_unwind().await {
            Ok(result) => result.map_err(|source| LifecycleError::Failed {
                component: name.to_owned(),
                phase: kind,
                source,
            }),
            Err(panic) => Err(panicked(panic, name, kind)),
        }
    }
}

fn panicked(panic: Box<dyn Any + Send>, name: &str, kind: PhaseKind) -> LifecycleError {
    LifecycleError::Failed {
        component: name.to_owned(),
        phase: kind,
        source: Box::new(PanicPayload::new(panic)),
    }
}

/// The children, concurrently, in a future of their own: `None` for a leaf, so that a leaf's
/// phase future has no room for it. Init fails fast (the first error cancels the siblings);
/// deinit lets every child finish and returns the first error.
fn run_children<'a>(
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    name: &'a str,
) -> Option<BoxFuture<'a, Result<(), LifecycleError>>> {
    let children = component.dyn_children().into_items();
    if children.is_empty() {
        return None;
    }
    let runs = children
        .into_iter()
        .map(move |child| child.dyn_run_phase(kind, teardown, Some(name)));
    Some(Box::pin(gather_children(runs, kind == PhaseKind::Init)))
}

/// Runs the children's phases concurrently: the first error, and with `fail_fast` the siblings
/// dropped at once.
///
/// Each child's future is made and first polled in turn, in place: one that is done at once (a
/// leaf with a quick hook, the common case) never takes a slot in the `FuturesUnordered`, and its
/// memory is reused by the next. On a fail-fast error, the children not made yet are made and
/// dropped, which fails their phases as cancelled before they started.
async fn gather_children<'a>(
    runs: impl Iterator<Item = BoxFuture<'a, Result<(), LifecycleError>>> + Send,
    fail_fast: bool,
) -> Result<(), LifecycleError> {
    let mut runs = MadeOnDrop(runs);
    let mut first_error = None;
    let mut pending = FuturesUnordered::new();
    // Moved in as `&mut`: `push` takes `&self`, and a shared borrow would need the futures `Sync`.
    let (runs_left, pending_ref, error_ref) = (&mut runs, &mut pending, &mut first_error);
    poll_fn(move |cx| {
        for mut run in runs_left.0.by_ref() {
            match run.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    error_ref.get_or_insert(error);
                    if fail_fast {
                        break;
                    }
                }
                Poll::Pending => pending_ref.push(run),
            }
        }
        Poll::Ready(())
    })
    .await;
    if fail_fast && first_error.is_some() {
        // Drop the siblings (pending, and never made) before reporting.
        drop(pending);
        drop(runs);
        return first_error.map_or(Ok(()), Err);
    }
    while let Some(result) = pending.next().await {
        if let Err(error) = result {
            first_error.get_or_insert(error);
            if fail_fast {
                break;
            }
        }
    }
    drop(pending);
    first_error.map_or(Ok(()), Err)
}

/// Children's futures not made yet: made and dropped if this is dropped, so that each child's
/// phase is failed as cancelled before it started, whatever drops the gather.
struct MadeOnDrop<I: Iterator>(I);

impl<I: Iterator> Drop for MadeOnDrop<I> {
    fn drop(&mut self) {
        self.0.by_ref().for_each(drop);
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
