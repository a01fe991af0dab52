//! `acall`, `Job` (through Periodic's tests too), `NoopGuard` and `lock_optional`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_lock::Mutex;
use asynchronously::{Call, Job, NoopGuard, Value, acall, lock_optional};
use futures::FutureExt;

async fn fetch() -> u32 {
    1
}

fn compute() -> u32 {
    2
}

each_runtime! {
    /// Every kind the seed's `acall` takes: async fn, async closure, closure returning a future,
    /// a future, a sync function (through `Call`), a plain value (through `Value`).
    async fn acall_takes_every_kind(rt, _clock) {
        assert_eq!(acall(fetch).await, 1);
        assert_eq!(acall(async || 3).await, 3);
        assert_eq!(acall(|| async { 4 }).await, 4);
        assert_eq!(acall(async { 5 }).await, 5);
        assert_eq!(acall(Call(compute)).await, 2);
        assert_eq!(acall(Call(|| "sync closure")).await, "sync closure");
        assert_eq!(acall(Value(42)).await, 42);
        assert_eq!(acall(std::future::ready(6)).await, 6);
        // A JoinHandle is a future too.
        assert_eq!(acall(rt.spawn(async { 7 })).await.unwrap(), 7);
    }
}

#[test]
fn acall_calls_only_when_awaited() {
    let called = Arc::new(AtomicBool::new(false));
    let pending = acall({
        let called = called.clone();
        move || async move { called.store(true, Ordering::SeqCst) }
    });
    assert!(
        !called.load(Ordering::SeqCst),
        "nothing runs before the first poll"
    );
    pending.now_or_never().unwrap();
    assert!(called.load(Ordering::SeqCst));
}

#[test]
fn every_job_kind_is_a_job() {
    fn job<M>(mut job: impl Job<M>) -> Result<(), String> {
        futures::executor::block_on(job.call())
    }
    assert_eq!(job(|| {}), Ok(()));
    assert_eq!(
        job(|| -> Result<(), String> { Err("sync error".into()) }),
        Err("sync error".into())
    );
    assert_eq!(job(|| async {}), Ok(()));
    async fn failing() -> Result<(), std::io::Error> {
        Err(std::io::Error::other("async error"))
    }
    assert_eq!(job(failing), Err("async error".into()));
}

each_runtime! {
    /// `lock_optional` locks when there is a lock (excluding others) and gives `None` otherwise.
    async fn lock_optional_locks_only_a_lock(rt, _clock) {
        let lock = Arc::new(Mutex::new(0_u32));
        {
            let mut guard = lock_optional(Some(&*lock)).await.expect("a lock gives a guard");
            *guard += 1;
            assert!(lock.try_lock().is_none(), "held while the guard lives");
        }
        assert!(lock.try_lock().is_some(), "released with the guard");
        assert!(lock_optional::<u32>(None).await.is_none());
        let _noop = NoopGuard::new();
        assert_eq!(NoopGuard::new(), NoopGuard);
        let _ = rt;
    }
}

each_runtime! {
    /// The seed's example: `update(lock=None)` and `update(lock)`, concurrently and in order.
    async fn the_seeds_optional_lock_example(rt, _clock) {
        async fn update(counter: Arc<Mutex<u32>>, lock: Option<Arc<Mutex<()>>>) {
            let _guard = lock_optional(lock.as_deref()).await;
            let value = *counter.lock().await;
            common::yield_now().await; // a window for a lost update, were the lock not held
            *counter.lock().await = value + 1;
        }
        let counter = Arc::new(Mutex::new(0));
        let lock = Arc::new(Mutex::new(()));
        let handles: Vec<_> = (0..20)
            .map(|_| rt.spawn(update(counter.clone(), Some(lock.clone()))))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        assert_eq!(*counter.lock().await, 20, "no update lost under the lock");
        update(counter.clone(), None).await;
        assert_eq!(*counter.lock().await, 21);
    }
}
