//! `TaskTracker`: tokio-util's, on any runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use event_listener::EventListener;

use crate::event::poll_until;
use crate::rt::{JoinHandle, Runtime};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// Waits for tasks it does not own: tokio-util's `TaskTracker`, on any runtime.
///
/// Spawn through it ([`spawn`](TaskTracker::spawn)) or wrap futures with
/// [`track_future`](TaskTracker::track_future); [`wait`](TaskTracker::wait) completes once the
/// tracker is [`close`](TaskTracker::close)d *and* every tracked task or future has been dropped
/// (finished or cancelled). Unlike a [`TaskGroup`](crate::TaskGroup) it keeps no outputs and
/// aborts nothing, and unlike
/// [`Runtime::wait_for_all_other_tasks`](crate::rt::Runtime::wait_for_all_other_tasks) it sees
/// only its own tasks. Clones are one tracker.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::TaskTracker;
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let tracker = TaskTracker::new(&rt);
/// for i in 0..3 {
///     tracker.spawn(async move { println!("task {i}") }).detach();
/// }
/// tracker.close(); // no more tasks: `wait` may end once these are done
/// tracker.wait().await;
/// assert!(tracker.is_empty());
/// # });
/// ```
#[derive(Clone)]
pub struct TaskTracker {
    inner: Arc<Inner>,
}

struct Inner {
    /// Bit 0: closed. Above it: how many tasks are tracked.
    state: AtomicUsize,
    /// How many times the tracker became closed and empty: a wait begun before one of them is
    /// over, even if the tracker was reopened since (tokio-util's rule).
    exits: AtomicUsize,
    waiters: event_listener::Event,
    rt: Runtime,
}

const CLOSED: usize = 1;
const ONE_TASK: usize = 2;

impl Inner {
    fn is_closed_and_empty(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// The tracker became closed and empty: every wait begun so far is over.
    #[cold]
    fn exit(&self) {
        self.exits.fetch_add(1, Ordering::AcqRel);
        self.waiters.notify(usize::MAX);
    }

    fn add_task(&self) {
        self.state.fetch_add(ONE_TASK, Ordering::Relaxed);
    }

    fn drop_task(&self) {
        if self.state.fetch_sub(ONE_TASK, Ordering::AcqRel) == CLOSED + ONE_TASK {
            self.exit();
        }
    }
}

impl TaskTracker {
    /// An open tracker with no tasks, spawning on `rt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// assert!(tracker.is_empty() && !tracker.is_closed());
    /// ```
    pub fn new(rt: &Runtime) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(0),
                exits: AtomicUsize::new(0),
                waiters: event_listener::Event::new(),
                rt: rt.clone(),
            }),
        }
    }

    /// Spawns `future` on the tracker's runtime, tracked until it is dropped (finished or
    /// cancelled). A closed tracker still takes tasks: closing only lets `wait` end.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// let task = tracker.spawn(async { 1 + 1 });
    /// assert_eq!(futures::executor::block_on(task).unwrap(), 2);
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.rt.spawn(self.track_future(future))
    }

    /// [`spawn`](TaskTracker::spawn) for a task nobody joins, as
    /// [`Runtime::spawn_detached`](crate::rt::Runtime::spawn_detached) is: no handle, and no
    /// state shared with one (a task's allocation less than `spawn(..).detach()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// tracker.spawn_detached(async { /* flush a log */ });
    /// tracker.close();
    /// tracker.wait().await;
    /// # });
    /// ```
    pub fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.rt.spawn_detached(self.track_future(future));
    }

    /// `future`, tracked from now until it is dropped; it is not spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// let tracked = tracker.track_future(async { "done" });
    /// assert_eq!(tracker.len(), 1);
    /// assert_eq!(futures::executor::block_on(tracked), "done");
    /// assert_eq!(tracker.len(), 0);
    /// ```
    pub fn track_future<F: Future>(&self, future: F) -> TrackedFuture<F> {
        self.inner.add_task();
        TrackedFuture {
            future,
            token: Token(self.inner.clone()),
        }
    }

    /// Closes the tracker: once it is empty, [`wait`](TaskTracker::wait) completes. `true` if it
    /// was open.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// assert!(tracker.close());
    /// assert!(!tracker.close());
    /// ```
    pub fn close(&self) -> bool {
        let before = self.inner.state.fetch_or(CLOSED, Ordering::AcqRel);
        if before == 0 {
            self.inner.exit();
        }
        before & CLOSED == 0
    }

    /// Opens the tracker again: a later `wait` waits for the next close. `true` if it was
    /// closed. A wait that was already over (the tracker was closed and empty after it began)
    /// stays over.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// tracker.close();
    /// assert!(tracker.reopen());
    /// assert!(!tracker.is_closed());
    /// ```
    pub fn reopen(&self) -> bool {
        self.inner.state.fetch_and(!CLOSED, Ordering::AcqRel) & CLOSED != 0
    }

    /// Whether the tracker is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// tracker.close();
    /// assert!(tracker.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// How many tasks and futures are tracked (not yet dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// let tracked = tracker.track_future(std::future::pending::<()>());
    /// assert_eq!(tracker.len(), 1);
    /// drop(tracked);
    /// assert_eq!(tracker.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.state.load(Ordering::Acquire) / ONE_TASK
    }

    /// Whether no task or future is tracked.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// assert!(TaskTracker::new(&Runtime::new(ThreadPerTask)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A future that completes once the tracker is closed and empty. It is pending on an open
    /// tracker, even an empty one, as tokio-util's is; once the tracker has been closed and
    /// empty after it was made, it is over, even if the tracker was reopened since.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskTracker;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// let tracked = tracker.track_future(async {});
    /// tracker.close();
    /// tracked.await; // the last one: the tracker is closed and empty
    /// tracker.wait().await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting.
    pub fn wait(&self) -> TaskTrackerWaitFuture<'_> {
        TaskTrackerWaitFuture {
            inner: &self.inner,
            exits: self.inner.exits.load(Ordering::Acquire),
            over: self.inner.is_closed_and_empty(),
            listener: None,
        }
    }
}

impl fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTracker")
            .field("len", &self.len())
            .field("is_closed", &self.is_closed())
            .finish()
    }
}

/// Counts one task off its tracker when dropped.
struct Token(Arc<Inner>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.drop_task();
    }
}

pin_project_lite::pin_project! {
    /// A future tracked by a [`TaskTracker`] until it is dropped: from
    /// [`TaskTracker::track_future`].
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::{TaskTracker, TrackedFuture};
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
    /// let tracked: TrackedFuture<_> = tracker.track_future(async {});
    /// futures::executor::block_on(tracked);
    /// ```
    #[must_use = "a TrackedFuture does nothing unless awaited or spawned"]
    pub struct TrackedFuture<F> {
        #[pin]
        future: F,
        token: Token,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl<F> fmt::Debug for TrackedFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedFuture").finish_non_exhaustive()
    }
}

/// The future of [`TaskTracker::wait`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{TaskTracker, TaskTrackerWaitFuture};
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let tracker = TaskTracker::new(&Runtime::new(ThreadPerTask));
/// tracker.close();
/// let wait: TaskTrackerWaitFuture<'_> = tracker.wait();
/// wait.await;
/// # });
/// ```
#[must_use = "a TaskTrackerWaitFuture does nothing unless awaited"]
pub struct TaskTrackerWaitFuture<'a> {
    inner: &'a Inner,
    /// The tracker's count of exits when the wait began.
    exits: usize,
    over: bool,
    listener: Option<EventListener>,
}

/// Whether a wait begun at the count of exits `exits` is over: the tracker is closed and empty,
/// or was since.
fn is_over(inner: &Inner, exits: usize) -> bool {
    inner.is_closed_and_empty() || inner.exits.load(Ordering::Acquire) != exits
}

impl Future for TaskTrackerWaitFuture<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let (inner, exits, over) = (this.inner, this.exits, this.over);
        ready!(poll_until(&inner.waiters, &mut this.listener, cx, || {
            over || is_over(inner, exits)
        }));
        this.over = true;
        Poll::Ready(())
    }
}

impl fmt::Debug for TaskTrackerWaitFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTrackerWaitFuture")
            .field("is_over", &(self.over || is_over(self.inner, self.exits)))
            .finish()
    }
}
