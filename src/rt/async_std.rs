//! The async-std adapter.

use std::time::Duration;

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
        Box::pin(async_std::task::sleep(duration))
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
