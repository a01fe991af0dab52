//! `retry`: retry an async operation on chosen errors, with a limit and a sleep.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::{Either, select};

use crate::rt::Runtime;
use crate::sync::{Mutex, lock};
use crate::trace;

mod backoff;

pub use self::backoff::Backoff;

/// The error a retry's attempt gives when it takes longer than
/// [`attempt_timeout`](Retry::attempt_timeout); turned into the operation's error type with
/// `E::from`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::AttemptTimedOut;
///
/// let error = AttemptTimedOut { after: Duration::from_secs(2) };
/// assert_eq!(error.to_string(), "attempt timed out after 2s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt timed out after {after:?}")]
pub struct AttemptTimedOut {
    /// The attempt timeout.
    pub after: Duration,
}

/// What [`notify`](Retry::notify) is told about the retry that is about to happen.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::retry_mut;
///
/// let mut calls = 0;
/// let mut seen = Vec::new();
/// let result = retry_mut(async || { calls += 1; if calls < 3 { Err("busy") } else { Ok(calls) } })
///     .sleep(Duration::ZERO)
///     .notify(|error, attempt| seen.push((*error, attempt.retry, attempt.sleep)))
///     .await;
/// assert_eq!(result, Ok(3));
/// assert_eq!(seen, [("busy", 1, Duration::ZERO), ("busy", 2, Duration::ZERO)]);
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// Which retry this is, from 1 (the first retry is the second call).
    pub retry: usize,
    /// The limit of retries, `None` for unlimited.
    pub limit: Option<usize>,
    /// How long the retry sleeps before it calls again.
    pub sleep: Duration,
}

/// The reusable settings of a retry: everything but the operation and its error-specific parts
/// ([`when`](Retry::when), [`notify`](Retry::notify), [`attempt_timeout`](Retry::attempt_timeout)).
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new().attempts_limit(3).backoff(Backoff::fixed(Duration::ZERO));
/// let mut calls = 0;
/// let result: Result<(), &str> = policy.run_mut(async || { calls += 1; Err("down") }).await;
/// assert_eq!(result, Err("down"));
/// assert_eq!(calls, 4); // the first call and 3 retries
/// # });
/// ```
///
/// # Defaults
///
/// | setting | default |
/// | --- | --- |
/// | [`attempts_limit`](RetryPolicy::attempts_limit) | `None`: retry forever |
/// | [`sleep`](RetryPolicy::sleep) / [`backoff`](RetryPolicy::backoff) | a fixed 5 s |
/// | [`max_elapsed`](RetryPolicy::max_elapsed) | none |
/// | [`runtime`](RetryPolicy::runtime) | [`default_runtime()`](crate::rt::default_runtime), used only to sleep a non-zero time |
#[derive(Clone, Default)]
pub struct RetryPolicy {
    attempts_limit: Option<usize>,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
    runtime: Option<Runtime>,
}

impl RetryPolicy {
    /// The defaults: retry forever, 5 s apart.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = asynchronously::RetryPolicy::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` retries after the first failure, so `n + 1` calls; `0` calls once; `None`
    /// retries forever. Python's `attempts_limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = asynchronously::RetryPolicy::new().attempts_limit(3).attempts_limit(None);
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn attempts_limit(mut self, n: impl Into<Option<usize>>) -> Self {
        self.attempts_limit = n.into();
        self
    }

    /// The same sleep before every retry: Python's `sleep_time_sec`. Zero never touches a timer.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = asynchronously::RetryPolicy::new().sleep(std::time::Duration::from_millis(200));
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn sleep(self, sleep: Duration) -> Self {
        self.backoff(Backoff::fixed(sleep))
    }

    /// How the sleep grows from retry to retry; see [`Backoff`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::{Backoff, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new().backoff(Backoff::exponential(Duration::from_millis(50)).jitter());
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gives up, with the last error, rather than sleep past `limit` after the first call began.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = asynchronously::RetryPolicy::new().max_elapsed(std::time::Duration::from_secs(60));
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.max_elapsed = Some(limit);
        self
    }

    /// Sleeps (and times out attempts) on `rt`'s timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::{RetryPolicy, rt::{ManualClock, Runtime}};
    ///
    /// let rt = Runtime::with_timer(|task| drop(task), ManualClock::new());
    /// let policy = RetryPolicy::new().runtime(&rt);
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.runtime = Some(rt.clone());
        self
    }

    /// A [`retry`] of `op` with these settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let policy = asynchronously::RetryPolicy::new().attempts_limit(0);
    /// assert_eq!(policy.run(|| async { Err::<(), _>("no") }).await, Err("no"));
    /// # });
    /// ```
    pub fn run<'a, F, Fut, T, E>(
        &self,
        op: F,
    ) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, F, Fut, T, E>, T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Retry::new(self.clone(), |config| drive(op, config))
    }

    /// A [`retry_mut`] of `op` with these settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let policy = asynchronously::RetryPolicy::new().attempts_limit(2).sleep(std::time::Duration::ZERO);
    /// let mut calls = 0;
    /// assert_eq!(policy.run_mut(async || { calls += 1; Err::<(), _>(calls) }).await, Err(3));
    /// # });
    /// ```
    pub fn run_mut<'a, F, T, E>(
        &self,
        op: F,
    ) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, F, T, E>, T, E>
    where
        F: AsyncFnMut() -> Result<T, E>,
    {
        Retry::new(self.clone(), |config| drive_mut(op, config))
    }

    /// A [`retry_with`] of `op` with these settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let policy = asynchronously::RetryPolicy::new().attempts_limit(2).sleep(std::time::Duration::ZERO);
    /// let result = policy.run_with(0, |tries| async move { (tries + 1, Err::<(), _>(tries + 1)) }).await;
    /// assert_eq!(result, Err(3));
    /// # });
    /// ```
    pub fn run_with<'a, C, F, Fut, T, E>(
        &self,
        ctx: C,
        op: F,
    ) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, C, F, Fut, T, E>, T, E>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = (C, Result<T, E>)>,
    {
        Retry::new(self.clone(), |config| drive_with(ctx, op, config))
    }
}

impl RetryPolicy {
    /// The runtime whose timer sleeps and times out: the one set, or the default.
    fn timer_runtime(&self) -> Runtime {
        self.runtime
            .clone()
            .unwrap_or_else(crate::rt::default_runtime)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("attempts_limit", &self.attempts_limit)
            .field("backoff", &self.backoff)
            .field("max_elapsed", &self.max_elapsed)
            .finish_non_exhaustive()
    }
}

type Predicate<'a, E> = Box<dyn FnMut(&E) -> bool + Send + 'a>;
/// Given the error and the planned sleep, the sleep to take (`None`: give up).
type Adjust<'a, E> = Box<dyn FnMut(&E, Option<Duration>) -> Option<Duration> + Send + 'a>;
/// The attempt timeout, and how to make an `E` of its expiry.
type AttemptTimeout<E> = (Duration, fn(Duration) -> E);
type Notify<'a, E> = Box<dyn FnMut(&E, Attempt) + Send + 'a>;

/// Everything a running retry reads: handed over when the retry is first awaited.
struct Config<'a, T, E> {
    policy: RetryPolicy,
    when: Option<Predicate<'a, E>>,
    retry_if_ok: Option<Predicate<'a, T>>,
    adjust: Option<Adjust<'a, E>>,
    notify: Option<Notify<'a, E>>,
    attempt_timeout: Option<AttemptTimeout<E>>,
}

type Slot<'a, T, E> = Arc<Mutex<Option<Config<'a, T, E>>>>;

pin_project_lite::pin_project! {
    /// Retries an async operation: returned by [`retry`], [`retry_with`] and [`RetryPolicy::run`];
    /// set it up with its methods, then `.await` it.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::retry_mut;
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum Error { Connection, NotFound }
    ///
    /// let mut calls = 0;
    /// let duration = retry_mut(async || {
    ///     calls += 1;
    ///     if calls < 3 { Err(Error::Connection) } else { Ok(42) }
    /// })
    /// .attempts_limit(3)
    /// .sleep(Duration::ZERO)
    /// .when(|error| *error == Error::Connection) // Python's retrying_exceptions
    /// .await;
    /// assert_eq!(duration, Ok(42));
    /// # });
    /// ```
    ///
    /// # Defaults
    ///
    /// As [`RetryPolicy`]'s, and: every error is retried ([`when`](Retry::when)), each sleep is the
    /// backoff's ([`adjust`](Retry::adjust)), nobody is told ([`notify`](Retry::notify)), attempts
    /// have no time limit ([`attempt_timeout`](Retry::attempt_timeout)).
    #[must_use = "a Retry does nothing until it is awaited"]
    pub struct Retry<'a, Fut, T, E> {
        // The loop, made when the retry is; it takes its settings from `slot` when first polled.
        #[pin]
        future: Fut,
        slot: Slot<'a, T, E>,
        // The settings, until they are handed over.
        config: Option<Config<'a, T, E>>,
    }
}

impl<'a, Fut, T, E> Retry<'a, Fut, T, E> {
    fn new(policy: RetryPolicy, drive: impl FnOnce(Slot<'a, T, E>) -> Fut) -> Self {
        let slot: Slot<'a, T, E> = Arc::new(Mutex::new(None));
        Self {
            future: drive(slot.clone()),
            slot,
            config: Some(Config {
                policy,
                when: None,
                retry_if_ok: None,
                adjust: None,
                notify: None,
                attempt_timeout: None,
            }),
        }
    }

    /// The settings, to set one (a `Retry` is set up before it is polled: a polled one is
    /// pinned, and its methods take it by value).
    fn config(&mut self) -> &mut Config<'a, T, E> {
        self.config
            .as_mut()
            .expect("a Retry is set up before it is first polled")
    }

    /// At most `n` retries after the first failure (`n + 1` calls); `0` calls once; `None`
    /// (the default) retries forever. Python's `attempts_limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let mut calls = 0;
    /// let result = asynchronously::retry_mut(async || { calls += 1; Err::<(), _>("no") })
    ///     .attempts_limit(3)
    ///     .sleep(std::time::Duration::ZERO)
    ///     .await;
    /// assert_eq!((result, calls), (Err("no"), 4));
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn attempts_limit(self, n: impl Into<Option<usize>>) -> Self {
        self.with_policy(|policy| policy.attempts_limit(n))
    }

    /// The same sleep before every retry (default 5 s): Python's `sleep_time_sec`. A zero sleep
    /// never touches a timer.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let result = asynchronously::retry_mut(async || Ok::<_, ()>(1)).sleep(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(result, Ok(1)); // no failure, no sleep
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn sleep(self, sleep: Duration) -> Self {
        self.with_policy(|policy| policy.sleep(sleep))
    }

    /// Retries only the errors for which `pred` is true; any other is returned at once. Python's
    /// `retrying_exceptions`.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let mut calls = 0;
    /// let result = asynchronously::retry_mut(async || { calls += 1; Err::<(), _>("fatal") })
    ///     .when(|error| *error == "transient")
    ///     .await;
    /// assert_eq!((result, calls), (Err("fatal"), 1));
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn when(mut self, pred: impl FnMut(&E) -> bool + Send + 'a) -> Self {
        self.config().when = Some(Box::new(pred));
        self
    }

    /// Retries a result that came back `Ok` but is not usable yet (a job still running, an empty
    /// page): `pred` says whether to call again. The retries count against the same limit and
    /// sleep the same backoff as errors; when they are spent, the last `Ok` comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::retry_mut;
    ///
    /// // A job's status, polled until it is done.
    /// let mut polls = 0;
    /// let status = retry_mut(async || { polls += 1; Ok::<_, ()>(if polls < 3 { "running" } else { "done" }) })
    ///     .retry_if_ok(|status| *status == "running")
    ///     .sleep(Duration::ZERO)
    ///     .await;
    /// assert_eq!((status, polls), (Ok("done"), 3));
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn retry_if_ok(mut self, pred: impl FnMut(&T) -> bool + Send + 'a) -> Self {
        self.config().retry_if_ok = Some(Box::new(pred));
        self
    }

    /// Decides the sleep before each retry from the error, as a `Retry-After` header does:
    /// `adjust` gets the error and the sleep the backoff planned (`None` once the attempts are
    /// spent), and gives the sleep to take, or `None` to give up with this error. backon's
    /// `adjust`. A sleep of `Duration::MAX` would never end: the retry gives up instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::retry_mut;
    ///
    /// /// A busy server tells how long to wait.
    /// #[derive(Debug, PartialEq)]
    /// struct Busy { retry_after: Option<Duration> }
    ///
    /// let mut calls = 0;
    /// let result = retry_mut(async || {
    ///     calls += 1;
    ///     if calls < 2 { Err(Busy { retry_after: Some(Duration::ZERO) }) } else { Ok(calls) }
    /// })
    /// .adjust(|error, planned| error.retry_after.or(planned))
    /// .await;
    /// assert_eq!(result, Ok(2)); // slept what the server asked (none), not the default 5 s
    /// # });
    /// ```
    pub fn adjust(
        mut self,
        adjust: impl FnMut(&E, Option<Duration>) -> Option<Duration> + Send + 'a,
    ) -> Self {
        self.config().adjust = Some(Box::new(adjust));
        self
    }

    /// How the sleep grows from retry to retry; see [`Backoff`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::{Backoff, retry_mut};
    ///
    /// let fetch = retry_mut(async || Ok::<_, ()>(()))
    ///     .backoff(Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(10)).jitter());
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn backoff(self, backoff: Backoff) -> Self {
        self.with_policy(|policy| policy.backoff(backoff))
    }

    /// Gives up, with the last error, rather than sleep past `limit` after the first call began.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::retry_mut;
    ///
    /// // A 5 s sleep would end past the 1 s budget: no retry at all.
    /// let result = retry_mut(async || Err::<(), _>("down")).max_elapsed(Duration::from_secs(1)).await;
    /// assert_eq!(result, Err("down"));
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn max_elapsed(self, limit: Duration) -> Self {
        self.with_policy(|policy| policy.max_elapsed(limit))
    }

    /// Calls `f` with the error and the coming retry before each retry sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let mut retries = Vec::new();
    /// let _ = asynchronously::retry_mut(async || Err::<(), _>("no"))
    ///     .attempts_limit(2)
    ///     .sleep(std::time::Duration::ZERO)
    ///     .notify(|_, attempt| retries.push(attempt.retry))
    ///     .await;
    /// assert_eq!(retries, [1, 2]);
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn notify(mut self, f: impl FnMut(&E, Attempt) + Send + 'a) -> Self {
        self.config().notify = Some(Box::new(f));
        self
    }

    /// Drops an attempt that takes longer than `limit`; it fails with
    /// `E::from(AttemptTimedOut { after: limit })`, which is retried like any other error.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::{AttemptTimedOut, retry_mut};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum Error { Slow }
    /// impl From<AttemptTimedOut> for Error {
    ///     fn from(_: AttemptTimedOut) -> Self { Error::Slow }
    /// }
    ///
    /// let result: Result<(), Error> = retry_mut(async || std::future::pending().await)
    ///     .attempt_timeout(Duration::from_millis(1))
    ///     .attempts_limit(0)
    ///     .await;
    /// assert_eq!(result, Err(Error::Slow));
    /// # });
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn attempt_timeout(mut self, limit: Duration) -> Self
    where
        E: From<AttemptTimedOut>,
    {
        self.config().attempt_timeout = Some((limit, |after| E::from(AttemptTimedOut { after })));
        self
    }

    /// Sleeps (and times out attempts) on `rt`'s timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::retry;
    /// # use asynchronously::testing::TestRuntime;
    /// # let test = TestRuntime::new(); // the sleeps take no time
    /// # let rt = test.runtime();
    ///
    /// let mut refusals = 2;
    /// let fetch = retry(|| {
    ///     let refused = refusals > 0;
    ///     refusals -= 1;
    ///     async move { if refused { Err("refused") } else { Ok("page") } }
    /// })
    /// .sleep(Duration::from_secs(5))
    /// .runtime(&rt);
    /// # let page =
    /// test.block_on(fetch)
    /// # ;
    /// # assert_eq!(page, Ok("page"));
    /// # assert_eq!(test.clock().elapsed(), Duration::from_secs(10)); // two sleeps on rt's clock
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn runtime(self, rt: &Runtime) -> Self {
        self.with_policy(|policy| policy.runtime(rt))
    }

    /// The settings a `RetryPolicy` has are set through it: one meaning for each.
    fn with_policy(mut self, set: impl FnOnce(RetryPolicy) -> RetryPolicy) -> Self {
        let config = self.config();
        config.policy = set(std::mem::take(&mut config.policy));
        self
    }
}

/// Polling it hands its settings over to its loop, once, and runs the loop.
impl<Fut, T, E> Future for Retry<'_, Fut, T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let this = self.project();
        if let Some(config) = this.config.take() {
            *lock(this.slot) = Some(config);
        }
        this.future.poll(cx)
    }
}

impl<Fut, T, E> fmt::Debug for Retry<'_, Fut, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.config.as_ref().map(|config| &config.policy))
            .finish_non_exhaustive()
    }
}

/// Retries `op` until it succeeds, on every error, forever, 5 s apart, unless set otherwise:
/// Python's `@retry`.
///
/// `op` is an `FnMut` that makes each attempt's future, as backon's is: it may borrow its
/// caller's state (`retry(|| self.get(path))`), and the retry is `Send`, to go into
/// `tokio::spawn` or a [`Component`](crate::lifecycle::Component)'s hook, whenever that future is.
/// The final error is returned unchanged. Each retry is logged at error level as `Retry: K/N`
/// (`K` from 1, `N` the limit or `inf`). A [`Retry`] is a future: await it, spawn it, or
/// `block_on` it.
///
/// # Which form
///
/// | form | the operation | the retry is `Send` | for |
/// | --- | --- | --- | --- |
/// | `retry(\|\| client.get(path))` | `FnMut() -> Fut` | when `Fut` is | state it owns or borrows shared: awaited in place or spawned |
/// | [`retry_mut`]`(async \|\| self.fetch().await)` | an async closure (`AsyncFnMut`) | when it owns its captures, not when it borrows them | state borrowed mutably, awaited in place |
/// | [`retry_with`]`(ctx, \|ctx\| async move { (ctx, result) })` | `FnMut(C) -> Fut` | when `C` and `Fut` are | state borrowed mutably, in a spawned task |
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::retry;
///
/// struct Client;
/// impl Client {
///     async fn get(&self, path: &str) -> Result<usize, std::io::Error> {
///         Ok(path.len()) // a request, which may fail
///     }
///
///     /// A library's helper: `Send`, so that its callers may spawn it.
///     async fn get_with_retry(&self, path: &str) -> Result<usize, std::io::Error> {
///         retry(|| self.get(path))
///             .attempts_limit(3)
///             .sleep(Duration::ZERO)
///             .when(|error| error.kind() == std::io::ErrorKind::ConnectionRefused)
///             .await
///     }
/// }
///
/// assert_eq!(Client.get_with_retry("/health").await?, 7);
/// # Ok::<(), std::io::Error>(()) }).unwrap();
/// ```
///
/// # Errors
///
/// The last error of `op`, unchanged: when the limit is spent, when [`when`](Retry::when) says
/// no, or when [`max_elapsed`](Retry::max_elapsed) would be passed.
///
/// # Cancel safety
///
/// Dropping the future cancels the attempt or the sleep in progress at once.
///
/// # Caveats
///
/// The compiler errors met on the way, each with its fix:
///
/// - **"async closure does not implement `FnMut` because it captures state from its
///   environment"**: an async closure that uses what it captured, given to `retry`. Give it to
///   [`retry_mut`], or write `|| op(&state)` (a closure that returns the attempt's future).
///
///   ```compile_fail
///   # futures::executor::block_on(async {
///   let mut calls = 0;
///   let _ = asynchronously::retry(async || { calls += 1; Err::<(), _>(calls) }).await;
///   # });
///   ```
/// - **"captured variable cannot escape `FnMut` closure body"**: `|| async { counter += 1 }`,
///   an attempt's future that borrows the closure's captures mutably. Use [`retry_mut`], or
///   [`retry_with`] to spawn it.
///
///   ```compile_fail
///   # futures::executor::block_on(async {
///   let mut calls = 0;
///   let _ = asynchronously::retry(|| async { calls += 1; Err::<(), _>(()) }).await;
///   # });
///   ```
/// - **"`client` does not live long enough … requires that `client` is borrowed for
///   `'static`"**, or inside `tokio::spawn` **"implementation of `Send` is not general
///   enough"**: a [`retry_mut`] whose async closure borrows, where `Send` is needed. Use `retry`
///   with a shared borrow, or [`retry_with`] for `&mut` state.
///
///   ```compile_fail,E0597
///   fn needs_send<T: Send>(_: T) {}
///   struct Client { calls: u32 }
///   impl Client {
///       async fn fetch(&mut self) -> Result<u32, ()> { self.calls += 1; Ok(self.calls) }
///   }
///   let mut client = Client { calls: 0 };
///   needs_send(asynchronously::retry_mut(async || client.fetch().await));
///   ```
pub fn retry<'a, F, Fut, T, E>(
    op: F,
) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, F, Fut, T, E>, T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    RetryPolicy::new().run(op)
}

/// Retries an async closure that borrows its caller's state *mutably* in place: [`retry`]'s
/// other form.
///
/// An async closure may lend its captures to each attempt (`async || self.fetch().await` with
/// `fetch(&mut self)`), which no `FnMut` returning a future can do, and which backon cannot do
/// (backon#49). The retry is awaited where it is: requiring its future to be `Send` makes rustc
/// ask for the borrow to be `'static` (a limitation of async closures on rustc 1.95), so it
/// cannot go into `tokio::spawn` while it borrows. See [`retry`] for which form to pick.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::retry_mut;
///
/// struct Connector { calls: u32 }
/// impl Connector {
///     async fn connect(&mut self) -> Result<u32, &'static str> {
///         self.calls += 1;
///         if self.calls < 3 { Err("refused") } else { Ok(self.calls) }
///     }
/// }
///
/// let mut connector = Connector { calls: 0 };
/// let calls = retry_mut(async || connector.connect().await).sleep(Duration::ZERO).await;
/// assert_eq!(calls, Ok(3));
/// assert_eq!(connector.calls, 3); // the borrow ended with the retry
/// # });
/// ```
///
/// # Errors
///
/// As [`retry`]'s.
pub fn retry_mut<'a, F, T, E>(
    op: F,
) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, F, T, E>, T, E>
where
    F: AsyncFnMut() -> Result<T, E>,
{
    RetryPolicy::new().run_mut(op)
}

/// Retries an operation that takes a context by value and gives it back with its result, so that
/// it can use the caller's state (even `&mut` state) and still be `Send`.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use asynchronously::retry_with;
///
/// struct Client { calls: u32 }
/// impl Client {
///     async fn fetch(&mut self) -> Result<u32, &'static str> {
///         self.calls += 1;
///         if self.calls < 3 { Err("busy") } else { Ok(7) }
///     }
/// }
///
/// let mut client = Client { calls: 0 };
/// let answer = retry_with(&mut client, |client| async move {
///     let result = client.fetch().await;
///     (client, result)
/// })
/// .sleep(Duration::ZERO)
/// .await;
/// assert_eq!(answer, Ok(7));
/// assert_eq!(client.calls, 3);
/// # });
/// ```
///
/// # Errors
///
/// As [`retry`]'s.
///
/// # Caveats
///
/// An attempt dropped by [`attempt_timeout`](Retry::attempt_timeout) takes the context with it,
/// so nothing is left to retry with: the retry ends with the timeout error.
pub fn retry_with<'a, C, F, Fut, T, E>(
    ctx: C,
    op: F,
) -> Retry<'a, impl Future<Output = Result<T, E>> + use<'a, C, F, Fut, T, E>, T, E>
where
    F: FnMut(C) -> Fut,
    Fut: Future<Output = (C, Result<T, E>)>,
{
    RetryPolicy::new().run_with(ctx, op)
}

/// Zero-sleep retries yield to the executor this often, so that an operation that fails at once
/// forever cannot starve the other tasks of its thread.
const YIELD_EVERY: usize = 32;

/// The decisions of a running retry, shared by its two loops ([`drive`] and [`drive_with`]).
///
/// The loops are two small `async fn`s rather than one generic over "an attempt" (a trait with an
/// `async fn`, or an `AsyncFnMut` wrapper): either of those keeps rustc from proving the retry
/// future `Send` / `'static` for some operations (a borrowed `retry_with` context, a
/// `&'static str` error), which `spawn` needs.
struct Controller<'a, T, E> {
    config: Config<'a, T, E>,
    /// Looked up only if something needs a clock (a timeout, `max_elapsed`, a non-zero sleep).
    rt: Option<Runtime>,
    started: Option<Instant>,
    retries: usize,
    /// The sleep before every retry, when the backoff makes it the same for all.
    constant_sleep: Option<Duration>,
}

impl<'a, T, E> Controller<'a, T, E> {
    fn new(slot: &Slot<'a, T, E>) -> Self {
        let config = lock(slot)
            .take()
            .expect("a Retry hands over its settings when it is awaited");
        let needs_clock = config.attempt_timeout.is_some() || config.policy.max_elapsed.is_some();
        let rt = needs_clock.then(|| config.policy.timer_runtime());
        let started = rt.as_ref().map(|rt| rt.timer().now());
        Self {
            constant_sleep: config.policy.backoff.constant(),
            config,
            rt,
            started,
            retries: 0,
        }
    }

    /// Runs one call, under the attempt timeout if there is one (`Err` when it ran out). Takes
    /// `&mut self`: a `&self` held across the await would need the notifier to be `Sync`.
    async fn call<O>(&mut self, call: impl Future<Output = O>) -> Result<O, E> {
        let Some((after, timed_out)) = self.config.attempt_timeout else {
            return Ok(call.await);
        };
        let rt = self.rt.as_ref().expect("a clock for the attempt timeout");
        match select(pin!(call), rt.sleep(after)).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right(((), _)) => Err(timed_out(after)),
        }
    }

    /// After a call that gave `Ok(value)`: `Err(value)` to return it, or the sleep before the
    /// next call, when [`retry_if_ok`](Retry::retry_if_ok) asks for one and the attempts allow.
    #[inline(always)]
    fn after_ok(&mut self, value: T) -> Result<Duration, T> {
        let unusable = match self.config.retry_if_ok.as_mut() {
            Some(retry_if_ok) => retry_if_ok(&value),
            None => false,
        };
        let limit = self.config.policy.attempts_limit;
        if !unusable || limit.is_some_and(|limit| self.retries >= limit) {
            return Err(value);
        }
        let retry = self.retries + 1;
        let sleep = self
            .constant_sleep
            .unwrap_or_else(|| self.config.policy.backoff.sleep_for(retry));
        if past_max_elapsed(
            self.config.policy.max_elapsed,
            self.started,
            &self.rt,
            sleep,
        ) {
            return Err(value);
        }
        self.retries = retry;
        log_retry(retry, limit);
        Ok(sleep)
    }

    /// After a failed call: `Err(error)` to give up with it, or the sleep before the next call.
    /// Inlined into the loops (the "retry of an op failing 1k times" row: as a call, a sixth of
    /// a retry's instructions went to calling it).
    #[inline(always)]
    fn after_error(&mut self, error: E) -> Result<Duration, E> {
        let Config {
            policy,
            when,
            adjust,
            notify,
            ..
        } = &mut self.config;
        if when.as_mut().is_some_and(|when| !when(&error)) {
            return Err(error);
        }
        let limit = policy.attempts_limit;
        let retry = self.retries + 1;
        let spent = limit.is_some_and(|limit| self.retries >= limit);
        let constant = self.constant_sleep;
        let planned = || constant.unwrap_or_else(|| policy.backoff.sleep_for(retry));
        let sleep = match adjust.as_mut() {
            None if spent => return Err(error),
            None => planned(),
            // A sleep of `Duration::MAX` would never end: give up instead.
            Some(adjust) => match adjust(&error, (!spent).then(planned)) {
                Some(sleep) if sleep != Duration::MAX => sleep,
                _ => return Err(error),
            },
        };
        if past_max_elapsed(policy.max_elapsed, self.started, &self.rt, sleep) {
            return Err(error);
        }
        self.retries = retry;
        log_retry(retry, limit);
        if let Some(notify) = notify.as_mut() {
            notify(
                &error,
                Attempt {
                    retry,
                    limit,
                    sleep,
                },
            );
        }
        Ok(sleep)
    }

    /// After a call: `Err(result)` to return it, or the sleep before the next call.
    #[inline(always)]
    fn next(&mut self, result: Result<T, E>) -> Result<Duration, Result<T, E>> {
        match result {
            Ok(value) => self.after_ok(value).map_err(Ok),
            Err(error) => self.after_error(error).map_err(Err),
        }
    }

    /// Whether the pause before the next call, `sleep`, is a yield: a zero sleep touches no
    /// timer, and yields now and then, so that an operation that fails at once forever cannot
    /// starve the other tasks of its thread.
    #[inline(always)]
    fn yields(&self, sleep: Duration) -> bool {
        sleep.is_zero() && self.retries % YIELD_EVERY == 0
    }

    /// The sleep before the next call, on the runtime's timer (a zero one is over at once).
    fn sleep(&mut self, sleep: Duration) -> crate::rt::Sleep {
        let policy = &self.config.policy;
        let rt = self.rt.get_or_insert_with(|| policy.timer_runtime());
        rt.sleep(sleep)
    }

    /// The error a timed-out `retry_with` attempt ends with (it took the context along).
    fn timed_out(&self) -> E {
        let (after, timed_out) = self
            .config
            .attempt_timeout
            .expect("only a timeout loses the context");
        timed_out(after)
    }
}

/// The loop of [`retry`]: an `FnMut` that makes each attempt's future, so that the retry is `Send`
/// whenever that future is.
///
/// The three loops share their decisions ([`Controller::next`]) and write out the pause after
/// them: as an `async fn` of its own it cost 43 instructions a retry more (the "retry ... zero
/// sleep" rows went from 71 to 114, against backon's 79).
async fn drive<F, Fut, T, E>(mut op: F, slot: Slot<'_, T, E>) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut control = Controller::new(&slot);
    loop {
        let span = trace::attempt(control.retries + 1);
        let result = match control.config.attempt_timeout {
            None => trace::within(&span, op()).await,
            Some(_) => trace::within(&span, control.call(op()))
                .await
                .and_then(|result| result),
        };
        let sleep = match control.next(result) {
            Ok(sleep) => sleep,
            Err(done) => return done,
        };
        trace::delay(&span, sleep);
        if control.yields(sleep) {
            yield_now().await;
        } else if !sleep.is_zero() {
            control.sleep(sleep).await;
        }
    }
}

/// The loop of [`retry_mut`]: the same over an async closure, which may lend its captures to each
/// attempt. (One loop generic over both would call the closure through `AsyncFnMut`, whose
/// futures rustc cannot prove `Send` when they borrow.)
async fn drive_mut<T, E>(
    mut op: impl AsyncFnMut() -> Result<T, E>,
    slot: Slot<'_, T, E>,
) -> Result<T, E> {
    let mut control = Controller::new(&slot);
    loop {
        let span = trace::attempt(control.retries + 1);
        let result = match control.config.attempt_timeout {
            None => trace::within(&span, op()).await,
            Some(_) => trace::within(&span, control.call(op()))
                .await
                .and_then(|result| result),
        };
        let sleep = match control.next(result) {
            Ok(sleep) => sleep,
            Err(done) => return done,
        };
        trace::delay(&span, sleep);
        if control.yields(sleep) {
            yield_now().await;
        } else if !sleep.is_zero() {
            control.sleep(sleep).await;
        }
    }
}

async fn drive_with<C, F, Fut, T, E>(mut ctx: C, mut op: F, slot: Slot<'_, T, E>) -> Result<T, E>
where
    F: FnMut(C) -> Fut,
    Fut: Future<Output = (C, Result<T, E>)>,
{
    let mut control = Controller::new(&slot);
    loop {
        let span = trace::attempt(control.retries + 1);
        let result = match trace::within(&span, control.call(op(ctx))).await {
            Ok((back, result)) => {
                ctx = back;
                result
            }
            // The dropped attempt took the context with it: nothing to call again with.
            Err(_) => return Err(control.timed_out()),
        };
        let sleep = match control.next(result) {
            Ok(sleep) => sleep,
            Err(done) => return done,
        };
        trace::delay(&span, sleep);
        if control.yields(sleep) {
            yield_now().await;
        } else if !sleep.is_zero() {
            control.sleep(sleep).await;
        }
    }
}

/// Whether sleeping `sleep` now would end past `max` (a retry's
/// [`max_elapsed`](Retry::max_elapsed)) after `started`.
#[inline(always)]
fn past_max_elapsed(
    max: Option<Duration>,
    started: Option<Instant>,
    rt: &Option<Runtime>,
    sleep: Duration,
) -> bool {
    let (Some(max), Some(started), Some(rt)) = (max, started, rt) else {
        return false;
    };
    let elapsed = rt.timer().now().saturating_duration_since(started);
    elapsed.saturating_add(sleep) > max
}

/// The seed's record of a retry, at error level: `Retry: K/N`.
#[inline(always)]
fn log_retry(retry: usize, limit: Option<usize>) {
    match limit {
        Some(limit) => log::error!("Retry: {retry}/{limit}"),
        None => log::error!("Retry: {retry}/inf"),
    }
}

/// Yields to the executor once.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}
