//! The loop a [`Periodic`](super::Periodic) runs, and its schedule.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::{ErasedJob, First, MissedTicks, Shared};
use crate::rt::{BoxFuture, PanicPayload, Timer};
use crate::sync::lock;
use crate::trace;

/// Sets `ended` however the loop ends: returned, or cancelled with its handle.
pub(super) struct Ended(pub(super) Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        let shared = &self.0;
        shared.active.store(false, Ordering::SeqCst);
        lock(&shared.state).stats.next_run = None;
        shared.ended.store(true, Ordering::SeqCst);
        shared.end.notify(usize::MAX);
    }
}

/// The loop: sleep until the next run is due, run the job, log its failure, repeat; until it is
/// deactivated, or cancelled (its handle dropped), which ends it at once, mid-job too.
///
/// `due` is the schedule's next tick (`None`: never, past what `Instant` can hold) and `jitter`
/// the delay drawn for it: the run is due at their sum.
#[expect(
    clippy::manual_async_fn,
    reason = "the 'bytes allocated per idle Periodic' row: an async fn keeps its arguments twice"
)]
pub(super) fn run_loop(
    ended: Ended,
    mut job: ErasedJob,
    mut due: Option<Instant>,
    mut jitter: Duration,
) -> impl Future<Output = ()> + Send {
    async move {
        let shared = &*ended.0;
        while shared.active.load(Ordering::SeqCst) {
            let timer = shared.rt.timer();
            let wake = wake_at(due, jitter);
            let waits = wake.is_none_or(|wake| wake > timer.now());
            if waits && !shared.triggered.load(Ordering::SeqCst) {
                let sleep = wake.map(|wake| timer.sleep_until(wake));
                if let Woke::Stopping = slept(shared, sleep).await {
                    break;
                }
            }
            if !shared.active.load(Ordering::SeqCst) {
                break;
            }
            let started = shared.rt.timer().now();
            if shared.triggered.swap(false, Ordering::SeqCst) {
                // `trigger`: this run is due now, and the schedule goes on from it.
                (due, jitter) = (Some(started), Duration::ZERO);
            }
            {
                let stats = &mut lock(&shared.state).stats;
                stats.last_started = Some(started);
                stats.next_run = None;
            }
            let span = trace::periodic_run(shared.name(), || lock(&shared.state).stats.runs + 1);
            let Some(failed) = trace::within(&span, run_once(shared, &mut job)).await else {
                break;
            };
            trace::run_failed(&span, failed);
            let timer = shared.rt.timer();
            let ended_at = timer.now();
            // A loop that runs at all had a deadline.
            let this_due = due.unwrap_or(ended_at);
            due = next_due(shared, this_due, jitter, ended_at);
            jitter = draw(shared.jitter, timer);
            let stats = &mut lock(&shared.state).stats;
            stats.runs += 1;
            stats.failures += u64::from(failed);
            stats.next_run = wake_at(due, jitter);
        }
    }
}

/// Runs the job once and logs its failure: `Some(failed)`, or `None` if the loop was cancelled
/// during the run.
async fn run_once(shared: &Shared, job: &mut ErasedJob) -> Option<bool> {
    // A sync job runs inside `job()` itself, an async one in its future: catch both.
    let run = match std::panic::catch_unwind(AssertUnwindSafe(job)) {
        Err(panic) => {
            log_panic(shared, panic);
            return Some(true);
        }
        Ok(run) => run,
    };
    match unless_cancelled(shared, AssertUnwindSafe(run).catch_unwind()).await? {
        Ok(Ok(())) => Some(false),
        Ok(Err(error)) => {
            log::error!("periodic `{}` job raised: {error}", shared.name());
            Some(true)
        }
        Err(panic) => {
            log_panic(shared, panic);
            Some(true)
        }
    }
}

/// When a run whose tick is `due`, delayed by `jitter`, is due.
pub(super) fn wake_at(due: Option<Instant>, jitter: Duration) -> Option<Instant> {
    due?.checked_add(jitter)
}

/// The next tick after a run whose tick was `due`, delayed by `jitter`, that ended at `ended`.
fn next_due(shared: &Shared, due: Instant, jitter: Duration, ended: Instant) -> Option<Instant> {
    if !shared.fixed_rate {
        return ended.checked_add(shared.period);
    }
    // The jitter delays a run without moving the schedule: the run is judged as if it had
    // started on its tick.
    let ended_on_schedule = ended.checked_sub(jitter).unwrap_or(ended).max(due);
    next_fixed_rate(due, ended_on_schedule, shared.period, shared.missed_ticks)
}

/// A uniform draw in `[0, max)` from `timer`'s random numbers; zero, without a draw, for none.
fn draw(max: Duration, timer: &dyn Timer) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    // `max * r / 2^64` in exact integer arithmetic: `max`'s nanoseconds split at 2^64, so that
    // no product overflows (`max` is below 2^94 ns).
    let nanos = max.as_nanos();
    let random = u128::from(timer.random());
    let (high, low) = (nanos >> 64, nanos & u128::from(u64::MAX));
    let drawn = high * random + ((low * random) >> 64);
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    // `drawn < nanos`, so its seconds fit as `max`'s do.
    let secs = u64::try_from(drawn / NANOS_PER_SEC).unwrap_or(u64::MAX);
    Duration::new(secs, (drawn % NANOS_PER_SEC) as u32)
}

fn log_panic(shared: &Shared, panic: Box<dyn std::any::Any + Send>) {
    log::error!(
        "periodic `{}` job raised a panic: {}",
        shared.name(),
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

impl Shared {
    /// The first run's tick and jitter, as the loop starts.
    pub(super) fn first_run(&self, first: First) -> (Option<Instant>, Duration) {
        let timer = self.rt.timer();
        let now = timer.now();
        let later = |due| (due, draw(self.jitter, timer));
        match first {
            First::AfterPeriod => later(now.checked_add(self.period)),
            First::Now => (Some(now), Duration::ZERO),
            First::At(at) => match at.duration_since(timer.system_now()) {
                Ok(ahead) => later(now.checked_add(ahead)),
                Err(past) => {
                    log::warn!(
                        "periodic `{}`: first_at is {:?} in the past; running at once",
                        self.name(),
                        past.duration()
                    );
                    (Some(now), Duration::ZERO)
                }
            },
        }
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
