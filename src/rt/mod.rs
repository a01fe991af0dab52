//! Spawning, time, and the [`Runtime`] handle that every primitive runs on.
//!
//! The crate never picks an executor for you. A [`Runtime`] bundles three things:
//!
//! - a [`Spawner`], the one method that hands a boxed future to *your* executor;
//! - a [`Timer`], which sleeps and tells time (real clocks by default, [`ManualClock`] in tests);
//! - the registry of live tasks behind [`Runtime::live_tasks`] and
//!   [`Runtime::wait_for_all_other_tasks`].
//!
//! Feature-gated adapters implement [`Spawner`] and [`Timer`] for tokio ([`Tokio`]), smol
//! ([`Smol`]), async-std ([`AsyncStd`]) and a no-runtime thread pool ([`ThreadPool`]).
//!
//! # Examples
//!
//! Any closure that takes a [`BoxFuture`] is a spawner. Here every task runs on a thread of its
//! own, with no async runtime at all (what [`ThreadPerTask`] does):
//!
//! ```
//! use asynchronously::rt::Runtime;
//!
//! let rt = Runtime::new(|task| {
//!     std::thread::spawn(move || futures::executor::block_on(task));
//! });
//! let answer = rt.spawn(async { 6 * 7 });
//! assert_eq!(futures::executor::block_on(answer).unwrap(), 42);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use crate::sync::Arc as SyncArc;

mod adapters;
mod default;
pub(crate) mod group;
mod manual;
mod registry;
mod task;
mod thread_per_task;
pub(crate) mod timer;

cfg_feature! {
    "async-std",
    mod async_std;
    pub use self::async_std::AsyncStd;
}
cfg_feature! {
    "smol",
    mod smol;
    pub use self::smol::Smol;
}
cfg_feature! {
    "thread-pool",
    mod thread_pool;
    pub use self::thread_pool::ThreadPool;
}
cfg_feature! {
    "tokio",
    mod tokio;
    pub use self::tokio::Tokio;
}

pub use self::default::{default_runtime, set_default};
pub use self::manual::{ManualClock, WaitForSleepers};
pub use self::registry::WaitForAllOtherTasks;
pub use self::task::{AbortHandle, JoinError, JoinHandle, PanicPayload, TaskId};
pub use self::thread_per_task::ThreadPerTask;

use self::adapters::{Executor, Seal};
use self::registry::Registry;
use self::task::WakeOnAbort;

/// A boxed, type-erased, `Send` future: what a [`Spawner`] receives and a [`Timer`] returns.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::BoxFuture;
///
/// let task: BoxFuture<u32> = Box::pin(async { 1 });
/// assert_eq!(futures::executor::block_on(task), 1);
/// ```
pub type BoxFuture<T> = futures::future::BoxFuture<'static, T>;

/// Runs futures to completion in the background: the one thing an executor must do for us.
///
/// Implement it for your executor, or pass a closure: every `Fn(BoxFuture<()>)` that is
/// `Send + Sync + 'static` is a `Spawner`. The trait is object-safe and has one method, because
/// tokio does not implement `futures::task::Spawn` and we do not want a second box per task.
///
/// A spawner may also drop the future without running it (an executor that has shut down does
/// so); the task's [`JoinHandle`] then resolves to [`JoinError::Cancelled`].
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{BoxFuture, Runtime, Spawner};
///
/// /// Runs every task on a thread of its own (as `rt::ThreadPerTask` does).
/// struct OwnThread;
///
/// impl Spawner for OwnThread {
///     fn spawn_boxed(&self, future: BoxFuture<()>) {
///         std::thread::spawn(move || futures::executor::block_on(future));
///     }
/// }
///
/// let rt = Runtime::new(OwnThread);
/// assert_eq!(futures::executor::block_on(rt.spawn(async { "done" })).unwrap(), "done");
/// ```
pub trait Spawner: Send + Sync + 'static {
    /// Starts running `future` in the background. It must not block the caller.
    fn spawn_boxed(&self, future: BoxFuture<()>);

    /// Not part of the API, and not implementable outside this crate: how this crate's own
    /// adapters hand over an executor that takes tasks unboxed.
    #[doc(hidden)]
    fn executor(&self, _: Seal) -> Option<Executor> {
        None
    }
}

impl<F> Spawner for F
where
    F: Fn(BoxFuture<()>) + Send + Sync + 'static,
{
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        self(future)
    }
}

/// Sleeps and tells time: the clock every primitive that waits reads from its [`Runtime`].
///
/// The default (used by [`Runtime::new`]) sleeps on `futures-timer` and reads the std clocks.
/// [`ManualClock`] makes time deterministic in tests; the tokio adapter follows
/// `tokio::time::pause()`.
///
/// Implementations must not panic or overflow on a huge sleep (`Duration::MAX` sleeps forever).
/// A zero-length sleep never reaches the timer: [`Runtime::sleep`] completes it at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::rt::{BoxFuture, Timer};
///
/// /// A clock on which every sleep is over at once; it tells the std clocks' time.
/// struct Impatient;
///
/// impl Timer for Impatient {
///     fn sleep(&self, _duration: Duration) -> BoxFuture<()> {
///         Box::pin(async {})
///     }
/// }
///
/// futures::executor::block_on(Impatient.sleep(Duration::from_secs(3600)));
/// ```
pub trait Timer: Send + Sync + 'static {
    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
    /// A future that completes once this clock reaches `deadline`. The default sleeps for what
    /// is left of it; a timer that can wait for an instant itself should say so, as tokio's
    /// does: a loop on deadlines then loses nothing to the time it takes to compute them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::rt::{ManualClock, Timer};
    /// use futures::FutureExt;
    ///
    /// let clock = ManualClock::new();
    /// let mut due = clock.sleep_until(clock.now() + Duration::from_secs(1));
    /// assert!((&mut due).now_or_never().is_none());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(due.now_or_never().is_some());
    /// ```
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        self.sleep(deadline.saturating_duration_since(self.now()))
    }
    /// The monotonic time on this clock; by default `Instant::now()`.
    fn now(&self) -> Instant {
        Instant::now()
    }
    /// The wall-clock time on this clock, used to schedule at a given moment (`first_at`); by
    /// default `SystemTime::now()`.
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
    /// A random number, for jitter ([`PeriodicBuilder::jitter`](crate::PeriodicBuilder::jitter)).
    /// By default a per-thread generator seeded from the OS (std's `RandomState`); a
    /// [`ManualClock`] draws from its own seed instead, so that a test's draws are the same on
    /// every run.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{ManualClock, Timer};
    ///
    /// let (a, b) = (ManualClock::with_seed(7), ManualClock::with_seed(7));
    /// assert_eq!([a.random(), a.random()], [b.random(), b.random()]);
    /// ```
    fn random(&self) -> u64 {
        timer::thread_random()
    }
}

/// The handle every primitive runs on: a spawner, a timer, and the registry of live tasks.
///
/// Cheap to clone: clones share one spawner, one timer and one registry. Tasks spawned through it
/// are counted by [`live_tasks`](Runtime::live_tasks) until they finish, so that
/// [`wait_for_all_other_tasks`](Runtime::wait_for_all_other_tasks) can drain them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::rt::{ManualClock, Runtime, ThreadPerTask};
///
/// let clock = ManualClock::new();
/// let rt = Runtime::with_timer(
///     ThreadPerTask,
///     clock.clone(),
/// );
/// let sleeper = rt.spawn({
///     let rt = rt.clone();
///     async move { rt.sleep(Duration::from_secs(60)).await; "woke" }
/// });
/// # while clock.sleepers() == 0 { std::thread::yield_now(); }
/// clock.advance(Duration::from_secs(60)); // no real minute passes
/// assert_eq!(futures::executor::block_on(sleeper).unwrap(), "woke");
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    spawner: Box<dyn Spawner>,
    /// The executor behind `spawner`, when it takes tasks unboxed (one of this crate's
    /// adapters).
    executor: Option<Executor>,
    timer: Box<dyn Timer>,
    registry: SyncArc<Registry>,
}

impl Runtime {
    /// A runtime on `spawner`, with the default timer (`futures-timer` and the std clocks).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// assert_eq!(rt.live_tasks(), 0);
    /// ```
    pub fn new(spawner: impl Spawner) -> Self {
        Self::with_timer(spawner, timer::SystemTimer)
    }

    /// A runtime on `spawner` whose sleeps and clocks come from `timer`.
    ///
    /// When `spawner` is one of this crate's adapters for an executor that takes tasks unboxed
    /// (tokio's, smol's), the runtime spawns on that executor itself rather than through
    /// [`Spawner::spawn_boxed`]: a task is then stored in the executor's own allocation, not
    /// boxed first. What a task does and reports is the same either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{ManualClock, Runtime, ThreadPerTask};
    ///
    /// let clock = ManualClock::new();
    /// let rt = Runtime::with_timer(
    ///     ThreadPerTask,
    ///     clock.clone(),
    /// );
    /// assert_eq!(rt.timer().now(), clock.origin());
    /// ```
    pub fn with_timer(spawner: impl Spawner, timer: impl Timer) -> Self {
        Self {
            inner: Arc::new(Inner {
                executor: spawner.executor(Seal),
                spawner: Box::new(spawner),
                timer: Box::new(timer),
                registry: SyncArc::new(Registry::new()),
            }),
        }
    }

    /// Spawns `future` and returns a handle to its output.
    ///
    /// The task runs until it completes or its [`JoinHandle`] is dropped or aborted; call
    /// [`JoinHandle::detach`] to let it run on its own. A panic inside the task unwinds through
    /// its future, as through a thread's stack: the future is dropped while the panic unwinds
    /// (its destructors see `std::thread::panicking()`), and the panic is given back as
    /// [`JoinError::Panicked`]; it never unwinds into the executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let sum = rt.spawn(async { (1..=10).sum::<u32>() });
    /// assert_eq!(futures::executor::block_on(sum).unwrap(), 55);
    /// ```
    ///
    /// # Panics
    ///
    /// Only if the [`Spawner`] itself panics; the task is then cancelled and the panic resumes.
    ///
    /// A destructor in the task's future that panics while the task's own panic unwinds aborts
    /// the process, as a second panic during an unwind does everywhere in Rust (and in tokio).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(feature = "tracing")]
        {
            // The task's polls in a span that names it; its id is known once it is spawned.
            let span = crate::trace::task();
            let handle = self.spawn_plain(crate::trace::within(&span, future));
            crate::trace::task_id(&span, handle.id().as_u64());
            handle
        }
        #[cfg(not(feature = "tracing"))]
        self.spawn_plain(future)
    }

    fn spawn_plain<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let registry = &self.inner.registry;
        match &self.inner.executor {
            Some(executor) => executor.spawn(future, registry),
            None => {
                let (task, shared) = task::with_handle::<_, WakeOnAbort>(future, registry);
                self.inner.spawner.spawn_boxed(Box::pin(task));
                JoinHandle::new(shared, None)
            }
        }
    }

    /// Spawns `future` to run on its own, with no [`JoinHandle`]: fire and forget.
    ///
    /// What [`spawn`](Runtime::spawn) followed by [`JoinHandle::detach`] does, for less: no
    /// state is shared with a handle (on tokio, the task is then the one allocation tokio
    /// makes). The task counts in [`live_tasks`](Runtime::live_tasks) and is waited for by
    /// [`wait_for_all_other_tasks`](Runtime::wait_for_all_other_tasks) like any other. Its
    /// output is dropped; a panic in it is caught (the panic hook still reports it) and dropped
    /// too, and never unwinds into the executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..3 {
    ///     let done = done.clone();
    ///     rt.spawn_detached(async move { done.fetch_add(1, Ordering::SeqCst); });
    /// }
    /// futures::executor::block_on(rt.wait_for_all_other_tasks());
    /// assert_eq!(done.load(Ordering::SeqCst), 3);
    /// ```
    ///
    /// # Panics
    ///
    /// Only if the [`Spawner`] itself panics; the task is then dropped and the panic resumes.
    pub fn spawn_detached<F>(&self, future: F)
    where
        F: Future + Send + 'static,
    {
        let task = task::without_handle(future, &self.inner.registry);
        match &self.inner.executor {
            Some(executor) => executor.spawn_detached(task),
            None => self.inner.spawner.spawn_boxed(Box::pin(task)),
        }
    }

    /// Spawns `future` as task `id` of a group, which it reports to through `report`; gives the
    /// executor's handle on it, for the group to keep (see [`adapters::Kept`]).
    pub(crate) fn spawn_member<F>(
        &self,
        future: F,
        report: group::Member<F::Output>,
        id: TaskId,
    ) -> adapters::Kept
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(feature = "tracing")]
        let future = {
            let span = crate::trace::task();
            crate::trace::task_id(&span, id.as_u64());
            crate::trace::within(&span, future)
        };
        #[cfg(not(feature = "tracing"))]
        let _ = id;
        let task = task::Task::new(future, report, &self.inner.registry);
        match &self.inner.executor {
            Some(executor) => executor.spawn_kept(task),
            None => {
                self.inner.spawner.spawn_boxed(Box::pin(task));
                adapters::Kept::None
            }
        }
    }

    /// The timer this runtime sleeps on and reads time from.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{ManualClock, Runtime};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let rt = Runtime::with_timer(|task| drop(task), clock.clone());
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(rt.timer().now() - clock.origin(), Duration::from_secs(5));
    /// ```
    pub fn timer(&self) -> &dyn Timer {
        &*self.inner.timer
    }

    /// Sleeps for `duration` on this runtime's timer.
    ///
    /// A zero duration completes at once, without the timer; `Duration::MAX` never completes and
    /// never overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// futures::executor::block_on(rt.sleep(Duration::from_millis(1)));
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the sleep; nothing else happens.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep {
            timer: (!duration.is_zero()).then(|| self.inner.timer.sleep(duration)),
        }
    }

    /// How many tasks spawned through this runtime have not finished yet.
    ///
    /// A task stops counting once its future has been dropped and its output handed to its
    /// [`JoinHandle`], whether it completed, panicked or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let task = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(rt.live_tasks(), 1);
    /// task.abort();
    /// assert!(futures::executor::block_on(task).unwrap_err().is_cancelled());
    /// # while rt.live_tasks() != 0 { std::thread::yield_now(); }
    /// assert_eq!(rt.live_tasks(), 0);
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.inner.registry.live()
    }

    /// Waits until every task of this runtime that is live now has finished, except the task
    /// that calls it.
    ///
    /// Python's `wait_for_all_other_tasks`, for test teardown and end-of-process drains. The set
    /// of tasks is taken when this method is called: tasks spawned afterwards are not waited
    /// for. The caller's own task is recognised by a marker the runtime sets while it polls a
    /// task, so calling it from inside a task of this runtime does not wait for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..3 {
    ///     let done = done.clone();
    ///     rt.spawn(async move { done.fetch_add(1, Ordering::SeqCst); }).detach();
    /// }
    /// futures::executor::block_on(rt.wait_for_all_other_tasks());
    /// assert_eq!(done.load(Ordering::SeqCst), 3);
    /// ```
    ///
    /// # Caveats
    ///
    /// Python sees every task of its event loop; this sees only tasks spawned through this
    /// [`Runtime`] (and its clones). Because it waits for tasks the caller did not start, it can
    /// deadlock: two tasks that drain each other, or a drain that waits for a task which waits
    /// for the drainer. For ordinary coordination, await specific [`JoinHandle`]s.
    pub fn wait_for_all_other_tasks(&self) -> WaitForAllOtherTasks {
        WaitForAllOtherTasks::new(&self.inner.registry)
    }
}

/// The future of [`Runtime::sleep`]: completes once the duration has passed on the runtime's
/// timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::rt::{Runtime, Sleep, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let nap: Sleep = rt.sleep(Duration::ZERO);
/// futures::executor::block_on(nap); // over at once
/// ```
///
/// # Cancel safety
///
/// Dropping it cancels the sleep; nothing else happens.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    /// `None` for a zero sleep, and once over.
    timer: Option<BoxFuture<()>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(timer) = &mut self.timer {
            std::task::ready!(timer.as_mut().poll(cx));
            self.timer = None;
        }
        Poll::Ready(())
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("is_over", &self.timer.is_none())
            .finish()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("live_tasks", &self.live_tasks())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Runtime;

    #[test]
    fn any_other_spawner_is_spawned_on_through_the_trait() {
        let rt = Runtime::new(drop::<super::BoxFuture<()>>);
        assert!(rt.inner.executor.is_none());
    }
}
