//! The no-runtime adapter: `futures::executor::ThreadPool` and `futures-timer`.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::timer::SystemTimer;
use super::{BoxFuture, Runtime, Spawner, Timer};

/// A runtime with no async runtime at all: a pool of threads from `futures::executor` and the
/// `futures-timer` thread.
///
/// Every task runs inside `catch_unwind` (see [`Runtime::spawn`]), so a panicking task never
/// takes a pool thread down with it, as it would on a bare `futures::executor::ThreadPool`.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPool};
///
/// let pool = ThreadPool::with_threads(2).unwrap();
/// let rt = Runtime::with_timer(pool.clone(), pool); // or Runtime::thread_pool()
/// assert_eq!(futures::executor::block_on(rt.spawn(async { 8 })).unwrap(), 8);
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    pool: futures::executor::ThreadPool,
    threads: usize,
}

impl ThreadPool {
    /// A pool with one thread per available core.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::ThreadPool;
    ///
    /// let pool = ThreadPool::new();
    /// assert!(pool.threads() >= 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread; use
    /// [`with_threads`](ThreadPool::with_threads) to get the error instead.
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_threads(threads).expect("the operating system refused to start a pool thread")
    }

    /// A pool of `threads` threads.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::ThreadPool;
    ///
    /// assert_eq!(ThreadPool::with_threads(1).unwrap().threads(), 1);
    /// assert!(ThreadPool::with_threads(0).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero threads, and the operating system's error if it refuses a thread.
    pub fn with_threads(threads: usize) -> io::Result<Self> {
        if threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread pool needs at least one thread",
            ));
        }
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        let pool_number = POOLS.fetch_add(1, Ordering::Relaxed);
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(threads)
            .name_prefix(format!("asynchronously-{pool_number}-"))
            .create()?;
        Ok(Self { pool, threads })
    }

    /// How many threads the pool has.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::ThreadPool;
    ///
    /// assert_eq!(ThreadPool::with_threads(3).unwrap().threads(), 3);
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Default for ThreadPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl Spawner for ThreadPool {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        self.pool.spawn_ok(future);
    }
}

/// `futures-timer` and the std clocks, as [`Runtime::new`] sleeps by default.
impl Timer for ThreadPool {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        SystemTimer.sleep(duration)
    }
}

impl Runtime {
    cfg_feature! {
        "thread-pool",
        /// A runtime on a new [`ThreadPool`] with one thread per core.
        ///
        /// # Examples
        ///
        /// ```
        /// use asynchronously::rt::Runtime;
        ///
        /// let rt = Runtime::thread_pool();
        /// assert_eq!(futures::executor::block_on(rt.spawn(async { 1 })).unwrap(), 1);
        /// ```
        ///
        /// # Panics
        ///
        /// If the operating system refuses to start a thread.
        pub fn thread_pool() -> Runtime {
            Runtime::new(ThreadPool::new())
        }
    }
}
