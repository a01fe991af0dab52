//! `Event`: asyncio's `Event`, a flag that tasks can wait for.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use event_listener::EventListener;

use crate::sync::Arc;
use crate::sync::atomic::{AtomicU64, Ordering};

/// A flag that tasks can wait for: Python's `asyncio.Event`, but `Send + Sync` and runtime-free.
///
/// [`set`](Event::set) raises the flag and wakes every waiter; [`clear`](Event::clear) lowers it;
/// [`wait`](Event::wait) completes once the flag is raised. Clones share one flag, so one clone
/// can be moved into a task while another is kept to set it.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::Event;
///
/// let ready = Event::new();
/// let waiter = ready.wait(); // waits from here on
/// ready.set();
/// waiter.await; // completes: the event was set
/// ready.wait().await; // and so does every later wait, until `clear`
/// assert!(ready.is_set());
/// # });
/// ```
///
/// # Caveats
///
/// A waiter completes if the event was set when [`wait`](Event::wait) was called or at any
/// moment after, even if it was cleared again before the waiter ran: a `set` is never lost. This
/// is asyncio's behaviour for a waiter that is already waiting (its `set` resolves every waiting
/// future at once); asyncio checks the flag only when the coroutine first runs, where we check it
/// when `wait` is called too.
#[derive(Clone, Default)]
pub struct Event {
    inner: Arc<Inner>,
}

/// What the clones of an [`Event`] share.
#[derive(Default)]
struct Inner {
    /// Bit 0: the flag. Bit 1: a waiter has listened (sticky). Bits 2..: how many times the flag
    /// went from clear to set.
    state: AtomicU64,
    waiters: event_listener::Event,
}

const SET: u64 = 0b01;
const LISTENED: u64 = 0b10;
/// One more set, in the count of bits 2...
const ONE_SET: u64 = 0b100;

/// Whether a wait that began in state `seen` is over in state `now`: the flag was up when it
/// began, is up now, or went up in between.
fn is_over(seen: u64, now: u64) -> bool {
    seen & SET != 0 || now & SET != 0 || now / ONE_SET != seen / ONE_SET
}

impl Event {
    /// A new event, not set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = asynchronously::Event::new();
    /// assert!(!event.is_set());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every waiter. Setting a set event does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = asynchronously::Event::new();
    /// event.set();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    #[inline]
    pub fn set(&self) {
        let state = &self.inner.state;
        let mut current = state.load(Ordering::Acquire);
        loop {
            if current & SET != 0 {
                return;
            }
            // One more set, flag raised, the listened bit kept.
            let next = current.wrapping_add(ONE_SET) | SET;
            match state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        // Nobody ever listened: nothing to wake, and no listener list to allocate. A waiter
        // raises LISTENED (an RMW on `state`) before it listens: if that came after our CAS, it
        // saw the flag up and does not listen; if before, `current` has the bit and we notify.
        if current & LISTENED == 0 {
            return;
        }
        // `notify` is preceded by a SeqCst fence: a waiter that registered before it is woken,
        // and one that registers after it sees the new state.
        self.inner.waiters.notify(usize::MAX);
    }

    /// Lowers the flag; later waits block until the next [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = asynchronously::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    #[inline]
    pub fn clear(&self) {
        self.inner.state.fetch_and(!SET, Ordering::AcqRel);
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = asynchronously::Event::new();
    /// assert!(!event.is_set());
    /// ```
    #[inline]
    pub fn is_set(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) & SET != 0
    }

    /// A future that completes once the flag is set: at once if it is set now, or at the next
    /// [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use asynchronously::Event;
    ///
    /// let started = Event::new();
    /// let waiter = std::thread::spawn({
    ///     let started = started.clone();
    ///     move || futures::executor::block_on(started.wait())
    /// });
    /// started.set();
    /// waiter.join().unwrap();
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping an `EventWait` only stops waiting; it takes nothing from other waiters.
    #[inline]
    pub fn wait(&self) -> EventWait {
        EventWait {
            seen: self.inner.state.load(Ordering::Acquire),
            event: self.clone(),
            listener: None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

/// The future returned by [`Event::wait`]: completes once the event is set.
///
/// It owns a handle to the event, so it is `'static` and `Send`: it can be stored, spawned, or
/// handed to another component to wait on.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::{Event, EventWait};
///
/// let done = Event::new();
/// let wait: EventWait = done.wait();
/// done.set();
/// wait.await;
/// # });
/// ```
#[must_use = "an EventWait does nothing unless awaited"]
pub struct EventWait {
    event: Event,
    /// The state when the wait began: a different count of sets means a set happened since.
    seen: u64,
    listener: Option<EventListener>,
}

impl EventWait {
    fn is_over(&self) -> bool {
        is_over(self.seen, self.event.inner.state.load(Ordering::Acquire))
    }
}

impl Future for EventWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let inner = &*this.event.inner;
        loop {
            let now = inner.state.load(Ordering::Acquire);
            if is_over(this.seen, now) {
                this.listener = None;
                return Poll::Ready(());
            }
            match &mut this.listener {
                // Announce, listen, then check again: a set between the check and `listen` is
                // not lost (see `Event::set`). Once announced, the bit stays: every later set
                // notifies.
                None => {
                    if now & LISTENED == 0 {
                        let before = inner.state.fetch_or(LISTENED, Ordering::AcqRel);
                        if is_over(this.seen, before) {
                            return Poll::Ready(());
                        }
                    }
                    this.listener = Some(inner.waiters.listen());
                }
                Some(listener) => {
                    ready!(Pin::new(listener).poll(cx));
                    this.listener = None;
                }
            }
        }
    }
}

impl fmt::Debug for EventWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("is_over", &self.is_over())
            .finish()
    }
}

/// Waits until `done()` holds, woken through `event`: listens, then checks again, so that a
/// notification between a check and `listen` is not lost. `listener` keeps the listening from
/// one poll to the next (it allocates only once a wait has to wait).
pub(crate) fn poll_until(
    event: &event_listener::Event,
    listener: &mut Option<EventListener>,
    cx: &mut Context<'_>,
    done: impl Fn() -> bool,
) -> Poll<()> {
    while !done() {
        match listener {
            Some(listening) => {
                ready!(Pin::new(listening).poll(cx));
                *listener = None;
            }
            None => *listener = Some(event.listen()),
        }
    }
    *listener = None;
    Poll::Ready(())
}
