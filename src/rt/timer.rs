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

/// One step of SplitMix64: a fast generator whose every seed, zero too, gives a full-period,
/// well-mixed sequence.
pub(crate) fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random number from a per-thread generator seeded by std's random hasher keys.
pub(crate) fn thread_random() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0_u64));
    }
    STATE.with(|state| {
        let mut x = state.get();
        let drawn = split_mix(&mut x);
        state.set(x);
        drawn
    })
}

#[cfg(test)]
mod tests {
    use super::split_mix;

    #[test]
    fn split_mix_gives_distinct_draws_from_seed_zero() {
        let mut state = 0;
        let draws: Vec<u64> = (0..4).map(|_| split_mix(&mut state)).collect();
        // The reference values of SplitMix64 seeded with 0.
        assert_eq!(
            draws,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F,
                0xF88B_B8A8_724C_81EC
            ]
        );
    }
}
