//! The default timer: `futures-timer` sleeps and the std clocks.

use std::time::{Duration, Instant, SystemTime};

use super::{BoxFuture, Timer};

/// `futures-timer` and the std clocks. `futures-timer` clamps a deadline that would overflow to
/// thirty years ahead, so `Duration::MAX` neither panics nor wakes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemTimer;

impl Timer for SystemTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        sleep_on_futures_timer(duration)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A `futures-timer` sleep; a zero duration is over at once, without a trip to the timer thread.
pub(crate) fn sleep_on_futures_timer(duration: Duration) -> BoxFuture<()> {
    if duration.is_zero() {
        return Box::pin(std::future::ready(()));
    }
    Box::pin(futures_timer::Delay::new(duration))
}
