//! `Service`: `on_run` parts, shutdown triggers, the deadline, the report, and bad input.

use asynchronously::lifecycle::{Service, ShutdownCause, ShutdownReport};

use super::*;

const HOUR: u64 = 3_600_000;

/// Runs the service that `make` sets up, on `rt`'s clock, in a task of its own, for the test
/// to drive the clock meanwhile.
fn spawn_service(
    rt: &Runtime,
    root: &Arc<Part>,
    make: impl FnOnce(Service<'_, Part>) -> Service<'_, Part> + Send + 'static,
) -> asynchronously::rt::JoinHandle<ShutdownReport> {
    let (root, clock) = (root.clone(), rt.clone());
    rt.spawn(async move {
        make(Service::new(&*root).runtime(&clock))
            .run_to_report()
            .await
    })
}

fn took(report: &ShutdownReport, component: &str) -> Option<Duration> {
    let phase = report
        .phases
        .iter()
        .find(|phase| phase.component == component);
    phase
        .unwrap_or_else(|| panic!("no `{component}` in {report:?}"))
        .took
}

each_runtime! {
    /// A part starts once its component is up and is dropped as its deinit starts: after what
    /// depends on it is down, so the api stops serving before the db closes.
    async fn on_run_starts_after_init_and_is_dropped_as_deinit_starts_in_dependency_order(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).init_ms(10).deinit_ms(10).run(u64::MAX, None).arc();
        let api = Part::new("api", &rt, &j).init_ms(10).deinit_ms(20).run(u64::MAX, None).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let stop = Event::new();
        let service = spawn_service(&rt, &root, {
            let stop = stop.clone();
            move |service| service.shutdown_on(stop.wait())
        });
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(10)); // db up
        sleepers(&clock, 1).await; // the api's init
        until(|| j.has("db run begin")).await;
        assert!(!j.has("api run begin"), "{:?}", j.entries());
        clock.advance(Duration::from_millis(10)); // api up
        until(|| j.has("api run begin")).await;
        assert!(j.at("db init end") < j.at("db run begin"));
        assert!(j.at("api init end") < j.at("api run begin"));
        assert_eq!((db.run_drops.count(), api.run_drops.count()), (0, 0));

        stop.set();
        until(|| j.has("api deinit begin")).await;
        assert_eq!((db.run_drops.count(), api.run_drops.count()), (0, 1), "only the api's part is dropped");
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(20)); // api down
        until(|| j.has("db deinit begin")).await;
        assert_eq!(db.run_drops.count(), 1);
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(10)); // db down
        let report = service.await.unwrap();
        assert!(report.error.is_none(), "{report}");
        assert_eq!(report.cause, ShutdownCause::Trigger(0));
        assert_eq!(report.exit_code(), 0);

        // Each part dropped before its component's deinit began, the api's before the db's.
        let order = ["root deinit begin", "api run dropped", "api deinit begin", "api deinit end", "db run dropped", "db deinit begin", "db deinit end"];
        let at: Vec<usize> = order.iter().map(|entry| j.at(entry)).collect();
        assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", j.entries());
        let names: Vec<&str> = report.phases.iter().map(|phase| &*phase.component).collect();
        assert_eq!(names, ["root", "api", "db"], "in the order their deinits started");
        assert_eq!(took(&report, "api"), Some(Duration::from_millis(20)));
        assert_eq!(took(&report, "db"), Some(Duration::from_millis(10)));
        assert_eq!(took(&report, "root"), Some(Duration::from_millis(30)));
        assert!(report.phases.iter().all(|phase| !phase.failed));
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// A part's `Err` starts the shutdown, with its component as the cause, and comes back once
    /// everything is down.
    async fn an_on_run_error_shuts_down_and_is_returned(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).run(u64::MAX, None).arc();
        let api = Part::new("api", &rt, &j).run(5, Some(Fault::Error)).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let service = spawn_service(&rt, &root, |service| service);
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(5));
        let report = service.await.unwrap();
        assert_eq!(report.cause, ShutdownCause::Failed("api".into()));
        assert_eq!(report.exit_code(), 1);
        assert!(report.to_string().starts_with("component `api` failed: component `api` failed during run: api run failed, exit code 1"), "{report}");
        let error = report.into_result().unwrap_err();
        assert!(matches!(&error, LifecycleError::Failed { component, phase: PhaseKind::Run, .. } if component == "api"), "{error:?}");
        assert_eq!(error.source().unwrap().to_string(), "api run failed");
        assert!(j.has("db deinit end") && j.has("api deinit end") && j.has("root deinit end"), "{:?}", j.entries());
        assert_eq!(db.run_drops.count(), 1);
        assert!(j.has("db run dropped"));
    }
}

each_runtime! {
    async fn an_on_run_panic_shuts_down_and_is_returned(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).run(u64::MAX, None).arc();
        let api = Part::new("api", &rt, &j).run(5, Some(Fault::Panic)).arc();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let service = {
            let root = root.clone();
            rt.spawn(async move { Service::new(&*root).run().await.map(drop) })
        };
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(5));
        let error = service.await.unwrap().unwrap_err();
        let LifecycleError::Failed { component, phase: PhaseKind::Run, source } = &error else { panic!("{error:?}") };
        assert_eq!(component, "api");
        assert_eq!(source.to_string(), "panicked: api run panicked");
        assert!(j.has("db deinit end") && j.has("api deinit end"), "{:?}", j.entries());
    }
}

each_runtime! {
    /// A part that returns `Ok` ends itself only: the service runs on until its trigger.
    async fn an_on_run_that_returns_ok_early_ends_only_itself(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).run(u64::MAX, None).arc();
        let job = Part::new("job", &rt, &j).run(5, None).arc();
        let root = Part::new("root", &rt, &j).child(&db).child(&job).arc();
        let stop = Event::new();
        let service = spawn_service(&rt, &root, {
            let stop = stop.clone();
            move |service| service.shutdown_on(stop.wait())
        });
        sleepers(&clock, 1).await;
        clock.advance(Duration::from_millis(5));
        until(|| job.run_drops.count() == 1).await;
        assert!(j.has("job run end"));
        clock.advance(Duration::from_millis(HOUR));
        common::yield_now().await;
        assert!(!j.has("root deinit begin"), "{:?}", j.entries());
        assert!(!service.is_finished());
        stop.set();
        let report = service.await.unwrap();
        assert!(report.error.is_none(), "{report}");
        assert!(j.has("job deinit end") && j.has("db run dropped"));
        assert!(!j.has("job run dropped"));
    }
}

each_runtime! {
    /// Past the deadline, the error names the components whose hook was still running, and
    /// only those: not the db, which waits for the api, nor the cache, which was done.
    async fn the_deadline_names_exactly_the_stuck_components(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).arc();
        let api = Part::new("api", &rt, &j).deinit_ms(HOUR).arc();
        let cache = Part::new("cache", &rt, &j).deinit_ms(5).arc();
        let queue = Part::new("queue", &rt, &j).deinit_ms(HOUR).arc();
        api.depends_on(&*db).unwrap();
        // The root's own hook is over before its children go down: it is not stuck.
        let root = Part::new("root", &rt, &j).deinit_ms(10).child(&db).child(&api).child(&cache).child(&queue).arc();
        let service = spawn_service(&rt, &root, move |service| {
            service.shutdown_on(async {}).shutdown_timeout(Duration::from_millis(100))
        });
        sleepers(&clock, 2).await; // the root's hook and the deadline
        clock.advance(Duration::from_millis(10));
        sleepers(&clock, 4).await; // api, cache, queue and the deadline
        clock.advance(Duration::from_millis(5));
        // Finished is set once the run has timed the phase.
        until(|| cache.lifecycle().deinit_phase().finished().is_set()).await;
        clock.advance(Duration::from_millis(84));
        common::yield_now().await;
        assert!(!service.is_finished(), "not before the deadline");
        clock.advance(Duration::from_millis(1));
        let report = service.await.unwrap();
        assert_eq!(report.exit_code(), 1);
        assert_eq!(took(&report, "cache"), Some(Duration::from_millis(5)));
        assert_eq!(took(&report, "api"), None);
        assert!(report.to_string().contains("\n  api: deinit abandoned"), "{report}");
        let error = report.into_result().unwrap_err();
        assert!(matches!(&error, LifecycleError::ShutdownTimedOut { stuck } if stuck == &["api", "queue"]), "{error:?}");
        assert_eq!(error.to_string(), "shutdown timed out; still in deinit: api, queue");
        // Nothing is left half-awaited: the stuck hooks were dropped, their sleeps with them.
        assert!(j.has("api deinit cancelled") && j.has("queue deinit cancelled"), "{:?}", j.entries());
        assert!(!j.has("db deinit begin"));
        assert_eq!(clock.sleepers(), 0);
        assert!(api.lifecycle().deinit_phase().is_failed());
        until(|| rt.live_tasks() == 0).await;
    }
}

each_runtime! {
    /// A trigger during init cancels it; what came up (its part included) goes down.
    async fn a_trigger_during_init_rolls_back_what_came_up(rt, clock) {
        let j = Journal::default();
        let fast = Part::new("fast", &rt, &j).run(u64::MAX, None).arc();
        let slow = Part::new("slow", &rt, &j).init_ms(1_000).run(u64::MAX, None).arc();
        let root = Part::new("root", &rt, &j).child(&fast).child(&slow).arc();
        let stop = Event::new();
        let service = spawn_service(&rt, &root, {
            let stop = stop.clone();
            move |service| service.shutdown_on(stop.wait())
        });
        sleepers(&clock, 1).await;
        until(|| j.has("fast run begin")).await;
        stop.set();
        let report = service.await.unwrap();
        assert!(report.error.is_none(), "{report}");
        assert_eq!(report.cause, ShutdownCause::Trigger(0));
        assert!(j.has("slow init cancelled") && !j.has("slow run begin"), "{:?}", j.entries());
        assert!(j.at("fast run dropped") < j.at("fast deinit begin"));
        assert!(j.has("fast deinit end") && !j.has("slow deinit begin") && !j.has("root deinit begin"));
        assert_eq!(fast.run_drops.count(), 1);
    }
}

each_runtime! {
    /// An init error rolls back and is returned; the report names the component.
    async fn an_init_error_rolls_back_and_is_the_cause(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).run(u64::MAX, None).arc();
        let api = Part::new("api", &rt, &j).init_ms(5).init_fault(Fault::Error).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let service = spawn_service(&rt, &root, |service| service.shutdown_on(std::future::pending()));
        sleepers(&clock, 1).await;
        until(|| j.has("db run begin")).await;
        clock.advance(Duration::from_millis(5));
        let report = service.await.unwrap();
        assert_eq!(report.cause, ShutdownCause::Failed("api".into()));
        assert!(matches!(&report.error, Some(LifecycleError::Failed { component, phase: PhaseKind::Init, .. }) if component == "api"));
        assert!(j.at("db run dropped") < j.at("db deinit end"), "{:?}", j.entries());
    }
}

each_runtime! {
    /// With several triggers, the first to complete; the report names it by its place.
    async fn the_first_trigger_to_complete_is_the_cause(rt, clock) {
        let j = Journal::default();
        let root = Part::new("root", &rt, &j).arc();
        let (late, early) = (rt.sleep(Duration::from_millis(20)), rt.sleep(Duration::from_millis(10)));
        let service = spawn_service(&rt, &root, move |service| service.shutdown_on(late).shutdown_on(early));
        sleepers(&clock, 2).await;
        clock.advance(Duration::from_millis(10));
        let report = service.await.unwrap();
        assert_eq!(report.cause, ShutdownCause::Trigger(1));
        assert_eq!(clock.sleepers(), 0, "the other trigger was dropped");
    }
}

each_runtime! {
    /// `Duration::ZERO` abandons at once every hook that does not finish at its first poll.
    async fn a_zero_shutdown_timeout_abandons_the_deinit_at_once(rt, _clock) {
        let j = Journal::default();
        let quick = Part::new("quick", &rt, &j).arc();
        let slow = Part::new("slow", &rt, &j).deinit_ms(10).arc();
        let root = Part::new("root", &rt, &j).child(&quick).child(&slow).arc();
        let service = Service::new(&*root).shutdown_on(async {}).shutdown_timeout(Duration::ZERO).runtime(&rt);
        let error = service.run().await.unwrap_err();
        assert!(matches!(&error, LifecycleError::ShutdownTimedOut { stuck } if stuck == &["slow"]), "{error:?}");
        assert!(j.has("quick deinit end") && j.has("slow deinit cancelled"), "{:?}", j.entries());
    }
}

each_runtime! {
    /// A root initialised by hand is run as it is: its parts start, and it goes down.
    async fn run_on_a_root_initialised_by_hand(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).run(u64::MAX, None).arc();
        let root = Part::new("root", &rt, &j).child(&db).child(&db).arc();
        root.init().await.unwrap();
        let report = Service::new(&*root).shutdown_on(async {}).run().await.unwrap();
        assert_eq!(j.count("db init begin"), 1);
        assert_eq!(j.count("db run begin"), 1, "a shared child's part runs once: {:?}", j.entries());
        assert!(j.at("db run dropped") < j.at("db deinit begin"));
        assert_eq!(report.phases.len(), 2);

        // A root whose init failed, or whose deinit was called, is refused before anything.
        let broken = Part::new("broken", &rt, &j).init_fault(Fault::Error).arc();
        assert!(broken.init().await.is_err());
        let error = Service::new(&*broken).shutdown_on(async {}).run().await.unwrap_err();
        assert!(matches!(&error, LifecycleError::AlreadyCalled { component, phase: PhaseKind::Init } if component == "broken"), "{error:?}");
        assert_eq!(error.to_string(), "cannot run component `broken` as a service: its init was already called");
        let error = Service::new(&*root).shutdown_on(async {}).run_to_report().await;
        assert_eq!(error.cause, ShutdownCause::NotStarted);
        assert!(matches!(&error.error, Some(LifecycleError::AlreadyCalled { phase: PhaseKind::Deinit, .. })));
        assert_eq!(j.count("root deinit begin"), 1);
    }
}

each_runtime! {
    /// A component with the default `on_run` has no part: nothing runs for it, whether the
    /// service brings it up or it was up already (initialised by hand).
    async fn the_default_on_run_runs_nothing(_rt, _clock) {
        struct Quiet {
            lifecycle: Lifecycle,
            name: &'static str,
        }
        impl Component for Quiet {
            fn lifecycle(&self) -> &Lifecycle {
                &self.lifecycle
            }
            fn name(&self) -> Cow<'_, str> {
                self.name.into()
            }
        }
        common::logs::capture();
        let quiet = Quiet { lifecycle: Lifecycle::new(), name: "quiet_default_on_run" };
        let report = Service::new(&quiet).shutdown_on(async {}).run().await.unwrap();
        assert!(report.phases.is_empty(), "no hook and no children: nothing to time");
        assert!(common::logs::containing("quiet_default_on_run: run").is_empty());
        assert!(!common::logs::containing("quiet_default_on_run: down").is_empty());

        // An `on_run` of its own is a part, even one whose future is zero-sized as the
        // default's is.
        struct Forever {
            lifecycle: Lifecycle,
        }
        impl Component for Forever {
            fn lifecycle(&self) -> &Lifecycle {
                &self.lifecycle
            }
            fn name(&self) -> Cow<'_, str> {
                "zero_sized_on_run".into()
            }
            fn on_run(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
                std::future::pending()
            }
        }
        let forever = Forever { lifecycle: Lifecycle::new() };
        Service::new(&forever).shutdown_on(async {}).run().await.unwrap();
        assert!(!common::logs::containing("zero_sized_on_run: run started").is_empty());

        let up = Quiet { lifecycle: Lifecycle::new(), name: "quiet_up_by_hand" };
        up.init().await.unwrap();
        Service::new(&up).shutdown_on(async {}).run().await.unwrap();
        assert!(!common::logs::containing("quiet_up_by_hand: init was called").is_empty());
        assert!(common::logs::containing("quiet_up_by_hand: run").is_empty());
    }
}

#[cfg(feature = "signal")]
each_runtime! {
    /// One service of a process at a time catches the signals; a second gets a clear error
    /// before anything starts, and the signals are free again once the first is down.
    async fn two_services_cannot_catch_signals_at_once(rt, _clock) {
        let j = Journal::default();
        let (first, second) = (Part::new("first", &rt, &j).arc(), Part::new("second", &rt, &j).arc());
        let stop = Event::new();
        let running = spawn_service(&rt, &first, {
            let stop = stop.clone();
            move |service| service.catch_signals().shutdown_on(stop.wait())
        });
        until(|| first.lifecycle().init_phase().finished().is_set()).await;
        let error = Service::new(&*second).catch_signals().shutdown_on(async {}).run().await.unwrap_err();
        let LifecycleError::CatchSignals { source } = &error else { panic!("{error:?}") };
        assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(source.to_string(), "another running service of this process catches them");
        assert!(!second.lifecycle().init_phase().scheduled().is_set(), "nothing started");

        stop.set();
        assert!(running.await.unwrap().error.is_none());
        let report = Service::new(&*second).catch_signals().shutdown_on(async {}).run().await.unwrap();
        assert_eq!(report.cause, ShutdownCause::Trigger(0));
    }
}

/// A service names its triggers, whether it catches signals, and its deadline in its `Debug`.
#[cfg(feature = "signal")]
#[test]
fn a_service_debugs_with_its_settings() {
    let root = Part::new(
        "root",
        &Runtime::new(asynchronously::rt::ThreadPerTask),
        &Journal::default(),
    );
    let plain = format!("{:?}", Service::new(&root));
    assert!(
        plain.contains("triggers: 0") && plain.contains("catch_signals: false"),
        "{plain}"
    );
    let service = Service::new(&root)
        .shutdown_on(std::future::pending())
        .catch_signals()
        .shutdown_timeout(Duration::from_secs(3));
    let debug = format!("{service:?}");
    assert!(
        debug.starts_with("Service")
            && debug.contains("triggers: 1")
            && debug.contains("catch_signals: true")
            && debug.contains("shutdown_timeout: Some(3s)"),
        "{debug}"
    );
}

each_runtime! {
    /// The report lists the phases in the order they started, a phase with a timeout of its
    /// own included: a run of its own times it, and hands its time over first, as it ends.
    async fn the_report_is_in_start_order_with_a_timeout_of_its_own(rt, clock) {
        let j = Journal::default();
        let own = Lifecycle::with_timeouts(None, Duration::from_millis(HOUR)).runtime(&rt);
        let db = Part::new("db", &rt, &j).deinit_ms(10).with_lifecycle(own).arc();
        let root = Part::new("root", &rt, &j).deinit_ms(10).child(&db).arc();
        let service = spawn_service(&rt, &root, move |service| {
            service.shutdown_on(async {}).shutdown_timeout(Duration::from_millis(HOUR))
        });
        sleepers(&clock, 2).await; // the root's hook and the deadline
        clock.advance(Duration::from_millis(10));
        sleepers(&clock, 3).await; // the db's hook, its own timeout, and the deadline
        clock.advance(Duration::from_millis(10));
        let report = service.await.unwrap();
        assert!(report.error.is_none(), "{report}");
        let names: Vec<&str> = report.phases.iter().map(|phase| &*phase.component).collect();
        assert_eq!(names, ["root", "db"], "in the order their deinits started");
        assert_eq!(took(&report, "db"), Some(Duration::from_millis(10)));
        assert_eq!(took(&report, "root"), Some(Duration::from_millis(20)));
    }
}

/// A component with children and no hook of its own.
struct Bare {
    lifecycle: Lifecycle,
    name: &'static str,
    parts: Vec<Arc<Part>>,
    bares: Vec<Arc<Bare>>,
}

impl Component for Bare {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        self.name.into()
    }
    fn children(&self) -> Children<'_> {
        asynchronously::children![self.bares, self.parts]
    }
}

each_runtime! {
    /// Each phase in the report is timed from its own start, when two phases move at once: as
    /// the cache goes down, its holder (which has no hook) is over, and the store, which waited
    /// for the cache, starts.
    async fn each_phase_is_timed_from_its_own_start(rt, clock) {
        let j = Journal::default();
        let cache = Part::new("cache", &rt, &j).deinit_ms(10).arc();
        let store = Part::new("store", &rt, &j).deinit_ms(10).arc();
        cache.depends_on(&*store).unwrap(); // the store goes down after the cache
        let holder = Arc::new(Bare {
            lifecycle: Lifecycle::new(),
            name: "holder",
            parts: vec![cache.clone()],
            bares: Vec::new(),
        });
        let root = Bare {
            lifecycle: Lifecycle::new(),
            name: "root",
            parts: vec![store.clone()],
            bares: vec![holder],
        };
        let root = Arc::new(root);
        let service = {
            let (root, timer) = (root.clone(), rt.clone());
            rt.spawn(async move {
                Service::new(&*root)
                    .runtime(&timer)
                    .shutdown_on(async {})
                    .shutdown_timeout(Duration::from_millis(HOUR))
                    .run_to_report()
                    .await
            })
        };
        sleepers(&clock, 2).await; // the cache's hook, and the deadline
        clock.advance(Duration::from_millis(10));
        until(|| j.has("store deinit begin")).await;
        sleepers(&clock, 2).await; // the store's hook, and the deadline
        clock.advance(Duration::from_millis(10));
        let report = service.await.unwrap();
        assert!(report.error.is_none(), "{report}");
        assert_eq!(took(&report, "cache"), Some(Duration::from_millis(10)), "{report:?}");
        assert_eq!(took(&report, "holder"), Some(Duration::from_millis(10)), "{report:?}");
        assert_eq!(took(&report, "store"), Some(Duration::from_millis(10)), "{report:?}");
        assert_eq!(took(&report, "root"), Some(Duration::from_millis(20)), "{report:?}");
    }
}
