//! What the tasks of a [`TaskGroup`](crate::TaskGroup) share with their group: one state for
//! the whole group, where a task with a [`JoinHandle`](super::JoinHandle) has one of its own.
//!
//! Each task of a group has a slot, numbered by its group: a record in the shared state (its
//! abort mark, and the waker an abort wakes), and the group's own bookkeeping of it, which
//! only the group touches. A task that ends pushes its outcome onto the group's queue of
//! finished tasks, and the group takes the whole queue at once, in the order the tasks ended.
//! So against a `FuturesUnordered` of `JoinHandle`s, a task costs two allocations fewer (the
//! handle's state and the node); the group takes the lock once to spawn many tasks (as it
//! adds slots) and once per batch of outcomes, and a task once, as it ends.
//!
//! A slot is reused once its task has ended and its outcome was taken (or dropped), so a task is
//! its slot and its *use* of it: how many tasks of the slot had ended before it started. A
//! record counts the tasks of its slot that ended, so a stale [`AbortHandle`] finds a count
//! past its own, and does nothing.

use std::collections::VecDeque;
use std::task::Waker;

use super::adapters::Kept;
use super::task::{AbortHandle, JoinError, Report, TaskId};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex, MutexGuard, lock};

/// The state a group shares with its tasks and their abort handles.
pub(crate) struct Members<T> {
    /// Set by the first abort, and never cleared: until then a task that is about to be polled
    /// knows it is not aborted without taking the lock. On a cache line of its own, away from
    /// the lock that every ending task writes.
    any_aborted: Padded<AtomicBool>,
    state: Mutex<State<T>>,
}

#[repr(align(64))]
struct Padded<T>(T);

struct State<T> {
    records: Chunked<Record>,
    /// The outcomes of the tasks that ended, oldest first, for the group to take.
    finished: VecDeque<Ended<T>>,
    /// The slots of detached tasks that ended, for the group to reuse.
    freed: Vec<usize>,
    /// The waker of the group's `join_next`, woken when a task ends.
    waiter: Option<Waker>,
    /// The group was dropped: outcomes are dropped as they come.
    closed: bool,
}

#[derive(Default)]
struct Record {
    /// How many tasks of this slot have ended: the running one's use, while one runs.
    ended: u64,
    aborted: bool,
    /// Out of the group (`detach_all`): its outcome is dropped, and the slot given back.
    detached: bool,
    /// The waker of the task's last poll that returned `Pending`: an abort wakes it.
    waker: Option<Waker>,
}

/// A task that ended, as it reports: its slot, and its output.
struct Ended<T> {
    index: usize,
    output: Result<T, JoinError>,
}

/// A task that ended, as the group gives it: its place in spawn order, its id, and its output.
pub(crate) struct Joined<T> {
    pub(crate) place: u64,
    pub(crate) id: TaskId,
    pub(crate) output: Result<T, JoinError>,
}

impl<T> Members<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Marks the task of `record` aborted; the waker to wake, if it is parked.
    fn mark_aborted(&self, record: &mut Record) -> Option<Waker> {
        self.any_aborted.0.store(true, Ordering::Release);
        record.aborted = true;
        record.waker.take()
    }

    /// Aborts the task that is the `use_`-th of slot `index`, if it has not ended.
    fn abort(&self, index: usize, use_: u64) {
        let waker = {
            let mut state = self.lock();
            match state.records.get_mut(index) {
                Some(record) if record.ended == use_ => self.mark_aborted(record),
                _ => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the `use_`-th task of slot `index` has ended.
    fn has_ended(&self, index: usize, use_: u64) -> bool {
        self.lock()
            .records
            .get(index)
            .is_none_or(|record| record.ended != use_)
    }
}

/// The group's side: the shared state, and its own bookkeeping of the slots.
pub(crate) struct Group<T> {
    members: Arc<Members<T>>,
    /// How many tasks each slot started, whether its task is in the group (spawned, and
    /// neither taken nor detached), and the executor's handle on it.
    slots: Chunked<Slot>,
    /// Slots the group can use now.
    free: Vec<usize>,
    /// Outcomes taken from the shared queue, oldest first.
    ready: VecDeque<Ended<T>>,
    len: usize,
}

#[derive(Default)]
struct Slot {
    started: u64,
    in_group: bool,
    /// The id of the slot's latest task, and its place in spawn order.
    id: Option<TaskId>,
    place: u64,
    /// Dropped as the group takes the task's outcome, so that the executor frees the task on
    /// the group's thread (see [`Kept`]).
    kept: Option<Kept>,
}

impl Slot {
    /// The use of the slot's latest task.
    fn latest(&self) -> u64 {
        self.started - 1
    }

    /// The task is out of the group.
    fn leave(&mut self) {
        self.in_group = false;
        self.kept = None;
    }
}

/// A task about to be spawned in a group: its slot, its use of it, and its id.
pub(crate) struct Place {
    index: usize,
    use_: u64,
    pub(crate) id: TaskId,
}

impl<T> Group<T> {
    pub(crate) fn new() -> Self {
        Self {
            members: Arc::new(Members {
                any_aborted: Padded(AtomicBool::new(false)),
                state: Mutex::new(State {
                    records: Chunked::new(),
                    finished: VecDeque::new(),
                    freed: Vec::new(),
                    waiter: None,
                    closed: false,
                }),
            }),
            slots: Chunked::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            len: 0,
        }
    }

    /// How many tasks are in the group.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A slot for a new task, the `place`-th spawned. Takes the lock only when the group has
    /// no free slot: it then takes back the slots of detached tasks that ended, or adds as many
    /// slots as it has.
    pub(crate) fn reserve(&mut self, place: u64) -> Place {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                {
                    let mut state = self.members.lock();
                    if state.freed.is_empty() {
                        let added = state.records.grow();
                        let also = self.slots.grow();
                        debug_assert_eq!(added, also);
                        self.free.extend(added.rev());
                    } else {
                        self.free.append(&mut state.freed);
                    }
                }
                self.free.pop().expect("slots were just added")
            }
        };
        let id = TaskId::next();
        let slot = &mut self.slots[index];
        slot.started += 1;
        slot.id = Some(id);
        slot.place = place;
        Place {
            index,
            use_: slot.latest(),
            id,
        }
    }

    /// How the task at `place` reports.
    pub(crate) fn report(&self, place: &Place) -> Member<T> {
        Member {
            members: self.members.clone(),
            index: place.index,
            use_: place.use_,
        }
    }

    /// The task at `place` was spawned, and the executor gave `kept`: it is in the group.
    pub(crate) fn spawned(&mut self, place: &Place, kept: Kept) -> AbortHandle
    where
        T: Send + 'static,
    {
        let slot = &mut self.slots[place.index];
        slot.in_group = true;
        slot.kept = Some(kept);
        self.len += 1;
        AbortHandle::of_member(&self.members, place.index, place.use_, place.id)
    }

    /// The spawn of the task at `place` failed (the spawner panicked): whether the task was
    /// dropped (it reported `Cancelled`) or kept, it is not in the group.
    pub(crate) fn forget(&mut self, place: &Place) {
        let dropped = {
            let mut state = self.members.lock();
            let record = &mut state.records[place.index];
            if record.ended == place.use_ {
                // Kept, and running: its slot comes back when it ends.
                record.detached = true;
                None
            } else {
                let at = state
                    .finished
                    .iter()
                    .position(|ended| ended.index == place.index);
                self.free.push(place.index);
                at.and_then(|at| state.finished.remove(at))
            }
        };
        drop(dropped);
    }

    /// The oldest outcome not yet taken; if there is none and `waker` is given, it is woken
    /// when a task ends.
    pub(crate) fn take(&mut self, waker: Option<&Waker>) -> Option<Joined<T>> {
        if self.ready.is_empty() {
            let mut state = self.members.lock();
            if state.finished.is_empty() {
                if let Some(waker) = waker {
                    match &mut state.waiter {
                        Some(waiter) => waiter.clone_from(waker),
                        waiter => *waiter = Some(waker.clone()),
                    }
                }
                return None;
            }
            std::mem::swap(&mut state.finished, &mut self.ready);
        }
        let Ended { index, output } = self.ready.pop_front()?;
        let slot = &mut self.slots[index];
        slot.leave();
        let id = slot.id.expect("a slot that was used has an id");
        let place = slot.place;
        self.free.push(index);
        self.len -= 1;
        Some(Joined {
            place,
            id,
            output: output.map_err(|error| error.of_task(id)),
        })
    }

    /// Aborts every task of the group that has not ended; with `close`, as the group is
    /// dropped, every outcome is dropped from then on.
    fn abort_running(&mut self, close: bool) {
        let mut wakers = Vec::new();
        let dropped = {
            let mut state = self.members.lock();
            state.closed |= close;
            for (index, slot) in self.slots.iter().enumerate() {
                let record = &mut state.records[index];
                if slot.in_group && record.ended == slot.latest() {
                    wakers.extend(self.members.mark_aborted(record));
                }
            }
            if close {
                std::mem::take(&mut state.finished)
            } else {
                VecDeque::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        drop(dropped);
    }

    /// Aborts every task of the group that has not ended; they stay in the group.
    pub(crate) fn abort_all(&mut self) {
        self.abort_running(false);
    }

    /// Takes every task out of the group without aborting it, and drops the outcomes not taken.
    pub(crate) fn detach_all(&mut self) {
        let dropped = {
            let mut state = self.members.lock();
            for (index, slot) in self.slots.iter_mut().enumerate() {
                let record = &mut state.records[index];
                if slot.in_group && record.ended == slot.latest() {
                    // Its slot comes back when it ends.
                    record.detached = true;
                    slot.leave();
                }
            }
            std::mem::take(&mut state.finished)
        };
        let dropped = dropped.into_iter().chain(std::mem::take(&mut self.ready));
        for ended in dropped {
            self.slots[ended.index].leave();
            self.free.push(ended.index);
        }
        self.len = 0;
    }
}

impl<T> Drop for Group<T> {
    fn drop(&mut self) {
        self.abort_running(true);
    }
}

/// How a task of a group reports: into its record, and onto its group's queue.
pub(crate) struct Member<T> {
    members: Arc<Members<T>>,
    index: usize,
    use_: u64,
}

impl<T: Send + 'static> Report<T> for Member<T> {
    fn is_aborted(&self) -> bool {
        self.members.any_aborted.0.load(Ordering::Acquire)
            && self.members.lock().records[self.index].aborted
    }

    fn parked(&self, waker: &Waker) -> bool {
        let mut state = self.members.lock();
        let record = &mut state.records[self.index];
        match &mut record.waker {
            Some(parked) => parked.clone_from(waker),
            parked => *parked = Some(waker.clone()),
        }
        record.aborted
    }

    fn complete(&self, output: Result<T, JoinError>) {
        let ended = Ended {
            index: self.index,
            output,
        };
        let mut state = self.members.lock();
        let record = &mut state.records[self.index];
        debug_assert_eq!(record.ended, self.use_, "a task ends once");
        record.ended += 1;
        record.aborted = false;
        let parked = record.waker.take();
        let detached = std::mem::take(&mut record.detached);
        let (waiter, dropped) = if state.closed {
            (None, Some(ended))
        } else if detached {
            state.freed.push(self.index);
            (None, Some(ended))
        } else {
            state.finished.push_back(ended);
            (state.waiter.take(), None)
        };
        drop(state);
        drop((parked, dropped));
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

/// What an [`AbortHandle`] of a group's task does to its group, whatever the tasks' output type.
pub(crate) trait Slots: Send + Sync {
    fn abort(&self, index: usize, use_: u64);
    fn has_ended(&self, index: usize, use_: u64) -> bool;
}

impl<T: Send> Slots for Members<T> {
    fn abort(&self, index: usize, use_: u64) {
        Members::abort(self, index, use_);
    }
    fn has_ended(&self, index: usize, use_: u64) -> bool {
        Members::has_ended(self, index, use_)
    }
}

#[cfg(loom)]
impl<T: Send> Slots for Arc<Members<T>> {
    fn abort(&self, index: usize, use_: u64) {
        Members::abort(self, index, use_);
    }
    fn has_ended(&self, index: usize, use_: u64) -> bool {
        Members::has_ended(self, index, use_)
    }
}

/// A vector whose elements never move as it grows, so that growing it copies nothing: chunks of
/// 8, 8, 16, 32, ... elements, each as long as all the chunks before it.
struct Chunked<T> {
    chunks: Vec<Box<[T]>>,
    len: usize,
}

const FIRST_CHUNK: usize = 8;

impl<T: Default> Chunked<T> {
    fn new() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Adds a chunk of default elements; gives their indices.
    fn grow(&mut self) -> std::ops::Range<usize> {
        let added = self.len.max(FIRST_CHUNK);
        self.chunks
            .push(std::iter::repeat_with(T::default).take(added).collect());
        self.len += added;
        self.len - added..self.len
    }

    /// The chunk of element `index`, and its place in it.
    fn locate(index: usize) -> (usize, usize) {
        if index < FIRST_CHUNK {
            return (0, index);
        }
        let log = index.ilog2() as usize;
        (log - FIRST_CHUNK.ilog2() as usize + 1, index - (1 << log))
    }

    fn get(&self, index: usize) -> Option<&T> {
        let (chunk, at) = Self::locate(index);
        self.chunks.get(chunk).map(|chunk| &chunk[at])
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (chunk, at) = Self::locate(index);
        self.chunks.get_mut(chunk).map(|chunk| &mut chunk[at])
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flat_map(|chunk| chunk.iter_mut())
    }
}

impl<T: Default> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index).expect("an index the vector has")
    }
}

impl<T: Default> std::ops::IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.get_mut(index).expect("an index the vector has")
    }
}

#[cfg(test)]
mod tests {
    use super::Chunked;

    #[test]
    fn a_chunked_vector_keeps_every_index_apart_as_it_grows() {
        let mut numbers = Chunked::<usize>::new();
        let mut added = Vec::new();
        for _ in 0..8 {
            let range = numbers.grow();
            added.push(range.len());
            for i in range {
                numbers[i] = i;
            }
        }
        assert_eq!(added, [8, 8, 16, 32, 64, 128, 256, 512]);
        assert!((0..1024).all(|i| numbers[i] == i));
        assert_eq!(
            numbers.iter().copied().collect::<Vec<_>>(),
            (0..1024).collect::<Vec<_>>()
        );
        assert!(numbers.get_mut(1024).is_none());
    }
}
