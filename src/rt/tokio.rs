//! The tokio adapter.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::{Handle, Id};

use super::adapters::{Abort, Executor, Seal};
use super::registry::Registry;
use super::task::{self, JoinHandle};
use super::{BoxFuture, Runtime, Spawner, Timer};
use crate::sync::{Arc, lock};

/// Spawns on a tokio runtime and sleeps on `tokio::time`, so `tokio::time::pause()` holds.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::Runtime;
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() {
///     let rt = Runtime::tokio(); // = Runtime::with_timer(Tokio::current(), Tokio::current())
///     assert_eq!(rt.spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
/// ```
///
/// # Caveats
///
/// The tokio runtime needs its time driver (`enable_time()` or `enable_all()`, which
/// `#[tokio::main]` and `#[tokio::test]` turn on); sleeping on one without it panics inside the
/// task, which then ends with [`JoinError::Panicked`](super::JoinError::Panicked). Tasks spawned
/// after the runtime has shut down are dropped at once and end with
/// [`JoinError::Cancelled`](super::JoinError::Cancelled).
#[derive(Debug, Clone)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// The adapter for the tokio runtime this is called from.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::Tokio;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let tokio = runtime.block_on(async { Tokio::current() });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::runtime::Handle::current` does; use
    /// [`try_current`](Tokio::try_current) to get `None` instead.
    pub fn current() -> Self {
        Self::new(Handle::current())
    }

    /// The adapter for the tokio runtime this is called from, or `None` outside one.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::Tokio;
    ///
    /// assert!(Tokio::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Self> {
        Handle::try_current().ok().map(Self::new)
    }

    /// The adapter for the runtime behind `handle`.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, Tokio};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    /// let tokio = Tokio::new(runtime.handle().clone());
    /// let rt = Runtime::with_timer(tokio.clone(), tokio);
    /// assert_eq!(runtime.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    /// ```
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// The tokio handle this adapter spawns on.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::Tokio;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let tokio = Tokio::new(runtime.handle().clone());
    /// assert_eq!(tokio.handle().id(), runtime.handle().id());
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Spawner for Tokio {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        // Dropping tokio's JoinHandle detaches; cancellation goes through ours.
        drop(self.handle.spawn(future));
    }

    fn executor(&self, _: Seal) -> Option<Executor> {
        Some(Executor::Tokio(self.handle.clone()))
    }
}

/// Spawns on tokio directly: the task is stored in tokio's own allocation, and aborted through
/// tokio (its abort drops the task, which reports as it is dropped), so the state it shares
/// with its handle has no waker for aborts.
pub(super) fn spawn<F>(handle: &Handle, future: F, registry: &Arc<Registry>) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, shared) = task::with_handle::<_, ()>(future, registry);
    let abort = Abort::Tokio(handle.spawn(task).abort_handle());
    JoinHandle::new(shared, Some(abort))
}

impl Timer for Tokio {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        // Entering binds the sleep to this runtime's time driver, whoever calls.
        let _entered = self.handle.enter();
        Box::pin(tokio::time::sleep(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let _entered = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn now(&self) -> Instant {
        let _entered = self.handle.enter();
        tokio::time::Instant::now().into_std()
    }

    fn system_now(&self) -> SystemTime {
        // The wall clock, moved by however far tokio's clock is from the real one (non-zero only
        // while tokio's time is paused or advanced by hand).
        let tokio_now = self.now();
        let real_now = Instant::now();
        let wall = SystemTime::now();
        if tokio_now >= real_now {
            wall.checked_add(tokio_now - real_now).unwrap_or(wall)
        } else {
            wall.checked_sub(real_now - tokio_now).unwrap_or(wall)
        }
    }
}

impl Runtime {
    cfg_feature! {
        "tokio",
        /// A runtime on the tokio runtime this is called from: its spawner and its timer.
        ///
        /// # Examples
        ///
        /// ```
        /// use asynchronously::rt::Runtime;
        ///
        /// #[tokio::main]
        /// async fn main() {
        ///     let rt = Runtime::tokio();
        ///     assert_eq!(rt.spawn(async { "on tokio" }).await.unwrap(), "on tokio");
        /// }
        /// ```
        ///
        /// # Panics
        ///
        /// Outside a tokio runtime.
        pub fn tokio() -> Runtime {
            let tokio = Tokio::current();
            Runtime::with_timer(tokio.clone(), tokio)
        }
    }
}

/// One default `Runtime` per live tokio runtime, so that tasks spawned through the default and a
/// later `wait_for_all_other_tasks()` meet in one registry.
static DEFAULTS: Mutex<Option<HashMap<Id, Runtime>>> = Mutex::new(None);

/// Removes a tokio runtime's entry when that runtime drops its tasks at shutdown, before its id
/// can be given to another runtime.
struct ForgetOnShutdown(Id);

impl Drop for ForgetOnShutdown {
    fn drop(&mut self) {
        let mut defaults = lock(&DEFAULTS);
        if let Some(map) = defaults.as_mut() {
            map.remove(&self.0);
        }
    }
}

/// The default runtime for the tokio runtime this is called from, if any.
pub(super) fn current_default() -> Option<Runtime> {
    let handle = Handle::try_current().ok()?;
    let id = handle.id();
    let mut defaults = lock(&DEFAULTS);
    let map = defaults.get_or_insert_with(HashMap::new);
    if let Some(rt) = map.get(&id) {
        return Some(rt.clone());
    }
    let tokio = Tokio::new(handle.clone());
    let rt = Runtime::with_timer(tokio.clone(), tokio);
    map.insert(id, rt.clone());
    drop(defaults);
    let sentinel = ForgetOnShutdown(id);
    drop(handle.spawn(async move {
        let _sentinel = sentinel;
        std::future::pending::<()>().await;
    }));
    Some(rt)
}

#[cfg(test)]
mod tests {
    use super::{Runtime, Tokio};

    #[test]
    fn the_tokio_adapter_is_spawned_on_directly() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tokio = Tokio::new(runtime.handle().clone());
        let rt = Runtime::with_timer(tokio.clone(), tokio);
        assert!(matches!(rt.inner.executor, Some(super::Executor::Tokio(_))));
        assert_eq!(runtime.block_on(rt.spawn(async { 5 })).unwrap(), 5);
    }
}
