//! Concurrent awaiting that fails fast: `strict_gather`, `strict_gather_spawned`,
//! `await_map_values`.

use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::Poll;

use futures::FutureExt;
use futures::future::FusedFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::rt::{JoinError, JoinHandle, Runtime};

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
pub async fn strict_gather<I, F, T, E>(futures: I) -> Result<Vec<T>, E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>>,
{
    let mut pending: FuturesUnordered<_> = {
        // Scoped, so that the iterator is gone before the first await.
        let mut futures = futures.into_iter().peekable();
        if futures.peek().is_none() {
            // Nothing to wait for; `FuturesUnordered` would allocate even when empty.
            return Ok(Vec::new());
        }
        futures
            .enumerate()
            .map(|(index, future)| future.map(move |result| (index, result)))
            .collect()
    };
    // Made at the first `Ok`: a gather that fails before any success never needs it.
    let mut results: Vec<Option<T>> = Vec::new();
    let len = pending.len();
    while let Some((index, result)) = pending.next().await {
        match result {
            Ok(value) => {
                if results.is_empty() {
                    results.resize_with(len, || None);
                }
                results[index] = Some(value);
            }
            Err(error) => {
                drop(pending);
                return Err(error);
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|value| value.expect("every future gave a result"))
        .collect())
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
/// use asynchronously::{rt::Runtime, strict_gather_spawned};
///
/// let rt = Runtime::new(|task| { std::thread::spawn(move || futures::executor::block_on(task)); });
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
pub async fn strict_gather_spawned<I, F, T, E>(rt: &Runtime, futures: I) -> Result<Vec<T>, E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut handles: Vec<JoinHandle<Result<T, E>>> =
        futures.into_iter().map(|future| rt.spawn(future)).collect();
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(handles.len())
        .collect();
    let failure = {
        let mut failure = None;
        let mut pending = FuturesUnordered::new();
        // Tasks done already (most, when they are quick) give their outputs at once, without a
        // slot in the set; the others wait in it.
        let mut unseen = handles.iter_mut().enumerate();
        std::future::poll_fn(|cx| {
            for (index, handle) in unseen.by_ref() {
                match Pin::new(&mut *handle).poll(cx) {
                    Poll::Ready(Ok(Ok(value))) => results[index] = Some(value),
                    Poll::Ready(Ok(Err(error))) => {
                        failure = Some((index, Failure::Error(error)));
                        break;
                    }
                    Poll::Ready(Err(error)) => {
                        failure = Some((index, Failure::Join(error)));
                        break;
                    }
                    Poll::Pending => pending.push(async move { (index, handle.await) }),
                }
            }
            Poll::Ready(())
        })
        .await;
        while failure.is_none() {
            match pending.next().await {
                None => break,
                Some((index, Ok(Ok(value)))) => results[index] = Some(value),
                Some((index, Ok(Err(error)))) => failure = Some((index, Failure::Error(error))),
                Some((index, Err(error))) => failure = Some((index, Failure::Join(error))),
            }
        }
        failure
    };
    let Some((failed, failure)) = failure else {
        return Ok(results
            .into_iter()
            .map(|value| value.expect("every task gave a result"))
            .collect());
    };
    // Abort the others, then wait until each has dropped its future.
    handles.iter().for_each(JoinHandle::abort);
    let others = handles
        .into_iter()
        .filter(|handle| !FusedFuture::is_terminated(handle));
    futures::future::join_all(others).await;
    match failure {
        Failure::Error(error) => Err(error),
        Failure::Join(JoinError::Panicked(payload)) => resume_unwind(payload.into_inner()),
        Failure::Join(error) => {
            panic!("strict_gather_spawned: task {failed} gave no result: {error}")
        }
    }
}

enum Failure<E> {
    Error(E),
    Join(JoinError),
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
pub async fn await_map_values<I, K, F, T, E, M>(map: I) -> Result<M, E>
where
    I: IntoIterator<Item = (K, F)>,
    F: Future<Output = Result<T, E>>,
    M: FromIterator<(K, T)>,
{
    let (keys, futures): (Vec<K>, Vec<F>) = map.into_iter().unzip();
    let values = strict_gather(futures).await?;
    Ok(keys.into_iter().zip(values).collect())
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
pub fn wait_for_all_other_tasks() -> impl Future<Output = ()> + Send + 'static {
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
pub fn complete_all_tasks() -> impl Future<Output = ()> + Send + 'static {
    wait_for_all_other_tasks()
}
