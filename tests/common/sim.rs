//! A deterministic one-thread executor for property tests: tasks run only inside
//! [`Sim::run_until_stalled`], in the order they were woken, so that a test on `ManualClock` can
//! step time and know that everything that could run has run.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use asynchronously::rt::{BoxFuture, ManualClock, Runtime};
use futures::task::{ArcWake, waker_ref};

type Queue = Mutex<VecDeque<Arc<SimTask>>>;

#[derive(Clone, Default)]
pub struct Sim {
    queue: Arc<Queue>,
    /// Every task spawned, to drop the ones left at the end: like a real executor, which owns
    /// its tasks, so that a task waiting for ever (on a clock that a task holds, say) is not
    /// a reference cycle that leaks.
    tasks: Arc<Mutex<Vec<Weak<SimTask>>>>,
}

struct SimTask {
    future: Mutex<Option<BoxFuture<()>>>,
    queue: Weak<Queue>,
    queued: AtomicBool,
}

impl ArcWake for SimTask {
    fn wake_by_ref(task: &Arc<Self>) {
        if !task.queued.swap(true, Ordering::SeqCst) {
            if let Some(queue) = task.queue.upgrade() {
                queue.lock().unwrap().push_back(task.clone());
            }
        }
    }
}

impl Sim {
    pub fn new() -> Self {
        Self::default()
    }

    /// A runtime whose tasks run on this executor and whose timer is `clock`.
    pub fn runtime(&self, clock: &ManualClock) -> Runtime {
        let sim = self.clone();
        Runtime::with_timer(move |task| sim.spawn(task), clock.clone())
    }

    fn spawn(&self, future: BoxFuture<()>) {
        let task = Arc::new(SimTask {
            future: Mutex::new(Some(future)),
            queue: Arc::downgrade(&self.queue),
            queued: AtomicBool::new(true),
        });
        self.tasks.lock().unwrap().push(Arc::downgrade(&task));
        self.queue.lock().unwrap().push_back(task);
    }

    /// Drops the future of every task still alive, as an executor that shuts down does.
    pub fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in tasks.iter().filter_map(Weak::upgrade) {
            let future = task.future.lock().unwrap().take();
            drop(future);
        }
        self.queue.lock().unwrap().clear();
    }

    /// Shuts this executor down when the guard is dropped, however the test ends.
    pub fn shutdown_on_drop(&self) -> ShutdownOnDrop {
        ShutdownOnDrop(self.clone())
    }

    /// Polls woken tasks until none is left; `true` if any task was polled.
    pub fn run_until_stalled(&self) -> bool {
        let mut ran = false;
        loop {
            let Some(task) = self.queue.lock().unwrap().pop_front() else {
                return ran;
            };
            ran = true;
            task.queued.store(false, Ordering::SeqCst);
            let waker = waker_ref(&task);
            let mut slot = task.future.lock().unwrap();
            if let Some(future) = slot.as_mut() {
                if future
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
                {
                    *slot = None;
                }
            }
        }
    }

    /// Drives `future` (on the test's thread) and the tasks until `future` completes, or until
    /// nothing can move any more: `None` then (it waits for time or for ever).
    pub fn block_on<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut future = pin!(future);
        let woken = Arc::new(Flag(AtomicBool::new(true)));
        loop {
            if woken.0.swap(false, Ordering::SeqCst) {
                let waker = waker_ref(&woken);
                if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker))
                {
                    return Some(output);
                }
            }
            let ran = self.run_until_stalled();
            if !ran && !woken.0.load(Ordering::SeqCst) {
                return None;
            }
        }
    }

    /// How many tasks are waiting to be polled.
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(flag: &Arc<Self>) {
        flag.0.store(true, Ordering::SeqCst);
    }
}

pub struct ShutdownOnDrop(Sim);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}
