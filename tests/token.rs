//! `CancellationToken`: tokio-util's semantics (its suite's behaviours, in tests of our own),
//! on every runtime of the harness.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use asynchronously::CancellationToken;
use common::{DropCounter, pending_counted, until};
use futures::FutureExt;

each_runtime! {
    /// Tasks waiting on a token, its clones and its descendants all wake at one cancel, on
    /// another task's thread.
    async fn a_cancel_wakes_every_waiter_below(rt, _clock) {
        let root = CancellationToken::new();
        let child = root.child_token();
        let grandchild = child.child_token();
        let waiters: Vec<_> = [root.clone(), child.clone(), grandchild.clone(), root.clone()]
            .into_iter()
            .map(|token| rt.spawn(token.cancelled_owned()))
            .collect();
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert!(waiters.iter().all(|waiter| !waiter.is_finished()));
        let canceller = rt.spawn({
            let root = root.clone();
            async move { root.cancel() }
        });
        canceller.await.unwrap();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert!(child.is_cancelled() && grandchild.is_cancelled());
        root.cancelled().await; // and at once, afterwards
    }
}

each_runtime! {
    /// `cancelled` borrows, `cancelled_owned` owns; both are pending until the cancel, and a
    /// dropped wait takes nothing from the others.
    async fn waits_are_pending_until_the_cancel(rt, _clock) {
        let token = CancellationToken::new();
        let mut borrowed = token.cancelled();
        let mut owned = token.clone().cancelled_owned();
        let dropped = token.clone().cancelled_owned();
        assert!((&mut borrowed).now_or_never().is_none());
        assert!((&mut owned).now_or_never().is_none());
        drop(dropped);
        let waiter = rt.spawn(token.clone().cancelled_owned());
        token.cancel();
        assert!((&mut borrowed).now_or_never().is_some());
        assert!((&mut owned).now_or_never().is_some());
        waiter.await.unwrap();
    }
}

#[test]
fn cancelling_a_child_never_cancels_its_parent_or_siblings() {
    let parent = CancellationToken::new();
    let (a, b) = (parent.child_token(), parent.child_token());
    let a_child = a.child_token();
    a.cancel();
    assert!(a.is_cancelled() && a_child.is_cancelled());
    assert!(!parent.is_cancelled() && !b.is_cancelled());
    parent.cancel();
    assert!(b.is_cancelled());
}

#[test]
fn a_child_made_after_its_parent_was_cancelled_is_cancelled() {
    let parent = CancellationToken::new();
    parent.cancel();
    let child = parent.child_token();
    assert!(child.is_cancelled());
    assert!(child.child_token().is_cancelled());
    assert!(child.cancelled().now_or_never().is_some());
}

#[test]
fn a_grandchild_is_cancelled_through_its_grandparent_after_its_parent_was_dropped() {
    let root = CancellationToken::new();
    let child = root.child_token();
    let grandchild = child.child_token();
    let great = grandchild.child_token();
    drop(child);
    drop(grandchild);
    assert!(!great.is_cancelled());
    root.cancel();
    assert!(great.is_cancelled());
}

#[test]
fn a_child_outlives_its_dropped_parent_and_can_still_be_cancelled_alone() {
    let parent = CancellationToken::new();
    let children: Vec<_> = (0..3).map(|_| parent.child_token()).collect();
    drop(parent);
    assert!(children.iter().all(|child| !child.is_cancelled()));
    children[1].cancel();
    assert!(
        !children[0].is_cancelled() && children[1].is_cancelled() && !children[2].is_cancelled()
    );
}

#[test]
fn cancelling_the_middle_of_a_tree_cancels_exactly_its_subtree() {
    // root -> a -> (a1, a2 -> a21); root -> b -> b1
    let root = CancellationToken::new();
    let a = root.child_token();
    let (a1, a2) = (a.child_token(), a.child_token());
    let a21 = a2.child_token();
    let b = root.child_token();
    let b1 = b.child_token();
    a.cancel();
    let cancelled: Vec<bool> = [&root, &a, &a1, &a2, &a21, &b, &b1]
        .iter()
        .map(|t| t.is_cancelled())
        .collect();
    assert_eq!(cancelled, [false, true, true, true, true, false, false]);
}

#[test]
fn dropping_children_in_any_order_keeps_the_rest_linked() {
    // Children leave their parent's list by swapping the last one into their place: every
    // order of drops must leave the survivors cancellable through the parent.
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
        let parent = CancellationToken::new();
        let mut children: Vec<Option<CancellationToken>> =
            (0..5).map(|_| Some(parent.child_token())).collect();
        for index in order {
            children[index] = None;
        }
        let survivor = children[4].take().unwrap();
        let late = parent.child_token();
        parent.cancel();
        assert!(survivor.is_cancelled() && late.is_cancelled(), "{order:?}");
    }
}

#[test]
#[expect(
    clippy::mutable_key_type,
    reason = "a token hashes by identity, which no cancel changes"
)]
fn tokens_are_equal_and_hash_by_identity() {
    let token = CancellationToken::new();
    let clone = token.clone();
    let child = token.child_token();
    let other = CancellationToken::new();
    assert_eq!(token, clone);
    assert_ne!(token, child);
    assert_ne!(token, other);
    let set: HashSet<_> = [token.clone(), clone, child.clone(), other.clone()]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 3);
    assert_eq!(
        format!("{token:?}"),
        "CancellationToken { is_cancelled: false }"
    );
}

each_runtime! {
    /// `run_until_cancelled`: the output if the future ends first; `None` once cancelled, with
    /// the future dropped; on a token already cancelled, the future is never polled.
    async fn run_until_cancelled_gives_the_output_or_none_and_drops_the_future(rt, _clock) {
        let token = CancellationToken::new();
        assert_eq!(token.run_until_cancelled(async { 7 }).await, Some(7));

        let drops = DropCounter::new();
        let running = rt.spawn({
            let token = token.clone();
            let future = pending_counted::<()>(&drops);
            async move { token.run_until_cancelled(future).await }
        });
        for _ in 0..10 {
            common::yield_now().await;
        }
        assert_eq!(drops.count(), 0);
        token.cancel();
        assert_eq!(running.await.unwrap(), None);
        assert_eq!(drops.count(), 1);

        let polls = AtomicUsize::new(0);
        let counted = std::future::poll_fn(|_| {
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(1)
        });
        assert_eq!(token.run_until_cancelled(counted).await, None);
        assert_eq!(polls.load(Ordering::SeqCst), 0, "never polled on a cancelled token");
    }
}

#[test]
fn run_until_cancelled_prefers_the_output_when_both_are_ready() {
    let token = CancellationToken::new();
    let mut ready_on_second_poll = 0;
    let future = std::future::poll_fn(|_| {
        ready_on_second_poll += 1;
        if ready_on_second_poll == 2 {
            Poll::Ready("output")
        } else {
            Poll::Pending
        }
    });
    let mut run = pin!(token.run_until_cancelled(future));
    assert!(
        run.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    token.cancel();
    assert_eq!(
        run.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Some("output"))
    );
}

#[test]
fn a_drop_guard_cancels_on_drop_unless_disarmed() {
    let token = CancellationToken::new();
    let child = token.child_token();
    let kept = child.clone().drop_guard().disarm();
    assert!(!kept.is_cancelled());
    assert_eq!(kept, child, "disarm gives back the guarded token");
    drop(child.clone().drop_guard());
    assert!(child.is_cancelled() && !token.is_cancelled());
    drop(token.clone().drop_guard());
    assert!(token.is_cancelled());
}

#[test]
fn a_drop_guard_dropped_during_a_panic_cancels_without_a_second_panic() {
    let token = CancellationToken::new();
    let waiter = token.child_token();
    let outcome = std::panic::catch_unwind({
        let token = token.clone();
        move || {
            let _guard = token.drop_guard();
            panic!("the work failed");
        }
    });
    assert!(outcome.is_err());
    assert!(token.is_cancelled() && waiter.is_cancelled());
}

/// A waker that runs `on_wake` when woken.
struct OnWake<F: Fn() + Send + Sync>(F);

impl<F: Fn() + Send + Sync> Wake for OnWake<F> {
    fn wake(self: Arc<Self>) {
        (self.0)();
    }
}

#[test]
fn a_waiters_waker_may_use_the_tokens_being_cancelled() {
    common::bounded(|| {
        let root = CancellationToken::new();
        let child = root.child_token();
        let seen = Arc::new(AtomicUsize::new(0));
        // The child's waiter, woken by the root's cancel, cancels the root and the child again,
        // makes a child of each, and reads them: no lock is held while it runs.
        let waker = Waker::from(Arc::new(OnWake({
            let (root, child, seen) = (root.clone(), child.clone(), seen.clone());
            move || {
                root.cancel();
                child.cancel();
                assert!(root.child_token().is_cancelled() && child.child_token().is_cancelled());
                seen.fetch_add(1, Ordering::SeqCst);
            }
        })));
        let mut wait = child.cancelled();
        assert!(
            Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        root.cancel();
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        assert!((&mut wait).now_or_never().is_some());
    });
}

each_runtime! {
    /// Many threads make, cancel and drop children of one parent at once while it is cancelled:
    /// every child ends up cancelled, and nothing deadlocks.
    async fn children_made_and_dropped_on_many_tasks_while_the_parent_is_cancelled(rt, _clock) {
        let parent = CancellationToken::new();
        let made = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (parent, made) = (parent.clone(), made.clone());
                rt.spawn(async move {
                    let mut kept = Vec::new();
                    for i in 0..500 {
                        let child = parent.child_token();
                        let grandchild = child.child_token();
                        made.fetch_add(1, Ordering::SeqCst);
                        if i % 3 == 0 {
                            kept.push(grandchild);
                        } else if i % 3 == 1 {
                            kept.push(child);
                        }
                    }
                    kept
                })
            })
            .collect();
        until(|| made.load(Ordering::SeqCst) >= 200).await;
        parent.cancel();
        for task in tasks {
            assert!(task.await.unwrap().iter().all(CancellationToken::is_cancelled));
        }
    }
}

#[test]
fn a_dropped_wait_frees_its_place_for_the_next() {
    let token = CancellationToken::new();
    let mut waits: Vec<_> = (0..3).map(|_| Box::pin(token.cancelled())).collect();
    assert!(waits.iter_mut().all(|wait| wait.now_or_never().is_none()));
    drop(waits.remove(1));
    // Each new wait takes a freed place; each waiter is woken once, by its own waker.
    let woken: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let wakers: Vec<Waker> = woken
        .iter()
        .map(|count| {
            let count = count.clone();
            Waker::from(Arc::new(OnWake(move || {
                count.fetch_add(1, Ordering::SeqCst);
            })))
        })
        .collect();
    waits.push(Box::pin(token.cancelled()));
    for (wait, waker) in waits.iter_mut().zip(&wakers) {
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
    }
    token.cancel();
    assert!(woken.iter().all(|count| count.load(Ordering::SeqCst) == 1));
    assert!(waits.iter_mut().all(|wait| wait.now_or_never().is_some()));
}

/// A wait that is dropped before the cancel lets go of its waker at once: a token that lives
/// long keeps no waker of the waits that came and went.
#[test]
fn a_dropped_wait_lets_go_of_its_waker() {
    let token = CancellationToken::new();
    let counted = common::CountedWaker::new();
    let waker = counted.waker();
    for _ in 0..3 {
        let mut wait = pin!(token.cancelled());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(counted.clones(), 2, "the wait keeps a clone");
    }
    assert_eq!(counted.clones(), 1, "the dropped waits keep none");
    for _ in 0..3 {
        let mut wait = pin!(token.clone().cancelled_owned());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(counted.clones(), 2, "the owned wait keeps a clone");
    }
    assert_eq!(counted.clones(), 1, "the dropped owned waits keep none");
    token.cancel();
}

/// Every named type of the token says what it is and its token's state in its `Debug`.
#[test]
fn every_token_type_debugs_with_its_name() {
    let token = CancellationToken::new();
    let run = token.run_until_cancelled(std::future::ready(1));
    for (debug, name) in [
        (format!("{token:?}"), "CancellationToken"),
        (format!("{:?}", token.cancelled()), "WaitForCancellation"),
        (
            format!("{:?}", token.clone().cancelled_owned()),
            "WaitForCancellationOwned",
        ),
        (
            format!("{:?}", token.clone().drop_guard().disarm()),
            "CancellationToken",
        ),
        (format!("{run:?}"), "RunUntilCancelled"),
    ] {
        assert!(debug.starts_with(name), "{debug}");
        assert!(debug.contains("is_cancelled: false"), "{debug}");
    }
    // A guard of a token of its own: dropping it cancels its token.
    let guarded = CancellationToken::new();
    let debug = format!("{:?}", guarded.clone().drop_guard());
    assert!(
        debug.starts_with("DropGuard { token: Some(CancellationToken"),
        "{debug}"
    );
    assert!(debug.contains("is_cancelled: false"), "{debug}");
    assert!(guarded.is_cancelled());
}

/// A token hashes as what it is equal to: its clones hash alike, another token does not.
#[test]
fn a_token_hashes_by_identity() {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash =
        |token: &CancellationToken| BuildHasherDefault::<DefaultHasher>::default().hash_one(token);
    let (token, other) = (CancellationToken::new(), CancellationToken::new());
    assert_eq!(hash(&token), hash(&token.clone()));
    assert_ne!(hash(&token), hash(&other));
    assert_ne!(hash(&token), hash(&token.child_token()));
}
