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
//!
//! No allocation of a group grows past a few kilobytes, however many tasks it has: the slots
//! and records come in chunks of [`CHUNK`], the outcomes in blocks of at most
//! [`BLOCK`], reused, and the free slots are a list through the slots. One large allocation,
//! freed as the group is dropped, made glibc give the heap's top back to the system (`brk`), and
//! the next group fault its memory in anew: 275 page faults for 10,000 tasks on smol, against 7
//! for smol's tasks in a `FuturesUnordered`, made of small allocations only.

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
    finished: VecDeque<Block<T>>,
    /// Empty blocks, for `finished` to grow into.
    spare: Vec<Block<T>>,
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

/// Outcomes, oldest first: at most [`BLOCK`] of them.
type Block<T> = VecDeque<Ended<T>>;

/// The outcomes a block holds: 6 KiB of them for a `TaskGroup<u64>`.
const BLOCK: usize = 256;

impl<T> State<T> {
    /// Queues the outcome of a task that ended, in the newest block while it has room.
    fn push_finished(&mut self, ended: Ended<T>) {
        match self.finished.back_mut() {
            Some(block) if block.len() < BLOCK => block.push_back(ended),
            _ => {
                let mut block = self.spare.pop().unwrap_or_default();
                block.push_back(ended);
                self.finished.push_back(block);
            }
        }
    }

    /// Takes the queued outcome of slot `index`, if there is one.
    fn remove_finished(&mut self, index: usize) -> Option<Ended<T>> {
        self.finished.iter_mut().find_map(|block| {
            let at = block.iter().position(|ended| ended.index == index)?;
            block.remove(at)
        })
    }
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
    /// The first of the slots the group can use now, which list the others ([`Now::Free`]).
    free: Option<usize>,
    /// Outcomes taken from the shared queue, oldest first.
    ready: VecDeque<Block<T>>,
    /// Blocks the group emptied, which go back to the shared state as it next takes the lock.
    emptied: Vec<Block<T>>,
    /// The blocks the group allocated.
    blocks: usize,
    len: usize,
}

#[derive(Default)]
struct Slot {
    started: u64,
    /// The id of the slot's latest task, and its place in spawn order.
    id: Option<TaskId>,
    place: u64,
    now: Now,
}

/// What a slot is now.
enum Now {
    /// Free: the next free slot.
    Free(Option<usize>),
    /// Its task is in the group (spawned, and neither taken nor detached), and this is the
    /// executor's handle on it, dropped as the group takes the task's outcome, so that the
    /// executor frees the task on the group's thread (see [`Kept`]).
    InGroup(#[allow(dead_code, reason = "held to be dropped, never read")] Kept),
    /// Neither: about to be spawned, or its task is out of the group and has not ended.
    Out,
}

impl Default for Now {
    fn default() -> Self {
        Self::Free(None)
    }
}

impl Slot {
    /// The use of the slot's latest task.
    fn latest(&self) -> u64 {
        self.started - 1
    }

    /// Whether its task is in the group and has not ended, as `record` says.
    fn runs_in_group(&self, record: &Record) -> bool {
        matches!(self.now, Now::InGroup(_)) && record.ended == self.latest()
    }
}

/// Puts slot `index` first in the list of free slots that starts at `free`.
#[inline]
fn free_slot(slots: &mut Chunked<Slot>, free: &mut Option<usize>, index: usize) {
    slots[index].now = Now::Free(free.replace(index));
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
                    spare: Vec::new(),
                    freed: Vec::new(),
                    waiter: None,
                    closed: false,
                }),
            }),
            slots: Chunked::new(),
            free: None,
            ready: VecDeque::new(),
            emptied: Vec::new(),
            blocks: 0,
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
        if self.free.is_none() {
            let freed = std::mem::take(&mut self.members.lock().freed);
            if freed.is_empty() {
                self.grow();
            } else {
                freed.into_iter().for_each(|index| self.give_back(index));
            }
        }
        let index = self.free.expect("a free slot was just made");
        let id = TaskId::next();
        let slot = &mut self.slots[index];
        match std::mem::replace(&mut slot.now, Now::Out) {
            Now::Free(next) => self.free = next,
            _ => unreachable!("the free list holds free slots only"),
        }
        slot.started += 1;
        slot.id = Some(id);
        slot.place = place;
        Place {
            index,
            use_: slot.latest(),
            id,
        }
    }

    /// Makes slot `index` free.
    fn give_back(&mut self, index: usize) {
        free_slot(&mut self.slots, &mut self.free, index);
    }

    /// Adds slots, as many as it has (up to a chunk), and the blocks their outcomes fill. The
    /// memory is allocated before the lock is taken, and what it replaces freed after: an ending
    /// task takes the lock, and it waited for those allocations (glibc's, under its arena lock),
    /// so long that on smol, 10,000 trivial tasks in a group ran one by one after the spawns
    /// instead of beside them (35 of them ended during the spawns, against 5,000 to 9,000 for
    /// smol's own tasks). The blocks are allocated on the group's thread, so that an ending task
    /// allocates none (an allocation made on an executor's thread comes from glibc's arena of
    /// that thread, and is freed into it from the group's, under its lock).
    fn grow(&mut self) {
        let records = self.slots.room();
        let slots = self.slots.room();
        let after = self.slots.len + self.slots.added();
        // A partly full block goes to the group as it takes the queue: one more.
        let wanted = (after.div_ceil(BLOCK) + 1).saturating_sub(self.blocks);
        let capacity = after.min(BLOCK);
        let blocks: Vec<Block<T>> = std::iter::repeat_with(|| VecDeque::with_capacity(capacity))
            .take(wanted)
            .collect();
        self.blocks += wanted;
        let replaced = {
            let mut state = self.members.lock();
            state.spare.extend(blocks);
            state.records.grow_into(records)
        };
        drop(replaced);
        let (added, _) = self.slots.grow_into(slots);
        added.rev().for_each(|index| self.give_back(index));
    }

    /// How the task at `place` reports.
    pub(crate) fn report(&self, place: &Place) -> Member<T> {
        Member {
            members: self.members.clone(),
            index: place.index,
            #[cfg(debug_assertions)]
            use_: place.use_,
        }
    }

    /// The task at `place` was spawned, and the executor gave `kept`: it is in the group.
    pub(crate) fn spawned(&mut self, place: &Place, kept: Kept) -> AbortHandle
    where
        T: Send + 'static,
    {
        self.slots[place.index].now = Now::InGroup(kept);
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
                free_slot(&mut self.slots, &mut self.free, place.index);
                state.remove_finished(place.index)
            }
        };
        drop(dropped);
    }

    /// The oldest outcome not yet taken; if there is none and `waker` is given, it is woken
    /// when a task ends.
    pub(crate) fn take(&mut self, waker: Option<&Waker>) -> Option<Joined<T>> {
        let Ended { index, output } = loop {
            if let Some(block) = self.ready.front_mut() {
                match block.pop_front() {
                    Some(ended) => break ended,
                    None => self.emptied.extend(self.ready.pop_front()),
                }
                continue;
            }
            let mut state = self.members.lock();
            state.spare.append(&mut self.emptied);
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
        };
        let slot = &self.slots[index];
        let id = slot.id.expect("a slot that was used has an id");
        let place = slot.place;
        self.give_back(index);
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
                if slot.runs_in_group(record) {
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
                if slot.runs_in_group(record) {
                    // Its slot comes back when it ends.
                    record.detached = true;
                    slot.now = Now::Out;
                }
            }
            std::mem::take(&mut state.finished)
        };
        // The outcomes are dropped without the lock, and their blocks kept.
        for mut block in dropped.into_iter().chain(std::mem::take(&mut self.ready)) {
            for ended in block.drain(..) {
                self.give_back(ended.index);
            }
            self.emptied.push(block);
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
///
/// Its slot cannot be reused while it runs, so it needs no use of its own (but to check that).
/// The 8 bytes matter: a trivial task on smol is then 120 bytes, the largest that glibc frees
/// onto a fast bin, where 128 bytes took 70 instructions more a task to free.
pub(crate) struct Member<T> {
    members: Arc<Members<T>>,
    index: usize,
    #[cfg(debug_assertions)]
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
        #[cfg(debug_assertions)]
        assert_eq!(record.ended, self.use_, "a task ends once");
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
            state.push_finished(ended);
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

/// A vector in chunks of [`CHUNK`] elements, so that growing it copies nothing and no one
/// allocation is large: the first chunk doubles from 8 elements until it is full (copying a few
/// kilobytes at most), and then each growth adds a chunk.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

const FIRST_CHUNK: usize = 8;

/// The elements of a chunk: 12 KiB of slots, 8 KiB of records.
const CHUNK: usize = 256;

impl<T: Default> Chunked<T> {
    fn new() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Adds default elements, as many as it has, from 8 up to a chunk; gives their indices.
    #[cfg(test)]
    fn grow(&mut self) -> std::ops::Range<usize> {
        let room = self.room();
        self.grow_into(room).0
    }

    /// How many elements the next growth adds: as many as it has, from 8 up to a chunk.
    fn added(&self) -> usize {
        self.len.clamp(FIRST_CHUNK, CHUNK)
    }

    /// The memory of the next growth of a vector shaped as this one (of any element type), to
    /// make before it: room for the chunk it adds, or for the last chunk grown.
    fn room<U>(&self) -> Vec<U> {
        let added = self.added();
        match self.chunks.last() {
            Some(last) if last.len() < CHUNK => Vec::with_capacity(last.len() + added),
            _ => Vec::with_capacity(added),
        }
    }

    /// Adds default elements, as many as it has, from 8 up to a chunk, in `room` (from
    /// [`room`](Self::room)); gives their indices, and the chunk it replaced, to drop later.
    fn grow_into(&mut self, mut room: Vec<T>) -> (std::ops::Range<usize>, Vec<T>) {
        let added = self.added();
        let replaced = match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                room.append(last);
                room.resize_with(room.len() + added, T::default);
                std::mem::replace(last, room)
            }
            _ => {
                room.resize_with(added, T::default);
                self.chunks.push(room);
                Vec::new()
            }
        };
        debug_assert!(self.chunks.iter().all(|chunk| chunk.len() <= CHUNK));
        self.len += added;
        (self.len - added..self.len, replaced)
    }

    fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)
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
        for _ in 0..10 {
            let range = numbers.grow();
            added.push(range.len());
            for i in range {
                numbers[i] = i;
            }
        }
        // Doubling up to a chunk, then a chunk each.
        assert_eq!(added, [8, 8, 16, 32, 64, 128, 256, 256, 256, 256]);
        assert!((0..1280).all(|i| numbers[i] == i));
        assert_eq!(
            numbers.iter().copied().collect::<Vec<_>>(),
            (0..1280).collect::<Vec<_>>()
        );
        assert!(numbers.get_mut(1280).is_none());
    }
}
