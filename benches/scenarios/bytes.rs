//! The scenarios that count bytes: what an idle primitive keeps allocated, beside its peer.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use asynchronously::Periodic;

use super::{Scenario, Unit, on_tokio, tokio_runtime};

/// Bytes still allocated after `f` (net of frees), as the bench's counting allocator sees them.
pub type NetBytes = fn(&mut dyn FnMut()) -> f64;

pub const IDLE: usize = 1_000;

/// Lets tasks on `runtime` reach their first await.
pub fn settle(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
}

/// Net bytes of `IDLE` items that `make` makes and keeps alive (their tasks at their first
/// await); then `release` is called on each (a tokio task is aborted), and they are dropped.
fn bytes_of<T>(
    runtime: &tokio::runtime::Runtime,
    net_bytes: NetBytes,
    mut make: impl FnMut() -> T,
    release: impl Fn(&T),
) -> f64 {
    let mut kept = Vec::with_capacity(IDLE);
    let bytes = net_bytes(&mut || {
        for _ in 0..IDLE {
            kept.push(make());
        }
        settle(runtime);
    });
    kept.iter().for_each(release);
    drop(kept);
    settle(runtime);
    bytes
}

pub fn bytes_per_idle_periodic(net_bytes: NetBytes) -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "bytes allocated per idle Periodic (1k, tokio)",
        peer: "a tokio task looping on interval",
        goal: 1.5,
        unit: Unit::BytesPerItem,
        items: IDLE,
        ours: Box::new(move || {
            let make = || {
                Periodic::builder(|| {}, Duration::from_secs(3600))
                    .runtime(&rt)
                    .start()
                    .unwrap()
            };
            bytes_of(&runtime, net_bytes, make, |_| {})
        }),
        theirs: Box::new(move || {
            let make = || {
                peer_runtime.spawn(async {
                    let mut interval = tokio::time::interval(Duration::from_secs(3600));
                    loop {
                        interval.tick().await;
                    }
                })
            };
            bytes_of(
                &peer_runtime,
                net_bytes,
                make,
                tokio::task::JoinHandle::abort,
            )
        }),
    }
}

pub fn bytes_per_spawned_task(net_bytes: NetBytes) -> Scenario {
    let runtime = Arc::new(tokio_runtime());
    let rt = on_tokio(&runtime);
    let peer_runtime = runtime.clone();
    Scenario {
        name: "bytes allocated per spawned task (1k pending, tokio)",
        peer: "tokio spawn",
        goal: 1.5,
        unit: Unit::BytesPerItem,
        items: IDLE,
        ours: Box::new(move || bytes_of(&runtime, net_bytes, || rt.spawn(pending::<()>()), |_| {})),
        theirs: Box::new(move || {
            let make = || peer_runtime.spawn(pending::<()>());
            bytes_of(
                &peer_runtime,
                net_bytes,
                make,
                tokio::task::JoinHandle::abort,
            )
        }),
    }
}
