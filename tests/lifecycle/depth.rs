//! Depth is not a limit: a tree as deep as its data inits and deinits on a small stack.

use std::sync::Arc;

use asynchronously::children;
use asynchronously::lifecycle::{BoxError, Children, Component, ComponentExt, Lifecycle};

use crate::common;

/// One level of a deep tree: a chain of components, each the only child of the one above.
struct Level {
    lifecycle: Lifecycle,
    depth: usize,
    child: Option<Arc<Level>>,
}

impl Level {
    /// A chain `depth` levels deep, the root at depth 0.
    fn chain(depth: usize) -> Arc<Level> {
        let mut top = None;
        for depth in (0..depth).rev() {
            top = Some(Arc::new(Level {
                lifecycle: Lifecycle::new(),
                depth,
                child: top,
            }));
        }
        top.expect("a chain of at least one level")
    }
}

/// Dropped a level at a time: the chain's own drop would recurse as deep as the chain.
impl Drop for Level {
    fn drop(&mut self) {
        let mut next = self.child.take();
        while let Some(level) = next {
            next = Arc::into_inner(level).and_then(|mut level| level.child.take());
        }
    }
}

impl Component for Level {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        // Now and then a hook that is not done at once, so that deep runs wait on steps too.
        if self.depth % 1_000 == 0 {
            common::yield_now().await;
        }
        match &self.child {
            Some(child) if !child.lifecycle.init_phase().finished().is_set() => {
                Err(format!("level {} came up before its child", self.depth).into())
            }
            _ => Ok(()),
        }
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        if self.depth % 1_000 == 0 {
            common::yield_now().await;
        }
        match &self.child {
            Some(child) if child.lifecycle.deinit_phase().scheduled().is_set() => {
                Err(format!("level {} went down after its child", self.depth).into())
            }
            _ => Ok(()),
        }
    }
    fn children(&self) -> Children<'_> {
        children![self.child]
    }
}

const DEEP: usize = 100_000;
/// The stack of a tokio worker thread.
const SMALL_STACK: usize = 2 << 20;

/// Inits and deinits a chain `DEEP` levels deep, then checks that every level went up and down.
async fn up_and_down_deep() {
    let root = Level::chain(DEEP);
    root.init().await.unwrap();
    root.deinit().await.unwrap();
    let mut level = Some(&root);
    let mut levels = 0;
    while let Some(this) = level {
        assert!(this.lifecycle.init_phase().finished().is_set());
        assert!(this.lifecycle.deinit_phase().finished().is_set());
        levels += 1;
        level = this.child.as_ref();
    }
    assert_eq!(levels, DEEP);
}

/// A tree 100,000 components deep came up and went down on a 2 MiB stack. Each level of the
/// tree used to cost about 1 KiB of stack (a phase's future awaited its children's futures), so
/// about 2,000 levels overflowed the stack and aborted the process.
#[test]
#[cfg_attr(miri, ignore)] // 100,000 levels take minutes under miri
fn a_tree_100_000_deep_inits_and_deinits_on_a_small_stack() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            futures::executor::block_on(up_and_down_deep());
            done.send(()).unwrap();
        })
        .unwrap();
    finished
        .recv_timeout(common::TIMEOUT)
        .expect("the deep tree came up and went down in time");
}

/// The same on a tokio worker thread, whose stack is 2 MiB.
#[cfg(feature = "tokio")]
#[test]
#[cfg_attr(miri, ignore)]
fn a_tree_100_000_deep_inits_and_deinits_on_a_tokio_worker() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(SMALL_STACK)
        .enable_time()
        .build()
        .unwrap();
    let task = runtime.spawn(up_and_down_deep());
    runtime
        .block_on(async { tokio::time::timeout(common::TIMEOUT, task).await })
        .expect("the deep tree came up and went down in time")
        .unwrap();
}

/// A component that counts its hooks; its hooks yield once if `yields`.
#[derive(Default)]
struct Counted {
    lifecycle: Lifecycle,
    yields: bool,
    inits: std::sync::atomic::AtomicUsize,
    deinits: std::sync::atomic::AtomicUsize,
    children: Vec<Counted>,
}

impl Counted {
    fn with(children: Vec<Counted>) -> Self {
        Self {
            children,
            ..Self::default()
        }
    }

    /// Checks that every hook in the subtree ran once.
    fn ran_once(&self) {
        assert_eq!(self.inits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(self.deinits.load(std::sync::atomic::Ordering::SeqCst), 1);
        self.children.iter().for_each(Counted::ran_once);
    }
}

impl Component for Counted {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    async fn on_init(&self) -> Result<(), BoxError> {
        if self.yields {
            common::yield_now().await;
        }
        self.inits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn on_deinit(&self) -> Result<(), BoxError> {
        if self.yields {
            common::yield_now().await;
        }
        self.deinits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    fn children(&self) -> Children<'_> {
        children![self.children]
    }
}

/// Every hook runs once when a subtree finishes at once while a sibling still waits. (The flat
/// runner's first version then ran the subtree's parent's hook a second time: the parent was
/// queued to schedule its next children behind its child's subtree, and went on again when that
/// turn came. The deep tree found it, as an overflow of a counter.)
#[test]
fn a_subtree_that_finishes_at_once_beside_a_waiting_sibling_runs_each_hook_once() {
    let chain = Counted::with(vec![Counted::with(vec![Counted::default()])]);
    let waiting = Counted {
        yields: true,
        ..Counted::default()
    };
    let root = Counted::with(vec![chain, waiting]);
    futures::executor::block_on(async {
        root.init().await.unwrap();
        root.deinit().await.unwrap();
    });
    root.ran_once();
}
