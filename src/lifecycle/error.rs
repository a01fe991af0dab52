//! `LifecycleError` and `BoxError`.

use std::fmt;
use std::time::Duration;

/// The error type of a component's hooks: any error that can cross threads.
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::BoxError;
///
/// let error: BoxError = "connection refused".into();
/// assert_eq!(error.to_string(), "connection refused");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which phase of a component's life: coming up or going down.
///
/// # Examples
///
/// ```
/// use asynchronously::lifecycle::PhaseKind;
///
/// assert_eq!(PhaseKind::Init.to_string(), "init");
/// assert_eq!(PhaseKind::Deinit.to_string(), "deinit");
/// assert_eq!(PhaseKind::Run.to_string(), "run");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PhaseKind {
    /// Initialisation: Python's `async_init`.
    Init,
    /// De-initialisation: Python's `async_deinit`.
    Deinit,
    /// The long-running part between the two, [`Component::on_run`](super::Component::on_run),
    /// which a [`Service`](super::Service) runs: only errors name it (a [`Lifecycle`](super::Lifecycle)
    /// has an init and a deinit phase).
    Run,
}

impl fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Init => "init",
            Self::Deinit => "deinit",
            Self::Run => "run",
        })
    }
}

/// Why a component's init or deinit did not complete.
///
/// Each message names the component; a hook's own error is the [`source`](std::error::Error::source)
/// of [`Failed`](LifecycleError::Failed), unchanged.
///
/// # Examples
///
/// ```
/// use std::error::Error as _;
/// use asynchronously::lifecycle::{LifecycleError, PhaseKind};
///
/// let error = LifecycleError::Failed {
///     component: "database".into(),
///     phase: PhaseKind::Init,
///     source: "connection refused".into(),
/// };
/// assert_eq!(error.to_string(), "component `database` failed during init");
/// assert_eq!(error.source().unwrap().to_string(), "connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// A dependency was added to a phase that was already scheduled (Python's `RuntimeError`).
    #[error(
        "cannot add a dependency to the {phase} of component `{component}`: it is already scheduled"
    )]
    AlreadyScheduled {
        /// The component whose phase was scheduled.
        component: String,
        /// The phase.
        phase: PhaseKind,
    },
    /// The component's hook (`on_init`, `on_deinit`, or `on_run` as phase
    /// [`Run`](PhaseKind::Run)) returned an error or panicked (the panic is a
    /// [`PanicPayload`](crate::rt::PanicPayload)).
    #[error("component `{component}` failed during {phase}")]
    Failed {
        /// The component whose hook failed.
        component: String,
        /// The phase.
        phase: PhaseKind,
        /// The hook's error.
        source: BoxError,
    },
    /// A phase this one waited for (with `after`, `depends_on`, or as a shared child) failed, so
    /// this one never ran.
    #[error("component `{component}` could not {phase}: its dependency `{dependency}` failed")]
    DependencyFailed {
        /// The component that waited.
        component: String,
        /// The component it waited for.
        dependency: String,
        /// The phase.
        phase: PhaseKind,
    },
    /// The `after` edges form a cycle, which would wait forever; found before any hook ran.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle {
        /// The components on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// The phase took longer than the component's timeout (see
    /// [`Lifecycle::with_timeouts`](super::Lifecycle::with_timeouts)).
    #[error("component `{component}` timed out during {phase} after {after:?}")]
    TimedOut {
        /// The component.
        component: String,
        /// The phase.
        phase: PhaseKind,
        /// The timeout.
        after: Duration,
    },
    /// A [`Service`](super::Service)'s deinit took longer than its
    /// [`shutdown_timeout`](super::Service::shutdown_timeout): it was abandoned (each unfinished
    /// hook's future dropped).
    #[error("shutdown timed out; still in deinit: {}", list(stuck))]
    ShutdownTimedOut {
        /// The components whose `on_deinit` was still running, in the order they started.
        stuck: Vec<String>,
    },
    /// A second signal came during a [`Service`](super::Service)'s shutdown: the deinit was
    /// abandoned (each unfinished hook's future dropped).
    #[error("shutdown forced by a second signal; still in deinit: {}", list(stuck))]
    ForcedShutdown {
        /// The components whose `on_deinit` was still running, in the order they started.
        stuck: Vec<String>,
    },
    /// [`Service::run`](super::Service::run) was given a root whose init was called and did not
    /// finish, or whose deinit was called: the service would not own its lifecycle.
    #[error("cannot run component `{component}` as a service: its {phase} was already called")]
    AlreadyCalled {
        /// The root.
        component: String,
        /// The phase called before.
        phase: PhaseKind,
    },
    /// [`Service::catch_signals`](super::Service::catch_signals) could not be honoured: it was
    /// called twice on one service, another running service of the process catches them, or
    /// the OS refused.
    #[error("cannot catch signals")]
    CatchSignals {
        /// Why.
        source: std::io::Error,
    },
}

/// `a, b`, or `none` for an empty list.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl LifecycleError {
    /// The component the error is about (the first on the path, for a cycle; the first stuck,
    /// for a shutdown; `""` when there is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::lifecycle::LifecycleError;
    ///
    /// let cycle = LifecycleError::Cycle { path: vec!["a".into(), "b".into(), "a".into()] };
    /// assert_eq!(cycle.component(), "a");
    /// ```
    pub fn component(&self) -> &str {
        match self {
            Self::AlreadyScheduled { component, .. }
            | Self::Failed { component, .. }
            | Self::DependencyFailed { component, .. }
            | Self::TimedOut { component, .. }
            | Self::AlreadyCalled { component, .. } => component,
            Self::Cycle { path } => path.first().map_or("", String::as_str),
            Self::ShutdownTimedOut { stuck } | Self::ForcedShutdown { stuck } => {
                stuck.first().map_or("", String::as_str)
            }
            Self::CatchSignals { .. } => "",
        }
    }
}
