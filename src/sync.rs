//! The synchronisation primitives of the hand-written protocols (`Event`, `JoinHandle`, the task
//! registry): std's, or loom's under `--cfg loom` so that loom can explore their interleavings.
//!
//! The rest of the crate takes its `Mutex` from here too, for [`lock`]; loom tests do not
//! exercise it.

use std::sync::PoisonError;

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, atomic};

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard, atomic};

#[cfg(not(loom))]
pub(crate) use futures::task::AtomicWaker;

/// Locks `mutex`, and goes on if a thread panicked while holding it: every state the crate
/// keeps behind a lock is whole between two statements, so a panic elsewhere leaves it valid.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// loom's model of an `AtomicWaker`, under the names `futures`' one uses.
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(loom)]
impl AtomicWaker {
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

/// `std::thread_local!`, loom's under `--cfg loom` (loom runs its threads on one OS thread).
macro_rules! thread_local_static {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        ::std::thread_local! { $(#[$attr])* static $name: $ty = const { $init }; }
        #[cfg(loom)]
        ::loom::thread_local! { $(#[$attr])* static $name: $ty = $init; }
    };
}

pub(crate) use thread_local_static;
