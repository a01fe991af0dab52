//! The async-std adapter.
#![cfg(feature = "async-std")]

use std::time::{Duration, Instant, SystemTime};

use super::{BoxFuture, Runtime, Spawner, Timer};

/// Spawns and sleeps on async-std.
///
/// async-std is deprecated upstream in favour of smol; this adapter is kept for existing users.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{AsyncStd, Runtime};
///
/// let rt = Runtime::with_timer(AsyncStd, AsyncStd); // or Runtime::async_std()
/// assert_eq!(async_std::task::block_on(rt.spawn(async { 5 })).unwrap(), 5);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl Spawner for AsyncStd {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        // Dropping async-std's JoinHandle detaches; cancellation goes through ours.
        drop(async_std::task::spawn(future));
    }
}

impl Timer for AsyncStd {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        if duration.is_zero() {
            return Box::pin(std::future::ready(()));
        }
        Box::pin(async_std::task::sleep(duration))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl Runtime {
    cfg_feature! {
        "async-std",
        /// A runtime on async-std's executor and timer.
        ///
        /// # Examples
        ///
        /// ```
        /// use asynchronously::rt::Runtime;
        ///
        /// let rt = Runtime::async_std();
        /// assert_eq!(async_std::task::block_on(rt.spawn(async { 'a' })).unwrap(), 'a');
        /// ```
        pub fn async_std() -> Runtime {
            Runtime::with_timer(AsyncStd, AsyncStd)
        }
    }
}
