//! Spans, with the feature `tracing`: one per lifecycle phase, retry attempt, `Periodic` run,
//! service shutdown and spawned task. Without it, every helper here is a no-op of no size, and
//! only the `log` records remain.

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "tracing")]
pub(crate) use self::on::*;

#[cfg(not(feature = "tracing"))]
pub(crate) use self::off::*;

#[cfg(feature = "tracing")]
mod on {
    use super::{Duration, Future};
    use crate::lifecycle::PhaseKind;

    pub(crate) type Span = tracing::Span;

    /// A phase of `component`: a child of `parent` (the phase of the component that owns it),
    /// or of the current span for a root.
    pub(crate) fn phase(parent: Option<&Span>, component: &str, kind: PhaseKind) -> Span {
        let empty = tracing::field::Empty;
        match parent {
            Some(parent) => tracing::info_span!(
                parent: parent, "phase", component, phase = %kind, outcome = empty, duration_us = empty
            ),
            None => tracing::info_span!(
                "phase", component, phase = %kind, outcome = empty, duration_us = empty
            ),
        }
    }

    pub(crate) fn phase_over(span: &Span, ok: bool, took: Duration) {
        span.record("outcome", if ok { "finished" } else { "failed" });
        span.record("duration_us", took.as_micros() as u64);
    }

    /// Whether a span is listened to: else no clock is read for it.
    pub(crate) fn enabled(span: &Span) -> bool {
        !span.is_disabled()
    }

    pub(crate) fn attempt(attempt: usize) -> Span {
        tracing::info_span!("retry attempt", attempt, delay_ms = tracing::field::Empty)
    }

    /// The delay before the next attempt, on the attempt that failed.
    pub(crate) fn delay(span: &Span, delay: Duration) {
        span.record("delay_ms", delay.as_millis() as u64);
    }

    /// A run of a `Periodic`; `run` counts it (read only if the span is listened to).
    pub(crate) fn periodic_run(name: &str, run: impl FnOnce() -> u64) -> Span {
        let empty = tracing::field::Empty;
        let span = tracing::info_span!("periodic run", name, run = empty, failed = empty);
        if !span.is_disabled() {
            span.record("run", run());
        }
        span
    }

    pub(crate) fn run_failed(span: &Span, failed: bool) {
        span.record("failed", failed);
    }

    pub(crate) fn shutdown(component: &str, cause: &dyn std::fmt::Display) -> Span {
        tracing::info_span!("shutdown", component, cause = %cause)
    }

    pub(crate) fn task() -> Span {
        tracing::info_span!("task", id = tracing::field::Empty)
    }

    pub(crate) fn task_id(span: &Span, id: u64) {
        span.record("id", id);
    }

    /// `future`, each of its polls in `span`.
    pub(crate) fn within<F: Future>(
        span: &Span,
        future: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        tracing::Instrument::instrument(future, span.clone())
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use super::{Duration, Future};

    #[derive(Clone, Copy, Debug, Default)]
    pub(crate) struct Span;

    #[inline(always)]
    pub(crate) fn attempt(_: usize) -> Span {
        Span
    }
    #[inline(always)]
    pub(crate) fn delay(_: &Span, _: Duration) {}
    #[inline(always)]
    pub(crate) fn periodic_run(_: &str, _: impl FnOnce() -> u64) -> Span {
        Span
    }
    #[inline(always)]
    pub(crate) fn run_failed(_: &Span, _: bool) {}
    #[inline(always)]
    pub(crate) fn shutdown(_: &str, _: &dyn std::fmt::Display) -> Span {
        Span
    }
    #[inline(always)]
    pub(crate) fn within<F: Future>(_: &Span, future: F) -> F {
        future
    }
}
