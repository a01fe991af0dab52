//! Scale: a million of each, none timed, each bounded by the harness's timeout. (The tree
//! 100,000 components deep is in `lifecycle/depth.rs`.)

mod common;

use asynchronously::children;
use asynchronously::lifecycle::{BoxError, Children, Component, Lifecycle, Service};
use asynchronously::strict_gather;
use common::bounded;

const MILLION: usize = 1_000_000;

#[derive(Default)]
struct Leaf {
    lifecycle: Lifecycle,
}

impl Component for Leaf {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

struct Root {
    lifecycle: Lifecycle,
    leaves: Vec<Leaf>,
}

impl Component for Root {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn children(&self) -> Children<'_> {
        children![self.leaves]
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_million_leaves_come_up_and_go_down_under_a_service() {
    bounded(|| {
        let root = Root {
            lifecycle: Lifecycle::new(),
            leaves: (0..MILLION).map(|_| Leaf::default()).collect(),
        };
        let report =
            futures::executor::block_on(Service::new(&root).shutdown_on(async {}).run()).unwrap();
        // Each leaf has a deinit hook, so each is timed.
        assert_eq!(report.phases.len(), MILLION + 1);
        assert!(
            root.leaves
                .iter()
                .all(|leaf| leaf.lifecycle().deinit_phase().finished().is_set())
        );
    });
}

#[test]
#[cfg_attr(miri, ignore)]
fn strict_gather_of_a_million_futures() {
    bounded(|| {
        let futures = (0..MILLION).map(|i| async move { Ok::<_, ()>(i) });
        let values = futures::executor::block_on(strict_gather(futures)).unwrap();
        assert_eq!(values.len(), MILLION);
        assert!(
            values.iter().enumerate().all(|(i, &value)| i == value),
            "in input order"
        );
    });
}

#[test]
#[cfg_attr(miri, ignore)]
#[cfg(feature = "thread-pool")]
fn a_million_tasks_drained() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use asynchronously::TaskGroup;
    use asynchronously::rt::Runtime;

    bounded(|| {
        let rt = Runtime::thread_pool();
        let ran = Arc::new(AtomicUsize::new(0));
        let mut group = TaskGroup::new(&rt);
        for _ in 0..MILLION {
            let ran = ran.clone();
            group.spawn(async move {
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        let outputs = futures::executor::block_on(group.join_all());
        assert_eq!(
            (outputs.len(), ran.load(Ordering::Relaxed)),
            (MILLION, MILLION)
        );
        for _ in 0..MILLION {
            rt.spawn_detached(async {});
        }
        futures::executor::block_on(rt.wait_for_all_other_tasks());
        assert_eq!(rt.live_tasks(), 0);
    });
}
