//! Failures, cancellation, timeouts and `run_until`.

use super::*;

each_runtime! {
    /// A failing on_init cancels its siblings, marks its phase failed, and every phase waiting
    /// on it fails with DependencyFailed instead of hanging.
    async fn a_failure_cancels_siblings_and_fails_dependents(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).init_ms(10).init_fault(Fault::Error).arc();
        let api = Part::new("api", &rt, &j).arc();
        let slow = Part::new("slow", &rt, &j).init_ms(1_000).arc();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).child(&slow).arc();
        api.depends_on(&*db).unwrap();
        // Outside the tree, waiting on the api: it must fail too, not hang.
        let outsider = Part::new("outsider", &rt, &j).arc();
        outsider.depends_on(&*api).unwrap();
        let outsider_up = spawn_init(&rt, &outsider);

        let up = spawn_init(&rt, &root);
        sleepers(&clock, 2).await;
        clock.advance(Duration::from_millis(10));
        let error = up.await.unwrap().unwrap_err();
        assert!(matches!(&error, LifecycleError::Failed { component, phase: PhaseKind::Init, .. } if component == "db"), "{error:?}");
        assert_eq!(error.to_string(), "component `db` failed during init");
        assert_eq!(error.source().unwrap().to_string(), "db init failed");
        assert!(j.has("slow init cancelled"), "{:?}", j.entries());
        assert!(!j.has("api init begin"));
        assert_eq!(states(&[root.clone(), db.clone(), api.clone(), slow.clone()], PhaseKind::Init), "root:st-! db:st-! api:s--! slow:st-!");
        let outsider_error = outsider_up.await.unwrap().unwrap_err();
        assert!(matches!(&outsider_error, LifecycleError::DependencyFailed { component, dependency, phase: PhaseKind::Init } if component == "outsider" && dependency == "api"), "{outsider_error:?}");
        assert_eq!(outsider_error.to_string(), "component `outsider` could not init: its dependency `api` failed");
        assert_eq!(clock.sleepers(), 0, "the slow sibling's sleep was cancelled");
    }
}

each_runtime! {
    /// Regression (found by the property tests): a child whose sibling fails at once is dropped
    /// by the parent before it was ever polled. It was then never scheduled nor failed, so a
    /// component elsewhere that depends on it waited for ever. Now it is failed when dropped.
    async fn a_child_cancelled_before_it_started_fails_what_waits_on_it(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).init_fault(Fault::Error).arc();
        let api = Part::new("api", &rt, &j).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let outsider = Part::new("outsider", &rt, &j).arc();
        outsider.depends_on(&*api).unwrap();
        let outsider_up = spawn_init(&rt, &outsider);
        assert!(root.init().await.is_err());
        assert!(api.lifecycle().init_phase().is_failed());
        let error = outsider_up.await.unwrap().unwrap_err();
        assert!(matches!(&error, LifecycleError::DependencyFailed { dependency, .. } if dependency == "api"), "{error:?}");
        assert!(!j.has("api init begin"));
    }
}

each_runtime! {
    /// A panicking hook is reported as Failed with the panic message, not unwound.
    async fn a_panicking_hook_is_a_failure_not_an_unwind(rt, _clock) {
        let j = Journal::default();
        let part = Part::new("volatile", &rt, &j).init_fault(Fault::Panic).arc();
        let root = Part::new("root", &rt, &j).child(&part).arc();
        let error = root.init().await.unwrap_err();
        let LifecycleError::Failed { component, source, .. } = &error else { panic!("{error:?}") };
        assert_eq!(component, "volatile");
        assert_eq!(source.to_string(), "panicked: volatile init panicked");
        assert!(source.downcast_ref::<asynchronously::rt::PanicPayload>().is_some());
        assert!(part.lifecycle().init_phase().is_failed());
    }
}

each_runtime! {
    /// A panic in a future the phase waits for fails that phase too, with the panic as its
    /// source: it never unwinds into the caller.
    async fn a_panic_in_a_wait_before_future_is_a_failure_too(_rt, _clock) {
        #[derive(Default)]
        struct Odd {
            lifecycle: Lifecycle,
        }
        impl Component for Odd {
            fn lifecycle(&self) -> &Lifecycle {
                &self.lifecycle
            }
        }
        let waiting = Odd::default();
        waiting.lifecycle().init_phase().wait_before(async { panic!("the wait broke") }).unwrap();
        let error = waiting.init().await.unwrap_err();
        let LifecycleError::Failed { component, source, .. } = &error else { panic!("{error:?}") };
        assert_eq!(component, "Odd");
        assert_eq!(source.to_string(), "panicked: the wait broke");
        assert!(waiting.lifecycle().init_phase().is_failed());
    }
}

each_runtime! {
    /// A phase that takes longer than its timeout fails with TimedOut naming the component, and
    /// its hook is cancelled.
    async fn a_timeout_names_the_component(rt, clock) {
        let j = Journal::default();
        let lifecycle = Lifecycle::with_timeouts(Duration::from_millis(50), Duration::from_millis(5)).runtime(&rt);
        let part = Part::new("sluggish", &rt, &j).init_ms(100).deinit_ms(10).with_lifecycle(lifecycle).arc();
        let up = spawn_init(&rt, &part);
        sleepers(&clock, 2).await; // the hook's sleep and the timeout's
        clock.advance(Duration::from_millis(50));
        let error = up.await.unwrap().unwrap_err();
        assert!(matches!(&error, LifecycleError::TimedOut { component, phase: PhaseKind::Init, after } if component == "sluggish" && *after == Duration::from_millis(50)), "{error:?}");
        assert_eq!(error.to_string(), "component `sluggish` timed out during init after 50ms");
        assert!(j.has("sluggish init cancelled"));
        assert_eq!(clock.sleepers(), 0);
        assert!(part.lifecycle().init_phase().is_failed());
    }
}

each_runtime! {
    /// The deinit's own timeout: a deinit that takes longer fails with TimedOut, and its hook is
    /// cancelled.
    async fn a_deinit_timeout_names_the_component(rt, clock) {
        let j = Journal::default();
        let lifecycle = Lifecycle::with_timeouts(None, Duration::from_millis(5)).runtime(&rt);
        let part = Part::new("stuck", &rt, &j).deinit_ms(10).with_lifecycle(lifecycle).arc();
        part.init().await.unwrap();
        let down = spawn_deinit(&rt, &part);
        sleepers(&clock, 2).await; // the hook's sleep and the timeout's
        clock.advance(Duration::from_millis(5));
        let error = down.await.unwrap().unwrap_err();
        assert!(matches!(&error, LifecycleError::TimedOut { component, phase: PhaseKind::Deinit, after } if component == "stuck" && *after == Duration::from_millis(5)), "{error:?}");
        assert!(j.has("stuck deinit cancelled"));
        assert_eq!(clock.sleepers(), 0);
    }
}

each_runtime! {
    /// A component that its dependent's init was to wait for, dropped before that init, fails
    /// it: there is nothing left to wait for.
    async fn a_dependency_dropped_before_the_init_fails_it(rt, _clock) {
        let j = Journal::default();
        let dependent = Part::new("dependent", &rt, &j).arc();
        let gone = Part::new("gone", &rt, &j).arc();
        dependent.depends_on(&*gone).unwrap();
        drop(gone);
        let error = dependent.init().await.unwrap_err();
        assert!(matches!(&error, LifecycleError::DependencyFailed { component, dependency, phase: PhaseKind::Init } if component == "dependent" && dependency == "<dropped component>"), "{error:?}");
        assert!(!j.has("dependent init begin"));
    }
}

each_runtime! {
    /// run_until: when init fails, what finished init is deinitialised, in reverse; what did not
    /// is left alone; the init error is returned.
    async fn run_until_rolls_back_what_finished_init(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).arc();
        let cache = Part::new("cache", &rt, &j).arc();
        let api = Part::new("api", &rt, &j).init_fault(Fault::Error).arc();
        cache.depends_on(&*db).unwrap();
        api.depends_on(&*cache).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&cache).child(&api).arc();
        let error = run_until(&*root, std::future::pending()).await.unwrap_err();
        assert!(matches!(&error, LifecycleError::Failed { component, .. } if component == "api"));
        assert!(j.at("cache deinit end") < j.at("db deinit begin"), "{:?}", j.entries());
        assert!(!j.has("api deinit begin"), "api never came up");
        assert!(!j.has("root deinit begin"), "root never came up");
        assert!(db.lifecycle().deinit_phase().finished().is_set());
    }
}

each_runtime! {
    /// run_until: up, then down in reverse once shutdown completes.
    async fn run_until_runs_until_shutdown(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).arc();
        let api = Part::new("api", &rt, &j).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).arc();
        let shutdown = Event::new();
        let service = rt.spawn({
            let (root, shutdown) = (root.clone(), shutdown.clone());
            async move { run_until(&*root, shutdown.wait()).await }
        });
        until(|| root.lifecycle().init_phase().finished().is_set()).await;
        assert!(!j.has("root deinit begin"));
        shutdown.set();
        service.await.unwrap().unwrap();
        assert!(j.at("api deinit end") < j.at("db deinit begin"));
        assert!(j.at("root deinit end") < j.at("api deinit begin"), "parent first, then children");
    }
}

each_runtime! {
    /// run_until: a shutdown during init cancels init and rolls back what came up.
    async fn run_until_shutdown_during_init_rolls_back(rt, clock) {
        let j = Journal::default();
        let fast = Part::new("fast", &rt, &j).arc();
        let slow = Part::new("slow", &rt, &j).init_ms(1_000).arc();
        let root = Part::new("root", &rt, &j).child(&fast).child(&slow).arc();
        let shutdown = Event::new();
        let service = rt.spawn({
            let (root, shutdown) = (root.clone(), shutdown.clone());
            async move { run_until(&*root, shutdown.wait()).await }
        });
        sleepers(&clock, 1).await;
        shutdown.set();
        service.await.unwrap().unwrap();
        assert!(j.has("slow init cancelled"));
        assert!(j.has("fast deinit end"));
        assert!(!j.has("slow deinit begin"));
    }
}

each_runtime! {
    /// Deinit is best effort: a failing on_deinit does not stop the others, nor the components
    /// after it; the first error is returned.
    async fn deinit_is_best_effort(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).arc();
        let api = Part::new("api", &rt, &j).deinit_fault(Fault::Error).arc();
        let other = Part::new("other", &rt, &j).arc();
        api.depends_on(&*db).unwrap();
        let root = Part::new("root", &rt, &j).child(&db).child(&api).child(&other).arc();
        root.init().await.unwrap();
        let error = root.deinit().await.unwrap_err();
        assert!(matches!(&error, LifecycleError::Failed { component, phase: PhaseKind::Deinit, .. } if component == "api"));
        assert!(j.has("db deinit end") && j.has("other deinit end"), "{:?}", j.entries());
        assert!(j.at("api deinit failed") < j.at("db deinit begin"));
        assert!(api.lifecycle().deinit_phase().is_failed());
    }
}

each_runtime! {
    /// Dropping an init future part-way marks the phases in progress failed, so that what waits
    /// on them fails instead of hanging.
    async fn a_cancelled_init_fails_its_dependents(rt, clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).init_ms(100).arc();
        let api = Part::new("api", &rt, &j).arc();
        api.depends_on(&*db).unwrap();
        let db_up = spawn_init(&rt, &db);
        let api_up = spawn_init(&rt, &api);
        sleepers(&clock, 1).await;
        db_up.abort();
        assert!(db_up.await.unwrap_err().is_cancelled());
        assert!(db.lifecycle().init_phase().is_failed());
        assert!(matches!(api_up.await.unwrap(), Err(LifecycleError::DependencyFailed { .. })));
        assert!(j.has("db init cancelled"));
    }
}

each_runtime! {
    /// Many components at once on the default strict gather: independent trees, one runtime.
    async fn independent_trees_come_up_together(rt, clock) {
        let j = Journal::default();
        let roots: Vec<_> = (0..20)
            .map(|i| {
                let leaf = Part::new(&format!("leaf{i}"), &rt, &j).init_ms(5).arc();
                Part::new(&format!("root{i}"), &rt, &j).child(&leaf).arc()
            })
            .collect();
        let up = rt.spawn({
            let roots = roots.clone();
            async move {
                strict_gather(roots.iter().map(|root| root.init())).await
            }
        });
        sleepers(&clock, 20).await;
        clock.advance(Duration::from_millis(5));
        assert_eq!(up.await.unwrap().unwrap().len(), 20);
    }
}

#[test]
fn debug_and_names() {
    let lifecycle = Lifecycle::new();
    let debug = format!("{lifecycle:?}");
    assert!(
        debug.starts_with("Lifecycle { init: Phase {") && debug.contains("deinit_timeout: None"),
        "{debug}"
    );
    assert_eq!(
        format!("{:?}", lifecycle.init_phase()),
        "Phase { scheduled: false, started: false, finished: false, failed: false }"
    );
    let clock = ManualClock::new();
    let rt = Runtime::with_timer(drop::<asynchronously::rt::BoxFuture<()>>, clock);
    let part = Part::new("x", &rt, &Journal::default()).arc();
    assert_eq!(format!("{:?}", part.children()), "[]");
    assert_eq!(
        LifecycleError::Cycle {
            path: vec!["a".into(), "b".into(), "a".into()]
        }
        .to_string(),
        "dependency cycle: a -> b -> a"
    );
}

each_runtime! {
    /// A child shared by two trees fails its init: the tree that found it scheduled by the
    /// other fails too, with the child named, and the parent's hook never runs.
    async fn a_failed_child_shared_by_two_trees_fails_both(rt, clock) {
        let j = Journal::default();
        let shared = Part::new("shared", &rt, &j).init_ms(10).init_fault(Fault::Error).arc();
        let first = Part::new("first", &rt, &j).child(&shared).arc();
        let second = Part::new("second", &rt, &j).child(&shared).arc();
        let one = spawn_init(&rt, &first);
        sleepers(&clock, 1).await; // the shared child's hook, scheduled by the first tree
        let other = spawn_init(&rt, &second);
        for _ in 0..10 {
            common::yield_now().await;
        }
        clock.advance(Duration::from_millis(10));
        assert!(one.await.unwrap().is_err());
        let error = other.await.unwrap().unwrap_err();
        assert!(
            matches!(&error, LifecycleError::DependencyFailed { component, dependency, .. }
                if component == "second" && dependency == "shared"),
            "{error:?}"
        );
        assert!(!j.has("first init begin") && !j.has("second init begin"), "{:?}", j.entries());
    }
}
