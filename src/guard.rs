//! `NoopGuard` and `lock_optional`: Python's `DummyAsyncContextManager`, as guards.

use async_lock::{Mutex, MutexGuard};

/// A guard that guards nothing: Python's `DummyAsyncContextManager`, for code that needs *some*
/// guard value where there is nothing to lock.
///
/// Python writes `async with lock or DummyAsyncContextManager():`; in Rust the guard's scope is
/// the block, so [`lock_optional`] is usually what you want. `NoopGuard` is for the cases that
/// need a value of their own, such as a guard slot that may be empty.
///
/// # Examples
///
/// ```
/// use asynchronously::NoopGuard;
///
/// enum Held<'a> {
///     Locked(async_lock::MutexGuard<'a, u32>),
///     Unlocked(NoopGuard),
/// }
///
/// let held = Held::Unlocked(NoopGuard::new());
/// drop(held); // releases nothing
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a guard does its work while it is held"]
pub struct NoopGuard;

impl NoopGuard {
    /// The guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let _guard = asynchronously::NoopGuard::new();
    /// ```
    pub fn new() -> Self {
        Self
    }
}

/// Locks `lock` if there is one: the seed's `async with lock or DummyAsyncContextManager():`.
///
/// Errors and panics inside the guarded block propagate as usual; nothing is suppressed.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use async_lock::Mutex;
/// use asynchronously::lock_optional;
///
/// async fn update(counter: &Mutex<u32>, lock: Option<&Mutex<()>>) {
///     let _guard = lock_optional(lock).await; // held until the end of the block, if any
///     *counter.lock().await += 1;
/// }
///
/// let counter = Mutex::new(0);
/// let lock = Mutex::new(());
/// update(&counter, Some(&lock)).await;
/// update(&counter, None).await;
/// assert_eq!(*counter.lock().await, 2);
/// # });
/// ```
///
/// # Cancel safety
///
/// Dropping the future before it completes gives up the wait for the lock.
pub async fn lock_optional<T: ?Sized>(lock: Option<&Mutex<T>>) -> Option<MutexGuard<'_, T>> {
    match lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    }
}
