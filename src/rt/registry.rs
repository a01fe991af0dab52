//! The registry of live tasks behind `live_tasks` and `wait_for_all_other_tasks`.
//!
//! One atomic word holds the number of live tasks (low 32 bits) and the number of drains ever
//! started (high 32 bits, the drain *generation*). Spawning a task adds one to it and notes the
//! generation it saw; finishing subtracts one and reads the generation again. Starting a drain
//! adds one generation and reads the live count in the same step. All three are read-modify-writes
//! of one word, so they happen in one order: a drain counts exactly the tasks whose spawn came
//! before its start and whose finish comes after, and a task finds those drains as the
//! generations in (its birth, its finish].
//!
//! So spawning and finishing take no lock while no drain starts during a task's life. A task
//! whose life saw a drain start takes the lock of the drain list to count itself off; a drain
//! starts under that lock, so its entry is there for every task that sees its generation.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Mutex, MutexGuard, lock, thread_local_static};

const ONE_TASK: u64 = 1;
const ONE_DRAIN: u64 = 1 << 32;
const LIVE: u64 = ONE_DRAIN - 1;

pub(crate) struct Registry {
    state: AtomicU64,
    drains: Mutex<Vec<Drain>>,
}

struct Drain {
    generation: u32,
    /// The caller's own task, which it does not wait for.
    own: Option<usize>,
    remaining: u64,
    waker: Option<Waker>,
}

/// A task's entry: how it counts itself off when it finishes.
pub(crate) struct Registration {
    /// The drain generation when the task was spawned.
    born: u32,
}

fn generation(state: u64) -> u32 {
    // The high half: the truncation is the point.
    (state >> 32) as u32
}

/// Whether drain `g` started during a life from generation `born` to generation `now`: `g` in
/// `(born, now]`, counted modulo 2^32.
fn started_during(g: u32, born: u32, now: u32) -> bool {
    g.wrapping_sub(born).wrapping_sub(1) < now.wrapping_sub(born)
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            drains: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Drain>> {
        lock(&self.drains)
    }

    /// Identifies this registry in the task-local marker.
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn register(&self) -> Registration {
        let before = self.state.fetch_add(ONE_TASK, Ordering::AcqRel);
        Registration {
            born: generation(before),
        }
    }

    /// Counts off a finished task; `task` is its key, which its marker holds (see [`CurrentTask`]).
    pub(crate) fn deregister(&self, registration: &Registration, task: usize) {
        let before = self.state.fetch_sub(ONE_TASK, Ordering::AcqRel);
        let now = generation(before);
        if now == registration.born {
            // No drain started during this task's life: none counted it.
            return;
        }
        let mut woken = Vec::new();
        {
            let mut drains = self.lock();
            for drain in drains.iter_mut() {
                if started_during(drain.generation, registration.born, now)
                    && drain.own != Some(task)
                {
                    drain.remaining -= 1;
                    if drain.remaining == 0 {
                        woken.extend(drain.waker.take());
                    }
                }
            }
        }
        woken.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn live(&self) -> usize {
        // Below 2^32 (a task takes hundreds of bytes, so 2^32 live ones cannot exist), which a
        // usize holds on 32-bit platforms too.
        usize::try_from(self.state.load(Ordering::Acquire) & LIVE).unwrap_or(usize::MAX)
    }
}

thread_local_static! {
    /// The task being polled on this thread: (registry key, task key).
    static CURRENT: Cell<Option<(usize, usize)>> = Cell::new(None);
}

/// The marker a task sets while it is polled, so that a drain knows its caller: its registry and
/// its key (unique among the live tasks, which is all a drain compares it with).
pub(crate) struct CurrentTask(usize, usize);

impl CurrentTask {
    pub(crate) fn new(registry: &Registry, task: usize) -> Self {
        Self(registry.key(), task)
    }

    pub(crate) fn enter(&self) -> Entered {
        Entered(CURRENT.with(|c| c.replace(Some((self.0, self.1)))))
    }
}

/// Restores the previous marker (tasks may be polled inside other tasks, as `block_on` does).
pub(crate) struct Entered(Option<(usize, usize)>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The future of [`Runtime::wait_for_all_other_tasks`](super::Runtime::wait_for_all_other_tasks)
/// and [`wait_for_all_other_tasks`](crate::wait_for_all_other_tasks): completes once every task
/// that was live when it was made has finished, except the task that made it.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// use asynchronously::rt::{Runtime, ThreadPerTask, WaitForAllOtherTasks};
///
/// let rt = Runtime::new(ThreadPerTask);
/// rt.spawn_detached(async { /* background work */ });
/// let drained: WaitForAllOtherTasks = rt.wait_for_all_other_tasks();
/// drained.await;
/// assert_eq!(rt.live_tasks(), 0);
/// # });
/// ```
///
/// # Cancel safety
///
/// Dropping it stops waiting; the tasks run on.
#[must_use = "a WaitForAllOtherTasks does nothing unless awaited"]
pub struct WaitForAllOtherTasks {
    registry: Arc<Registry>,
    /// The drain's generation; `None` when there was nothing to wait for, or once done.
    generation: Option<u32>,
}

impl WaitForAllOtherTasks {
    pub(crate) fn new(registry: &Arc<Registry>) -> Self {
        let own = CURRENT
            .with(Cell::get)
            .filter(|&(key, _)| key == registry.key())
            .map(|(_, task)| task);
        let mut drains = registry.lock();
        // Under the lock: a task that sees this generation when it finishes finds the entry.
        let before = registry.state.fetch_add(ONE_DRAIN, Ordering::AcqRel);
        let this = generation(before).wrapping_add(1);
        // The caller's own task is live (it is running this), so `live >= 1` when `own` is set.
        debug_assert!(own.is_none() || before & LIVE > 0);
        let remaining = (before & LIVE).saturating_sub(u64::from(own.is_some()));
        let generation = (remaining > 0).then(|| {
            drains.push(Drain {
                generation: this,
                own,
                remaining,
                waker: None,
            });
            this
        });
        drop(drains);
        Self {
            registry: registry.clone(),
            generation,
        }
    }
}

impl Future for WaitForAllOtherTasks {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(generation) = self.generation else {
            return Poll::Ready(());
        };
        let mut drains = self.registry.lock();
        let index = drains
            .iter()
            .position(|d| d.generation == generation)
            .expect("a pending drain stays registered");
        let drain = &mut drains[index];
        if drain.remaining > 0 {
            match &mut drain.waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => drain.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        drains.swap_remove(index);
        drop(drains);
        self.generation = None;
        Poll::Ready(())
    }
}

impl Drop for WaitForAllOtherTasks {
    fn drop(&mut self) {
        if let Some(generation) = self.generation {
            self.registry.lock().retain(|d| d.generation != generation);
        }
    }
}

impl std::fmt::Debug for WaitForAllOtherTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForAllOtherTasks")
            .field("is_over", &self.generation.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::started_during;

    #[test]
    fn started_during_counts_modulo_2_pow_32() {
        assert!(started_during(1, 0, 1));
        assert!(!started_during(0, 0, 1)); // the birth generation itself is before the task
        assert!(!started_during(2, 0, 1)); // after the finish
        assert!(started_during(0, u32::MAX, 0)); // across the wrap
        assert!(started_during(u32::MAX, u32::MAX - 1, 1));
        assert!(!started_during(5, 3, 3)); // no drain during its life
    }
}
