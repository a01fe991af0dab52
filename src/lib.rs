//! Async building blocks that run on any runtime: service lifecycles that come up in dependency
//! order and go down in reverse, periodic jobs, retries, and concurrent awaiting that fails fast
//! and cancels what is left.
//!
//! A Rust port of the Python package [`asynchronously`](https://pypi.org/project/asynchronously/)
//! 1.0.0, for library authors who cannot pick a runtime for their users, smol applications, and
//! async code on plain std with no runtime at all. The core is written against `futures`,
//! `futures-timer`, `event-listener`, `async-lock`, `log`, `thiserror` and `pin-project-lite`;
//! a [`Runtime`](rt::Runtime) carries the executor (behind the one-method
//! [`Spawner`](rt::Spawner) trait) and the clock (behind [`Timer`](rt::Timer)).
//!
//! # A tour
//!
//! **Bring a service up in dependency order, and down in reverse.** Each part is a
//! [`Component`](lifecycle::Component); one `depends_on` gives both orders; one
//! [`run_until`](lifecycle::run_until) inits, waits for shutdown, and deinits (rolling back what
//! came up if init fails). [`Service`](lifecycle::Service) adds long-running parts, signals, one
//! deadline and a report, for a service's `main`; [`testing::TestRuntime`] tests all of it
//! without waiting.
//!
//! ```
//! use asynchronously::children;
//! use asynchronously::lifecycle::{BoxError, Children, Component, ComponentExt, Lifecycle, run_until};
//!
//! #[derive(Default)]
//! struct Database { lifecycle: Lifecycle }
//! impl Component for Database {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//!     async fn on_init(&self) -> Result<(), BoxError> { Ok(()) /* open the pool */ }
//!     async fn on_deinit(&self) -> Result<(), BoxError> { Ok(()) /* close it */ }
//! }
//!
//! #[derive(Default)]
//! struct HttpServer { lifecycle: Lifecycle }
//! impl Component for HttpServer {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//! }
//!
//! #[derive(Default)]
//! struct Context { lifecycle: Lifecycle, database: Database, http_server: HttpServer }
//! impl Component for Context {
//!     fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
//!     fn children(&self) -> Children<'_> { children![self.database, self.http_server] }
//! }
//!
//! let context = Context::default();
//! context.http_server.depends_on(&context.database)?;
//! futures::executor::block_on(run_until(&context, async { /* Ctrl-C */ }))?;
//! # Ok::<(), asynchronously::lifecycle::LifecycleError>(())
//! ```
//!
//! **Spawn on any executor, get structured handles.** Dropping a [`JoinHandle`](rt::JoinHandle)
//! cancels its task; a panic comes back as a value.
//!
//! ```
//! use asynchronously::rt::{Runtime, ThreadPerTask};
//!
//! let rt = Runtime::new(ThreadPerTask);
//! let task = rt.spawn(async { panic!("boom") });
//! let id = task.id();
//! let error = futures::executor::block_on(task).unwrap_err();
//! assert_eq!(error.to_string(), format!("task {id} panicked with message \"boom\""));
//! ```
//!
//! **Run a job on a period**, sync or async, fixed delay or fixed rate; errors are logged and
//! the loop goes on; `stop` wakes it at once.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::time::Duration;
//! use asynchronously::Periodic;
//!
//! let health = Periodic::builder(|| println!("i'm ok"), Duration::from_secs(60)).start()?;
//! health.stop().await; // at once, not in a minute
//! # Ok::<(), asynchronously::PeriodicError>(()) }).unwrap();
//! ```
//!
//! **Retry on chosen errors**, with a limit and a sleep (or a backoff); the operation may borrow
//! your state, and the last error comes back unchanged.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::time::Duration;
//! use asynchronously::{retry, retry_mut};
//!
//! // An operation that borrows: `Send`, so that it may be spawned.
//! let path = String::from("/health");
//! let length = retry(|| async { Ok::<_, ()>(path.len()) }).sleep(Duration::ZERO).await;
//! assert_eq!(length, Ok(7));
//!
//! // One that borrows mutably, awaited in place.
//! let mut calls = 0;
//! let result = retry_mut(async || { calls += 1; if calls < 3 { Err("busy") } else { Ok(calls) } })
//!     .attempts_limit(3)
//!     .sleep(Duration::ZERO)
//!     .await;
//! assert_eq!(result, Ok(3));
//! # });
//! ```
//!
//! **Call anything that produces a value** with [`acall`], and lock a lock only if there is one
//! with [`lock_optional`].
//!
//! **Fail fast, cancel the rest.** [`strict_gather`] returns the first error in time and drops
//! every sibling before it does.
//!
//! ```
//! # futures::executor::block_on(async {
//! use asynchronously::strict_gather;
//!
//! let ids = strict_gather([1, 2, 3].map(|id| async move { Ok::<_, String>(id) })).await?;
//! assert_eq!(ids, [1, 2, 3]);
//! # Ok::<(), String>(()) }).unwrap();
//! ```
//!
//! **Drain before exit.** [`wait_for_all_other_tasks`] waits for every task live now, except the
//! caller's own.
//!
//! ```
//! # futures::executor::block_on(async {
//! use asynchronously::{rt::default_runtime, wait_for_all_other_tasks};
//!
//! default_runtime().spawn(async { /* flush a log */ }).detach();
//! wait_for_all_other_tasks().await;
//! # });
//! ```
//!
//! **Structured concurrency on any runtime**, with tokio's names and semantics: a
//! [`CancellationToken`] tree, a [`TaskGroup`] (tokio's `JoinSet`, with an optional limit) and a
//! [`TaskTracker`].
//!
//! ```
//! # futures::executor::block_on(async {
//! use asynchronously::{CancellationToken, TaskGroup};
//! use asynchronously::rt::{Runtime, ThreadPerTask};
//!
//! let rt = Runtime::new(ThreadPerTask);
//! let shutdown = CancellationToken::new();
//! let mut workers = TaskGroup::with_limit(&rt, 2); // two at a time
//! for id in 0..4 {
//!     let token = shutdown.child_token();
//!     workers.spawn(async move { token.run_until_cancelled(async move { id }).await });
//! }
//! let done = workers.join_all().await;
//! assert_eq!(done.len(), 4);
//! shutdown.cancel();
//! # });
//! ```
//!
//! **Signal between tasks.** An [`Event`] is asyncio's: set it, and every waiter wakes.
//!
//! ```
//! # futures::executor::block_on(async {
//! let ready = asynchronously::Event::new();
//! ready.set();
//! ready.wait().await;
//! # });
//! ```
//!
//! **Test time-dependent code in microseconds** on a [`ManualClock`](rt::ManualClock).
//!
//! ```
//! use std::time::Duration;
//! use asynchronously::rt::{ManualClock, Runtime, ThreadPerTask};
//!
//! let clock = ManualClock::new();
//! let rt = Runtime::with_timer(
//!     ThreadPerTask,
//!     clock.clone(),
//! );
//! let nap = rt.spawn({ let rt = rt.clone(); async move { rt.sleep(Duration::from_secs(3600)).await } });
//! # while clock.sleepers() == 0 { std::thread::yield_now(); }
//! clock.advance(Duration::from_secs(3600));
//! futures::executor::block_on(nap).unwrap();
//! ```
//!
//! # Cargo features
//!
//! | feature | default | gives |
//! | --- | --- | --- |
//! | `thread-pool` | yes | [`rt::ThreadPool`]: `futures::executor::ThreadPool` + `futures-timer`, no async runtime needed |
//! | `tokio` | no | `rt::Tokio`: a tokio `Handle`'s spawner, `tokio::time` (honours `pause()`) |
//! | `smol` | no | `rt::Smol`: smol's global executor or yours, `async-io` timers |
//! | `async-std` | no | `rt::AsyncStd`: async-std's spawner and timer (deprecated upstream) |
//!
//! # Runtime support
//!
//! Every primitive takes a [`Runtime`](rt::Runtime), or uses
//! [`default_runtime`](rt::default_runtime): the one installed with
//! [`set_default`](rt::set_default), else the tokio runtime it is called from (with `tokio`),
//! else smol's global executor (with `smol`), else a process-wide thread pool (with
//! `thread-pool`), else a thread per task. Any other executor takes one closure:
//! `Runtime::new(|task| my_executor.spawn(task))`.
//!
//! # Relationship with other crates
//!
//! - **The Python package.** Every promise of its README holds here, translated: see the table
//!   in `docs/python.md`. Where Python leaves a trap (a hang, a silent skip, a leaked task), this crate
//!   closes it: a dependency cycle is an error before anything runs, a failed init fails what
//!   waits on it instead of hanging it, a shared child's parents wait for it.
//! - **`futures::future::try_join_all`.** Above 30 inputs it sees an error only after every
//!   earlier future has finished; [`strict_gather`] fails on the first error in time. For small,
//!   all-`Ok` workloads both are fine.
//! - **`backon`.** Its retries are `FnMut() -> Future`, as [`retry`]'s are, so the operation
//!   cannot borrow its caller's state mutably (backon#49); [`retry_mut`] takes an async closure
//!   that can, and [`retry_with`] passes state in and out. backon has more backoff strategies;
//!   this crate has Python's semantics (`attempts_limit` counts retries, `Retry: K/N` is logged)
//!   and a time budget.
//! - **tokio's `JoinSet`, tokio-util's `TaskTracker` and `CancellationToken`.** Tokio only (the
//!   token aside, they need its runtime); [`TaskGroup`], [`TaskTracker`] and
//!   [`CancellationToken`] have their names and semantics on any executor, and a group can run
//!   at most `n` tasks at once. [`Runtime::wait_for_all_other_tasks`](rt::Runtime::wait_for_all_other_tasks)
//!   is the other drain: every task of the runtime live at the call, never the caller's own.
//!
//! When *not* to use this crate: in an application that is all-in on tokio and needs none of
//! the service primitives, tokio's own `JoinSet`, tokio-util's `TaskTracker` and `Notify` are
//! enough.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod cfg;

mod event;
mod gather;
mod guard;
mod job;
pub mod lifecycle;
mod periodic;
mod retry;
pub mod rt;
mod sync;
mod task_group;
pub mod testing;
mod token;
mod trace;
mod tracker;

pub use crate::event::{Event, EventWait};
#[allow(deprecated)]
pub use crate::gather::{
    AwaitMapValues, StrictGather, StrictGatherSpawned, await_map_values, complete_all_tasks,
    strict_gather, strict_gather_spawned, wait_for_all_other_tasks,
};
pub use crate::guard::{NoopGuard, lock_optional};
pub use crate::job::{Acall, Call, Job, Value, acall, marker};
pub use crate::periodic::{
    Join, MissedTicks, Periodic, PeriodicBuilder, PeriodicError, PeriodicStats, Stop,
};
pub use crate::retry::{
    Attempt, AttemptTimedOut, Backoff, Retry, RetryPolicy, retry, retry_mut, retry_with,
};
pub use crate::task_group::{GroupShutdown, JoinAll, JoinNext, TaskGroup, TryJoinAll};
pub use crate::token::{
    CancellationToken, DropGuard, RunUntilCancelled, WaitForCancellation, WaitForCancellationOwned,
};
pub use crate::tracker::{TaskTracker, TaskTrackerWaitFuture, TrackedFuture};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
