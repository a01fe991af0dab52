//! The loop a [`Periodic`](super::Periodic) runs, and its schedule.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::{ErasedJob, First, MissedTicks, Schedule, Shared};
use crate::rt::{BoxFuture, PanicPayload, Timer};

/// Sets `ended` however the loop ends: returned, or cancelled with its handle.
pub(super) struct Ended(pub(super) Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.active.store(false, Ordering::SeqCst);
        self.0.ended.set();
    }
}

/// The loop: sleep until the next deadline, run the job, log its failure, repeat; until it is
/// deactivated, or cancelled (its handle dropped), which ends it at once, mid-job too.
#[expect(
    clippy::manual_async_fn,
    reason = "the 'bytes allocated per idle Periodic' row: an async fn keeps its arguments twice"
)]
pub(super) fn run_loop(ended: Ended, mut job: ErasedJob) -> impl Future<Output = ()> + Send {
    async move {
        let shared = &*ended.0;
        // `None`: never (a deadline past what `Instant` can hold).
        let mut deadline = first_deadline(shared, shared.rt.timer());
        while shared.active.load(Ordering::SeqCst) {
            let timer = shared.rt.timer();
            let now = timer.now();
            let waits = deadline.is_none_or(|due| due > now);
            if waits && !shared.triggered.load(Ordering::SeqCst) {
                let sleep = deadline.map(|due| timer.sleep_until(due));
                if let Woke::Stopping = slept(shared, sleep).await {
                    break;
                }
            }
            if !shared.active.load(Ordering::SeqCst) {
                break;
            }
            if shared.triggered.swap(false, Ordering::SeqCst) {
                // `trigger`: this run is due now, and the schedule goes on from it.
                deadline = Some(shared.rt.timer().now());
            }
            // A sync job runs inside `job()` itself, an async one in its future: catch both.
            match std::panic::catch_unwind(AssertUnwindSafe(&mut job)) {
                Err(panic) => log_panic(shared, panic),
                Ok(run) => {
                    match unless_cancelled(shared, AssertUnwindSafe(run).catch_unwind()).await {
                        None => break,
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(error))) => {
                            log::error!("periodic `{}` job raised: {error}", shared.name);
                        }
                        Some(Err(panic)) => log_panic(shared, panic),
                    }
                }
            }
            let ended_at = shared.rt.timer().now();
            let Schedule {
                period,
                fixed_rate,
                missed_ticks,
                ..
            } = shared.schedule;
            // A loop that runs at all had a deadline.
            let due = deadline.unwrap_or(ended_at);
            deadline = if fixed_rate {
                next_fixed_rate(due, ended_at, period, missed_ticks)
            } else {
                ended_at.checked_add(period)
            };
        }
    }
}

fn log_panic(shared: &Shared, panic: Box<dyn std::any::Any + Send>) {
    log::error!(
        "periodic `{}` job raised a panic: {}",
        shared.name,
        PanicPayload::new(panic)
    );
}

/// Why a sleep of the loop ended.
enum Woke {
    /// Its deadline came.
    Due,
    /// [`trigger`](super::Periodic::trigger) asked for a run now.
    Triggered,
    /// The loop was deactivated or cancelled.
    Stopping,
}

/// Sleeps through `sleep` (for ever if `None`), unless a trigger or a stop comes first.
fn slept(shared: &Shared, mut sleep: Option<BoxFuture<()>>) -> impl Future<Output = Woke> + '_ {
    std::future::poll_fn(move |cx| {
        if stopping(shared, cx) {
            return Poll::Ready(Woke::Stopping);
        }
        if shared.triggered.load(Ordering::SeqCst) {
            return Poll::Ready(Woke::Triggered);
        }
        match &mut sleep {
            Some(sleep) => sleep.as_mut().poll(cx).map(|()| Woke::Due),
            None => Poll::Pending,
        }
    })
}

/// `future`'s output, or `None` if the loop is cancelled first.
fn unless_cancelled<F: Future + Unpin>(
    shared: &Shared,
    mut future: F,
) -> impl Future<Output = Option<F::Output>> + use<'_, F> {
    std::future::poll_fn(move |cx| {
        shared.loop_waker.register(cx.waker());
        if shared.cancelled.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        Pin::new(&mut future).poll(cx).map(Some)
    })
}

/// Whether the loop is deactivated or cancelled. Registers the task's waker first, so that a
/// `deactivate` or a cancel right after the check still wakes it.
fn stopping(shared: &Shared, cx: &mut std::task::Context<'_>) -> bool {
    shared.loop_waker.register(cx.waker());
    shared.cancelled.load(Ordering::SeqCst) || !shared.active.load(Ordering::SeqCst)
}

fn first_deadline(shared: &Shared, timer: &dyn Timer) -> Option<Instant> {
    let now = timer.now();
    match shared.schedule.first {
        First::AfterPeriod => now.checked_add(shared.schedule.period),
        First::Now => Some(now),
        First::At(at) => match at.duration_since(timer.system_now()) {
            Ok(ahead) => now.checked_add(ahead),
            Err(past) => {
                log::warn!(
                    "periodic `{}`: first_at is {:?} in the past; running at once",
                    shared.name,
                    past.duration()
                );
                Some(now)
            }
        },
    }
}

/// The next deadline of a fixed-rate loop whose run was due at `due` and ended at `ended`.
///
/// A run that starts a little late (timers fire late, by a millisecond on tokio) keeps the
/// schedule: only a tick whose deadline passed before the run ended counts as missed.
fn next_fixed_rate(
    due: Instant,
    ended: Instant,
    period: Duration,
    policy: MissedTicks,
) -> Option<Instant> {
    let next = due.checked_add(period)?;
    if next >= ended {
        return Some(next);
    }
    // The next tick was missed while the job ran (or before it started).
    match policy {
        MissedTicks::Burst => Some(next),
        MissedTicks::Delay => Some(ended),
        MissedTicks::Skip => {
            // At once, as the tick of the schedule at or before `ended`: the next run is then
            // the first tick after it, as tokio's `Skip` does.
            let behind = ended.duration_since(due).as_nanos();
            let periods = behind / period.as_nanos();
            let offset = period.checked_mul(u32::try_from(periods).ok()?)?;
            due.checked_add(offset)
        }
    }
}
