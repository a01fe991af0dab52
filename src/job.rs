//! `Job`: what `Periodic` runs; `acall`: "call it if callable, await it if awaitable".

use std::fmt::Display;
use std::future::{Future, IntoFuture};

use futures::FutureExt;

use crate::rt::BoxFuture;

/// Types that only tell the impls of [`Job`] and [`Acall`] apart. You never name them: write
/// `impl Job<M>` / `impl Acall<M>` with a generic `M` and let the compiler pick.
///
/// # Examples
///
/// ```
/// use asynchronously::{Job, marker};
///
/// fn is_sync_job(_: &impl Job<marker::SyncUnit>) {}
/// fn is_async_job(_: &impl Job<marker::AsyncUnit>) {}
///
/// is_sync_job(&|| {});
/// is_async_job(&|| async {});
/// ```
pub mod marker {
    use std::marker::PhantomData;

    /// A sync closure returning `()`.
    #[derive(Debug)]
    pub struct SyncUnit;
    /// A sync closure returning `Result<(), E>`.
    #[derive(Debug)]
    pub struct SyncResult<E>(PhantomData<E>);
    /// An async closure or `async fn` whose future gives `()`.
    #[derive(Debug)]
    pub struct AsyncUnit;
    /// An async closure or `async fn` whose future gives `Result<(), E>`.
    #[derive(Debug)]
    pub struct AsyncResult<E>(PhantomData<E>);
    /// [`acall`](crate::acall) of a callable whose result is awaited.
    #[derive(Debug)]
    pub struct CallThenAwait;
    /// [`acall`](crate::acall) of a future.
    #[derive(Debug)]
    pub struct Await;
    /// [`acall`](crate::acall) of [`Call`](crate::Call): a sync callable.
    #[derive(Debug)]
    pub struct CallSync;
    /// [`acall`](crate::acall) of [`Value`](crate::Value).
    #[derive(Debug)]
    pub struct PlainValue;
}

/// A job that [`Periodic`](crate::Periodic) runs: a sync closure, or an async closure or
/// `async fn`, returning `()` or `Result<(), E>` with `E: Display`.
///
/// The marker `M` keeps the four impls from colliding; it is inferred. An `Err` is logged by
/// `Periodic` (with the error's `Display`), and the loop goes on.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::{Job, Periodic};
///
/// fn every_minute<M>(job: impl Job<M>) -> Periodic {
///     Periodic::builder(job, Duration::from_secs(60)).build().unwrap()
/// }
///
/// let _sync = every_minute(|| println!("i'm ok"));                      // sync, ()
/// let _sync_result = every_minute(|| -> Result<(), String> { Ok(()) });  // sync, Result
/// let _async = every_minute(|| async { /* await something */ });         // async, ()
/// async fn flush() -> Result<(), std::io::Error> { Ok(()) }
/// let _async_fn = every_minute(flush);                                   // async fn, Result
/// ```
///
/// # Caveats
///
/// A sync job runs on the loop's task, as Python runs it on the event loop: keep it short, or
/// make it async and hand blocking work to your runtime's blocking pool.
pub trait Job<M>: Send + 'static {
    /// Runs the job once; an error comes back rendered with `Display`.
    fn call(&mut self) -> BoxFuture<Result<(), String>>;
}

impl<F> Job<marker::SyncUnit> for F
where
    F: FnMut() + Send + 'static,
{
    fn call(&mut self) -> BoxFuture<Result<(), String>> {
        self();
        Box::pin(std::future::ready(Ok(())))
    }
}

impl<F, E> Job<marker::SyncResult<E>> for F
where
    F: FnMut() -> Result<(), E> + Send + 'static,
    E: Display,
{
    fn call(&mut self) -> BoxFuture<Result<(), String>> {
        let result = self().map_err(|error| error.to_string());
        Box::pin(std::future::ready(result))
    }
}

impl<F, Fut> Job<marker::AsyncUnit> for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&mut self) -> BoxFuture<Result<(), String>> {
        Box::pin(self().map(Ok))
    }
}

impl<F, Fut, E> Job<marker::AsyncResult<E>> for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    fn call(&mut self) -> BoxFuture<Result<(), String>> {
        Box::pin(self().map(|result| result.map_err(|error| error.to_string())))
    }
}

/// Anything [`acall`] accepts. The marker `M` is inferred.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{Acall, acall};
///
/// /// Accepts "anything that produces a number".
/// async fn double<M>(source: impl Acall<M, Output = u32>) -> u32 {
///     acall(source).await * 2
/// }
///
/// assert_eq!(double(async { 21 }).await, 42);
/// # });
/// ```
pub trait Acall<M> {
    /// What the call (and await) gives.
    type Output;
    /// The future that calls and awaits.
    fn into_acall(self) -> impl Future<Output = Self::Output>;
}

/// A sync callable for [`acall`]: `acall(Call(f))` calls `f` and gives its result.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{Call, acall};
///
/// fn answer() -> u32 { 42 }
/// assert_eq!(acall(Call(answer)).await, 42);
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Call<F>(pub F);

/// A plain value for [`acall`]: `acall(Value(v))` gives `v`. So does `acall(std::future::ready(v))`.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{Value, acall};
///
/// assert_eq!(acall(Value(42)).await, 42);
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Value<T>(pub T);

impl<F, R> Acall<marker::CallThenAwait> for F
where
    F: FnOnce() -> R,
    R: IntoFuture,
{
    type Output = R::Output;
    fn into_acall(self) -> impl Future<Output = R::Output> {
        self().into_future()
    }
}

impl<F: Future> Acall<marker::Await> for F {
    type Output = F::Output;
    fn into_acall(self) -> impl Future<Output = F::Output> {
        self
    }
}

impl<F, T> Acall<marker::CallSync> for Call<F>
where
    F: FnOnce() -> T,
{
    type Output = T;
    fn into_acall(self) -> impl Future<Output = T> {
        std::future::ready((self.0)())
    }
}

impl<T> Acall<marker::PlainValue> for Value<T> {
    type Output = T;
    fn into_acall(self) -> impl Future<Output = T> {
        std::future::ready(self.0)
    }
}

/// Calls `target` if it is callable, then awaits the result if it is awaitable: Python's `acall`,
/// in the shape Rust allows.
///
/// | you pass | Python | here |
/// | --- | --- | --- |
/// | an `async fn`, an async closure, a closure returning a future | `acall(async_function)` | `acall(f)` |
/// | a future | `acall(coroutine_object)` | `acall(future)` |
/// | a sync function or closure | `acall(sync_function)` | `acall(Call(f))` |
/// | a plain value | `acall(42)` | `acall(Value(42))` or `acall(std::future::ready(42))` |
///
/// The call happens when the returned future is first polled, not before.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{Call, Value, acall};
///
/// async fn fetch() -> u32 { 1 }
/// fn compute() -> u32 { 2 }
///
/// assert_eq!(acall(fetch).await, 1);              // calls, awaits
/// assert_eq!(acall(|| async { 3 }).await, 3);     // calls, awaits
/// assert_eq!(acall(async { 4 }).await, 4);        // awaits
/// assert_eq!(acall(Call(compute)).await, 2);      // calls
/// assert_eq!(acall(Value(42)).await, 42);         // gives it back
/// # });
/// ```
///
/// # Caveats
///
/// The one thing Rust cannot express is Python's "call it, and await the result *only if* it is
/// awaitable". A sync closure and an async one are both `FnOnce() -> T`; telling them apart
/// needs "`T` is not a future", a negative bound, which stable Rust has no way to write (that
/// takes specialization or negative impls). Offered both bare, every async closure would match
/// both, and the compiler would refuse to choose. So callables are taken to be async, and a sync
/// one says so with [`Call`]; for the same reason a plain value is wrapped in [`Value`] (bare, a
/// value of any type would collide with every other case).
pub async fn acall<M, A: Acall<M>>(target: A) -> A::Output {
    target.into_acall().await
}
