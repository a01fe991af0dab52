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
