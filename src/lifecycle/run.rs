//! Running a phase over a component tree, and `run_until`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;

use futures::FutureExt;
use futures::future::{BoxFuture, Either, select};
use futures::stream::{FuturesUnordered, StreamExt};

use super::phase::{Pending, outcome};
use super::{Component, ComponentExt, DynComponent, LifecycleError, Phase, PhaseKind, graph};
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
    run_phase(component, kind, teardown, None).await
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
        let name = self.component.dyn_name();
        if phase.schedule(&name, self.kind).is_some() {
            phase.fail();
            log::debug!("{name}: {} cancelled before it started", self.kind);
        }
    }
}

/// Runs `kind` of `component` and its subtree. `parent` is set when a parent runs it.
fn run_phase<'a>(
    component: &'a dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    parent: Option<&'a str>,
) -> BoxFuture<'a, Result<(), LifecycleError>> {
    let never_started = FailIfNeverStarted {
        component,
        kind,
        armed: true,
    };
    Box::pin(async move {
        // Bind the whole guard: the block would otherwise capture only its `armed` field, and
        // the guard itself would be dropped (and fire) as soon as `run_phase` returns.
        let mut never_started = never_started;
        let lifecycle = component.dyn_lifecycle();
        let phase = lifecycle.phase(kind);
        let name = component.dyn_name();
        let scheduled = phase.schedule(&name, kind);
        never_started.armed = false;
        let Some(pending) = scheduled else {
            // Scheduled already, by another parent (a diamond): wait for it, so that "parent
            // finished" means "subtree finished".
            return if outcome(phase.inner()).await {
                Ok(())
            } else {
                Err(LifecycleError::DependencyFailed {
                    component: parent.unwrap_or(&name).to_owned(),
                    dependency: name.into_owned(),
                    phase: kind,
                })
            };
        };
        log::debug!("{name}: {kind} scheduled");
        let cancelled = FailIfCancelled(phase, &name, kind);
        let body = AssertUnwindSafe(run_body(component, phase, &name, kind, teardown, pending))
            .catch_unwind()
            .map(|outcome| {
                outcome.unwrap_or_else(|panic| {
                    Err(LifecycleError::Failed {
                        component: name.to_string(),
                        phase: kind,
                        source: Box::new(PanicPayload::new(panic)),
                    })
                })
            });
        let result = match lifecycle.timeout(kind) {
            None => body.await,
            Some(limit) => {
                let deadline = lifecycle.timer_runtime().sleep(limit);
                match select(pin!(body), pin!(deadline)).await {
                    Either::Left((result, _)) => result,
                    Either::Right(((), _)) => Err(LifecycleError::TimedOut {
                        component: name.to_string(),
                        phase: kind,
                        after: limit,
                    }),
                }
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
    })
}

/// Dependencies, `started`, then children and hook in the phase's order.
async fn run_body(
    component: &dyn DynComponent,
    phase: &Phase,
    name: &str,
    kind: PhaseKind,
    teardown: Teardown,
    pending: Pending,
) -> Result<(), LifecycleError> {
    wait_for_dependencies(pending, name, kind).await?;
    phase.start();
    log::debug!("{name}: {kind} started");
    match kind {
        PhaseKind::Init => {
            run_children(component, kind, teardown, name).await?;
            run_hook(component, kind, name).await
        }
        PhaseKind::Deinit => {
            let init = component.dyn_lifecycle().init_phase();
            if init.is_scheduled() && !init.is_over() {
                // Deinit after init: let an init in progress end first.
                outcome(init.inner()).await;
            }
            let has_something_to_undo = match teardown {
                Teardown::All => !init.is_scheduled() || init.finished().is_set(),
                Teardown::OnlyInitialized => init.finished().is_set(),
            };
            let hook = if has_something_to_undo {
                run_hook(component, kind, name).await
            } else {
                log::debug!("{name}: init did not finish, nothing to deinit");
                Ok(())
            };
            // Best effort: the children go down even if the hook failed.
            let children = run_children(component, kind, teardown, name).await;
            hook.and(children)
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
    if pending.waits.is_empty() && pending.afters.is_empty() {
        return Ok(());
    }
    let waits = futures::future::join_all(pending.waits).map(Ok);
    let afters = strict_gather(pending.afters.into_iter().map(|dependency| async move {
        // Init waits for what it needs to be up; deinit only for the order (best effort).
        if outcome(&dependency).await || kind == PhaseKind::Deinit {
            Ok(())
        } else {
            Err(failed(dependency.name()))
        }
    }));
    futures::future::try_join(waits, afters).await.map(drop)
}

async fn run_hook(
    component: &dyn DynComponent,
    kind: PhaseKind,
    name: &str,
) -> Result<(), LifecycleError> {
    let hook = match kind {
        PhaseKind::Init => component.dyn_on_init(),
        PhaseKind::Deinit => component.dyn_on_deinit(),
    };
    hook.await.map_err(|source| LifecycleError::Failed {
        component: name.to_owned(),
        phase: kind,
        source,
    })
}

/// The children, concurrently. Init fails fast (the first error cancels the siblings); deinit
/// lets every child finish and returns the first error.
async fn run_children(
    component: &dyn DynComponent,
    kind: PhaseKind,
    teardown: Teardown,
    name: &str,
) -> Result<(), LifecycleError> {
    let children = component.dyn_children().into_items();
    if children.is_empty() {
        return Ok(());
    }
    let runs = children
        .into_iter()
        .map(|child| run_phase(child, kind, teardown, Some(name)));
    match kind {
        PhaseKind::Init => strict_gather(runs).await.map(drop),
        PhaseKind::Deinit => {
            let mut runs: FuturesUnordered<_> = runs.collect();
            let mut first_error = None;
            while let Some(result) = runs.next().await {
                if let (Err(error), None) = (result, &first_error) {
                    first_error = Some(error);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
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
