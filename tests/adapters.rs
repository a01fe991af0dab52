//! What each adapter promises beyond the common harness.

mod common;

#[cfg(feature = "thread-pool")]
mod thread_pool {
    use crate::common;
    use asynchronously::rt::{Runtime, ThreadPool};

    /// A panicking task on a bare `futures::executor::ThreadPool` kills its worker thread for
    /// good; through `Runtime`, the one thread survives and runs the next task.
    #[test]
    fn a_panic_on_a_one_thread_pool_does_not_kill_the_thread() {
        common::bounded(|| {
            let pool = ThreadPool::with_threads(1).unwrap();
            let rt = Runtime::with_timer(pool.clone(), pool);
            for round in 0..3 {
                let error =
                    futures::executor::block_on(rt.spawn(async move { panic!("round {round}") }))
                        .unwrap_err();
                assert!(error.is_panic());
                let next = rt.spawn(async move { round });
                assert_eq!(futures::executor::block_on(next).unwrap(), round);
            }
        });
    }

    #[test]
    fn zero_threads_is_an_error_not_a_panic() {
        let error = ThreadPool::with_threads(0).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(error.to_string(), "a thread pool needs at least one thread");
    }
}

#[cfg(feature = "tokio")]
mod tokio_adapter {
    use crate::common;
    use std::time::Duration;

    use asynchronously::rt::{Runtime, Tokio, default_runtime};

    /// `tokio::time::pause()` holds: an hour's sleep passes at once, and both clocks move.
    #[test]
    fn the_timer_honours_tokio_pause() {
        common::bounded(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(the_timer_honours_tokio_pause_body());
        });
    }

    async fn the_timer_honours_tokio_pause_body() {
        let rt = Runtime::tokio();
        let (start, wall) = (rt.timer().now(), rt.timer().system_now());
        let real = std::time::Instant::now();
        tokio::time::timeout(
            Duration::from_secs(7200),
            rt.sleep(Duration::from_secs(3600)),
        )
        .await
        .expect("the sleep ends when paused time reaches it");
        assert!(
            real.elapsed() < Duration::from_secs(60),
            "no real hour passed"
        );
        assert!(rt.timer().now() - start >= Duration::from_secs(3600));
        let moved = rt.timer().system_now().duration_since(wall).unwrap();
        assert!(
            moved >= Duration::from_secs(3599),
            "the wall clock follows: {moved:?}"
        );
    }

    /// Spawning on a tokio runtime that has shut down: the task is dropped, the handle says so.
    #[test]
    fn spawning_on_a_shut_down_runtime_gives_cancelled() {
        common::bounded(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let handle = runtime.handle().clone();
            drop(runtime);
            let rt = Runtime::new(Tokio::new(handle));
            let task = rt.spawn(async { 1 });
            assert!(
                futures::executor::block_on(task)
                    .unwrap_err()
                    .is_cancelled()
            );
            assert_eq!(rt.live_tasks(), 0);
        });
    }

    /// Inside one tokio runtime, every `default_runtime()` is the same runtime: tasks spawned
    /// through one are seen by another; another tokio runtime has its own.
    #[test]
    fn the_default_is_one_runtime_per_tokio_runtime() {
        common::bounded(|| {
            let first = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let second = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            first.block_on(async {
                let task = default_runtime().spawn(std::future::pending::<()>());
                assert_eq!(default_runtime().live_tasks(), 1);
                let elsewhere = std::thread::scope(|s| {
                    s.spawn(|| second.block_on(async { default_runtime().live_tasks() }))
                        .join()
                        .unwrap()
                });
                assert_eq!(
                    elsewhere, 0,
                    "another tokio runtime has a default of its own"
                );
                drop(task);
                default_runtime().wait_for_all_other_tasks().await;
                assert_eq!(default_runtime().live_tasks(), 0);
            });
        });
    }

    #[test]
    fn try_current_outside_a_runtime_is_none() {
        assert!(Tokio::try_current().is_none());
    }
}

#[cfg(feature = "smol")]
mod smol_adapter {
    use crate::common;
    use std::sync::Arc;

    use asynchronously::rt::{Runtime, Smol};

    /// Dropping your executor cancels its tasks; their handles say so instead of hanging.
    #[test]
    fn dropping_the_executor_cancels_its_tasks() {
        common::bounded(|| {
            let executor = Arc::new(smol::Executor::new());
            let smol = Smol::new(executor.clone());
            let rt = Runtime::with_timer(smol.clone(), smol);
            let task = rt.spawn(std::future::pending::<()>());
            drop(rt);
            drop(executor);
            assert!(
                futures::executor::block_on(task)
                    .unwrap_err()
                    .is_cancelled()
            );
        });
    }

    #[test]
    fn tasks_run_on_your_executor() {
        common::bounded(|| {
            let executor = Arc::new(smol::Executor::new());
            let smol = Smol::new(executor.clone());
            let rt = Runtime::with_timer(smol.clone(), smol);
            let task = rt.spawn(async { "ran" });
            assert_eq!(smol::block_on(executor.run(task)).unwrap(), "ran");
        });
    }
}
