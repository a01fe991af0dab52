//! The default timer: `futures-timer` sleeps and the std clocks.

use std::time::Duration;

use super::{BoxFuture, Timer};

/// `futures-timer` and the std clocks. `futures-timer` clamps a deadline that would overflow to
/// thirty years ahead, so `Duration::MAX` neither panics nor wakes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemTimer;

impl Timer for SystemTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(futures_timer::Delay::new(duration))
    }
}
