//! Concurrent awaiting that fails fast: `strict_gather`, `strict_gather_spawned`,
//! `await_map_values`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::TryFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::rt::{JoinError, JoinHandle, Runtime, WaitForAllOtherTasks};

/// Awaits every future concurrently; on the first error *in time*, drops (cancels) every other
/// future and returns that error.
///
/// Python's `strict_gather`. The results keep the input order. Unlike
/// `futures::future::try_join_all`, which above 30 inputs only sees an error once every earlier
/// future has finished, this fails as soon as any future fails, whatever its index, and the other
/// futures are dropped before the error is returned. The error is the future's own, unwrapped.
///
/// The futures run concurrently on the caller's task, not in parallel; use
/// [`strict_gather_spawned`] to spread them over a runtime's threads.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::strict_gather;
///
/// let sizes = strict_gather((1..=3).map(|n| async move { Ok::<_, String>(n * 10) })).await;
/// assert_eq!(sizes, Ok(vec![10, 20, 30]));
///
/// let failed = strict_gather(vec![
///     Box::pin(std::future::pending::<Result<u32, String>>()) as futures::future::BoxFuture<'_, _>,
///     Box::pin(async { Err("no such user".to_string()) }),
/// ])
/// .await; // does not wait for the pending one
/// assert_eq!(failed, Err("no such user".to_string()));
/// # });
/// ```
///
/// # Errors
///
/// The first error any future returns.
///
/// # Cancel safety
///
/// Dropping the returned future drops every future not yet finished.
pub fn strict_gather<I, F, T, E>(futures: I) -> StrictGather<F::IntoFuture>
where
    I: IntoIterator<Item = F>,
    F: IntoFuture<Output = Result<T, E>>,
{
    let pending: FuturesUnordered<_> = futures
        .into_iter()
        .enumerate()
        .map(|(index, future)| Indexed {
            index,
            future: future.into_future(),
        })
        .collect();
    StrictGather {
        len: pending.len(),
        pending,
        results: Vec::new(),
    }
}

pin_project_lite::pin_project! {
    /// A future and its index in a gather's input.
    struct Indexed<F> {
        index: usize,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Indexed<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.future.poll(cx));
        Poll::Ready((*this.index, output))
    }
}

/// The future of [`strict_gather`]: every result in input order, or the first error in time.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{StrictGather, strict_gather};
///
/// let lengths = ["a", "bc"].map(|word| async move { Ok::<_, ()>(word.len()) });
/// let gather: StrictGather<_> = strict_gather(lengths);
/// assert_eq!(gather.await, Ok(vec![1, 2]));
/// # });
/// ```
#[must_use = "a StrictGather does nothing unless awaited"]
pub struct StrictGather<F: TryFuture> {
    pending: FuturesUnordered<Indexed<F>>,
    /// The results by index; made at the first `Ok` (a gather that fails first never needs it).
    results: Vec<Option<F::Ok>>,
    len: usize,
}

/// Nothing in it is pinned: the futures are, in the `FuturesUnordered`'s own allocations.
impl<F: TryFuture> Unpin for StrictGather<F> {}

impl<F, T, E> Future for StrictGather<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((index, result)) = ready!(this.pending.poll_next_unpin(cx)) {
            match result {
                Ok(value) => {
                    if this.results.is_empty() {
                        this.results.resize_with(this.len, || None);
                    }
                    this.results[index] = Some(value);
                }
                Err(error) => {
                    // The others are dropped before the error is returned.
                    this.pending.clear();
                    return Poll::Ready(Err(error));
                }
            }
        }
        let results = std::mem::take(&mut this.results);
        Poll::Ready(Ok(results
            .into_iter()
            .map(|value| value.expect("every future gave a result"))
            .collect()))
    }
}

impl<F: TryFuture> fmt::Debug for StrictGather<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrictGather")
            .field("len", &self.len)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// [`strict_gather`] with each future spawned on `rt`, so they run in parallel.
///
/// On the first error or panic (in time), every other task is aborted and awaited until its
/// future has been dropped; then the error is returned, or the panic resumed on the caller.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// # use asynchronously::rt::{Runtime, ThreadPerTask};
/// use asynchronously::strict_gather_spawned;
///
/// # let rt = Runtime::new(ThreadPerTask);
/// let squares = strict_gather_spawned(&rt, (1..=4_u64).map(|n| async move { Ok::<_, ()>(n * n) })).await;
/// assert_eq!(squares, Ok(vec![1, 4, 9, 16]));
/// # });
/// ```
///
/// # Errors
///
/// The first error any future returns.
///
/// # Panics
///
/// Resumes the first panic of a task, after the other tasks are gone. Also panics if the
/// runtime's executor drops a task unfinished (it has shut down), since there is then neither a
/// value nor an error to return.
///
/// # Cancel safety
///
/// Dropping the returned future drops the [`JoinHandle`]s, which cancels every task not yet
/// finished (without waiting for them).
pub fn strict_gather_spawned<I, F, T, E>(rt: &Runtime, futures: I) -> StrictGatherSpawned<T, E>
where
    I: IntoIterator<Item = F>,
    F: IntoFuture<Output = Result<T, E>>,
    F::IntoFuture: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let handles: Vec<_> = futures
        .into_iter()
        .map(|future| rt.spawn(future.into_future()))
        .collect();
    StrictGatherSpawned {
        results: std::iter::repeat_with(|| None)
            .take(handles.len())
            .collect(),
        unseen: handles.into_iter().enumerate(),
        pending: FuturesUnordered::new(),
        failure: None,
    }
}

/// The future of [`strict_gather_spawned`]: every task's result in spawn order, or the first
/// error in time once the other tasks are gone.
///
/// The tasks are spawned when [`strict_gather_spawned`] is called, and run whether or not this
/// is polled; dropping it aborts them.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// # use asynchronously::rt::{Runtime, ThreadPerTask};
/// use asynchronously::{StrictGatherSpawned, strict_gather_spawned};
///
/// # let rt = Runtime::new(ThreadPerTask);
/// let gather: StrictGatherSpawned<u8, ()> = strict_gather_spawned(&rt, [async { Ok(1) }]);
/// assert_eq!(gather.await, Ok(vec![1]));
/// # });
/// ```
#[must_use = "dropping a StrictGatherSpawned aborts its tasks"]
pub struct StrictGatherSpawned<T, E> {
    results: Vec<Option<T>>,
    /// The handles not polled yet. A first pass takes the outputs of the tasks that are done
    /// already, without a slot in `pending`; the others wait there.
    unseen: std::iter::Enumerate<std::vec::IntoIter<JoinHandle<Result<T, E>>>>,
    pending: FuturesUnordered<Indexed<JoinHandle<Result<T, E>>>>,
    /// The first failure, once there is one: the other tasks are then aborted, and awaited until
    /// each has dropped its future.
    failure: Option<(usize, Failure<E>)>,
}

/// The first failure of a set of tasks: an error it returned, or why it gave no output.
pub(crate) enum Failure<E> {
    Error(E),
    Join(JoinError),
}

/// Nothing in it is pinned.
impl<T, E> Unpin for StrictGatherSpawned<T, E> {}

impl<T, E> StrictGatherSpawned<T, E> {
    /// Takes one task's output; the first failure aborts every task not finished yet.
    fn take(&mut self, index: usize, output: Result<Result<T, E>, JoinError>) {
        let failure = match output {
            Ok(Ok(value)) => {
                self.results[index] = Some(value);
                return;
            }
            Ok(Err(error)) => Failure::Error(error),
            Err(error) => Failure::Join(error),
        };
        self.failure = Some((index, failure));
        for (index, handle) in self.unseen.by_ref() {
            handle.abort();
            self.pending.push(Indexed {
                index,
                future: handle,
            });
        }
        self.pending.iter().for_each(|task| task.future.abort());
    }
}

impl<T, E> Future for StrictGatherSpawned<T, E> {
    type Output = Result<Vec<T>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while this.failure.is_none() {
            let Some((index, mut handle)) = this.unseen.next() else {
                break;
            };
            match Pin::new(&mut handle).poll(cx) {
                Poll::Ready(output) => this.take(index, output),
                Poll::Pending => this.pending.push(Indexed {
                    index,
                    future: handle,
                }),
            }
        }
        while let Some((index, output)) = ready!(this.pending.poll_next_unpin(cx)) {
            if this.failure.is_none() {
                this.take(index, output);
            }
        }
        // Every task is over: with no failure, each gave a value; else each was dropped.
        let Some((failed, failure)) = this.failure.take() else {
            let results = std::mem::take(&mut this.results);
            return Poll::Ready(Ok(results
                .into_iter()
                .map(|value| value.expect("every task gave a result"))
                .collect()));
        };
        match failure {
            Failure::Error(error) => Poll::Ready(Err(error)),
            Failure::Join(JoinError::Panicked(payload)) => resume_unwind(payload.into_inner()),
            Failure::Join(error) => {
                panic!("strict_gather_spawned: task {failed} gave no result: {error}")
            }
        }
    }
}

impl<T, E> fmt::Debug for StrictGatherSpawned<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrictGatherSpawned")
            .field("tasks", &self.results.len())
            .field("failed", &self.failure.is_some())
            .finish_non_exhaustive()
    }
}

/// Awaits every value of a map concurrently and collects the results under their keys.
///
/// Python's `await_dict_values`: any iterable of `(key, future)` pairs (a `HashMap`, a
/// `BTreeMap`, a `Vec` of pairs) into any map that collects `(key, value)` pairs. The map type
/// is usually inferred from the binding (`let m: HashMap<_, _> = ...`). On the first
/// error every other future is dropped and the error returned, as in [`strict_gather`].
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::collections::HashMap;
/// use asynchronously::await_map_values;
///
/// async fn balance(provider: &str) -> Result<u32, String> {
///     Ok(provider.len() as u32 * 20) // a request to the provider
/// }
///
/// let balances: HashMap<&str, u32> =
///     await_map_values(["stripe", "paypal"].map(|p| (p, balance(p)))).await?;
/// assert_eq!(balances["stripe"], 120);
/// # Ok::<(), String>(())
/// # }).unwrap();
/// ```
///
/// # Errors
///
/// The first error any future returns.
///
/// # Cancel safety
///
/// As [`strict_gather`]'s.
pub fn await_map_values<I, K, F, T, E, M>(map: I) -> AwaitMapValues<K, F::IntoFuture, M>
where
    I: IntoIterator<Item = (K, F)>,
    F: IntoFuture<Output = Result<T, E>>,
    M: FromIterator<(K, T)>,
{
    let (keys, futures): (Vec<K>, Vec<F>) = map.into_iter().unzip();
    AwaitMapValues {
        keys,
        values: strict_gather(futures),
        map: PhantomData,
    }
}

/// The future of [`await_map_values`]: the map of every value, or the first error in time.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::collections::BTreeMap;
/// use asynchronously::{AwaitMapValues, await_map_values};
///
/// let sizes: AwaitMapValues<_, _, BTreeMap<&str, usize>> =
///     await_map_values([("a", async { Ok::<_, ()>(1) })]);
/// assert_eq!(sizes.await.unwrap()["a"], 1);
/// # });
/// ```
#[must_use = "an AwaitMapValues does nothing unless awaited"]
pub struct AwaitMapValues<K, F: TryFuture, M> {
    keys: Vec<K>,
    values: StrictGather<F>,
    map: PhantomData<fn() -> M>,
}

/// Nothing in it is pinned.
impl<K, F: TryFuture, M> Unpin for AwaitMapValues<K, F, M> {}

impl<K, F, T, E, M> Future for AwaitMapValues<K, F, M>
where
    F: Future<Output = Result<T, E>>,
    M: FromIterator<(K, T)>,
{
    type Output = Result<M, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let values = ready!(Pin::new(&mut this.values).poll(cx))?;
        let keys = std::mem::take(&mut this.keys);
        Poll::Ready(Ok(keys.into_iter().zip(values).collect()))
    }
}

impl<K, F: TryFuture, M> fmt::Debug for AwaitMapValues<K, F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitMapValues")
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

/// Waits until every task of the [default runtime](crate::rt::default_runtime) that is live now
/// has finished, except the caller's own.
///
/// Python's `wait_for_all_other_tasks`, mainly for test teardown and end-of-process drains. See
/// [`Runtime::wait_for_all_other_tasks`] for what "every task" means and the deadlocks to avoid.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{rt::default_runtime, wait_for_all_other_tasks};
///
/// default_runtime().spawn(async { /* background work */ }).detach();
/// wait_for_all_other_tasks().await;
/// # });
/// ```
pub fn wait_for_all_other_tasks() -> WaitForAllOtherTasks {
    crate::rt::default_runtime().wait_for_all_other_tasks()
}

/// The old name of [`wait_for_all_other_tasks`], kept as in the Python package.
///
/// # Examples
///
/// ```
/// # #![allow(deprecated)]
/// # futures::executor::block_on(async {
/// asynchronously::complete_all_tasks().await;
/// # });
/// ```
#[deprecated(since = "0.1.0", note = "renamed to `wait_for_all_other_tasks`")]
pub fn complete_all_tasks() -> WaitForAllOtherTasks {
    wait_for_all_other_tasks()
}
