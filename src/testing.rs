//! Deterministic tests for any code written against [`Runtime`]: [`TestRuntime`].
//!
//! # Examples
//!
//! A `Periodic` of 100 ms runs at 100, 200 and 300 ms of the clock, and the test takes
//! microseconds: `block_on` advances the clock to the next sleep whenever every task is idle.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use asynchronously::Periodic;
//! use asynchronously::testing::TestRuntime;
//!
//! let test = TestRuntime::new();
//! let (rt, clock) = (test.runtime(), test.clock().clone());
//! let runs = Arc::new(Mutex::new(Vec::new()));
//! let periodic = Periodic::builder(
//!     {
//!         let runs = runs.clone();
//!         move || runs.lock().unwrap().push(clock.elapsed())
//!     },
//!     Duration::from_millis(100),
//! )
//! .runtime(&rt)
//! .start()
//! .unwrap();
//! test.block_on(async {
//!     rt.sleep(Duration::from_millis(350)).await;
//!     periodic.stop().await;
//! });
//! let ms = |n| Duration::from_millis(n);
//! assert_eq!(*runs.lock().unwrap(), [ms(100), ms(200), ms(300)]);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::{ArcWake, waker_ref};

use crate::rt::{BoxFuture, ManualClock, Runtime, Spawner};

/// How long a `block_on` whose tasks are all idle, with no sleep pending, waits for a wake from
/// another thread before it calls it a deadlock.
const GRACE: Duration = Duration::from_secs(1);

/// A one-thread runtime on a [`ManualClock`] whose time advances by itself, as tokio's
/// `start_paused` does, for any code written against [`Runtime`].
///
/// - [`block_on`](TestRuntime::block_on) runs every ready task, and when all are idle it
///   advances the clock to the next sleep's deadline, exactly. All idle with no sleep pending
///   is a deadlock: a panic that says so and counts the live tasks, never a hang. (A wake from
///   another thread counts if it comes within a second.)
/// - [`with_seed`](TestRuntime::with_seed) shuffles the order in which ready tasks run; one
///   seed gives one run, every time. A panic in `block_on` prints the seed, to replay it.
/// - Tasks run only inside `block_on`, [`run_until_stalled`](TestRuntime::run_until_stalled)
///   and [`advance`](TestRuntime::advance), on the calling thread. They may be spawned from any
///   thread. Dropping the `TestRuntime` drops the tasks still alive (their handles give
///   `Cancelled`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::retry;
/// use asynchronously::testing::TestRuntime;
///
/// let test = TestRuntime::new();
/// let rt = test.runtime();
/// let mut calls = 0;
/// let result: Result<(), &str> = test.block_on(
///     retry(|| {
///         calls += 1;
///         async { Err("refused") }
///     })
///     .attempts_limit(3)
///     .sleep(Duration::from_secs(10))
///     .runtime(&rt),
/// );
/// assert_eq!((result, calls), (Err("refused"), 4));
/// assert_eq!(test.clock().elapsed(), Duration::from_secs(30)); // three sleeps, none waited
/// ```
pub struct TestRuntime {
    exec: Arc<Exec>,
    clock: ManualClock,
    runtime: Runtime,
    seed: u64,
}

struct Exec {
    state: Mutex<ExecState>,
    /// Signalled on a wake or spawn while the driver waits for another thread.
    woken: Condvar,
    /// Whether `block_on`, `run_until_stalled` or `advance` is running.
    driving: AtomicBool,
}

struct ExecState {
    ready: VecDeque<Arc<Task>>,
    /// Every task spawned and not over, to drop their futures when the runtime is dropped.
    tasks: Vec<Weak<Task>>,
    /// `tasks.len()` after the last sweep of finished tasks.
    swept: usize,
    /// 0: in the order they were woken.
    seed: u64,
    random: u64,
    /// Counts wakes and spawns, for a driver waiting for another thread to see one.
    wakes: u64,
    /// Whether the driver is waiting for `woken`.
    waiting: bool,
    closed: bool,
}

struct Task {
    future: Mutex<Option<BoxFuture<()>>>,
    exec: Weak<Exec>,
    queued: AtomicBool,
}

/// `crate::sync::lock` for std's `Mutex`: this module pairs it with a std `Condvar`, so it keeps
/// std's types under `--cfg loom` too (where `crate::sync` hands out loom's).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Exec {
    fn state(&self) -> MutexGuard<'_, ExecState> {
        lock(&self.state)
    }

    /// Counts a wake; wakes the driver if it waits for one.
    fn count_wake(&self, state: &mut ExecState) {
        state.wakes += 1;
        if state.waiting {
            self.woken.notify_one();
        }
    }

    fn spawn(self: &Arc<Self>, future: BoxFuture<()>) {
        let task = Arc::new(Task {
            future: Mutex::new(Some(future)),
            exec: Arc::downgrade(self),
            queued: AtomicBool::new(true),
        });
        let mut state = self.state();
        if state.closed {
            drop(state);
            drop(task); // its handle gives `Cancelled`
            return;
        }
        if state.tasks.len() >= 2 * state.swept.max(32) {
            state.tasks.retain(|task| task.strong_count() > 0);
            state.swept = state.tasks.len();
        }
        state.tasks.push(Arc::downgrade(&task));
        state.ready.push_back(task);
        self.count_wake(&mut state);
    }

    fn wake(&self, task: Arc<Task>) {
        let mut state = self.state();
        if !state.closed {
            state.ready.push_back(task);
            self.count_wake(&mut state);
        }
    }

    /// The next ready task: the first woken, or one drawn by the seed.
    fn next(&self) -> Option<Arc<Task>> {
        let mut state = self.state();
        match state.ready.len() {
            0 => None,
            1 => state.ready.pop_front(),
            len if state.seed != 0 => {
                let draw = crate::rt::timer::split_mix(&mut state.random);
                let index = (draw % len as u64) as usize;
                state.ready.swap_remove_back(index)
            }
            _ => state.ready.pop_front(),
        }
    }

    /// Runs ready tasks until none is; whether any ran.
    fn run_ready(&self) -> bool {
        let mut ran = false;
        while let Some(task) = self.next() {
            ran = true;
            task.queued.store(false, Ordering::SeqCst);
            let waker = waker_ref(&task);
            let mut slot = lock(&task.future);
            if let Some(future) = slot.as_mut() {
                if future
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
                {
                    *slot = None;
                }
            }
        }
        ran
    }

    /// Waits up to `GRACE` for a wake counted after `seen`; whether one came.
    fn wait_for_wake(&self, seen: u64) -> bool {
        let mut state = self.state();
        state.waiting = true;
        let (mut state, _) = self
            .woken
            .wait_timeout_while(state, GRACE, |state| state.wakes == seen)
            .unwrap_or_else(PoisonError::into_inner);
        state.waiting = false;
        state.wakes != seen
    }
}

impl ArcWake for Task {
    fn wake_by_ref(task: &Arc<Self>) {
        if !task.queued.swap(true, Ordering::SeqCst) {
            if let Some(exec) = task.exec.upgrade() {
                exec.wake(task.clone());
            }
        }
    }
}

/// The waker of `block_on`'s own future.
struct MainWaker {
    woken: AtomicBool,
    exec: Weak<Exec>,
}

impl ArcWake for MainWaker {
    fn wake_by_ref(main: &Arc<Self>) {
        main.woken.store(true, Ordering::SeqCst);
        if let Some(exec) = main.exec.upgrade() {
            let mut state = exec.state();
            exec.count_wake(&mut state);
        }
    }
}

/// How a [`TestRuntime`]'s [`Runtime`] spawns: onto its queue.
#[derive(Clone)]
struct Queue(Arc<Exec>);

impl Spawner for Queue {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        self.0.spawn(future);
    }
}

/// Marks the runtime as driven while it lives; a second driver is refused.
struct Driving<'a>(&'a Exec);

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        self.0.driving.store(false, Ordering::SeqCst);
    }
}

impl TestRuntime {
    /// A runtime on a new [`ManualClock`], whose ready tasks run in the order they were woken
    /// (seed 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let task = test.runtime().spawn(async { 6 * 7 });
    /// assert_eq!(test.block_on(task).unwrap(), 42);
    /// ```
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A runtime whose ready tasks run in an order drawn from `seed` (0: in the order they
    /// were woken). One seed gives one order, every run; the clock's
    /// [`random`](crate::rt::Timer::random) draws come from the seed too
    /// ([`ManualClock::with_seed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let order = |seed| {
    ///     let test = TestRuntime::with_seed(seed);
    ///     let seen = Arc::new(Mutex::new(Vec::new()));
    ///     let tasks: Vec<_> = (0..8)
    ///         .map(|i| {
    ///             let seen = seen.clone();
    ///             test.runtime().spawn(async move { seen.lock().unwrap().push(i) })
    ///         })
    ///         .collect();
    ///     test.block_on(futures::future::join_all(tasks));
    ///     let seen = seen.lock().unwrap().clone();
    ///     seen
    /// };
    /// assert_eq!(order(7), order(7));
    /// assert_eq!(order(0), [0, 1, 2, 3, 4, 5, 6, 7]);
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        let exec = Arc::new(Exec {
            state: Mutex::new(ExecState {
                ready: VecDeque::new(),
                tasks: Vec::new(),
                swept: 0,
                seed,
                random: seed,
                wakes: 0,
                waiting: false,
                closed: false,
            }),
            woken: Condvar::new(),
            driving: AtomicBool::new(false),
        });
        let clock = ManualClock::with_seed(seed);
        let runtime = Runtime::with_timer(Queue(exec.clone()), clock.clone());
        Self {
            exec,
            clock,
            runtime,
            seed,
        }
    }

    /// The runtime to hand to the code under test: its tasks run here, its timer is
    /// [`clock`](TestRuntime::clock).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let rt = test.runtime();
    /// assert_eq!(test.block_on(rt.spawn(async { "here" })).unwrap(), "here");
    /// ```
    pub fn runtime(&self) -> Runtime {
        self.runtime.clone()
    }

    /// The clock: advanced by `block_on` and [`advance`](TestRuntime::advance).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let rt = test.runtime();
    /// test.block_on(rt.sleep(Duration::from_secs(3600)));
    /// assert_eq!(test.clock().elapsed(), Duration::from_secs(3600));
    /// ```
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The seed the ready tasks are ordered by (0: in the order they were woken).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(asynchronously::testing::TestRuntime::with_seed(9).seed(), 9);
    /// ```
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Runs `future` on this thread, with every task of the runtime, advancing the clock to the
    /// next sleep's deadline whenever all are idle; returns its output.
    ///
    /// # Panics
    ///
    /// - If all are idle and no sleep is pending on the clock, with no wake from another thread
    ///   within a second: a deadlock, which would hang. The message counts the live tasks.
    /// - If this runtime is already being driven: `block_on` inside one of its own tasks (or
    ///   from two threads at once) would deadlock.
    /// - If `future` panics; the panic resumes.
    ///
    /// Any panic prints the seed first, so that `TestRuntime::with_seed(seed)` replays it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let never = asynchronously::Event::new();
    /// let stuck = catch_unwind(AssertUnwindSafe(|| test.block_on(never.wait())));
    /// let message = stuck.unwrap_err().downcast::<String>().unwrap();
    /// assert!(message.contains("deadlock"), "{message}");
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _driving = self.drive("block_on");
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            exec: Arc::downgrade(&self.exec),
        });
        let mut future = pin!(future);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            loop {
                let seen = self.exec.state().wakes;
                if main.woken.swap(false, Ordering::SeqCst) {
                    let waker = waker_ref(&main);
                    if let Poll::Ready(output) =
                        future.as_mut().poll(&mut Context::from_waker(&waker))
                    {
                        return output;
                    }
                }
                if self.exec.run_ready() || main.woken.load(Ordering::SeqCst) {
                    continue;
                }
                if let Some(deadline) = self.clock.next_deadline() {
                    self.clock
                        .advance(deadline.saturating_sub(self.clock.elapsed()));
                    continue;
                }
                if self.exec.wait_for_wake(seen) {
                    continue;
                }
                panic!(
                    "TestRuntime deadlock: the future given to block_on is pending, {} live \
                     tasks are idle, and no sleep is pending on the clock, so nothing can wake \
                     them (seed {})",
                    self.runtime.live_tasks(),
                    self.seed
                );
            }
        }));
        outcome.unwrap_or_else(|panic| {
            eprintln!(
                "TestRuntime: a panic with seed {seed}; TestRuntime::with_seed({seed}) replays \
                 this run",
                seed = self.seed
            );
            resume_unwind(panic)
        })
    }

    /// Runs the ready tasks, and the tasks they wake, until none is ready; the clock does not
    /// move.
    ///
    /// # Panics
    ///
    /// If this runtime is already being driven (called from inside one of its tasks).
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let task = test.runtime().spawn(async { 1 });
    /// assert!(!task.is_finished());
    /// test.run_until_stalled();
    /// assert!(task.is_finished());
    /// ```
    pub fn run_until_stalled(&self) {
        let _driving = self.drive("run_until_stalled");
        self.exec.run_ready();
    }

    /// Advances the clock by `d` (saturating: `Duration::MAX` fires every pending sleep once),
    /// then runs until stalled.
    ///
    /// # Panics
    ///
    /// If this runtime is already being driven (called from inside one of its tasks).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::testing::TestRuntime;
    ///
    /// let test = TestRuntime::new();
    /// let rt = test.runtime();
    /// let nap = rt.spawn({
    ///     let rt = rt.clone();
    ///     async move { rt.sleep(Duration::from_secs(5)).await }
    /// });
    /// test.advance(Duration::from_secs(4));
    /// assert!(!nap.is_finished());
    /// test.advance(Duration::from_secs(1));
    /// assert!(nap.is_finished());
    /// ```
    pub fn advance(&self, d: Duration) {
        let _driving = self.drive("advance");
        self.exec.run_ready();
        self.clock.advance(d);
        self.exec.run_ready();
    }

    fn drive(&self, what: &str) -> Driving<'_> {
        if self.exec.driving.swap(true, Ordering::SeqCst) {
            panic!(
                "TestRuntime::{what} called while the runtime is already being driven: from \
                 inside one of its own tasks, it would wait for itself (a deadlock); await \
                 instead"
            );
        }
        Driving(&self.exec)
    }
}

impl Default for TestRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TestRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.exec.state();
        f.debug_struct("TestRuntime")
            .field("seed", &self.seed)
            .field("ready", &state.ready.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Drops every task still alive (a task's future may hold a `Runtime` of this one: dropping
/// the futures is what breaks that cycle), as an executor that shuts down does.
impl Drop for TestRuntime {
    fn drop(&mut self) {
        let (tasks, ready) = {
            let mut state = self.exec.state();
            state.closed = true;
            (
                std::mem::take(&mut state.tasks),
                std::mem::take(&mut state.ready),
            )
        };
        drop(ready);
        for task in tasks.iter().filter_map(Weak::upgrade) {
            let future = lock(&task.future).take();
            drop(future);
        }
    }
}
