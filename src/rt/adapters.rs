//! The one place that lists the adapters: the seam between a [`Runtime`] and the executors that
//! take tasks unboxed, and the order in which the default runtime looks for one.
//!
//! Everything else in `rt` is written against [`Spawner`](super::Spawner) and
//! [`Timer`](super::Timer). An adapter whose executor can store a task in its own allocation
//! (tokio's, smol's) hands that executor over through [`Spawner::executor`](super::Spawner), and
//! the runtime spawns on it here (the "bytes allocated per spawned task" row: 192 bytes a task
//! on tokio, against 240 through a boxed [`Spawner::spawn_boxed`](super::Spawner)). A spawn that
//! is generic over the task's future cannot go through a trait object, which is why this seam is
//! an enum: one variant for each such adapter, each spawning in its own file.

use std::future::Future;

use super::Runtime;
use super::registry::Registry;
use super::task::JoinHandle;
use crate::sync::Arc;

/// Proof that a caller is inside this crate: [`Spawner::executor`](super::Spawner) takes one, so
/// that no other crate can call or implement it.
#[allow(unreachable_pub)] // public in a private module: nameable only here (a sealed method)
#[derive(Debug)]
pub struct Seal;

/// An executor that takes tasks unboxed.
#[allow(unreachable_pub)] // see `Seal`
#[derive(Debug)]
pub enum Executor {
    #[cfg(feature = "tokio")]
    Tokio(::tokio::runtime::Handle),
    #[cfg(feature = "smol")]
    /// `None`: smol's global executor.
    Smol(Option<std::sync::Arc<::smol::Executor<'static>>>),
}

impl Executor {
    pub(super) fn spawn<F>(&self, future: F, registry: &Arc<Registry>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(not(any(feature = "tokio", feature = "smol")))]
        let _ = (future, registry);
        match *self {
            #[cfg(feature = "tokio")]
            Self::Tokio(ref handle) => super::tokio::spawn(handle, future, registry),
            #[cfg(feature = "smol")]
            Self::Smol(ref executor) => super::smol::spawn(executor.as_deref(), future, registry),
        }
    }

    /// Spawns `task`, and gives the executor's handle on it, which does not cancel it when it
    /// is dropped. (A group keeps it until it takes the task's outcome: the executor's
    /// allocation is then freed on the group's thread, where it was made, rather than on the
    /// worker's. glibc's allocator locks an arena for a block that another thread frees, and that
    /// lock, taken by the spawning thread's next allocation too, was the cost of a task on smol:
    /// `perf record -e syscalls:sys_enter_futex` put half of a group's futex calls in it.)
    pub(super) fn spawn_kept(&self, task: impl Future<Output = ()> + Send + 'static) -> Kept {
        #[cfg(not(any(feature = "tokio", feature = "smol")))]
        drop(task);
        match *self {
            #[cfg(feature = "tokio")]
            Self::Tokio(ref handle) => Kept::Tokio(handle.spawn(task)),
            #[cfg(feature = "smol")]
            Self::Smol(ref executor) => {
                Kept::Smol(Some(super::smol::spawn_kept(executor.as_deref(), task)))
            }
        }
    }

    pub(super) fn spawn_detached(&self, task: impl Future<Output = ()> + Send + 'static) {
        #[cfg(not(any(feature = "tokio", feature = "smol")))]
        drop(task);
        match *self {
            #[cfg(feature = "tokio")]
            Self::Tokio(ref handle) => drop(handle.spawn(task)),
            #[cfg(feature = "smol")]
            Self::Smol(ref executor) => super::smol::spawn_detached(executor.as_deref(), task),
        }
    }
}

/// An executor's handle on a task that [`Executor::spawn_kept`] spawned; dropping it lets the
/// task run on.
pub(crate) enum Kept {
    /// No handle: the spawner took the task boxed.
    None,
    #[cfg(feature = "tokio")]
    Tokio(
        #[allow(dead_code, reason = "held to be dropped, never read")] ::tokio::task::JoinHandle<()>,
    ),
    #[cfg(feature = "smol")]
    /// `None` once detached.
    Smol(Option<::smol::Task<()>>),
}

impl Drop for Kept {
    fn drop(&mut self) {
        // A dropped smol `Task` cancels its task: it is detached instead.
        #[cfg(feature = "smol")]
        if let Self::Smol(task) = self {
            if let Some(task) = task.take() {
                task.detach();
            }
        }
    }
}

/// How an executor that aborts tasks itself aborts one (tokio's: its abort drops the task, which
/// then reports as it is dropped).
#[derive(Clone)]
pub(crate) enum Abort {
    #[cfg(feature = "tokio")]
    Tokio(::tokio::task::AbortHandle),
    /// Never made: in a build with no such adapter, it keeps the type inhabited, so that the
    /// code that handles these aborts is the same in every build.
    #[cfg(not(feature = "tokio"))]
    #[expect(dead_code, reason = "no adapter in this build aborts tasks itself")]
    Never,
}

impl Abort {
    pub(crate) fn abort(&self) {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(handle) => handle.abort(),
            #[cfg(not(feature = "tokio"))]
            Self::Never => {}
        }
    }
}

/// The default runtime of the executor this is called from, if it is one the crate can tell
/// (a tokio runtime's).
pub(super) fn called_from() -> Option<Runtime> {
    #[cfg(feature = "tokio")]
    if let Some(rt) = super::tokio::current_default() {
        return Some(rt);
    }
    None
}

/// The process-wide fallback of the default runtime: the first enabled of smol's global
/// executor and a thread pool, else a thread per task.
#[allow(unreachable_code)] // the first enabled adapter returns
pub(super) fn fallback() -> Runtime {
    #[cfg(feature = "smol")]
    return Runtime::smol();
    #[cfg(feature = "thread-pool")]
    return Runtime::thread_pool();
    Runtime::new(super::ThreadPerTask)
}
