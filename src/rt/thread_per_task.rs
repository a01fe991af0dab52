//! `ThreadPerTask`: the spawner that needs no executor at all.

use super::{BoxFuture, Spawner};

/// A spawner that runs each task on a thread of its own, with `futures::executor::block_on`: no
/// executor at all, for tests, examples and programs that spawn a few long tasks.
///
/// A thread the operating system refuses is logged at error level, and its task dropped: its
/// [`JoinHandle`](super::JoinHandle) gives [`JoinError::Cancelled`](super::JoinError::Cancelled).
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{Runtime, ThreadPerTask};
///
/// let rt = Runtime::new(ThreadPerTask);
/// let answer = rt.spawn(async { 6 * 7 });
/// assert_eq!(futures::executor::block_on(answer).unwrap(), 42);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPerTask;

impl Spawner for ThreadPerTask {
    fn spawn_boxed(&self, future: BoxFuture<()>) {
        std::thread::Builder::new()
            .name("asynchronously-task".into())
            .spawn(move || futures::executor::block_on(future))
            .map(drop)
            // A refused thread drops the task, whose handle then gives `Cancelled`.
            .unwrap_or_else(|error| log::error!("could not start a task's thread: {error}"));
    }
}
