//! The structured-concurrency scenarios: `CancellationToken`, `TaskGroup` and `TaskTracker`
//! beside tokio-util's token and tracker, tokio's `JoinSet`, and smol tasks in a
//! `FuturesUnordered`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use asynchronously::{CancellationToken, TaskGroup, TaskTracker};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::bytes::{IDLE, NetBytes};
use super::{N, Scenario, Unit, on_smol, on_tokio, timed, tokio_runtime};

/// Waiters of the cancel scenario.
const WAITERS: usize = 1_000;

type Waiter<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Polls each waiter once (each registers), then runs `cancel`, then polls each to its end.
fn cancel_with_waiters(mut waiters: Vec<Waiter<'_>>, cancel: impl FnOnce()) {
    let mut cx = Context::from_waker(Waker::noop());
    for waiter in &mut waiters {
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
    }
    cancel();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().poll(&mut cx).is_ready());
    }
}

pub fn token_cancel_with_waiters() -> Scenario {
    Scenario {
        name: "CancellationToken cancel with 1k waiters",
        peer: "tokio-util CancellationToken",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: WAITERS,
        ours: Box::new(|| {
            timed(|| {
                let token = CancellationToken::new();
                let waiters = (0..WAITERS)
                    .map(|_| Box::pin(token.cancelled()) as Waiter<'_>)
                    .collect();
                cancel_with_waiters(waiters, || token.cancel());
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                let token = tokio_util::sync::CancellationToken::new();
                let waiters = (0..WAITERS)
                    .map(|_| Box::pin(token.cancelled()) as Waiter<'_>)
                    .collect();
                cancel_with_waiters(waiters, || token.cancel());
            })
        }),
    }
}

pub fn token_tree_cancel() -> Scenario {
    Scenario {
        name: "CancellationToken tree of 10k children, made, cancelled at the root, dropped",
        peer: "tokio-util CancellationToken",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(|| {
            timed(|| {
                let root = CancellationToken::new();
                let children: Vec<_> = (0..N).map(|_| root.child_token()).collect();
                root.cancel();
                assert!(children.iter().all(CancellationToken::is_cancelled));
            })
        }),
        theirs: Box::new(|| {
            timed(|| {
                let root = tokio_util::sync::CancellationToken::new();
                let children: Vec<_> = (0..N).map(|_| root.child_token()).collect();
                root.cancel();
                assert!(
                    children
                        .iter()
                        .all(tokio_util::sync::CancellationToken::is_cancelled)
                );
            })
        }),
    }
}

/// `N` trivial tasks in a `TaskGroup`, joined one by one; how many came back.
async fn group_of_trivial_tasks(rt: &asynchronously::rt::Runtime) -> usize {
    let mut group = TaskGroup::new(rt);
    for i in 0..N as u64 {
        group.spawn(async move { i });
    }
    let mut count = 0;
    while let Some(output) = group.join_next().await {
        output.unwrap();
        count += 1;
    }
    count
}

pub fn task_group_tokio() -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "TaskGroup spawn + join_next 10k trivial, tokio 2 workers",
        peer: "tokio JoinSet",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| assert_eq!(runtime.block_on(group_of_trivial_tasks(&rt)), N))
        }),
        theirs: Box::new(move || {
            timed(|| assert_eq!(super::join_set_of_trivial_tasks(&peer_runtime), N))
        }),
    }
}

pub fn task_group_smol() -> Scenario {
    let rt = on_smol();
    Scenario {
        name: "TaskGroup spawn + join_next 10k trivial, smol",
        peer: "smol tasks in a FuturesUnordered",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| assert_eq!(smol::block_on(group_of_trivial_tasks(&rt)), N))
        }),
        theirs: Box::new(|| {
            timed(|| {
                let count = smol::block_on(async {
                    let mut tasks: FuturesUnordered<_> = (0..N as u64)
                        .map(|i| smol::spawn(async move { i }))
                        .collect();
                    let mut count = 0;
                    while tasks.next().await.is_some() {
                        count += 1;
                    }
                    count
                });
                assert_eq!(count, N);
            })
        }),
    }
}

pub fn task_tracker_tokio() -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "TaskTracker spawn 10k + close + wait, tokio",
        peer: "tokio-util TaskTracker",
        goal: 1.1,
        unit: Unit::MicrosPerItem,
        items: N,
        ours: Box::new(move || {
            timed(|| {
                runtime.block_on(async {
                    let tracker = TaskTracker::new(&rt);
                    // Nobody joins them, as the peer's handles are dropped.
                    for _ in 0..N {
                        tracker.spawn_detached(async {});
                    }
                    tracker.close();
                    tracker.wait().await;
                });
            })
        }),
        theirs: Box::new(move || {
            timed(|| {
                peer_runtime.block_on(async {
                    let tracker = tokio_util::task::TaskTracker::new();
                    for _ in 0..N {
                        tracker.spawn(async {});
                    }
                    tracker.close();
                    tracker.wait().await;
                });
            })
        }),
    }
}

pub fn bytes_per_child_token(net_bytes: NetBytes) -> Scenario {
    Scenario {
        name: "bytes allocated per child token (1k)",
        peer: "tokio-util child_token",
        goal: 1.1,
        unit: Unit::BytesPerItem,
        items: IDLE,
        ours: Box::new(move || {
            let root = CancellationToken::new();
            let mut kept = Vec::with_capacity(IDLE);
            let bytes = net_bytes(&mut || kept.extend((0..IDLE).map(|_| root.child_token())));
            drop(kept);
            bytes
        }),
        theirs: Box::new(move || {
            let root = tokio_util::sync::CancellationToken::new();
            let mut kept = Vec::with_capacity(IDLE);
            let bytes = net_bytes(&mut || kept.extend((0..IDLE).map(|_| root.child_token())));
            drop(kept);
            bytes
        }),
    }
}

/// Tracked tasks nobody joins (a tracker waits for tasks it does not own): ours spawned with
/// `spawn_detached`, the peer's handles dropped. (With `spawn`, ours keeps the state a
/// `JoinHandle` shares with its task too.)
pub fn bytes_per_tracked_task(net_bytes: NetBytes) -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "bytes allocated per tracked pending task (1k, tokio)",
        peer: "tokio-util TaskTracker spawn",
        goal: 1.5,
        unit: Unit::BytesPerItem,
        items: IDLE,
        ours: Box::new(move || {
            let token = CancellationToken::new();
            let tracker = TaskTracker::new(&rt);
            let bytes = net_bytes(&mut || {
                for _ in 0..IDLE {
                    tracker.spawn_detached(token.clone().cancelled_owned());
                }
                super::bytes::settle(&runtime);
            });
            token.cancel();
            tracker.close();
            runtime.block_on(tracker.wait());
            bytes
        }),
        theirs: Box::new(move || {
            let token = tokio_util::sync::CancellationToken::new();
            let tracker = tokio_util::task::TaskTracker::new();
            let bytes = net_bytes(&mut || {
                let _entered = peer_runtime.enter();
                for _ in 0..IDLE {
                    drop(tracker.spawn(token.clone().cancelled_owned()));
                }
                super::bytes::settle(&peer_runtime);
            });
            token.cancel();
            tracker.close();
            peer_runtime.block_on(tracker.wait());
            bytes
        }),
    }
}
