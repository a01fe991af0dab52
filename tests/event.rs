//! `Event`: asyncio's Event on event-listener.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asynchronously::Event;
use common::until;
use futures::FutureExt;

each_runtime! {
    async fn set_wakes_every_waiter(rt, _clock) {
        let event = Event::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let (event, woken) = (event.clone(), woken.clone());
                rt.spawn(async move {
                    event.wait().await;
                    woken.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        event.set();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 20);
    }
}

each_runtime! {
    /// A set that races with a waiter registering is never lost (check, listen, check again).
    async fn no_lost_wake_up_between_threads(rt, _clock) {
        for _ in 0..500 {
            let event = Event::new();
            let waiter = rt.spawn({
                let event = event.clone();
                async move { event.wait().await }
            });
            event.set();
            waiter.await.unwrap();
        }
    }
}

each_runtime! {
    /// Ping-pong between two tasks with set/clear: every round trip completes.
    async fn round_trips_between_two_tasks(rt, _clock) {
        let (ping, pong) = (Event::new(), Event::new());
        let responder = rt.spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..1_000 {
                    ping.wait().await;
                    ping.clear();
                    pong.set();
                }
            }
        });
        for _ in 0..1_000 {
            ping.set();
            pong.wait().await;
            pong.clear();
        }
        responder.await.unwrap();
    }
}

#[test]
fn wait_on_a_set_event_is_ready_at_once() {
    let event = Event::new();
    event.set();
    assert!(event.wait().now_or_never().is_some());
    assert!(event.is_set());
}

#[test]
fn clear_makes_later_waits_block() {
    let event = Event::new();
    event.set();
    event.clear();
    assert!(!event.is_set());
    assert!(event.wait().now_or_never().is_none());
}

/// A set is never lost, even when cleared before the waiter ran (asyncio's behaviour).
#[test]
fn a_waiter_sees_a_set_that_was_cleared_again() {
    let event = Event::new();
    let mut waiter = event.wait();
    assert!((&mut waiter).now_or_never().is_none());
    event.set();
    event.clear();
    assert!(waiter.now_or_never().is_some());
    // A wait that began after the clear does block.
    assert!(event.wait().now_or_never().is_none());
}

/// A wait that begins while the flag is up is over, even if the flag goes down before it is
/// polled: `wait` is "at once if it is set now".
#[test]
fn a_wait_begun_while_set_completes_despite_a_clear() {
    let event = Event::new();
    event.set();
    let waiter = event.wait();
    event.clear();
    assert!(waiter.now_or_never().is_some());
}

#[test]
fn set_twice_and_clones_share_one_flag() {
    let event = Event::new();
    let clone = event.clone();
    clone.set();
    clone.set();
    assert!(event.is_set());
    assert_eq!(format!("{event:?}"), "Event { is_set: true }");
    event.clear();
    assert!(!clone.is_set());
    assert_eq!(format!("{clone:?}"), "Event { is_set: false }");
}

#[test]
fn waiting_on_another_thread_is_woken() {
    common::bounded(|| {
        let event = Event::new();
        let waiter = std::thread::spawn({
            let event = event.clone();
            move || futures::executor::block_on(event.wait())
        });
        std::thread::yield_now();
        event.set();
        waiter.join().unwrap();
    });
}

each_runtime! {
    async fn a_dropped_wait_takes_nothing_from_others(rt, _clock) {
        let event = Event::new();
        let mut dropped = event.wait();
        assert!((&mut dropped).now_or_never().is_none());
        let kept = rt.spawn({
            let event = event.clone();
            async move { event.wait().await }
        });
        drop(dropped);
        event.set();
        kept.await.unwrap();
        until(|| rt.live_tasks() == 0).await;
    }
}

/// A lifecycle phase keeps its events inline: a clone of one is still a whole `Event`. It shares
/// the phase's flag, wakes a waiter on another thread, and outlives the component.
#[test]
fn a_phase_event_is_a_whole_event() {
    use asynchronously::lifecycle::{Component, ComponentExt, Lifecycle};

    #[derive(Default)]
    struct Service {
        lifecycle: Lifecycle,
    }
    impl Component for Service {
        fn lifecycle(&self) -> &Lifecycle {
            &self.lifecycle
        }
    }

    common::bounded(|| {
        let service = Service::default();
        let started = service.lifecycle().init_phase().started().clone();
        let finished = service.lifecycle().init_phase().finished().clone();
        let waiter = std::thread::spawn({
            let finished = finished.clone();
            move || futures::executor::block_on(finished.wait())
        });
        assert!(!started.is_set());
        futures::executor::block_on(service.init()).unwrap();
        waiter.join().unwrap();
        assert!(started.is_set() && finished.is_set());
        drop(service);
        // The clones keep the phase's state alive, and act on it.
        finished.clear();
        assert!(!finished.is_set() && started.is_set());
        assert!(finished.wait().now_or_never().is_none());
        finished.set();
        assert!(finished.wait().now_or_never().is_some());
    });
}

/// A wait says in its `Debug` whether it is over: not before the set, and after it.
#[test]
fn a_wait_debugs_whether_it_is_over() {
    let event = Event::new();
    let wait = event.wait();
    assert!(format!("{wait:?}").contains("is_over: false"), "{wait:?}");
    event.set();
    assert!(format!("{wait:?}").contains("is_over: true"), "{wait:?}");
}
