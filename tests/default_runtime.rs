//! The process-wide default runtime. One test in its own binary: `set_default` is global.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asynchronously::rt::{BoxFuture, Runtime, default_runtime, set_default};
use asynchronously::wait_for_all_other_tasks;

#[test]
fn the_default_runtime_and_set_default() {
    common::bounded(|| {
        // Before `set_default`: the built-in fallback, shared by every call.
        let task = default_runtime().spawn(std::future::pending::<()>());
        assert_eq!(default_runtime().live_tasks(), 1, "one shared default");
        drop(task);
        futures::executor::block_on(wait_for_all_other_tasks());
        assert_eq!(default_runtime().live_tasks(), 0);

        // The free drain waits for the default runtime's tasks.
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let finished = finished.clone();
            default_runtime()
                .spawn(async move {
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
        }
        futures::executor::block_on(wait_for_all_other_tasks());
        assert_eq!(finished.load(Ordering::SeqCst), 10);

        // After `set_default`: the installed runtime, also inside tokio.
        let spawned = Arc::new(AtomicUsize::new(0));
        let installed = Runtime::new({
            let spawned = spawned.clone();
            move |task: BoxFuture<()>| {
                spawned.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || futures::executor::block_on(task));
            }
        });
        set_default(installed.clone());
        futures::executor::block_on(default_runtime().spawn(async {})).unwrap();
        assert_eq!(spawned.load(Ordering::SeqCst), 1);
        #[cfg(feature = "tokio")]
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                default_runtime().spawn(async {}).await.unwrap();
            });
        #[cfg(feature = "tokio")]
        assert_eq!(
            spawned.load(Ordering::SeqCst),
            2,
            "set_default wins over tokio"
        );
        #[allow(deprecated)]
        futures::executor::block_on(asynchronously::complete_all_tasks());
        assert_eq!(installed.live_tasks(), 0);
    });
}
