//! `lifecycle`: every promise of Python's AsyncInitable / AsyncDeinitable, and the Beyond points.

#[path = "../common/mod.rs"]
mod common;
mod depth;
mod failures;
mod service;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynchronously::children;
use asynchronously::lifecycle::{
    BoxError, Children, Component, ComponentExt, Lifecycle, LifecycleError, PhaseKind, run_until,
};
use asynchronously::rt::{ManualClock, Runtime};
use asynchronously::{Event, strict_gather};
use common::{sleepers, until};

/// What the test components did, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn has(&self, entry: &str) -> bool {
        self.entries().iter().any(|e| e == entry)
    }
    fn count(&self, entry: &str) -> usize {
        self.entries().iter().filter(|e| *e == entry).count()
    }
    /// Where `entry` stands; panics if it is missing.
    fn at(&self, entry: &str) -> usize {
        let entries = self.entries();
        entries
            .iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("`{entry}` is not in {entries:?}"))
    }
}

#[derive(Clone, Copy)]
enum Fault {
    Error,
    Panic,
}

/// A test component: its hooks sleep on the runtime's clock and write to the journal.
struct Part {
    lifecycle: Lifecycle,
    name: String,
    rt: Runtime,
    journal: Journal,
    init_ms: u64,
    deinit_ms: u64,
    init_fault: Option<Fault>,
    deinit_fault: Option<Fault>,
    children: Vec<Arc<Part>>,
    /// Its `on_run`: ends after this many ms (`u64::MAX`: never) with the fault, if any; `None`:
    /// the default (none).
    run: Option<(u64, Option<Fault>)>,
    /// Counts drops of its `on_run` future.
    run_drops: common::DropCounter,
}

impl Part {
    fn new(name: &str, rt: &Runtime, journal: &Journal) -> Self {
        Self {
            lifecycle: Lifecycle::new(),
            name: name.to_owned(),
            rt: rt.clone(),
            journal: journal.clone(),
            init_ms: 0,
            deinit_ms: 0,
            init_fault: None,
            deinit_fault: None,
            children: Vec::new(),
            run: None,
            run_drops: common::DropCounter::new(),
        }
    }
    fn init_ms(self, init_ms: u64) -> Self {
        Self { init_ms, ..self }
    }
    fn deinit_ms(self, deinit_ms: u64) -> Self {
        Self { deinit_ms, ..self }
    }
    fn init_fault(self, fault: Fault) -> Self {
        Self {
            init_fault: Some(fault),
            ..self
        }
    }
    fn deinit_fault(self, fault: Fault) -> Self {
        Self {
            deinit_fault: Some(fault),
            ..self
        }
    }
    fn run(self, ms: u64, fault: Option<Fault>) -> Self {
        Self {
            run: Some((ms, fault)),
            ..self
        }
    }
    fn with_lifecycle(self, lifecycle: Lifecycle) -> Self {
        Self { lifecycle, ..self }
    }
    fn child(mut self, child: &Arc<Part>) -> Self {
        self.children.push(child.clone());
        self
    }
    fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }

    async fn hook(&self, what: &str, ms: u64, fault: Option<Fault>) -> Result<(), BoxError> {
        struct Cancelled<'a>(&'a Journal, String, bool);
        impl Drop for Cancelled<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.push(format!("{} cancelled", self.1));
                }
            }
        }
        let label = format!("{} {what}", self.name);
        self.journal.push(format!("{label} begin"));
        let mut cancelled = Cancelled(&self.journal, label.clone(), false);
        if ms > 0 {
            self.rt.sleep(Duration::from_millis(ms)).await;
        }
        cancelled.2 = true;
        match fault {
            Some(Fault::Error) => {
                self.journal.push(format!("{label} failed"));
                Err(format!("{label} failed").into())
            }
            Some(Fault::Panic) => panic!("{label} panicked"),
            None => {
                self.journal.push(format!("{label} end"));
                Ok(())
            }
        }
    }

    /// `s`, `t`, `f` for scheduled, started, finished (`-` where not), `!` if failed.
    fn state(&self, kind: PhaseKind) -> String {
        let phase = match kind {
            PhaseKind::Init => self.lifecycle.init_phase(),
            _ => self.lifecycle.deinit_phase(),
        };
        let flag = |set: bool, c: char| if set { c } else { '-' };
        let mut state: String = [
            flag(phase.scheduled().is_set(), 's'),
            flag(phase.started().is_set(), 't'),
            flag(phase.finished().is_set(), 'f'),
        ]
        .into_iter()
        .collect();
        if phase.is_failed() {
            state.push('!');
        }
        state
    }
}

impl Component for Part {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.hook("init", self.init_ms, self.init_fault).await
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.hook("deinit", self.deinit_ms, self.deinit_fault).await
    }
    fn children(&self) -> Children<'_> {
        children![self.children]
    }
    async fn on_run(&self) -> Result<(), BoxError> {
        struct Dropped<'a>(&'a Journal, String, bool);
        impl Drop for Dropped<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.push(format!("{} run dropped", self.1));
                }
            }
        }
        let Some((ms, fault)) = self.run else {
            return std::future::pending().await;
        };
        let _token = self.run_drops.token();
        self.journal.push(format!("{} run begin", self.name));
        let mut dropped = Dropped(&self.journal, self.name.clone(), false);
        match ms {
            u64::MAX => std::future::pending::<()>().await,
            0 => {}
            ms => self.rt.sleep(Duration::from_millis(ms)).await,
        }
        dropped.2 = true;
        match fault {
            Some(Fault::Error) => Err(format!("{} run failed", self.name).into()),
            Some(Fault::Panic) => panic!("{} run panicked", self.name),
            None => {
                self.journal.push(format!("{} run end", self.name));
                Ok(())
            }
        }
    }
}

fn states(parts: &[Arc<Part>], kind: PhaseKind) -> String {
    parts
        .iter()
        .map(|p| format!("{}:{}", p.name, p.state(kind)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn spawn_init(
    rt: &Runtime,
    part: &Arc<Part>,
) -> asynchronously::rt::JoinHandle<Result<(), LifecycleError>> {
    let part = part.clone();
    rt.spawn(async move { part.init().await })
}

fn spawn_deinit(
    rt: &Runtime,
    part: &Arc<Part>,
) -> asynchronously::rt::JoinHandle<Result<(), LifecycleError>> {
    let part = part.clone();
    rt.spawn(async move { part.deinit().await })
}

each_runtime! {
    /// The seed's staged scenario: an HTTP server waits for a heavy worker (hooks sleep 20 and
    /// 40 ms), a controller has no hooks to wait on; every event of every component is checked
    /// at each stage of time, for init and for deinit.
    async fn the_quick_start_comes_up_in_order_and_goes_down_in_reverse(rt, clock) {
        let journal = Journal::default();
        let controller = Part::new("controller", &rt, &journal).arc();
        let http = Part::new("http", &rt, &journal).init_ms(20).deinit_ms(20).arc();
        let worker = Part::new("worker", &rt, &journal).init_ms(40).deinit_ms(40).arc();
        let context = Part::new("context", &rt, &journal)
            .child(&controller)
            .child(&http)
            .child(&worker)
            .arc();
        http.depends_on(&*worker).unwrap();
        let all = [context.clone(), controller.clone(), http.clone(), worker.clone()];
        let init = PhaseKind::Init;
        assert_eq!(states(&all, init), "context:--- controller:--- http:--- worker:---");

        // Each stage: wait for the exact states of every event (children are polled one after
        // another, so a partial condition could be seen early), then check that they hold
        // (nothing may move until the clock does).
        let stage = |kind: PhaseKind, sleeping: usize, expected: &'static str| {
            let all = all.clone();
            let clock = clock.clone();
            async move {
                until(|| clock.sleepers() == sleeping && states(&all, kind) == expected).await;
                for _ in 0..20 {
                    common::yield_now().await;
                }
                assert_eq!(states(&all, kind), expected);
                assert_eq!(clock.sleepers(), sleeping);
            }
        };

        let up = spawn_init(&rt, &context);
        stage(init, 1, "context:st- controller:stf http:s-- worker:st-").await;
        clock.advance(Duration::from_millis(39));
        stage(init, 1, "context:st- controller:stf http:s-- worker:st-").await;
        clock.advance(Duration::from_millis(1)); // t = 40: the worker is up, the server starts
        stage(init, 1, "context:st- controller:stf http:st- worker:stf").await;
        clock.advance(Duration::from_millis(20)); // t = 60: the server is up
        up.await.unwrap().unwrap();
        assert_eq!(states(&all, init), "context:stf controller:stf http:stf worker:stf");

        let deinit = PhaseKind::Deinit;
        let down = spawn_deinit(&rt, &context);
        stage(deinit, 1, "context:st- controller:stf http:st- worker:s--").await;
        clock.advance(Duration::from_millis(20)); // the server is down, the worker may stop
        stage(deinit, 1, "context:st- controller:stf http:stf worker:st-").await;
        clock.advance(Duration::from_millis(40));
        down.await.unwrap().unwrap();
        assert_eq!(states(&all, deinit), "context:stf controller:stf http:stf worker:stf");
        assert!(journal.at("worker init end") < journal.at("http init begin"));
        assert!(journal.at("http deinit end") < journal.at("worker deinit begin"));
    }
}

each_runtime! {
    /// `wait_before` takes any future; the phase starts only once it completed.
    async fn wait_before_waits_for_any_future(rt, _clock) {
        let journal = Journal::default();
        let part = Part::new("cache", &rt, &journal).arc();
        let warmed = Event::new();
        part.lifecycle().init_phase().wait_before(warmed.wait()).unwrap();
        let up = spawn_init(&rt, &part);
        until(|| part.lifecycle().init_phase().scheduled().is_set()).await;
        for _ in 0..20 {
            common::yield_now().await;
        }
        assert_eq!(part.state(PhaseKind::Init), "s--");
        warmed.set();
        up.await.unwrap().unwrap();
        assert_eq!(part.state(PhaseKind::Init), "stf");
    }
}

each_runtime! {
    /// After scheduling, adding a dependency is an error naming the component (Python's
    /// RuntimeError), for init and deinit, and for `depends_on`.
    async fn adding_a_dependency_after_scheduling_is_an_error(rt, _clock) {
        let journal = Journal::default();
        let part = Part::new("scheduler", &rt, &journal).arc();
        let other = Part::new("other", &rt, &journal).arc();
        part.init().await.unwrap();
        let error = part.lifecycle().init_phase().wait_before(async {}).unwrap_err();
        assert!(matches!(&error, LifecycleError::AlreadyScheduled { component, phase: PhaseKind::Init } if component == "scheduler"));
        assert_eq!(error.to_string(), "cannot add a dependency to the init of component `scheduler`: it is already scheduled");
        assert!(part.lifecycle().init_phase().after(other.lifecycle().init_phase()).is_err());
        assert!(matches!(part.depends_on(&*other), Err(LifecycleError::AlreadyScheduled { .. })));
        // A failed depends_on adds neither edge: `other` still deinits on its own.
        other.init().await.unwrap();
        other.deinit().await.unwrap();
        part.deinit().await.unwrap();
        let error = part.lifecycle().deinit_phase().wait_before(async {}).unwrap_err();
        assert!(matches!(error, LifecycleError::AlreadyScheduled { phase: PhaseKind::Deinit, .. }));
        assert!(matches!(other.depends_on(&*part), Err(LifecycleError::AlreadyScheduled { phase: PhaseKind::Init, .. })));
    }
}

each_runtime! {
    /// A second init() logs a warning, returns Ok, and does not run the hook again.
    async fn a_second_init_warns_and_does_nothing(rt, _clock) {
        common::logs::capture();
        let journal = Journal::default();
        let part = Part::new("twice-inited-part", &rt, &journal).arc();
        part.init().await.unwrap();
        part.init().await.unwrap();
        part.deinit().await.unwrap();
        part.deinit().await.unwrap();
        assert_eq!(journal.count("twice-inited-part init begin"), 1);
        assert_eq!(journal.count("twice-inited-part deinit begin"), 1);
        let warnings: Vec<_> = common::logs::containing("twice-inited-part: ")
            .into_iter()
            .filter(|(level, _)| *level == log::Level::Warn)
            .map(|(_, message)| message)
            .collect();
        assert!(warnings.contains(&"twice-inited-part: init was already called; this call does nothing".to_owned()), "{warnings:?}");
        assert!(warnings.contains(&"twice-inited-part: deinit was already called; this call does nothing".to_owned()), "{warnings:?}");
        let debug = common::logs::containing("twice-inited-part: init ");
        assert!(debug.iter().any(|(level, m)| *level == log::Level::Debug && m == "twice-inited-part: init scheduled"));
        assert!(debug.iter().any(|(_, m)| m == "twice-inited-part: init started"));
        assert!(debug.iter().any(|(_, m)| m == "twice-inited-part: init finished"));
    }
}

/// A component with only `on_init`, and one with only `on_deinit` (Python's two mixins).
struct InitOnly(Lifecycle, Journal);
impl Component for InitOnly {
    fn lifecycle(&self) -> &Lifecycle {
        &self.0
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.1.push("init-only init".into());
        Ok(())
    }
}
struct DeinitOnly(Lifecycle, Journal);
impl Component for DeinitOnly {
    fn lifecycle(&self) -> &Lifecycle {
        &self.0
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        self.1.push("deinit-only deinit".into());
        Ok(())
    }
}

each_runtime! {
    async fn init_only_and_deinit_only_components(rt, _clock) {
        let journal = Journal::default();
        let init_only = InitOnly(Lifecycle::new(), journal.clone());
        init_only.init().await.unwrap();
        init_only.deinit().await.unwrap();
        // A deinit-only component is never inited; its deinit still runs.
        let deinit_only = DeinitOnly(Lifecycle::new(), journal.clone());
        deinit_only.deinit().await.unwrap();
        assert_eq!(journal.entries(), ["init-only init", "deinit-only deinit"]);
        assert_eq!(init_only.name(), "InitOnly");
        let _ = rt;
    }
}

/// Children in every kind of place Python finds them (attributes, lists, sets, dicts) and more.
struct Everywhere {
    lifecycle: Lifecycle,
    field: Part,
    option: Option<Part>,
    none: Option<Part>,
    boxed: Box<Part>,
    shared: Arc<Part>,
    vec: Vec<Part>,
    array: [Part; 2],
    boxed_slice: Box<[Part]>,
    hash_map: HashMap<String, Part>,
    btree_map: BTreeMap<u8, Arc<Part>>,
    hash_set: HashSet<Named>,
    btree_set: BTreeSet<Named>,
    nested: Vec<Option<Box<Part>>>,
}

/// A component that can sit in a set.
struct Named(Part);
impl PartialEq for Named {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for Named {}
impl std::hash::Hash for Named {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}
impl PartialOrd for Named {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Named {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(&other.0.name)
    }
}
impl Component for Named {
    fn lifecycle(&self) -> &Lifecycle {
        self.0.lifecycle()
    }
    fn name(&self) -> Cow<'_, str> {
        self.0.name()
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        self.0.on_init().await
    }
}

impl Component for Everywhere {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn children(&self) -> Children<'_> {
        children![
            self.field,
            self.option,
            self.none,
            self.boxed,
            self.shared,
            self.vec,
            self.array,
            *self.boxed_slice,
            self.hash_map,
            self.btree_map,
            self.hash_set,
            self.btree_set,
            self.nested,
        ]
    }
}

each_runtime! {
    async fn children_are_found_in_every_container(rt, _clock) {
        let j = Journal::default();
        let p = |name: &str| Part::new(name, &rt, &j);
        let everywhere = Everywhere {
            lifecycle: Lifecycle::new(),
            field: p("field"),
            option: Some(p("option")),
            none: None,
            boxed: Box::new(p("boxed")),
            shared: Arc::new(p("shared")),
            vec: vec![p("vec0"), p("vec1")],
            array: [p("array0"), p("array1")],
            boxed_slice: vec![p("slice0")].into_boxed_slice(),
            hash_map: HashMap::from([("k".to_owned(), p("hash_map"))]),
            btree_map: BTreeMap::from([(1, Arc::new(p("btree_map")))]),
            hash_set: HashSet::from([Named(p("hash_set"))]),
            btree_set: BTreeSet::from([Named(p("btree_set"))]),
            nested: vec![Some(Box::new(p("nested"))), None],
        };
        assert_eq!(everywhere.children().len(), 14);
        everywhere.init().await.unwrap();
        for name in [
            "field", "option", "boxed", "shared", "vec0", "vec1", "array0", "array1", "slice0",
            "hash_map", "btree_map", "hash_set", "btree_set", "nested",
        ] {
            assert_eq!(j.count(&format!("{name} init end")), 1, "{name}");
        }
    }
}

each_runtime! {
    /// Children come up concurrently: two 50 ms children take 50 ms, not 100.
    async fn children_are_initialised_concurrently(rt, clock) {
        let j = Journal::default();
        let a = Part::new("a", &rt, &j).init_ms(50).arc();
        let b = Part::new("b", &rt, &j).init_ms(50).arc();
        let root = Part::new("root", &rt, &j).child(&a).child(&b).arc();
        let up = spawn_init(&rt, &root);
        sleepers(&clock, 2).await;
        clock.advance(Duration::from_millis(50));
        up.await.unwrap().unwrap();
        assert_eq!(clock.elapsed(), Duration::from_millis(50));
        assert!(j.at("root init begin") > j.at("a init end").max(j.at("b init end")));
    }
}

each_runtime! {
    /// A child shared by two parents (a diamond) is initialised once, and both parents wait for
    /// it: neither finishes before it.
    async fn a_shared_child_is_initialised_once_and_both_parents_wait(rt, clock) {
        let j = Journal::default();
        let shared = Part::new("shared", &rt, &j).init_ms(30).arc();
        let left = Part::new("left", &rt, &j).child(&shared).arc();
        let right = Part::new("right", &rt, &j).child(&shared).arc();
        let root = Part::new("root", &rt, &j).child(&left).child(&right).arc();
        let up = spawn_init(&rt, &root);
        // Both parents started and wait; the shared child sleeps (wait for the exact states:
        // the parents are polled one after the other).
        let parts = [left.clone(), right.clone(), shared.clone()];
        until(|| clock.sleepers() == 1 && states(&parts, PhaseKind::Init) == "left:st- right:st- shared:st-").await;
        for _ in 0..20 {
            common::yield_now().await;
        }
        assert_eq!(states(&parts, PhaseKind::Init), "left:st- right:st- shared:st-");
        clock.advance(Duration::from_millis(30));
        up.await.unwrap().unwrap();
        assert_eq!(j.count("shared init begin"), 1);
        assert!(j.at("shared init end") < j.at("left init begin"));
        assert!(j.at("shared init end") < j.at("right init begin"));
    }
}

each_runtime! {
    /// One `depends_on` gives both orders: init after, deinit before.
    async fn depends_on_gives_both_orders(rt, _clock) {
        let j = Journal::default();
        let db = Part::new("db", &rt, &j).arc();
        let api = Part::new("api", &rt, &j).arc();
        let cache = Part::new("cache", &rt, &j).arc();
        api.depends_on(&*db).unwrap();
        cache.depends_on(&*api).unwrap();
        // Listed in the worst order on purpose.
        let root = Part::new("root", &rt, &j).child(&cache).child(&api).child(&db).arc();
        root.init().await.unwrap();
        assert!(j.at("db init end") < j.at("api init begin"));
        assert!(j.at("api init end") < j.at("cache init begin"));
        root.deinit().await.unwrap();
        assert!(j.at("cache deinit end") < j.at("api deinit begin"));
        assert!(j.at("api deinit end") < j.at("db deinit begin"));
    }
}

each_runtime! {
    /// A cycle is an error before anything runs, not a silent deadlock; its path is a real cycle.
    async fn a_cycle_is_reported_before_any_hook_runs(rt, _clock) {
        let j = Journal::default();
        let a = Part::new("a", &rt, &j).arc();
        let b = Part::new("b", &rt, &j).arc();
        let c = Part::new("c", &rt, &j).arc();
        b.depends_on(&*a).unwrap();
        c.depends_on(&*b).unwrap();
        a.depends_on(&*c).unwrap();
        let root = Part::new("root", &rt, &j).child(&a).child(&b).child(&c).arc();
        let error = root.init().await.unwrap_err();
        let LifecycleError::Cycle { path } = &error else { panic!("{error:?}") };
        assert_eq!(path.first(), path.last());
        assert_eq!(path.len(), 4, "{path:?}");
        let mut on_cycle: Vec<_> = path[..3].to_vec();
        on_cycle.sort();
        assert_eq!(on_cycle, ["a", "b", "c"]);
        assert!(error.to_string().starts_with("dependency cycle: "), "{error}");
        assert!(j.entries().is_empty(), "no hook ran");
        for part in [&root, &a, &b, &c] {
            assert_eq!(part.state(PhaseKind::Init), "---");
        }
        // The deinit edges form the reverse cycle: also found.
        assert!(matches!(root.deinit().await, Err(LifecycleError::Cycle { .. })));
    }
}

each_runtime! {
    /// A parent that waits for its own child, and a phase after itself, are cycles too.
    async fn waiting_for_your_own_child_or_yourself_is_a_cycle(rt, _clock) {
        let j = Journal::default();
        let child = Part::new("child", &rt, &j).arc();
        let parent = Part::new("parent", &rt, &j).child(&child).arc();
        parent.depends_on(&*child).unwrap();
        let LifecycleError::Cycle { path } = parent.init().await.unwrap_err() else { panic!() };
        assert_eq!(path.first(), path.last());
        assert!(path.contains(&"parent".to_owned()) && path.contains(&"child".to_owned()), "{path:?}");

        let child = Part::new("child", &rt, &j).arc();
        let parent = Part::new("parent", &rt, &j).child(&child).arc();
        child.depends_on(&*parent).unwrap();
        assert!(matches!(parent.init().await, Err(LifecycleError::Cycle { .. })));

        // Through a generation: the grandparent is up once its child is, which is up once the
        // grandchild is, which waits for the grandparent.
        let grandchild = Part::new("grandchild", &rt, &j).arc();
        let middle = Part::new("middle", &rt, &j).child(&grandchild).arc();
        let grandparent = Part::new("grandparent", &rt, &j).child(&middle).arc();
        grandchild.depends_on(&*grandparent).unwrap();
        let LifecycleError::Cycle { path } = grandparent.init().await.unwrap_err() else { panic!() };
        assert_eq!(path.first(), path.last());
        for name in ["grandparent", "middle", "grandchild"] {
            assert!(path.contains(&name.to_owned()), "{path:?}");
        }

        let narcissus = Part::new("narcissus", &rt, &j).arc();
        let phase = narcissus.lifecycle().init_phase();
        phase.after(phase).unwrap();
        let LifecycleError::Cycle { path } = narcissus.init().await.unwrap_err() else { panic!() };
        assert_eq!(path, ["narcissus", "narcissus"]);
        assert!(j.entries().is_empty());
    }
}

each_runtime! {
    /// A child shared by two parents is below both: either parent waiting for it is a cycle
    /// (the child's phase starts after both parents' have), found before any hook runs.
    async fn a_cycle_through_either_parent_of_a_shared_child_is_found(rt, _clock) {
        for on in ["first", "second"] {
            let j = Journal::default();
            let shared = Part::new("shared", &rt, &j).arc();
            let first = Part::new("first", &rt, &j).child(&shared).arc();
            let second = Part::new("second", &rt, &j).child(&shared).arc();
            let parent = if on == "first" { &first } else { &second };
            parent.depends_on(&*shared).unwrap();
            // Two leaves first, so that neither parent is the tree's first or second node after
            // the root (a parent's index then tells `2 * index` from `2 / index` and `2 + index`).
            let leaf = Part::new("leaf", &rt, &j).arc();
            let other_leaf = Part::new("other leaf", &rt, &j).arc();
            let root = Part::new("root", &rt, &j)
                .child(&leaf)
                .child(&other_leaf)
                .child(&first)
                .child(&second)
                .arc();
            assert!(leaf.children().is_empty() && !root.children().is_empty());
            let LifecycleError::Cycle { path } = root.init().await.unwrap_err() else { panic!() };
            assert_eq!(path.first(), path.last());
            assert!(path.contains(&on.to_owned()) && path.contains(&"shared".to_owned()), "{path:?}");
            assert!(j.entries().is_empty());
        }
    }
}

each_runtime! {
    /// A cycle that leaves the tree through an `after` edge and comes back is found too, and the
    /// component outside the tree is named (`depends_on` names both phases).
    async fn a_cycle_through_a_component_outside_the_tree_is_found(rt, _clock) {
        let j = Journal::default();
        let inside = Part::new("inside", &rt, &j).arc();
        let root = Part::new("root", &rt, &j).child(&inside).arc();
        let outside = Part::new("outside", &rt, &j).arc();
        inside.depends_on(&*outside).unwrap();
        outside.depends_on(&*inside).unwrap();
        let LifecycleError::Cycle { path } = root.init().await.unwrap_err() else { panic!() };
        assert_eq!(path.first(), path.last());
        assert!(path.contains(&"inside".to_owned()), "{path:?}");
        assert_eq!(path, ["inside", "outside", "inside"]);
        assert!(j.entries().is_empty());
    }
}

each_runtime! {
    /// The cycle search visits each phase once: a chain of 40 diamonds (each level waits for
    /// two parts, which both wait for the level below) has 2^40 paths, and comes up and goes
    /// down at once, in order.
    async fn a_lattice_of_dependencies_is_searched_in_linear_time(rt, _clock) {
        const LEVELS: usize = 40;
        let j = Journal::default();
        let tops: Vec<Arc<Part>> =
            (0..=LEVELS).map(|k| Part::new(&format!("top{k}"), &rt, &j).arc()).collect();
        let mut root = Part::new("root", &rt, &j);
        for k in 0..LEVELS {
            for side in ["left", "right"] {
                let part = Part::new(&format!("{side}{k}"), &rt, &j).arc();
                tops[k].depends_on(&*part).unwrap();
                part.depends_on(&*tops[k + 1]).unwrap();
                root = root.child(&part);
            }
        }
        for top in &tops {
            root = root.child(top);
        }
        let root = root.arc();
        root.init().await.unwrap();
        assert!(j.at("top40 init end") < j.at("left39 init begin"));
        assert!(j.at("right0 init end") < j.at("top0 init begin"));
        root.deinit().await.unwrap();
        assert!(j.at("top0 deinit end") < j.at("left0 deinit begin"));
        assert!(j.at("right39 deinit end") < j.at("top40 deinit begin"));
    }
}

each_runtime! {
    /// A deinit called while the init runs lets the init end first, then undoes it.
    async fn a_deinit_during_the_init_waits_for_its_end(rt, clock) {
        let j = Journal::default();
        let part = Part::new("part", &rt, &j).init_ms(20).deinit_ms(10).arc();
        let up = spawn_init(&rt, &part);
        sleepers(&clock, 1).await; // the init's hook
        let down = spawn_deinit(&rt, &part);
        for _ in 0..20 {
            common::yield_now().await;
        }
        assert!(!j.has("part deinit begin"), "{:?}", j.entries());
        assert!(!up.is_finished() && !down.is_finished());
        clock.advance(Duration::from_millis(20));
        up.await.unwrap().unwrap();
        sleepers(&clock, 1).await; // the deinit's hook
        clock.advance(Duration::from_millis(10));
        down.await.unwrap().unwrap();
        assert!(j.at("part init end") < j.at("part deinit begin"), "{:?}", j.entries());
        assert!(!j.has("part init cancelled"));
    }
}
