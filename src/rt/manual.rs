//! `ManualClock`: deterministic time for tests.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use super::{BoxFuture, Timer};
use crate::sync::{Mutex, MutexGuard, lock};

/// Deterministic time for tests: sleeps finish only when the clock is advanced past them.
///
/// Build a whole runtime on it with `Runtime::with_timer(spawner, clock.clone())`; clones share
/// one clock. [`advance`](ManualClock::advance) moves both [`now`](Timer::now) and
/// [`system_now`](Timer::system_now) and wakes every sleep whose deadline it passes, so a test of a
/// one-day period takes microseconds. [`sleepers`](ManualClock::sleepers) tells a test how many
/// sleeps are waiting, which is how it knows that a task has reached its next sleep.
///
/// A zero-length sleep completes at once. Deadlines saturate: a sleep of `Duration::MAX` waits
/// until the clock is advanced by `Duration::MAX`, and nothing overflows.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::rt::{ManualClock, Timer};
/// use futures::FutureExt;
///
/// let clock = ManualClock::new();
/// let mut nap = clock.sleep(Duration::from_millis(30));
/// assert!((&mut nap).now_or_never().is_none()); // registers the sleep
/// assert_eq!(clock.sleepers(), 1);
///
/// clock.advance(Duration::from_millis(10));
/// assert!((&mut nap).now_or_never().is_none()); // 10 ms of 30
/// clock.advance(Duration::from_millis(20));
/// assert!(nap.now_or_never().is_some());
/// assert_eq!(clock.sleepers(), 0);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    origin: Instant,
    system_origin: SystemTime,
    state: Mutex<ClockState>,
    /// Notified whenever a sleep is added or removed, for `wait_for_sleepers`.
    changed: event_listener::Event,
}

struct ClockState {
    elapsed: Duration,
    next_key: u64,
    /// The state of [`Timer::random`]'s generator.
    random: u64,
    /// Pending sleeps by (deadline, key): the first entries are the next to wake.
    sleepers: BTreeMap<(Duration, u64), Waker>,
}

impl ClockInner {
    fn lock(&self) -> MutexGuard<'_, ClockState> {
        lock(&self.state)
    }
}

/// A far-future `Instant` or `SystemTime` addition that cannot overflow: past what the platform
/// represents, time stops at the last representable step (about 136 years after the origin).
fn saturating_add<T: Copy>(origin: T, by: Duration, add: impl Fn(T, Duration) -> Option<T>) -> T {
    add(origin, by)
        .or_else(|| add(origin, Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(origin)
}

impl ManualClock {
    /// A clock at its origin: `now()` is the `Instant` of this call and nothing has elapsed.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{ManualClock, Timer};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), clock.origin());
    /// ```
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A clock at its origin whose [`random`](Timer::random) draws come from `seed`
    /// ([`new`](ManualClock::new) uses 0): two clocks with one seed draw the same numbers, so a
    /// jittered schedule is exact in a test.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynchronously::rt::{ManualClock, Timer};
    ///
    /// assert_eq!(ManualClock::with_seed(1).random(), ManualClock::with_seed(1).random());
    /// assert_ne!(ManualClock::with_seed(1).random(), ManualClock::with_seed(2).random());
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                origin: Instant::now(),
                system_origin: SystemTime::now(),
                state: Mutex::new(ClockState {
                    elapsed: Duration::ZERO,
                    next_key: 0,
                    random: seed,
                    sleepers: BTreeMap::new(),
                }),
                changed: event_listener::Event::new(),
            }),
        }
    }

    /// Moves the clock forward by `d` and wakes every sleep whose deadline has now passed.
    ///
    /// The woken tasks run on their executor afterwards; wait for
    /// [`sleepers`](ManualClock::sleepers) to tell when they have reached their next sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::rt::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(86_400));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(86_400));
    /// clock.advance(Duration::MAX); // saturates, never overflows
    /// assert_eq!(clock.elapsed(), Duration::MAX);
    /// ```
    pub fn advance(&self, d: Duration) {
        let mut due = Vec::new();
        {
            let mut state = self.inner.lock();
            state.elapsed = state.elapsed.saturating_add(d);
            let elapsed = state.elapsed;
            while let Some(entry) = state.sleepers.first_entry() {
                if entry.key().0 > elapsed {
                    break;
                }
                due.push(entry.remove());
            }
        }
        if !due.is_empty() {
            self.inner.changed.notify(usize::MAX);
        }
        due.into_iter().for_each(Waker::wake);
    }

    /// Waits until exactly `n` sleeps are pending on this clock: the async form of a loop on
    /// [`sleepers`](ManualClock::sleepers), for a test on an executor of its own (on a
    /// [`TestRuntime`](crate::testing::TestRuntime), `block_on` advances the clock by itself).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use asynchronously::rt::{ManualClock, Runtime, ThreadPerTask};
    ///
    /// let clock = ManualClock::new();
    /// let rt = Runtime::with_timer(ThreadPerTask, clock.clone());
    /// let nap = rt.spawn({
    ///     let rt = rt.clone();
    ///     async move { rt.sleep(Duration::from_secs(60)).await }
    /// });
    /// clock.wait_for_sleepers(1).await; // the task reached its sleep
    /// clock.advance(Duration::from_secs(60));
    /// nap.await.unwrap();
    /// # });
    /// ```
    pub fn wait_for_sleepers(&self, n: usize) -> WaitForSleepers {
        WaitForSleepers {
            clock: self.clone(),
            n,
            listener: None,
        }
    }

    /// How long after the origin the next sleep is due, if one is pending.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.inner
            .lock()
            .sleepers
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    /// How many sleeps on this clock are pending: polled at least once and not yet over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::rt::{ManualClock, Timer};
    /// use futures::FutureExt;
    ///
    /// let clock = ManualClock::new();
    /// let mut nap = clock.sleep(Duration::from_secs(1));
    /// assert_eq!(clock.sleepers(), 0); // not polled yet
    /// assert!((&mut nap).now_or_never().is_none());
    /// assert_eq!(clock.sleepers(), 1);
    /// drop(nap);
    /// assert_eq!(clock.sleepers(), 0);
    /// ```
    pub fn sleepers(&self) -> usize {
        self.inner.lock().sleepers.len()
    }

    /// How far the clock has been advanced since it was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::rt::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(clock.elapsed(), Duration::from_millis(250));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.inner.lock().elapsed
    }

    /// The `Instant` this clock started at: [`now`](Timer::now) is `origin() + elapsed()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::rt::{ManualClock, Timer};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(clock.now() - clock.origin(), Duration::from_secs(2));
    /// ```
    pub fn origin(&self) -> Instant {
        self.inner.origin
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("ManualClock")
            .field("elapsed", &state.elapsed)
            .field("sleepers", &state.sleepers.len())
            .finish()
    }
}

/// The future of [`ManualClock::wait_for_sleepers`]: completes once exactly `n` sleeps are
/// pending.
///
/// # Examples
///
/// ```
/// use asynchronously::rt::{ManualClock, WaitForSleepers};
///
/// let clock = ManualClock::new();
/// let none: WaitForSleepers = clock.wait_for_sleepers(0);
/// futures::executor::block_on(none); // no sleep is pending: over at once
/// ```
#[must_use = "a WaitForSleepers does nothing unless awaited"]
pub struct WaitForSleepers {
    clock: ManualClock,
    n: usize,
    listener: Option<event_listener::EventListener>,
}

impl fmt::Debug for WaitForSleepers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForSleepers")
            .field("n", &self.n)
            .field("sleepers", &self.clock.sleepers())
            .finish()
    }
}

impl Future for WaitForSleepers {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let (clock, n) = (&this.clock, this.n);
        crate::event::poll_until(&clock.inner.changed, &mut this.listener, cx, || {
            clock.sleepers() == n
        })
    }
}

impl ManualClock {
    fn sleep_to(&self, deadline: Option<Duration>) -> BoxFuture<()> {
        Box::pin(ManualSleep {
            clock: self.inner.clone(),
            deadline,
            key: None,
        })
    }
}

impl Timer for ManualClock {
    /// A sleep that would end past `Duration::MAX` after the origin (the clock saturated, or
    /// nearly) never ends, and is not counted in [`sleepers`](ManualClock::sleepers): a
    /// `Periodic` on a clock advanced by `Duration::MAX` runs once, not for ever.
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        let elapsed = self.inner.lock().elapsed;
        self.sleep_to(elapsed.checked_add(duration))
    }

    /// Past what an `Instant` of this clock shows (about 136 years after the origin, where
    /// [`now`](Timer::now) stops), a deadline after `now()` never comes; one at or before it is
    /// over at once.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let shown = self.now().saturating_duration_since(self.inner.origin);
        let since_origin = deadline.saturating_duration_since(self.inner.origin);
        if shown < self.elapsed() {
            // The clock went past what `now()` can show.
            return self.sleep_to((since_origin <= shown).then_some(Duration::ZERO));
        }
        self.sleep_to(Some(since_origin))
    }

    fn now(&self) -> Instant {
        saturating_add(self.inner.origin, self.elapsed(), |t, d| t.checked_add(d))
    }

    fn system_now(&self) -> SystemTime {
        saturating_add(self.inner.system_origin, self.elapsed(), |t, d| {
            t.checked_add(d)
        })
    }

    fn random(&self) -> u64 {
        super::timer::split_mix(&mut self.inner.lock().random)
    }
}

/// One sleep on a [`ManualClock`]; registered on its first pending poll, removed on drop.
struct ManualSleep {
    clock: Arc<ClockInner>,
    /// `None`: past the end of time, never.
    deadline: Option<Duration>,
    key: Option<u64>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let mut state = this.clock.lock();
        if state.elapsed >= deadline {
            if let Some(key) = this.key.take() {
                state.sleepers.remove(&(deadline, key));
                drop(state);
                this.clock.changed.notify(usize::MAX);
            }
            return Poll::Ready(());
        }
        let key = *this.key.get_or_insert_with(|| {
            state.next_key += 1;
            state.next_key
        });
        match state.sleepers.get_mut(&(deadline, key)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                state.sleepers.insert((deadline, key), cx.waker().clone());
                drop(state);
                this.clock.changed.notify(usize::MAX);
            }
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let (Some(key), Some(deadline)) = (self.key, self.deadline) {
            let removed = self.clock.lock().sleepers.remove(&(deadline, key));
            if removed.is_some() {
                self.clock.changed.notify(usize::MAX);
            }
        }
    }
}
