//! strict_gather, strict_gather_spawned, await_map_values.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use asynchronously::rt::Runtime;
use asynchronously::{await_map_values, strict_gather, strict_gather_spawned};
use common::{DropCounter, sleepers, until};
use futures::FutureExt;
use futures::future::BoxFuture;

/// A future that fails with `error` at once.
fn fail<T: Send + 'static>(error: &'static str) -> BoxFuture<'static, Result<T, &'static str>> {
    Box::pin(async move { Err(error) })
}

/// A future that never completes, counting its drop.
fn pending<T: Send + 'static>(drops: &DropCounter) -> BoxFuture<'static, Result<T, &'static str>> {
    Box::pin(common::pending_counted(drops))
}

/// A future that sleeps on the runtime's clock, then gives `result`, counting its drop.
fn after<T: Send + 'static>(
    rt: &Runtime,
    ms: u64,
    result: Result<T, &'static str>,
    drops: &DropCounter,
) -> BoxFuture<'static, Result<T, &'static str>> {
    let (rt, token) = (rt.clone(), drops.token());
    Box::pin(async move {
        let _token = token;
        rt.sleep(Duration::from_millis(ms)).await;
        result
    })
}

each_runtime! {
    async fn an_empty_gather_is_ok(rt, _clock) {
        let none: Vec<BoxFuture<'static, Result<u8, &str>>> = Vec::new();
        assert_eq!(strict_gather(none).await, Ok(vec![]));
        let none: Vec<BoxFuture<'static, Result<u8, &str>>> = Vec::new();
        assert_eq!(strict_gather_spawned(&rt, none).await, Ok(vec![]));
        let map: HashMap<u8, u8> = await_map_values(Vec::<(u8, BoxFuture<'static, Result<u8, &str>>)>::new())
            .await
            .unwrap();
        assert!(map.is_empty());
    }
}

each_runtime! {
    /// Results keep input order although the futures finish in reverse.
    async fn results_keep_input_order(rt, clock) {
        let drops = DropCounter::new();
        let futures: Vec<_> = (0..5_u64).map(|i| after(&rt, 50 - i * 10, Ok(i), &drops)).collect();
        let gather = rt.spawn(strict_gather(futures));
        sleepers(&clock, 5).await;
        clock.advance(Duration::from_millis(50));
        assert_eq!(gather.await.unwrap(), Ok(vec![0, 1, 2, 3, 4]));
    }
}

/// `futures::future::try_join_all` above 30 inputs waits for every earlier future before it
/// sees a later one's error (futures-rs#2866). `strict_gather` must not: with 10,000 futures,
/// index 9,000 failing and all the others (index 0 among them) pending forever, it returns the
/// error at once, having dropped all 9,999 others.
#[test]
fn the_first_error_in_time_wins_over_input_order() {
    // Under miri (a thousand times slower) 100 futures, still above try_join_all's 30.
    let (n, failing) = if cfg!(miri) {
        (100, 90)
    } else {
        (10_000, 9_000)
    };
    let drops = DropCounter::new();
    let futures = || -> Vec<BoxFuture<'static, Result<u32, &'static str>>> {
        (0..n)
            .map(|i| {
                if i == failing {
                    fail("a late index failed")
                } else {
                    pending(&drops)
                }
            })
            .collect()
    };
    // The peer hangs, which is the bug this guards against.
    assert!(
        futures::future::try_join_all(futures())
            .now_or_never()
            .is_none()
    );
    let hung_peer_drops = drops.count();
    assert_eq!(hung_peer_drops, n - 1);

    let outcome = strict_gather(futures())
        .now_or_never()
        .expect("strict_gather returns at once");
    assert_eq!(outcome, Err("a late index failed"));
    assert_eq!(
        drops.count() - hung_peer_drops,
        n - 1,
        "every sibling was dropped before the return"
    );
}

each_runtime! {
    /// The error that happens first in time is returned, not the one first in input order.
    async fn the_earliest_error_is_returned(rt, clock) {
        let drops = DropCounter::new();
        let futures = vec![
            after(&rt, 30, Err("late, index 0"), &drops),
            after(&rt, 20, Ok(1), &drops),
            after(&rt, 10, Err("early, index 2"), &drops),
        ];
        let gather = rt.spawn(strict_gather(futures));
        sleepers(&clock, 3).await;
        clock.advance(Duration::from_millis(10));
        assert_eq!(gather.await.unwrap(), Err("early, index 2"));
        assert_eq!(drops.count(), 3);
        assert_eq!(clock.sleepers(), 0, "the siblings' sleeps were cancelled");
    }
}

each_runtime! {
    async fn dropping_the_gather_drops_every_future(rt, _clock) {
        let drops = DropCounter::new();
        let mut gather = Box::pin(strict_gather((0..100).map(|_| pending::<u8>(&drops))));
        assert!((&mut gather).now_or_never().is_none());
        drop(gather);
        assert_eq!(drops.count(), 100);
        let _ = rt;
    }
}

each_runtime! {
    async fn strict_gather_spawned_runs_everything(rt, _clock) {
        let results = strict_gather_spawned(&rt, (0..200_u32).map(|i| async move { Ok::<_, ()>(i * 2) })).await;
        assert_eq!(results, Ok((0..200).map(|i| i * 2).collect::<Vec<_>>()));
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// On an error, every other task is aborted and its future dropped before the return.
    async fn strict_gather_spawned_aborts_and_awaits_the_others(rt, _clock) {
        let drops = DropCounter::new();
        let start = rt.live_tasks();
        let futures: Vec<_> = (0..50)
            .map(|i| if i == 25 { fail::<u8>("task 25 failed") } else { pending(&drops) })
            .collect();
        assert_eq!(strict_gather_spawned(&rt, futures).await, Err("task 25 failed"));
        assert_eq!(drops.count(), 49, "all 49 others dropped before the error returned");
        until(|| rt.live_tasks() == start).await;
    }
}

each_runtime! {
    /// A child's panic resumes on the caller, after the others were aborted and dropped.
    async fn strict_gather_spawned_resumes_a_panic_after_the_others_are_gone(rt, _clock) {
        let drops = DropCounter::new();
        let mut futures: Vec<BoxFuture<'static, Result<u8, &str>>> =
            (0..10).map(|_| pending(&drops)).collect();
        futures.push(Box::pin(async { panic!("child panicked") }));
        let outcome = AssertUnwindSafe(strict_gather_spawned(&rt, futures)).catch_unwind().await;
        let payload = outcome.expect_err("the panic resumes");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"child panicked"));
        assert_eq!(drops.count(), 10);
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// Parallel children on the clock: the first failure in time wins.
    async fn strict_gather_spawned_fails_on_the_first_error_in_time(rt, clock) {
        let drops = DropCounter::new();
        let futures = vec![
            after(&rt, 30, Err("late"), &drops),
            after(&rt, 10, Err("early"), &drops),
            after(&rt, 20, Ok(2), &drops),
        ];
        let gather = rt.spawn({
            let rt = rt.clone();
            async move { strict_gather_spawned(&rt, futures).await }
        });
        sleepers(&clock, 3).await;
        clock.advance(Duration::from_millis(10));
        assert_eq!(gather.await.unwrap(), Err("early"));
        assert_eq!(drops.count(), 3);
    }
}

each_runtime! {
    async fn await_map_values_keeps_the_keys(rt, clock) {
        let drops = DropCounter::new();
        let map = HashMap::from([
            ("stripe", after(&rt, 20, Ok(120), &drops)),
            ("paypal", after(&rt, 10, Ok(80), &drops)),
        ]);
        let gather = rt.spawn(async move {
            let balances: BTreeMap<&str, u32> = await_map_values(map).await?;
            Ok::<_, &str>(balances)
        });
        sleepers(&clock, 2).await;
        clock.advance(Duration::from_millis(20));
        let balances = gather.await.unwrap().unwrap();
        assert_eq!(balances, BTreeMap::from([("paypal", 80), ("stripe", 120)]));
    }
}

each_runtime! {
    async fn await_map_values_fails_fast(rt, _clock) {
        let drops = DropCounter::new();
        let pairs = vec![("a", pending::<u8>(&drops)), ("b", fail("b is down")), ("c", pending(&drops))];
        let outcome: Result<HashMap<_, _>, _> = await_map_values(pairs).await;
        assert_eq!(outcome, Err("b is down"));
        assert_eq!(drops.count(), 2);
        let _ = rt;
    }
}

/// The futures are `Send` when their inputs are, so a gather can itself be spawned.
#[test]
fn gathers_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn input() -> Vec<BoxFuture<'static, Result<u8, &'static str>>> {
        Vec::new()
    }
    let rt = Runtime::new(drop::<asynchronously::rt::BoxFuture<()>>);
    assert_send(&strict_gather(input()));
    assert_send(&strict_gather_spawned(&rt, input()));
    let map =
        await_map_values::<_, _, _, _, _, HashMap<u8, u8>>(input().into_iter().map(|f| (1_u8, f)));
    assert_send(&map);
    fn assert_future<F: Future>(_: &F) {}
    assert_future(&map);
}

/// Each gather's future names itself and its progress in its `Debug`.
#[test]
fn each_gather_debugs_with_its_name_and_progress() {
    let futures = [
        std::future::ready(Ok::<u8, ()>(1)),
        std::future::ready(Ok(2)),
    ];
    let debug = format!("{:?}", strict_gather(futures));
    assert!(
        debug.starts_with("StrictGather")
            && debug.contains("len: 2")
            && debug.contains("pending: 2"),
        "{debug}"
    );

    let map = [("a", std::future::ready(Ok::<u8, ()>(1)))];
    let gather = await_map_values::<_, _, _, _, _, HashMap<_, _>>(map);
    let debug = format!("{gather:?}");
    assert!(
        debug.starts_with("AwaitMapValues") && debug.contains("values"),
        "{debug}"
    );

    let rt = Runtime::new(asynchronously::rt::ThreadPerTask);
    let spawned = strict_gather_spawned(&rt, [std::future::pending::<Result<(), ()>>()]);
    let debug = format!("{spawned:?}");
    assert!(
        debug.starts_with("StrictGatherSpawned")
            && debug.contains("tasks: 1")
            && debug.contains("failed: false"),
        "{debug}"
    );
}
