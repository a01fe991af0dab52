//! `TaskGroup`: tokio's `JoinSet`, on any runtime, with an optional limit.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::gather::Failure;
use crate::rt::group::{Group, Joined};
use crate::rt::{AbortHandle, JoinError, Runtime, TaskId};

/// A set of tasks that owns them and their outputs: tokio's `JoinSet`, on any runtime.
///
/// [`spawn`](TaskGroup::spawn) starts a task; [`join_next`](TaskGroup::join_next) gives the
/// outputs in the order the tasks finish. Dropping the group aborts every task still in it;
/// [`shutdown`](TaskGroup::shutdown) aborts them and waits until each future has been dropped.
/// [`with_limit`](TaskGroup::with_limit) runs at most `n` at once: the others wait their turn
/// (none is refused), and one aborted while it waits never starts.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::TaskGroup;
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let mut group = TaskGroup::new(&rt);
/// for i in 0..4 {
///     group.spawn(async move { i * 10 });
/// }
/// let mut outputs = Vec::new();
/// while let Some(output) = group.join_next().await {
///     outputs.push(output.unwrap());
/// }
/// outputs.sort();
/// assert_eq!(outputs, [0, 10, 20, 30]);
/// # });
/// ```
pub struct TaskGroup<T> {
    rt: Runtime,
    /// The tasks, and the state they report into (one for the group: see `rt::group`).
    group: Group<T>,
    /// How many tasks were spawned: each task's place, for `try_join_all`'s spawn order.
    spawned: u64,
    /// With a limit, the permits to run.
    limit: Option<Arc<async_lock::Semaphore>>,
}

impl<T: Send + 'static> TaskGroup<T> {
    /// An empty group that spawns on `rt`, with no limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let group = TaskGroup::<()>::new(&Runtime::new(ThreadPerTask));
    /// assert!(group.is_empty());
    /// ```
    pub fn new(rt: &Runtime) -> Self {
        Self {
            rt: rt.clone(),
            group: Group::new(),
            spawned: 0,
            limit: None,
        }
    }

    /// An empty group that runs at most `n` of its tasks at once. A task spawned beyond them
    /// waits (it is spawned, and starts its future once a running one ends); none is refused.
    ///
    /// # Panics
    ///
    /// If `n` is zero: no task could ever run.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut downloads = TaskGroup::with_limit(&Runtime::new(ThreadPerTask), 4);
    /// for page in 0..100 {
    ///     downloads.spawn(async move { page }); // four at a time
    /// }
    /// assert_eq!(futures::executor::block_on(downloads.join_all()).len(), 100);
    /// ```
    pub fn with_limit(rt: &Runtime, n: usize) -> Self {
        assert!(
            n > 0,
            "a TaskGroup with a limit of 0 could never run a task"
        );
        Self {
            limit: Some(Arc::new(async_lock::Semaphore::new(n))),
            ..Self::new(rt)
        }
    }

    /// Spawns `future` as a task of the group; the handle aborts it without taking it out of
    /// the group (its `join_next` then gives `Err(Cancelled)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// let forever = group.spawn(std::future::pending::<()>());
    /// forever.abort();
    /// assert!(group.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        let place = self.group.reserve(self.spawned);
        let report = self.group.report(&place);
        let spawned = catch_unwind(AssertUnwindSafe(|| match &self.limit {
            None => self.rt.spawn_member(future, report, place.id),
            Some(limit) => {
                let limit = limit.clone();
                let future = async move {
                    let _permit = limit.acquire_arc().await;
                    future.await
                };
                self.rt.spawn_member(future, report, place.id)
            }
        }));
        let kept = match spawned {
            Ok(kept) => kept,
            Err(panic) => {
                self.group.forget(&place);
                resume_unwind(panic);
            }
        };
        self.spawned += 1;
        self.group.spawned(&place, kept)
    }

    /// The output of the next task to finish (`Err` if it panicked or was aborted), and `None`
    /// once the group is empty (at once, for an empty group).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(async { "only" });
    /// assert_eq!(group.join_next().await.unwrap().unwrap(), "only");
    /// assert!(group.join_next().await.is_none());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `JoinNext` takes no output; the next call gives it.
    pub fn join_next(&mut self) -> JoinNext<'_, T> {
        JoinNext { group: self }
    }

    /// The output of a task that has finished, if there is one now; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(async { 5 });
    /// let output = loop {
    ///     if let Some(output) = group.try_join_next() { break output; }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(output.unwrap(), 5);
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.take_next(None).map(|joined| joined.output)
    }

    /// Every task's output, in the order they finish. A task's panic resumes here, as
    /// `JoinSet::join_all`'s does (the other tasks are aborted, as the group is dropped); a task
    /// that was aborted is a panic too, `task 12 was cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(async { 1 });
    /// group.spawn(async { 2 });
    /// let mut all = group.join_all().await;
    /// all.sort();
    /// assert_eq!(all, [1, 2]);
    /// # });
    /// ```
    pub fn join_all(self) -> JoinAll<T> {
        JoinAll {
            outputs: Vec::with_capacity(self.len()),
            group: self,
        }
    }

    /// How many tasks are in the group: running, waiting their turn, or finished with an
    /// output not yet joined.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(async {});
    /// assert_eq!(group.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether the group has no task.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// assert!(TaskGroup::<()>::new(&Runtime::new(ThreadPerTask)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group.len() == 0
    }

    /// Aborts every task; they stay in the group, and `join_next` gives each one's
    /// `Err(Cancelled)` (or its output, if it had finished) once its future was dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(std::future::pending::<()>());
    /// group.abort_all();
    /// assert!(group.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn abort_all(&mut self) {
        self.group.abort_all();
    }

    /// Aborts every task and waits until each one's future has been dropped (its destructors
    /// have run); the group is then empty, and its outputs are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
    /// group.spawn(std::future::pending::<()>());
    /// group.shutdown().await;
    /// assert!(group.is_empty());
    /// # });
    /// ```
    pub fn shutdown(&mut self) -> GroupShutdown<'_, T> {
        GroupShutdown {
            group: self,
            aborted: false,
        }
    }

    /// Takes every task out of the group without aborting it: each runs on, and its output is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// let mut group = TaskGroup::new(&rt);
    /// group.spawn(async move { tx.send("ran on").unwrap() });
    /// group.detach_all();
    /// drop(group);
    /// assert_eq!(futures::executor::block_on(rx).unwrap(), "ran on");
    /// ```
    pub fn detach_all(&mut self) {
        self.group.detach_all();
    }

    /// The next task to finish; `None` once the group is empty.
    fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Joined<T>>> {
        if self.is_empty() {
            return Poll::Ready(None);
        }
        match self.take_next(Some(cx)) {
            Some(joined) => Poll::Ready(Some(joined)),
            None => Poll::Pending,
        }
    }

    /// A task that finished, if there is one; else `cx` is woken when one does.
    fn take_next(&mut self, cx: Option<&mut Context<'_>>) -> Option<Joined<T>> {
        if self.is_empty() {
            return None;
        }
        self.group.take(cx.map(|cx| cx.waker()))
    }
}

impl<U: Send + 'static, E: Send + 'static> TaskGroup<Result<U, E>> {
    /// asyncio's `TaskGroup` (and [`strict_gather_spawned`](crate::strict_gather_spawned)) on a
    /// set of tasks: every task's `Ok`, in spawn order; or, at the first failure in time, the
    /// other tasks are aborted and awaited until their futures were dropped, and then that
    /// failure comes out: an `Err` is returned, a panic resumes here, and a task that was
    /// aborted is a panic that names it.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::TaskGroup;
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let mut fetches = TaskGroup::new(&rt);
    /// fetches.spawn(async { Ok::<_, String>("a") });
    /// fetches.spawn(async { Ok("b") });
    /// assert_eq!(fetches.try_join_all().await, Ok(vec!["a", "b"]));
    ///
    /// let mut failing = TaskGroup::new(&rt);
    /// failing.spawn(std::future::pending()); // aborted once the other fails
    /// failing.spawn(async { Err::<(), _>("refused".to_string()) });
    /// assert_eq!(failing.try_join_all().await, Err("refused".to_string()));
    /// # });
    /// ```
    pub fn try_join_all(self) -> TryJoinAll<U, E> {
        TryJoinAll {
            oks: Vec::with_capacity(self.len()),
            group: self,
            failure: None,
        }
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("len", &self.group.len())
            .field("limited", &self.limit.is_some())
            .finish_non_exhaustive()
    }
}

/// An output task `id` could not give: its panic resumes, or its cancel becomes one that names
/// it, in tokio's words.
fn resume(id: TaskId, error: JoinError) -> ! {
    match error.into_panic() {
        Ok(payload) => std::panic::resume_unwind(payload),
        Err(_) => panic!("task {id} was cancelled"),
    }
}

/// The future of [`TaskGroup::join_next`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{JoinNext, TaskGroup};
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
/// group.spawn(async { 1 });
/// let next: JoinNext<'_, i32> = group.join_next();
/// assert_eq!(next.await.unwrap().unwrap(), 1);
/// # });
/// ```
#[must_use = "a JoinNext does nothing unless awaited"]
pub struct JoinNext<'a, T> {
    group: &'a mut TaskGroup<T>,
}

impl<T: Send + 'static> Future for JoinNext<'_, T> {
    type Output = Option<Result<T, JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let next = ready!(self.group.poll_join_next(cx));
        Poll::Ready(next.map(|joined| joined.output))
    }
}

impl<T> fmt::Debug for JoinNext<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinNext")
            .field("group", &self.group)
            .finish()
    }
}

/// The future of [`TaskGroup::join_all`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{JoinAll, TaskGroup};
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
/// group.spawn(async { "one" });
/// let all: JoinAll<&str> = group.join_all();
/// assert_eq!(all.await, ["one"]);
/// # });
/// ```
#[must_use = "a JoinAll does nothing unless awaited"]
pub struct JoinAll<T> {
    group: TaskGroup<T>,
    outputs: Vec<T>,
}

impl<T: Send + 'static> Future for JoinAll<T> {
    type Output = Vec<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = &mut *self;
        while let Some(Joined { id, output, .. }) = ready!(this.group.poll_join_next(cx)) {
            match output {
                Ok(output) => this.outputs.push(output),
                Err(error) => resume(id, error),
            }
        }
        Poll::Ready(std::mem::take(&mut this.outputs))
    }
}

// Nothing in it is pinned.
impl<T> Unpin for JoinAll<T> {}

impl<T> fmt::Debug for JoinAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The future of [`TaskGroup::shutdown`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{GroupShutdown, TaskGroup};
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
/// group.spawn(std::future::pending::<()>());
/// let shutdown: GroupShutdown<'_, ()> = group.shutdown();
/// shutdown.await;
/// assert!(group.is_empty());
/// # });
/// ```
#[must_use = "a GroupShutdown does nothing unless awaited; abort_all() aborts without waiting"]
pub struct GroupShutdown<'a, T> {
    group: &'a mut TaskGroup<T>,
    aborted: bool,
}

impl<T: Send + 'static> Future for GroupShutdown<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if !std::mem::replace(&mut this.aborted, true) {
            this.group.abort_all();
        }
        while ready!(this.group.poll_join_next(cx)).is_some() {}
        Poll::Ready(())
    }
}

impl<T> fmt::Debug for GroupShutdown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupShutdown")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The future of [`TaskGroup::try_join_all`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{TaskGroup, TryJoinAll};
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let mut group = TaskGroup::new(&Runtime::new(ThreadPerTask));
/// group.spawn(async { Ok::<_, String>(2) });
/// let all: TryJoinAll<i32, String> = group.try_join_all();
/// assert_eq!(all.await, Ok(vec![2]));
/// # });
/// ```
#[must_use = "a TryJoinAll does nothing unless awaited"]
pub struct TryJoinAll<U, E> {
    group: TaskGroup<Result<U, E>>,
    /// The `Ok`s so far, with their tasks' places.
    oks: Vec<(u64, U)>,
    /// The first failure: the rest are aborted and drained, then it comes out.
    failure: Option<(TaskId, Failure<E>)>,
}

impl<U: Send + 'static, E: Send + 'static> Future for TryJoinAll<U, E> {
    type Output = Result<Vec<U>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some(Joined {
            place, id, output, ..
        }) = ready!(this.group.poll_join_next(cx))
        {
            if this.failure.is_some() {
                // Draining the aborted: their outcomes, panics too, give way to the first.
                continue;
            }
            let failure = match output {
                Ok(Ok(ok)) => {
                    this.oks.push((place, ok));
                    continue;
                }
                Ok(Err(error)) => Failure::Error(error),
                Err(error) => Failure::Join(error),
            };
            this.failure = Some((id, failure));
            this.group.abort_all();
        }
        match this.failure.take() {
            Some((_, Failure::Error(error))) => return Poll::Ready(Err(error)),
            Some((id, Failure::Join(error))) => resume(id, error),
            None => {}
        }
        let mut oks = std::mem::take(&mut this.oks);
        oks.sort_unstable_by_key(|&(place, _)| place);
        Poll::Ready(Ok(oks.into_iter().map(|(_, ok)| ok).collect()))
    }
}

// Nothing in it is pinned.
impl<U, E> Unpin for TryJoinAll<U, E> {}

impl<U, E> fmt::Debug for TryJoinAll<U, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("group", &self.group)
            .field("failed", &self.failure.is_some())
            .finish_non_exhaustive()
    }
}
