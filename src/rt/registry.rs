//! The registry of live tasks behind `live_tasks` and `wait_for_all_other_tasks`.
//!
//! Tasks get increasing ids. A drain that starts when the next id is `s` waits for the tasks with
//! an id below `s` (those live at the call), except its own: it counts them once, at the call, and
//! each of them decrements the count when it finishes. So a drain costs nothing per task it does
//! not wait for, and no set of ids is kept.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, Mutex, MutexGuard, thread_local_static};

pub(crate) struct Registry {
    state: Mutex<State>,
}

struct State {
    next_id: u64,
    live: usize,
    next_drain: u64,
    drains: Vec<Drain>,
}

struct Drain {
    key: u64,
    /// Tasks with an id below this were live at the call.
    before: u64,
    /// The caller's own task, which it does not wait for.
    own: Option<u64>,
    remaining: usize,
    waker: Option<Waker>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                next_id: 0,
                live: 0,
                next_drain: 0,
                drains: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Identifies this registry in the task-local marker.
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn register(&self) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.live += 1;
        id
    }

    pub(crate) fn deregister(&self, id: u64) {
        let mut woken = Vec::new();
        {
            let mut state = self.lock();
            state.live -= 1;
            for drain in &mut state.drains {
                if id < drain.before && drain.own != Some(id) {
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
        self.lock().live
    }
}

thread_local_static! {
    /// The task being polled on this thread: (registry key, task id).
    static CURRENT: Cell<Option<(usize, u64)>> = Cell::new(None);
}

/// The marker a task sets while it is polled, so that a drain knows its caller.
pub(crate) struct CurrentTask(usize, u64);

impl CurrentTask {
    pub(crate) fn new(registry: &Registry, id: u64) -> Self {
        Self(registry.key(), id)
    }

    pub(crate) fn enter(&self) -> Entered {
        Entered(CURRENT.with(|c| c.replace(Some((self.0, self.1)))))
    }
}

/// Restores the previous marker (tasks may be polled inside other tasks, as `block_on` does).
pub(crate) struct Entered(Option<(usize, u64)>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The future of `wait_for_all_other_tasks`: the set of tasks is fixed when it is created.
pub(crate) struct WaitOthers {
    registry: Arc<Registry>,
    /// `None` when there was nothing to wait for, or once done.
    key: Option<u64>,
}

impl WaitOthers {
    pub(crate) fn new(registry: &Arc<Registry>) -> Self {
        let own = CURRENT
            .with(Cell::get)
            .filter(|&(key, _)| key == registry.key())
            .map(|(_, id)| id);
        let mut state = registry.lock();
        let remaining = state.live - usize::from(own.is_some());
        let key = (remaining > 0).then(|| {
            let key = state.next_drain;
            state.next_drain += 1;
            let before = state.next_id;
            state.drains.push(Drain {
                key,
                before,
                own,
                remaining,
                waker: None,
            });
            key
        });
        drop(state);
        Self {
            registry: registry.clone(),
            key,
        }
    }
}

impl Future for WaitOthers {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(key) = self.key else {
            return Poll::Ready(());
        };
        let mut state = self.registry.lock();
        let index = state
            .drains
            .iter()
            .position(|d| d.key == key)
            .expect("a pending drain stays registered");
        let drain = &mut state.drains[index];
        if drain.remaining > 0 {
            match &mut drain.waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => drain.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        state.drains.swap_remove(index);
        drop(state);
        self.key = None;
        Poll::Ready(())
    }
}

impl Drop for WaitOthers {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.registry.lock().drains.retain(|d| d.key != key);
        }
    }
}
