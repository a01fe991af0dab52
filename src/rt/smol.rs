//! The smol adapter.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use smol::Executor;

use super::adapters::{self, Seal};
use super::registry::Registry;
use super::task::{self, JoinHandle, WakeOnAbort};
use super::{BoxFuture, Runtime, Spawner, Timer};

/// Spawns on smol's global executor or on an executor of yours; sleeps on `async-io`.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::Runtime;
///
/// let rt = Runtime::smol(); // smol's global executor
/// assert_eq!(smol::block_on(rt.spawn(async { 2 * 21 })).unwrap(), 42);
/// ```
///
/// # Caveats
///
/// A task spawned on an executor of yours runs only while something runs that executor
/// (`executor.run(..)`, or `tick()`); dropping the executor cancels its tasks, whose handles then
/// give [`JoinError::Cancelled`](super::JoinError::Cancelled).
#[derive(Clone, Default)]
pub struct Smol {
    /// `None`: smol's global executor.
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// The adapter for smol's global executor (`smol::spawn`), which runs on its own threads.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, Smol};
    ///
    /// let rt = Runtime::with_timer(Smol::global(), Smol::global());
    /// assert_eq!(smol::block_on(rt.spawn(async { "global" })).unwrap(), "global");
    /// ```
    pub fn global() -> Self {
        Self { executor: None }
    }

    /// The adapter for `executor`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use asynchronously::rt::{Runtime, Smol};
    ///
    /// let executor = Arc::new(smol::Executor::new());
    /// let smol = Smol::new(executor.clone());
    /// let rt = Runtime::with_timer(smol.clone(), smol);
    /// let task = rt.spawn(async { "mine" });
    /// assert_eq!(smol::block_on(executor.run(task)).unwrap(), "mine");
    /// ```
    pub fn new(executor: Arc<Executor<'static>>) -> Self {
        Self {
            executor: Some(executor),
        }
    }
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smol")
            .field("global", &self.executor.is_none())
            .finish()
    }
}

impl Spawner for Smol {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        spawn_detached(self.executor.as_deref(), future);
    }

    fn executor(&self, _: Seal) -> Option<adapters::Executor> {
        Some(adapters::Executor::Smol(self.executor.clone()))
    }
}

/// Spawns `task` on `executor` (`None`: smol's global one) directly, in smol's own allocation.
pub(super) fn spawn_detached(
    executor: Option<&Executor<'static>>,
    task: impl Future<Output = ()> + Send + 'static,
) {
    match executor {
        None => smol::spawn(task).detach(),
        Some(executor) => executor.spawn(task).detach(),
    }
}

/// Spawns `task` on `executor` (`None`: smol's global one), and gives smol's handle on it.
pub(super) fn spawn_kept(
    executor: Option<&Executor<'static>>,
    task: impl Future<Output = ()> + Send + 'static,
) -> smol::Task<()> {
    match executor {
        None => smol::spawn(task),
        Some(executor) => executor.spawn(task),
    }
}

/// Spawns on smol directly, with a handle; aborted through the state they share.
pub(super) fn spawn<F>(
    executor: Option<&Executor<'static>>,
    future: F,
    registry: &crate::sync::Arc<Registry>,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, shared) = task::with_handle::<_, WakeOnAbort>(future, registry);
    spawn_detached(executor, task);
    JoinHandle::new(shared, None)
}

impl Timer for Smol {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        // `Timer::after` never fires when the deadline would overflow.
        Box::pin(smol::Timer::after(duration).map(drop))
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(smol::Timer::at(deadline).map(drop))
    }
}

impl Runtime {
    cfg_feature! {
        "smol",
        /// A runtime on smol's global executor, sleeping on `async-io`.
        ///
        /// # Examples
        ///
        /// ```
        /// use asynchronously::rt::Runtime;
        ///
        /// let rt = Runtime::smol();
        /// smol::block_on(rt.sleep(std::time::Duration::from_millis(1)));
        /// ```
        pub fn smol() -> Runtime {
            Runtime::with_timer(Smol::global(), Smol::global())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Runtime;

    #[test]
    fn the_smol_adapter_is_spawned_on_directly() {
        let rt = Runtime::smol();
        assert!(matches!(rt.inner.executor, Some(super::adapters::Executor::Smol(None))));
        assert_eq!(smol::block_on(rt.spawn(async { 5 })).unwrap(), 5);
    }
}
