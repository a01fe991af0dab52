//! The feature `tracing`: the spans of the service example's lifecycle, captured by a subscriber
//! of our own, and their tree.
#![cfg(feature = "tracing")]

mod common;

#[path = "../examples/service/app.rs"]
#[allow(dead_code)]
mod app;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynchronously::lifecycle::Service;
use asynchronously::testing::TestRuntime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use app::{App, Config};

/// A span as the subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<&'static str, String>,
}

/// Records every span, its parent (explicit, or the span entered on this thread) and its
/// fields.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<HashMap<u64, Seen>>>,
    next: Arc<AtomicU64>,
    entered: Arc<Mutex<Vec<u64>>>,
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let parent = match span.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if span.is_contextual() => self.entered.lock().unwrap().last().copied(),
            None => None,
        };
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        let name = span.metadata().name();
        self.spans.lock().unwrap().insert(
            id,
            Seen {
                name,
                parent,
                fields,
            },
        );
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(seen) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        self.entered.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut entered = self.entered.lock().unwrap();
        if let Some(at) = entered.iter().rposition(|&id| id == span.into_u64()) {
            entered.remove(at);
        }
    }
}

#[test]
fn the_service_example_gives_a_tree_of_spans() {
    common::bounded(|| {
        let recorder = Recorder::default();
        tracing::subscriber::with_default(recorder.clone(), || {
            let test = TestRuntime::new();
            let rt = test.runtime();
            let app = App::new(Config::default(), &rt).unwrap();
            let report = test
                .block_on(
                    Service::new(&app)
                        .shutdown_on(rt.sleep(Duration::from_secs(2)))
                        .runtime(&rt)
                        .run(),
                )
                .unwrap();
            assert!(report.error.is_none(), "{report}");
        });
        let spans = recorder.spans.lock().unwrap().clone();
        let field = |seen: &Seen, name: &str| seen.fields.get(name).cloned().unwrap_or_default();
        let phase = |component: &str, kind: &str| {
            let found: Vec<(u64, Seen)> = spans
                .iter()
                .filter(|(_, seen)| {
                    seen.name == "phase"
                        && field(seen, "component") == component
                        && field(seen, "phase") == kind
                })
                .map(|(&id, seen)| (id, seen.clone()))
                .collect();
            assert_eq!(found.len(), 1, "one {kind} span of {component}: {spans:#?}");
            found.into_iter().next().unwrap()
        };
        let shutdown: Vec<_> = spans
            .iter()
            .filter(|(_, seen)| seen.name == "shutdown")
            .collect();
        assert_eq!(shutdown.len(), 1, "{spans:#?}");
        let (&shutdown_id, shutdown_span) = shutdown[0];
        assert_eq!(field(shutdown_span, "cause"), "shutdown trigger 0");

        for kind in ["init", "deinit"] {
            let (app_id, app_span) = phase("app", kind);
            assert_eq!(field(&app_span, "outcome"), "finished");
            assert!(
                !field(&app_span, "duration_us").is_empty(),
                "a duration is recorded"
            );
            let expected_parent = (kind == "deinit").then_some(shutdown_id);
            assert_eq!(app_span.parent, expected_parent, "app {kind}'s parent");
            for child in ["store", "server", "worker", "health"] {
                let (_, span) = phase(child, kind);
                assert_eq!(
                    span.parent,
                    Some(app_id),
                    "{child} {kind} is a child of app {kind}"
                );
                assert_eq!(field(&span, "outcome"), "finished", "{child} {kind}");
            }
        }
        // The store's retried connection: its attempts inside the store's init.
        let (store_init, _) = phase("store", "init");
        let attempts: Vec<_> = spans
            .values()
            .filter(|seen| seen.name == "retry attempt" && seen.parent == Some(store_init))
            .collect();
        assert_eq!(
            attempts.len(),
            1,
            "Config::default() refuses no connection: {spans:#?}"
        );
        assert_eq!(field(attempts[0], "attempt"), "1");
        // The health line's runs: a span each, at 1 s of the 2 the service ran.
        let runs: Vec<_> = spans
            .values()
            .filter(|seen| seen.name == "periodic run")
            .collect();
        assert!(!runs.is_empty(), "{spans:#?}");
        assert!(runs.iter().all(|run| field(run, "name") == "health"));
        assert!(
            runs.iter()
                .any(|run| field(run, "run") == "1" && field(run, "failed") == "false"),
            "{runs:#?}"
        );
    });
}

#[test]
fn a_spawned_task_runs_in_a_span_that_names_its_id() {
    common::bounded(|| {
        let recorder = Recorder::default();
        let id = tracing::subscriber::with_default(recorder.clone(), || {
            let test = TestRuntime::new();
            let task = test.runtime().spawn(async {});
            let id = task.id();
            test.block_on(task).unwrap();
            id
        });
        let spans = recorder.spans.lock().unwrap();
        let tasks: Vec<_> = spans.values().filter(|seen| seen.name == "task").collect();
        assert_eq!(tasks.len(), 1, "{spans:#?}");
        assert_eq!(tasks[0].fields.get("id"), Some(&id.to_string()));
    });
}

/// The attempt spans of one retry that fails once, then succeeds, after a sleep of 250 ms:
/// sorted by attempt.
fn attempt_spans(retry: impl FnOnce(&TestRuntime) -> Result<u32, &'static str>) -> Vec<Seen> {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let test = TestRuntime::new();
        assert_eq!(retry(&test), Ok(7));
    });
    let spans = recorder.spans.lock().unwrap();
    let mut attempts: Vec<Seen> = spans
        .values()
        .filter(|seen| seen.name == "retry attempt")
        .cloned()
        .collect();
    attempts.sort_by_key(|seen| seen.fields.get("attempt").cloned());
    attempts
}

/// A retry run to its end on a test runtime.
type RetryOnce<'a> = dyn Fn(&TestRuntime) -> Result<u32, &'static str> + 'a;

/// Fails the first call, succeeds the second.
fn once_refused(calls: &AtomicU64) -> Result<u32, &'static str> {
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 => Err("refused"),
        _ => Ok(7),
    }
}

/// Each attempt of each form of retry is a span that names its number, and a failed one the
/// delay before the next.
#[test]
fn each_attempt_is_a_span_with_its_number_and_delay() {
    common::bounded(|| {
        let policy = |test: &TestRuntime| {
            asynchronously::RetryPolicy::new()
                .sleep(Duration::from_millis(250))
                .runtime(&test.runtime())
        };
        let forms: [(&str, Box<RetryOnce<'_>>); 3] = [
            (
                "run",
                Box::new(|test| {
                    let calls = AtomicU64::new(0);
                    test.block_on(policy(test).run(|| async { once_refused(&calls) }))
                }),
            ),
            (
                "run_mut",
                Box::new(|test| {
                    let calls = AtomicU64::new(0);
                    test.block_on(policy(test).run_mut(async || once_refused(&calls)))
                }),
            ),
            (
                "run_with",
                Box::new(|test| {
                    let calls = AtomicU64::new(0);
                    test.block_on(
                        policy(test)
                            .run_with(&calls, |calls| async move { (calls, once_refused(calls)) }),
                    )
                }),
            ),
        ];
        for (form, retry) in forms {
            let attempts = attempt_spans(retry);
            assert_eq!(attempts.len(), 2, "{form}: {attempts:#?}");
            let field = |at: usize, name: &str| attempts[at].fields.get(name).cloned();
            assert_eq!(field(0, "attempt").as_deref(), Some("1"), "{form}");
            assert_eq!(field(1, "attempt").as_deref(), Some("2"), "{form}");
            assert_eq!(field(0, "delay_ms").as_deref(), Some("250"), "{form}");
            assert_eq!(
                field(1, "delay_ms"),
                None,
                "{form}: the last attempt waits for none"
            );
        }
    });
}
