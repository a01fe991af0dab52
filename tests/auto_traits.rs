//! Compile-time checks that every public type is `Send`, `Sync` and `Unpin` where a user needs
//! it to be. A regression here fails the build of this test.

use asynchronously::rt::{JoinError, JoinHandle, ManualClock, PanicPayload, Runtime};
use asynchronously::{Event, EventWait};

fn send_sync_unpin<T: Send + Sync + Unpin>() {}
fn send_unpin<T: Send + Unpin>() {}

#[test]
fn handles_are_send_sync_unpin() {
    send_sync_unpin::<Runtime>();
    send_sync_unpin::<ManualClock>();
    send_sync_unpin::<Event>();
    send_sync_unpin::<JoinHandle<u8>>();
    // `JoinHandle<T>` needs only `T: Send` to be `Send + Sync`: a `!Sync` output is fine.
    send_sync_unpin::<JoinHandle<std::cell::Cell<u8>>>();
    send_sync_unpin::<JoinError>();
    send_sync_unpin::<PanicPayload>();
    send_unpin::<EventWait>();
    send_sync_unpin::<EventWait>();
}

/// Errors travel in `Box<dyn Error + Send + Sync>`.
#[test]
fn join_error_boxes_into_a_send_sync_error() {
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(JoinError::Cancelled);
    assert_eq!(boxed.to_string(), "task was cancelled");
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_adapter() {
    send_sync_unpin::<asynchronously::rt::Tokio>();
}

#[cfg(feature = "smol")]
#[test]
fn smol_adapter() {
    send_sync_unpin::<asynchronously::rt::Smol>();
}

#[cfg(feature = "async-std")]
#[test]
fn async_std_adapter() {
    send_sync_unpin::<asynchronously::rt::AsyncStd>();
}

#[cfg(feature = "thread-pool")]
#[test]
fn thread_pool_adapter() {
    send_sync_unpin::<asynchronously::rt::ThreadPool>();
}

#[test]
fn lifecycle_types() {
    use asynchronously::lifecycle::{Children, Lifecycle, LifecycleError, Phase, PhaseKind};
    send_sync_unpin::<Lifecycle>();
    send_sync_unpin::<Phase>();
    send_sync_unpin::<PhaseKind>();
    send_sync_unpin::<LifecycleError>();
    send_sync_unpin::<Children<'static>>();
    use asynchronously::lifecycle::{PhaseTime, ShutdownCause, ShutdownReport, Signal};
    send_sync_unpin::<ShutdownReport>();
    send_sync_unpin::<ShutdownCause>();
    send_sync_unpin::<PhaseTime>();
    send_sync_unpin::<Signal>();
}

/// The lifecycle's futures are `Send`, so a tree can be brought up from a spawned task.
#[test]
fn lifecycle_futures_are_send() {
    use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle, Service, run_until};
    struct Leaf(Lifecycle);
    impl Component for Leaf {
        fn lifecycle(&self) -> &Lifecycle {
            &self.0
        }
    }
    fn send<T: Send>(_: T) {}
    let leaf = Leaf(Lifecycle::new());
    send(leaf.init());
    send(leaf.deinit());
    send(run_until(&leaf, std::future::ready(())));
    // A service's run, with its triggers, parts and signals, can be spawned too.
    let service = Service::new(&leaf).shutdown_on(std::future::ready(()));
    #[cfg(feature = "signal")]
    let service = service.catch_signals();
    send(service.run());
}

#[test]
fn runtime_futures_are_send_and_static() {
    fn send_static<T: Send + 'static>(_: T) {}
    let rt = Runtime::new(drop::<asynchronously::rt::BoxFuture<()>>);
    send_static(rt.sleep(std::time::Duration::ZERO));
    send_static(rt.wait_for_all_other_tasks());
    send_static(asynchronously::wait_for_all_other_tasks());
}

/// Periodic, retry and acall: handles and futures that services move between tasks.
#[test]
fn periodic_retry_acall_and_guards() {
    use asynchronously::{
        Attempt, AttemptTimedOut, Backoff, MissedTicks, NoopGuard, Periodic, PeriodicBuilder,
        PeriodicError, RetryPolicy, Value, acall, retry, retry_mut, retry_with,
    };
    use std::time::Duration;
    send_sync_unpin::<Periodic>();
    send_unpin::<PeriodicBuilder>();
    send_sync_unpin::<PeriodicError>();
    send_sync_unpin::<MissedTicks>();
    send_sync_unpin::<RetryPolicy>();
    send_sync_unpin::<Backoff>();
    send_sync_unpin::<Attempt>();
    send_sync_unpin::<AttemptTimedOut>();
    send_sync_unpin::<NoopGuard>();

    fn send<T: Send>(_: T) {}
    // A retry whose closure owns its state is Send: it can go into tokio::spawn.
    let client = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let owned = retry_mut(async move || {
        client.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(())
    })
    .sleep(Duration::ZERO);
    send(std::future::IntoFuture::into_future(owned));
    let plain = retry(|| async { Ok::<u8, String>(1) }).attempts_limit(2);
    send(std::future::IntoFuture::into_future(plain));
    // retry_with over `&mut` state is Send too.
    let mut state = 0_u32;
    let with = retry_with(&mut state, |s| async move {
        *s += 1;
        (s, Ok::<_, String>(()))
    });
    send(std::future::IntoFuture::into_future(with));
    send(acall(async { 1 }));
    send(acall(Value(1)));
    let periodic = Periodic::builder(|| {}, Duration::from_secs(1))
        .build()
        .unwrap();
    send(periodic.stop());
    send(periodic.join());
}

/// The named futures of this round, and `ThreadPerTask`: `Send` where a task needs them, and
/// `Unpin` so that they can be polled through `&mut`.
#[test]
fn named_futures() {
    use asynchronously::rt::{Sleep, ThreadPerTask, WaitForAllOtherTasks};
    use asynchronously::{
        AwaitMapValues, Join, Stop, StrictGather, StrictGatherSpawned, await_map_values,
        strict_gather, strict_gather_spawned,
    };
    use futures::future::BoxFuture;
    use std::collections::HashMap;
    send_sync_unpin::<ThreadPerTask>();
    send_unpin::<Sleep>();
    send_sync_unpin::<WaitForAllOtherTasks>();
    send_unpin::<Stop<'static>>();
    send_unpin::<Join<'static>>();
    type Item = BoxFuture<'static, Result<u8, String>>;
    send_unpin::<StrictGather<Item>>();
    send_unpin::<StrictGatherSpawned<u8, String>>();
    send_unpin::<AwaitMapValues<u8, Item, HashMap<u8, u8>>>();
    // The gathers take `IntoFuture` items, and what they return is the named type.
    let rt = Runtime::new(ThreadPerTask);
    let gather: StrictGather<Item> = strict_gather(Vec::<Item>::new());
    let spawned: StrictGatherSpawned<u8, String> = strict_gather_spawned(&rt, Vec::<Item>::new());
    let map: AwaitMapValues<u8, Item, HashMap<u8, u8>> = await_map_values(Vec::<(u8, Item)>::new());
    drop((gather, spawned, map));
}
