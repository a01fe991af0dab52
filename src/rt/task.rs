//! `JoinHandle`, `JoinError`, and the wrapper that runs every spawned task.
//!
//! Every task is wrapped in a [`Task`], which (1) polls the user's future inside `catch_unwind`,
//! so a panic never reaches the executor's thread, and drops the future during that unwind, as a
//! thread's stack is dropped; (2) checks for an abort before each poll (an executor that aborts
//! tasks itself drops the task instead); (3) drops the user's future *before* reporting the
//! outcome to the [`JoinHandle`], so that awaiting an aborted handle means "its destructors have
//! run"; and (4) reports `Cancelled` as it is dropped if the executor drops it unfinished (a
//! destructor's panic, `Panicked`). A task reports through [`Report`]: to the state it shares with
//! its handle, to its slot in a `TaskGroup` (`rt::group`), or nowhere for a task nobody joins
//! ([`Detached`]).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

use super::adapters::Abort;
use super::group::{Members, Slots};
use super::registry::{CurrentTask, Registration, Registry};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, AtomicWaker, Mutex, MutexGuard, lock};

/// Why a task gave no output.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let task = rt.spawn(async { panic!("boom") });
/// let id = task.id();
/// let err = futures::executor::block_on(task).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.id(), Some(id));
/// assert_eq!(err.to_string(), format!("task {id} panicked with message \"boom\""));
/// ```
///
/// A `Cancelled` error carries no [`TaskId`] (the variant has no field, so that
/// `Err(JoinError::Cancelled)` can be matched); the handle's [`id`](JoinHandle::id) has it.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted, its handle dropped, or its executor dropped it unfinished.
    Cancelled,
    /// The task panicked; the payload is the value it panicked with.
    Panicked(PanicPayload),
}

/// tokio's words: `task was cancelled`, `task 12 panicked with message "boom"`, or `task 12
/// panicked` for a payload that is not a string (without the id if the task had no handle).
impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cancelled => f.write_str("task was cancelled"),
            Self::Panicked(payload) => {
                f.write_str("task ")?;
                if let Some(id) = payload.0.task {
                    write!(f, "{id} ")?;
                }
                match &payload.0.message {
                    Some(message) => write!(f, "panicked with message {message:?}"),
                    None => f.write_str("panicked"),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl JoinError {
    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::JoinError;
    ///
    /// assert!(JoinError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::JoinError;
    ///
    /// assert!(!JoinError::Cancelled.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// The panic's payload, to resume it with `std::panic::resume_unwind`; `Err(self)` if the
    /// task was cancelled instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let err = futures::executor::block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
    /// let payload = err.into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    pub fn into_panic(self) -> Result<Box<dyn Any + Send + 'static>, Self> {
        match self {
            Self::Panicked(payload) => Ok(payload.into_inner()),
            other => Err(other),
        }
    }

    /// The id of the task that panicked, as its handle gave the error; `None` for `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{JoinError, Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let task = rt.spawn(async { panic!("boom") });
    /// let id = task.id();
    /// assert_eq!(futures::executor::block_on(task).unwrap_err().id(), Some(id));
    /// assert_eq!(JoinError::Cancelled.id(), None);
    /// ```
    pub fn id(&self) -> Option<TaskId> {
        match self {
            Self::Panicked(payload) => payload.0.task,
            Self::Cancelled => None,
        }
    }

    /// The error as the handle of task `id` gives it.
    pub(super) fn of_task(mut self, id: TaskId) -> Self {
        if let Self::Panicked(payload) = &mut self {
            payload.0.task = Some(id);
        }
        self
    }
}

/// A task's id: unique among every task spawned with a handle while the process lives, as
/// tokio's `task::Id` is. Displayed as its number.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let (a, b) = (rt.spawn(async {}), rt.spawn(async {}));
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id().to_string(), a.id().as_u64().to_string());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(NonZeroU64);

/// Flags take the low bits of a task's state word, its id the rest.
const ID_SHIFT: u32 = 2;

impl TaskId {
    /// The next id of the process. (2^62 of them: at a billion spawns a second, 146 years.)
    pub(super) fn next() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(id < 1 << (64 - ID_SHIFT), "task ids are exhausted");
        Self(NonZeroU64::new(id).expect("ids start at 1"))
    }

    /// The id as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let task = Runtime::new(ThreadPerTask).spawn(async {});
    /// assert!(task.id().as_u64() > 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The value a task (or a lifecycle hook) panicked with.
///
/// It is an error of its own, displayed as `panicked: <message>`, so that a panic can travel as
/// the `source` of another error, as a panicking lifecycle hook does.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{JoinError, Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let task = rt.spawn(async { panic!("disk {} is full", 3) });
/// match futures::executor::block_on(task) {
///     Err(JoinError::Panicked(payload)) => assert_eq!(payload.message(), Some("disk 3 is full")),
///     other => unreachable!("{other:?}"),
/// }
/// ```
pub struct PanicPayload(Box<PanicInner>);

/// Boxed, so that a `JoinError` (and every task's output slot) is one pointer wide.
struct PanicInner {
    message: Option<String>,
    /// The task that panicked, once its handle gave the error.
    task: Option<TaskId>,
    // A Mutex makes the error `Sync` (a `Box<dyn Any + Send>` is not), so that `JoinError` can
    // travel in a `Box<dyn Error + Send + Sync>`; it is only locked to give the payload back.
    payload: std::sync::Mutex<Box<dyn Any + Send + 'static>>,
}

impl PanicPayload {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        Self(Box::new(PanicInner {
            message,
            task: None,
            payload: std::sync::Mutex::new(payload),
        }))
    }

    /// The panic message, if the task panicked with a string (as `panic!` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let err = futures::executor::block_on(rt.spawn(async { std::panic::panic_any(7_u8) })).unwrap_err();
    /// let payload = err.into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// The payload itself, to resume the panic with `std::panic::resume_unwind`.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{JoinError, Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// if let Err(JoinError::Panicked(p)) = futures::executor::block_on(rt.spawn(async { panic!("x") })) {
    ///     assert_eq!(p.into_inner().downcast_ref::<&str>(), Some(&"x"));
    /// }
    /// ```
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.0
            .payload
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `panicked: <message>`, or `panicked` for a payload that is not a string.
impl fmt::Display for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.message {
            Some(message) => write!(f, "panicked: {message}"),
            None => f.write_str("panicked"),
        }
    }
}

impl std::error::Error for PanicPayload {}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicPayload")
            .field("message", &self.0.message)
            .finish_non_exhaustive()
    }
}

const COMPLETE: u64 = 0b01;
const ABORTED: u64 = 0b10;

/// What a task and its handle share.
///
/// `A` is how an abort reaches a parked task: [`WakeOnAbort`], or `()` when its executor aborts it.
pub(crate) struct Shared<T, A> {
    core: Core<T>,
    /// Woken by `abort`, so that an aborted task drops its future promptly.
    task_waker: A,
}

/// The part of [`Shared`] that a [`JoinHandle`] reads.
struct Core<T> {
    /// `COMPLETE` and `ABORTED`, and the task's id above them (`ID_SHIFT`): the id takes no room
    /// of its own (the "bytes allocated per spawned task" row).
    state: AtomicU64,
    /// The output, and the waker of the handle waiting for it: one lock for both (the
    /// "bytes allocated per spawned task" row: a tokio task's shared state fits in 64 bytes).
    slot: Mutex<Slot<T>>,
}

struct Slot<T> {
    output: Option<Result<T, JoinError>>,
    waiter: Option<Waker>,
}

/// How `abort` wakes a parked task, if it must.
pub(crate) trait AbortWaker: Default + Send + Sync + Sized + 'static {
    fn register(&self, waker: &Waker);
    fn wake(&self);
    /// The handle's side of `shared`; `executor` is how the executor aborts the task, for an
    /// executor that does.
    fn handle<T>(shared: Arc<Shared<T, Self>>, executor: Option<Abort>) -> Handle<T>;
}

/// The task reads the abort mark as it is polled: `abort` wakes it through the waker it
/// registered, so that it drops its future promptly.
#[derive(Default)]
pub(crate) struct WakeOnAbort(AtomicWaker);

impl AbortWaker for WakeOnAbort {
    fn register(&self, waker: &Waker) {
        self.0.register(waker);
    }
    fn wake(&self) {
        self.0.wake();
    }
    fn handle<T>(shared: Arc<Shared<T, Self>>, _executor: Option<Abort>) -> Handle<T> {
        Handle::Flag(shared)
    }
}

/// The executor aborts the task itself (it drops it): nothing to wake.
impl AbortWaker for () {
    fn register(&self, _waker: &Waker) {}
    fn wake(&self) {}
    fn handle<T>(shared: Arc<Shared<T, Self>>, executor: Option<Abort>) -> Handle<T> {
        let executor = executor.expect("a task its executor aborts comes with how to abort it");
        Handle::Executor(shared, executor)
    }
}

impl<T, A: AbortWaker> Shared<T, A> {
    fn new() -> Self {
        Self {
            core: Core {
                state: AtomicU64::new(TaskId::next().as_u64() << ID_SHIFT),
                slot: Mutex::new(Slot {
                    output: None,
                    waiter: None,
                }),
            },
            task_waker: A::default(),
        }
    }
}

impl<T> Core<T> {
    fn is(&self, flag: u64) -> bool {
        self.state.load(Ordering::Acquire) & flag != 0
    }

    fn id(&self) -> TaskId {
        let id = self.state.load(Ordering::Relaxed) >> ID_SHIFT;
        TaskId(NonZeroU64::new(id).expect("a task's state holds its id"))
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        lock(&self.slot)
    }

    /// Stores the outcome once; later calls do nothing.
    fn complete(&self, outcome: Result<T, JoinError>) {
        let waiter = {
            let mut slot = self.lock();
            if self.is(COMPLETE) {
                return;
            }
            slot.output = Some(outcome);
            self.state.fetch_or(COMPLETE, Ordering::AcqRel);
            slot.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// The output if it is stored; else `waker` is woken once it is.
    fn poll_output(&self, waker: &Waker) -> Poll<Result<T, JoinError>> {
        let mut slot = self.lock();
        match slot.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                match &mut slot.waiter {
                    Some(waiter) => waiter.clone_from(waker),
                    waiter => *waiter = Some(waker.clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<T, A: AbortWaker> Shared<T, A> {
    /// Marks the task aborted, and wakes it if it reads the mark itself.
    fn abort(&self) {
        let before = self.core.state.fetch_or(ABORTED, Ordering::AcqRel);
        if before & (COMPLETE | ABORTED) == 0 {
            self.task_waker.wake();
        }
    }
}

/// A [`JoinHandle`]'s side of the state it shares with its task, by how the task is aborted.
pub(crate) enum Handle<T> {
    /// The task reads the abort mark as it is polled.
    Flag(Arc<Shared<T, WakeOnAbort>>),
    /// The executor aborts the task.
    Executor(Arc<Shared<T, ()>>, Abort),
}

impl<T> Handle<T> {
    fn core(&self) -> &Core<T> {
        match self {
            Self::Flag(shared) => &shared.core,
            Self::Executor(shared, _) => &shared.core,
        }
    }

    fn abort(&self) {
        match self {
            Self::Flag(shared) => shared.abort(),
            Self::Executor(shared, executor) => {
                shared.abort();
                if !shared.core.is(COMPLETE) {
                    executor.abort();
                }
            }
        }
    }
}

impl<T: Send + 'static> Handle<T> {
    fn abort_handle(&self) -> AbortHandle {
        let (task, executor) = match self {
            Self::Flag(shared) => (erase(shared), None),
            Self::Executor(shared, executor) => (erase(shared), Some(executor.clone())),
        };
        AbortHandle {
            target: Target::Task { task, executor },
            id: self.core().id(),
        }
    }
}

/// What an [`AbortHandle`] does to a task, whatever its output type.
trait Abortable: Send + Sync {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

/// A task's shared state, its output type erased. (A std `Arc`: loom's cannot be unsized, so
/// under loom the state is wrapped in one, at the cost of an allocation.)
type ErasedTask = std::sync::Arc<dyn Abortable>;

#[cfg(not(loom))]
fn erase<T: Send + 'static, A: AbortWaker>(shared: &Arc<Shared<T, A>>) -> ErasedTask {
    shared.clone()
}

#[cfg(loom)]
fn erase<T: Send + 'static, A: AbortWaker>(shared: &Arc<Shared<T, A>>) -> ErasedTask {
    std::sync::Arc::new(shared.clone())
}

#[cfg(loom)]
impl<T: Send, A: AbortWaker> Abortable for Arc<Shared<T, A>> {
    fn abort(&self) {
        Shared::abort(self);
    }
    fn is_finished(&self) -> bool {
        self.core.is(COMPLETE)
    }
}

impl<T: Send, A: AbortWaker> Abortable for Shared<T, A> {
    fn abort(&self) {
        Shared::abort(self);
    }
    fn is_finished(&self) -> bool {
        self.core.is(COMPLETE)
    }
}

/// Aborts a task without owning it: tokio's `AbortHandle`, from [`JoinHandle::abort_handle`].
/// Dropping it does nothing; clones abort the same task.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let task = rt.spawn(std::future::pending::<()>());
/// let abort = task.abort_handle();
/// assert_eq!(abort.id(), task.id());
/// abort.clone().abort();
/// assert!(futures::executor::block_on(task).unwrap_err().is_cancelled());
/// assert!(abort.is_finished());
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    target: Target,
    id: TaskId,
}

#[derive(Clone)]
enum Target {
    /// A task with a handle: the state they share, and how the executor aborts the task, for
    /// an executor that does.
    Task {
        task: ErasedTask,
        executor: Option<Abort>,
    },
    /// A task of a `TaskGroup`: the group's records, the task's slot, and its use of it.
    Member {
        group: ErasedGroup,
        index: usize,
        use_: u64,
    },
}

/// A group's state, its output type erased (a std `Arc`, as for [`ErasedTask`]).
type ErasedGroup = std::sync::Arc<dyn Slots>;

impl AbortHandle {
    /// The handle of task `id`, the `use_`-th of slot `index` of `group`.
    pub(super) fn of_member<T: Send + 'static>(
        group: &Arc<Members<T>>,
        index: usize,
        use_: u64,
        id: TaskId,
    ) -> Self {
        #[cfg(not(loom))]
        let group: ErasedGroup = group.clone();
        #[cfg(loom)]
        let group: ErasedGroup = std::sync::Arc::new(group.clone());
        Self {
            target: Target::Member { group, index, use_ },
            id,
        }
    }

    /// Cancels the task, as [`JoinHandle::abort`] does: its handle then gives `Err(Cancelled)`
    /// once its future has been dropped, unless it had finished already.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let task = rt.spawn(std::future::pending::<()>());
    /// task.abort_handle().abort();
    /// assert!(futures::executor::block_on(task).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        match &self.target {
            Target::Task { task, executor } => {
                task.abort();
                if let Some(executor) = executor {
                    if !task.is_finished() {
                        executor.abort();
                    }
                }
            }
            Target::Member { group, index, use_ } => group.abort(*index, *use_),
        }
    }

    /// Whether the task has finished: completed, panicked, or been cancelled and dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let abort = rt.spawn(async {}).abort_handle(); // the handle is dropped: the task may not run
    /// while !abort.is_finished() { std::thread::yield_now(); }
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.target {
            Target::Task { task, .. } => task.is_finished(),
            Target::Member { group, index, use_ } => group.has_ended(*index, *use_),
        }
    }

    /// The task's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let task = Runtime::new(ThreadPerTask).spawn(async {});
    /// assert_eq!(task.abort_handle().id(), task.id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id)
            .field("is_finished", &self.is_finished())
            .finish()
    }
}

/// A handle to a spawned task: awaiting it gives the task's output.
///
/// Dropping it cancels the task (Rust's structured default, unlike tokio's); call
/// [`detach`](JoinHandle::detach) to let the task run on its own.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let handle = rt.spawn(async { "hello" });
/// assert_eq!(futures::executor::block_on(handle).unwrap(), "hello");
/// ```
///
/// # Errors
///
/// Awaiting gives [`JoinError::Panicked`] if the task panicked, and [`JoinError::Cancelled`] if
/// it was aborted or its executor dropped it before it finished (an executor that has shut down
/// does so).
///
/// # Cancel safety
///
/// Dropping the `JoinHandle` future cancels the task; use `&mut handle` in a `select!` to keep
/// it. Polling it again after it returned `Ready` panics, as with every future.
#[must_use = "dropping a JoinHandle cancels the task; call .detach() to let it run"]
pub struct JoinHandle<T> {
    /// `None` once the output was taken or the handle detached.
    task: Option<Handle<T>>,
    id: TaskId,
}

impl<T> JoinHandle<T> {
    /// A handle on the task that shares `shared`; `executor` is how its executor aborts it, for
    /// an executor that does.
    pub(crate) fn new<A: AbortWaker>(shared: Arc<Shared<T, A>>, executor: Option<Abort>) -> Self {
        let id = shared.core.id();
        Self {
            task: Some(A::handle(shared, executor)),
            id,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Cancels the task. Awaiting the handle afterwards gives `Err(Cancelled)` once the task's
    /// future has been dropped (its destructors have run), or its output if it had already
    /// finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let forever = rt.spawn(std::future::pending::<()>());
    /// forever.abort();
    /// assert!(futures::executor::block_on(forever).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Whether the task has finished: completed, panicked, or been cancelled and dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let quick = rt.spawn(async {});
    /// while !quick.is_finished() { std::thread::yield_now(); }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task
            .as_ref()
            .is_none_or(|task| task.core().is(COMPLETE))
    }

    /// Lets the task run to completion on its own; its output is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// rt.spawn(async move { tx.send("still ran").unwrap() }).detach();
    /// assert_eq!(futures::executor::block_on(rx).unwrap(), "still ran");
    /// ```
    pub fn detach(mut self) {
        self.task = None;
    }

    /// The task's id, unique while the process lives.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// println!("spawned task {}", rt.spawn(async {}).id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    /// A handle that aborts the task without owning it, and can be cloned. Once the output was
    /// taken, it finds the task finished and its `abort` does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{Runtime, ThreadPerTask};
    ///
    /// let rt = Runtime::new(ThreadPerTask);
    /// let server = rt.spawn(std::future::pending::<()>());
    /// let stop = server.abort_handle();
    /// std::thread::spawn(move || stop.abort());
    /// assert!(futures::executor::block_on(server).unwrap_err().is_cancelled());
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        match &self.task {
            Some(task) => task.abort_handle(),
            None => AbortHandle {
                target: Target::Task {
                    task: std::sync::Arc::new(Finished),
                    executor: None,
                },
                id: self.id,
            },
        }
    }
}

/// The task of a handle whose output was taken.
struct Finished;

impl Abortable for Finished {
    fn abort(&self) {}
    fn is_finished(&self) -> bool {
        true
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.abort();
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self
            .task
            .as_ref()
            .expect("JoinHandle polled after it completed");
        let output = std::task::ready!(task.core().poll_output(cx.waker()));
        self.task = None;
        let id = self.id;
        Poll::Ready(output.map_err(|error| error.of_task(id)))
    }
}

impl<T> futures::future::FusedFuture for JoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.task.is_none()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("is_finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// A task and the state it shares with its [`JoinHandle`] (made with [`JoinHandle::new`]).
pub(crate) type Joinable<F, A> = (
    Task<F, Arc<Shared<<F as Future>::Output, A>>>,
    Arc<Shared<<F as Future>::Output, A>>,
);

/// A task with a handle; `A` is how an abort reaches it.
pub(crate) fn with_handle<F, A>(future: F, registry: &Arc<Registry>) -> Joinable<F, A>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    A: AbortWaker,
{
    let shared = Arc::new(Shared::new());
    (Task::new(future, shared.clone(), registry), shared)
}

/// A task that nobody joins ([`Runtime::spawn_detached`](super::Runtime::spawn_detached)): no
/// shared state, its outcome is dropped. It counts in the registry like any other.
pub(crate) fn without_handle<F>(future: F, registry: &Arc<Registry>) -> Task<F, Detached>
where
    F: Future + Send + 'static,
{
    Task::new(future, Detached, registry)
}

/// Where a task reports: what its handle needs of it.
pub(crate) trait Report<T>: Send + Sync + 'static {
    /// Whether the task was aborted: read before each poll.
    fn is_aborted(&self) -> bool;
    /// The task's poll returned `Pending` with `waker`, which an abort is to wake; whether the
    /// task was aborted meanwhile (it then ends at once). A task that is done in its first poll
    /// registers no waker.
    fn parked(&self, waker: &Waker) -> bool;
    /// Stores the outcome. Called once.
    fn complete(&self, outcome: Result<T, JoinError>);
}

impl<T: Send + 'static, A: AbortWaker> Report<T> for Arc<Shared<T, A>> {
    fn is_aborted(&self) -> bool {
        self.core.is(ABORTED)
    }
    fn parked(&self, waker: &Waker) -> bool {
        // Registered first, read second: an abort marks first and wakes second, so either this
        // sees the mark or the abort sees the waker.
        self.task_waker.register(waker);
        self.is_aborted()
    }
    fn complete(&self, outcome: Result<T, JoinError>) {
        // Nobody else holds the state (its handle was detached or dropped): nobody will read the
        // outcome, so it is not stored.
        if Arc::strong_count(self) == 1 {
            return;
        }
        self.core.complete(outcome);
    }
}

/// A task nobody joins: its outcome is dropped.
pub(crate) struct Detached;

impl<T> Report<T> for Detached {
    fn is_aborted(&self) -> bool {
        false
    }
    fn parked(&self, _waker: &Waker) -> bool {
        false
    }
    fn complete(&self, _outcome: Result<T, JoinError>) {}
}

/// A task's key in its registry and in the marker that tells a drain its caller: the address of
/// its registration, which is stable from its first poll to its drop (the task is pinned) and
/// unique among live tasks. Not the address of the task itself: a shared reference to the whole
/// task covers its future, and would invalidate the future's borrows of itself (miri's Stacked
/// Borrows reported it, in a retry that yields: a `poll_fn` holding `&mut` into its async fn).
/// The future is only ever reached through `&mut` for the same reason.
fn key(registration: &Registration) -> usize {
    std::ptr::from_ref(registration) as usize
}

pin_project_lite::pin_project! {
    /// The body of every task: the user's future, stored once (an async fn would keep a second
    /// copy of it, its argument beside its pinned local), and what it reports to.
    ///
    /// When the task is dropped, finished or not, the user's future is dropped first, in place,
    /// and then the outcome is reported (`Cancelled` if there was none yet) and the task counted
    /// off: awaiting the handle or draining the runtime means "its destructors have run".
    pub(crate) struct Task<F: Future, R: Report<F::Output>> {
        #[pin]
        future: Option<F>,
        report: R,
        registry: Arc<Registry>,
        registration: Registration,
    }

    impl<F: Future, R: Report<F::Output>> PinnedDrop for Task<F, R> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let key = key(this.registration);
            // Through `&mut` (`as_pin_mut`), never `&`: a shared reference to the future would
            // invalidate its borrows of itself (see `key`).
            if this.future.as_mut().as_pin_mut().is_some() {
                // Dropped unfinished. A destructor that panics is reported, not unwound into the
                // executor.
                let outcome = match catch_unwind(AssertUnwindSafe(|| this.future.set(None))) {
                    Ok(()) => Err(JoinError::Cancelled),
                    Err(payload) => Err(JoinError::Panicked(PanicPayload::new(payload))),
                };
                this.report.complete(outcome);
            }
            this.registry.deregister(this.registration, key);
        }
    }
}

impl<F: Future, R: Report<F::Output>> Task<F, R> {
    pub(super) fn new(future: F, report: R, registry: &Arc<Registry>) -> Self {
        Self {
            future: Some(future),
            report,
            registry: registry.clone(),
            registration: registry.register(),
        }
    }
}

impl<F: Future, R: Report<F::Output>> Future for Task<F, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let key = key(this.registration);
        let report = &*this.report;
        if this.future.as_mut().as_pin_mut().is_none() {
            // Reported already.
            return Poll::Ready(());
        }
        let outcome = if report.is_aborted() {
            Err(JoinError::Cancelled)
        } else {
            let _entered = CurrentTask::new(this.registry, key).enter();
            match catch_unwind(AssertUnwindSafe(|| {
                poll_unwinding(this.future.as_mut(), cx)
            })) {
                Ok(Poll::Pending) if !report.parked(cx.waker()) => return Poll::Pending,
                Ok(Poll::Pending) => Err(JoinError::Cancelled),
                Ok(Poll::Ready(output)) => Ok(output),
                // The future was dropped during the unwind.
                Err(payload) => Err(JoinError::Panicked(PanicPayload::new(payload))),
            }
        };
        // Drop the future first, in place (its destructor may panic too), then report.
        let outcome = match catch_unwind(AssertUnwindSafe(|| this.future.set(None))) {
            Ok(()) => outcome,
            Err(payload) => Err(JoinError::Panicked(PanicPayload::new(payload))),
        };
        report.complete(outcome);
        Poll::Ready(())
    }
}

/// Polls the future in `slot`; if the poll panics, drops the future while the panic unwinds, as
/// a thread drops its stack (and as tokio drops a task's future): its destructors see
/// `std::thread::panicking()`. A destructor that panics during that unwind aborts the process,
/// as a second panic during an unwind does everywhere in Rust.
fn poll_unwinding<F: Future>(slot: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    struct DropOnUnwind<'a, F>(Pin<&'a mut Option<F>>);

    impl<F> Drop for DropOnUnwind<'_, F> {
        fn drop(&mut self) {
            self.0.set(None);
        }
    }

    let mut guard = DropOnUnwind(slot);
    let future = guard
        .0
        .as_mut()
        .as_pin_mut()
        .expect("a task is polled with its future");
    let poll = future.poll(cx);
    // No panic: the future stays.
    std::mem::forget(guard);
    poll
}
