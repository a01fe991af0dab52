//! What lives for ever keeps constant memory while short-lived things come and go: a parent
//! token while a million children do (dropped children leave its list), and a `TestRuntime`
//! while a hundred thousand tasks do (it sweeps its list of tasks of the finished ones). (A
//! binary of its own: it counts the allocations of the thread that makes them, and of no
//! other: the test harness's threads allocate when they please.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use asynchronously::CancellationToken;
use asynchronously::testing::TestRuntime;

struct Counting;

thread_local! {
    /// Whether this thread's allocations count (a `const` cell: reading it allocates nothing).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// The bytes this thread holds, of those it counted: each test counts its own thread's, so
    /// that the tests of the binary, run at once, do not see each other's.
    static NET: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    if COUNTED.with(Cell::get) {
        NET.with(|net| net.set(net.get() + bytes));
    }
}

fn net() -> isize {
    NET.with(Cell::get)
}

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
#[cfg_attr(miri, ignore)] // a million iterations
fn a_long_lived_parent_keeps_constant_memory_while_children_come_and_go() {
    common::bounded(churn_children);
}

fn churn_children() {
    COUNTED.with(|counted| counted.set(true));
    let parent = CancellationToken::new();
    let kept: Vec<_> = (0..16).map(|_| parent.child_token()).collect();
    // Let the parent's list reach its working size.
    for _ in 0..100 {
        drop(parent.child_token());
    }
    let before = net();
    for i in 0..1_000_000 {
        let child = parent.child_token();
        if i % 2 == 0 {
            // The grandchild moves up to the parent when the child goes, then goes too.
            let grandchild = child.child_token();
            drop(child);
            drop(grandchild);
        } else {
            child.cancel();
        }
    }
    let grown = net() - before;
    assert!(grown <= 0, "{grown} bytes more after a million children");
    parent.cancel();
    assert!(kept.iter().all(CancellationToken::is_cancelled));
}

#[test]
#[cfg_attr(miri, ignore)] // a hundred thousand tasks
fn a_test_runtime_keeps_constant_memory_while_tasks_come_and_go() {
    common::bounded(churn_tasks);
}

fn churn_tasks() {
    COUNTED.with(|counted| counted.set(true));
    let test = TestRuntime::new();
    let rt = test.runtime();
    let churn = |tasks: usize| {
        test.block_on(async {
            for i in 0..tasks {
                assert_eq!(rt.spawn(async move { i }).await.unwrap(), i);
            }
        });
    };
    // Let the list of tasks reach its working size.
    churn(100);
    let before = net();
    churn(100_000);
    let grown = net() - before;
    // Its list holds a few dozen tasks at most; a list never swept would hold all 100,000.
    assert!(
        grown <= 4096,
        "{grown} bytes more after a hundred thousand tasks"
    );
}
