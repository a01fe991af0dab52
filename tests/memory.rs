//! Memory: what lives for ever keeps constant memory while short-lived things come and go (a
//! parent token while a million children do, as dropped children leave its list; a
//! `TestRuntime` while a hundred thousand tasks do, as it sweeps its list of the finished ones),
//! and a large `TaskGroup` makes no large allocation. (A binary of its own: it counts the
//! allocations of the thread that makes them, and of no other: the test harness's threads
//! allocate when they please.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use asynchronously::rt::ManualClock;
use asynchronously::testing::TestRuntime;
use asynchronously::{CancellationToken, TaskGroup};

struct Counting;

thread_local! {
    /// Whether this thread's allocations count (a `const` cell: reading it allocates nothing).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// The bytes this thread holds, of those it counted: each test counts its own thread's, so
    /// that the tests of the binary, run at once, do not see each other's.
    static NET: Cell<isize> = const { Cell::new(0) };
    /// The largest allocation this thread counted.
    static LARGEST: Cell<isize> = const { Cell::new(0) };
    /// How many allocations this thread counted.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    if COUNTED.with(Cell::get) {
        NET.with(|net| net.set(net.get() + bytes));
        LARGEST.with(|largest| largest.set(largest.get().max(bytes)));
        if bytes > 0 {
            ALLOCATIONS.with(|allocations| allocations.set(allocations.get() + 1));
        }
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

#[test]
#[cfg_attr(miri, ignore)] // ten thousand tasks
fn a_large_group_makes_no_large_allocation() {
    common::bounded(large_group);
}

/// A group of 10,240 tasks, all ended and none joined: no allocation is large in glibc's sense
/// (1,024 bytes or more with its header: the first after a small block was freed merges all
/// the small free blocks, and a group of 10,000 tasks on smol cost 120 instructions a task more
/// for it), the group keeps about 100 bytes a task and allocates once for about 5 tasks, and
/// the tasks allocate nothing as they end.
fn large_group() {
    const WAVES: usize = 320;
    const WAVE: usize = 32; // the executor's queue stays as short, and small
    COUNTED.with(|counted| counted.set(true));
    let (rt, held) = common::holding(ManualClock::new());
    let mut group = TaskGroup::new(&rt);
    // `block_on`'s first call makes its thread's waker.
    futures::executor::block_on(async {});
    let before = net();
    LARGEST.with(|largest| largest.set(0));
    let allocations = ALLOCATIONS.with(Cell::get);
    let mut peak = 0;
    let mut while_ending = 0;
    for _ in 0..WAVES {
        for i in 0..WAVE {
            group.spawn(async move { i });
        }
        let tasks = held.take_all();
        let before_ending = ALLOCATIONS.with(Cell::get);
        tasks.into_iter().for_each(futures::executor::block_on);
        while_ending += ALLOCATIONS.with(Cell::get) - before_ending;
        peak = peak.max(net() - before);
    }
    let largest = LARGEST.with(Cell::get);
    let per_task = peak / (WAVES * WAVE) as isize;
    let allocations = (ALLOCATIONS.with(Cell::get) - allocations) as f64 / (WAVES * WAVE) as f64;
    let mut joined = 0;
    while let Some(output) = group.try_join_next() {
        assert!(output.unwrap() < WAVE);
        joined += 1;
    }
    assert_eq!(joined, WAVES * WAVE);
    assert!(largest <= 1000, "an allocation of {largest} bytes");
    assert!(per_task <= 150, "{per_task} bytes a task");
    // The group made the blocks of their outcomes as it grew, so that an ending task allocates
    // nothing (an allocation on a worker's thread comes from glibc's arena of that thread).
    assert_eq!(while_ending, 0, "allocations as the tasks ended");
    // The task's own (boxed by `holding`'s spawner), the held list's growth (1 in 8 tasks), and
    // the group's: its leaves of slots and records (1 in 8) and blocks of outcomes (1 in 20).
    assert!(allocations <= 1.35, "{allocations} allocations a task");
}
