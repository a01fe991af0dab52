//! The process-wide default runtime.

use std::sync::{OnceLock, PoisonError, RwLock};

use super::{Runtime, adapters};

static INSTALLED: RwLock<Option<Runtime>> = RwLock::new(None);

/// The runtime that primitives use when they are not given one.
///
/// In order, the first of:
///
/// 1. the runtime installed by [`set_default`];
/// 2. with the `tokio` feature, when called inside a tokio runtime: a [`Runtime`] on that tokio
///    runtime, the same one for every call inside it (so tasks it spawned and a later
///    [`wait_for_all_other_tasks`](crate::wait_for_all_other_tasks) meet);
/// 3. with the `smol` feature: smol's global executor;
/// 4. with the `thread-pool` feature (on by default): one process-wide `ThreadPool` with a thread
///    per core;
/// 5. with none of these: a runtime on [`ThreadPerTask`](super::ThreadPerTask), which runs each
///    task on a thread of its own, so that nothing ever has nowhere to run.
///
/// Each of 3 to 5 is created once, on first use, and shared by the whole process.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::default_runtime;
///
/// let rt = default_runtime();
/// let task = rt.spawn(async { "on the default runtime" });
/// assert_eq!(futures::executor::block_on(task).unwrap(), "on the default runtime");
/// ```
pub fn default_runtime() -> Runtime {
    if let Some(rt) = INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return rt.clone();
    }
    if let Some(rt) = adapters::called_from() {
        return rt;
    }
    static FALLBACK: OnceLock<Runtime> = OnceLock::new();
    FALLBACK.get_or_init(adapters::fallback).clone()
}

/// Installs `rt` as the process-wide default, in place of any earlier one.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{default_runtime, set_default, Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// set_default(rt.clone());
/// let task = default_runtime().spawn(std::future::pending::<()>());
/// assert_eq!(rt.live_tasks(), 1); // it went to the installed runtime
/// # drop(task);
/// ```
pub fn set_default(rt: Runtime) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Some(rt);
}
