//! `Backoff`: how long a retry sleeps before each call.

use std::time::Duration;

/// How long to sleep before each retry.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynchronously::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).max(Duration::from_secs(1));
/// assert_eq!(backoff.delay(1), Duration::from_millis(100));
/// assert_eq!(backoff.delay(2), Duration::from_millis(200));
/// assert_eq!(backoff.delay(5), Duration::from_secs(1)); // 1.6 s, capped
/// assert_eq!(Backoff::fixed(Duration::from_secs(5)).delay(9), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: bool,
}

impl Backoff {
    /// The same sleep before every retry (the default, 5 s, is Python's).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// assert_eq!(Backoff::fixed(Duration::from_secs(2)).delay(3), Duration::from_secs(2));
    /// ```
    pub fn fixed(sleep: Duration) -> Self {
        Self {
            initial: sleep,
            factor: 1.0,
            max: Duration::MAX,
            jitter: false,
        }
    }

    /// `initial` before the first retry, doubling each time (see [`factor`](Backoff::factor)),
    /// without a cap unless [`max`](Backoff::max) sets one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(10));
    /// assert_eq!(backoff.delay(4), Duration::from_millis(80));
    /// ```
    pub fn exponential(initial: Duration) -> Self {
        Self {
            factor: 2.0,
            ..Self::fixed(initial)
        }
    }

    /// The growth factor of an exponential backoff (2 by default). A factor below 1 is taken as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(10)).factor(3.0);
    /// assert_eq!(backoff.delay(3), Duration::from_millis(90));
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() && factor >= 1.0 {
            factor
        } else {
            1.0
        };
        self
    }

    /// The longest sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(30));
    /// assert_eq!(backoff.delay(100), Duration::from_secs(30));
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sleeps a random time between zero and the computed delay ("full jitter"), so that many
    /// clients that failed together do not retry together.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter();
    /// assert!(backoff.sleep_for(1) <= Duration::from_millis(100));
    /// ```
    #[must_use = "a setter returns the changed value; use it"]
    pub fn jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The delay before retry number `retry` (from 1), before jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// assert_eq!(Backoff::exponential(Duration::from_secs(1)).delay(1), Duration::from_secs(1));
    /// assert_eq!(Backoff::exponential(Duration::from_secs(1)).delay(1_000), Duration::MAX); // no overflow
    /// ```
    #[inline]
    pub fn delay(&self, retry: usize) -> Duration {
        if self.factor == 1.0 {
            return self.initial.min(self.max);
        }
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let scaled = self.initial.as_secs_f64() * self.factor.powi(exponent);
        Duration::try_from_secs_f64(scaled)
            .unwrap_or(Duration::MAX)
            .min(self.max)
    }

    /// The sleep before retry number `retry`: [`delay`](Backoff::delay), with jitter if set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynchronously::Backoff;
    ///
    /// assert_eq!(Backoff::fixed(Duration::from_secs(1)).sleep_for(1), Duration::from_secs(1));
    /// ```
    #[inline]
    pub fn sleep_for(&self, retry: usize) -> Duration {
        let delay = self.delay(retry);
        if !self.jitter || delay.is_zero() {
            return delay;
        }
        delay.mul_f64(random_fraction())
    }
}

impl Backoff {
    /// The sleep before every retry, if it is the same for all (fixed, with no jitter).
    pub(crate) fn constant(&self) -> Option<Duration> {
        (self.factor == 1.0 && !self.jitter).then(|| self.initial.min(self.max))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::fixed(Duration::from_secs(5))
    }
}

/// A uniform fraction in [0, 1), from the per-thread generator.
fn random_fraction() -> f64 {
    (crate::rt::timer::thread_random() >> 11) as f64 / (1_u64 << 53) as f64
}
