//! A parent token that lives for ever while a million short-lived children come and go keeps
//! constant memory: dropped children leave its list. (A binary of its own: it counts the
//! allocations of the thread that makes the children, and of no other: the test harness's
//! threads allocate when they please.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

mod common;

use asynchronously::CancellationToken;

struct Counting;

static NET: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether this thread's allocations count (a `const` cell: reading it allocates nothing).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count(bytes: isize) {
    if COUNTED.with(Cell::get) {
        NET.fetch_add(bytes, Ordering::SeqCst);
    }
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
    let before = NET.load(Ordering::SeqCst);
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
    let grown = NET.load(Ordering::SeqCst) - before;
    assert!(grown <= 0, "{grown} bytes more after a million children");
    parent.cancel();
    assert!(kept.iter().all(CancellationToken::is_cancelled));
}
