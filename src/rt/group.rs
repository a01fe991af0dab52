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
//! No allocation of a group is large, up to 16,384 tasks (past them, the vector of a
//! [`Table`]'s branches doubles, at 16,384 tasks, 32,768, and so on): the slots and records are
//! in [`Table`]s of small leaves, the outcomes in a chain of small blocks, reused, and the free
//! slots are a list through the slots. "Large" is glibc's word: a request of 1,024 bytes or more
//! with its header ([`SMALL`] says why). Before, one allocation of the whole group, freed as the
//! group was dropped, made glibc give the heap's top back to the system (`brk`), and the next
//! group fault its memory in anew: 275 page faults for 10,000 tasks on smol, against 7 for
//! smol's tasks in a `FuturesUnordered`. Then chunks of 12 KiB cost the merge that [`SMALL`]
//! tells of: 120 instructions a task on smol.

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
    records: Table<Record>,
    /// The outcomes of the tasks that ended, for the group to take: newest block first, and
    /// oldest outcome first in each block.
    finished: Chain<T>,
    /// Empty blocks, for `finished` to grow into.
    spare: Chain<T>,
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

/// Outcomes, oldest first, as many as fit in [`SMALL`] bytes (41 for a `TaskGroup<u64>`), in a
/// chain of blocks.
struct Block<T> {
    outcomes: VecDeque<Ended<T>>,
    next: Option<Box<Block<T>>>,
}

/// How many outcomes a block holds.
fn block_len<T>() -> usize {
    (SMALL / size_of::<Ended<T>>()).max(1)
}

impl<T> Block<T> {
    fn new(capacity: usize) -> Box<Self> {
        Box::new(Self {
            outcomes: VecDeque::with_capacity(capacity),
            next: None,
        })
    }
}

/// Blocks linked through their `next`: the last pushed comes first. (Not a queue of blocks: at
/// 32 bytes a block, the queue's buffer is large past 31 blocks, 1,271 outcomes of a
/// `TaskGroup<u64>`.)
struct Chain<T> {
    first: Option<Box<Block<T>>>,
}

impl<T> Default for Chain<T> {
    fn default() -> Self {
        Self { first: None }
    }
}

impl<T> Chain<T> {
    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push(&mut self, mut block: Box<Block<T>>) {
        block.next = self.first.take();
        self.first = Some(block);
    }

    fn pop(&mut self) -> Option<Box<Block<T>>> {
        let mut block = self.first.take()?;
        self.first = block.next.take();
        Some(block)
    }

    /// Moves the blocks of `other` into this chain, in no particular order.
    fn append(&mut self, other: &mut Self) {
        if self.is_empty() {
            std::mem::swap(self, other);
        }
        while let Some(block) = other.pop() {
            self.push(block);
        }
    }

    /// The same blocks, the other way round.
    fn reversed(mut self) -> Self {
        let mut reversed = Self::default();
        while let Some(block) = self.pop() {
            reversed.push(block);
        }
        reversed
    }
}

impl<T> Drop for Chain<T> {
    fn drop(&mut self) {
        // One block at a time: dropping the first would drop the rest recursively.
        while self.pop().is_some() {}
    }
}

impl<T> State<T> {
    /// Queues the outcome of a task that ended, in the newest block while it has room (it
    /// never grows, so that an ending task allocates nothing while there are spare blocks).
    fn push_finished(&mut self, ended: Ended<T>) {
        match &mut self.finished.first {
            Some(block) if block.outcomes.len() < block.outcomes.capacity() => {
                block.outcomes.push_back(ended);
            }
            _ => {
                let mut block = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Block::new(block_len::<T>()));
                block.outcomes.push_back(ended);
                self.finished.push(block);
            }
        }
    }

    /// Takes the queued outcome of slot `index`, if there is one.
    fn remove_finished(&mut self, index: usize) -> Option<Ended<T>> {
        let mut block = self.finished.first.as_deref_mut();
        while let Some(this) = block {
            if let Some(at) = this.outcomes.iter().position(|ended| ended.index == index) {
                return this.outcomes.remove(at);
            }
            block = this.next.as_deref_mut();
        }
        None
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
    slots: Table<Slot>,
    /// The first of the slots the group can use now, which list the others ([`Now::Free`]).
    free: Option<usize>,
    /// Outcomes taken from the shared queue, oldest first.
    ready: Chain<T>,
    /// Blocks the group emptied, which go back to the shared state as it next takes the lock.
    emptied: Chain<T>,
    /// How many outcomes the blocks it allocated hold.
    block_room: usize,
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
fn free_slot(slots: &mut Table<Slot>, free: &mut Option<usize>, index: usize) {
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
                    records: Table::new(),
                    finished: Chain::default(),
                    spare: Chain::default(),
                    freed: Vec::new(),
                    waiter: None,
                    closed: false,
                }),
            }),
            slots: Table::new(),
            free: None,
            ready: Chain::default(),
            emptied: Chain::default(),
            block_room: 0,
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

    /// Adds slots, as many as it has (from 8 up to 256), and the blocks their outcomes fill. The
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
        // Room for an outcome of each slot, and a block more: a partly full block goes to the
        // group as it takes the queue.
        let each = after.min(block_len::<T>());
        let mut blocks = Chain::default();
        while self.block_room < after + each {
            blocks.push(Block::new(each));
            self.block_room += each;
        }
        let replaced = {
            let mut state = self.members.lock();
            state.spare.append(&mut blocks);
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
            if let Some(block) = &mut self.ready.first {
                match block.outcomes.pop_front() {
                    Some(ended) => break ended,
                    None => {
                        let emptied = self.ready.pop().expect("the block just read");
                        self.emptied.push(emptied);
                    }
                }
                continue;
            }
            let finished = {
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
                std::mem::take(&mut state.finished)
            };
            // Oldest block first, after the lock.
            self.ready = finished.reversed();
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
                Chain::default()
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
        for mut chain in [dropped, std::mem::take(&mut self.ready)] {
            while let Some(mut block) = chain.pop() {
                for ended in block.outcomes.drain(..) {
                    self.give_back(ended.index);
                }
                self.emptied.push(block);
            }
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

/// The largest allocation a group makes (up to [`Table`]'s first large growth): below glibc's
/// large requests, of 1,024 bytes with its header. glibc's first large request after a small
/// block was freed merges every small free block it holds (`malloc_consolidate`), and the next
/// task allocations are then cut from the merged blocks rather than taken from its lists of
/// blocks of their size. A group of 10,000 trivial tasks on smol made that request once, and
/// cost 2,084 instructions a task (callgrind), against 1,964 with no large request.
const SMALL: usize = 1000;

/// A vector that never makes a large allocation: up to [`LEAF`] elements in a leaf, up to
/// [`BRANCH`] leaves in a branch, and the branches in a vector that stays small up to 16,384
/// elements (and grows by doubling after). It grows as a vector does, by as many elements as it
/// has (from 8 up to [`MOST_ADDED`]), and copies nothing but the first leaf, which doubles from 8
/// elements.
struct Table<T> {
    branches: Vec<Vec<Vec<T>>>,
    len: usize,
}

const LEAF_BITS: u32 = 4;
/// The elements of a leaf: 768 bytes of slots, 512 of records.
const LEAF: usize = 1 << LEAF_BITS;
const BRANCH_BITS: u32 = 5;
/// The leaves of a branch: 768 bytes.
const BRANCH: usize = 1 << BRANCH_BITS;
const FIRST_LEAF: usize = LEAF / 2;
/// The most elements a growth adds: half a branch, so that no growth spans two branches.
const MOST_ADDED: usize = LEAF * BRANCH / 2;

const _: () = assert!(LEAF * size_of::<Slot>() <= SMALL);
const _: () = assert!(LEAF * size_of::<Record>() <= SMALL);
const _: () = assert!(BRANCH * size_of::<Vec<Slot>>() <= SMALL);

/// The memory of a growth of a [`Table`], made before it: the leaves it adds (or the first leaf,
/// doubled), and a larger vector for the branch or the branches it fills.
struct Room<T> {
    leaves: Vec<Vec<T>>,
    branch: Option<Vec<Vec<T>>>,
    branches: Option<Vec<Vec<Vec<T>>>>,
}

/// What a growth of a [`Table`] replaced, to drop later.
type Replaced<T> = (Vec<T>, Vec<Vec<T>>, Vec<Vec<Vec<T>>>);

/// A vector for `wanted` elements if `vec` has no room for them: as many as `vec` has, twice, from
/// 4 up to `most`, or `wanted` if that is more.
fn larger<V, W>(vec: &Vec<V>, wanted: usize, most: usize) -> Option<Vec<W>> {
    (wanted > vec.capacity())
        .then(|| Vec::with_capacity((2 * vec.len()).clamp(4, most).max(wanted)))
}

impl<T: Default> Table<T> {
    fn new() -> Self {
        Self {
            branches: Vec::new(),
            len: 0,
        }
    }

    /// Grows as [`added`](Self::added) says; gives the indices of the new elements.
    #[cfg(test)]
    fn grow(&mut self) -> std::ops::Range<usize> {
        let room = self.room();
        self.grow_into(room).0
    }

    /// How many elements the next growth adds: as many as it has, from 8 up to [`MOST_ADDED`].
    fn added(&self) -> usize {
        self.len.clamp(FIRST_LEAF, MOST_ADDED)
    }

    /// The memory of the next growth of a table shaped as this one (of any element type), to
    /// make before it.
    fn room<U>(&self) -> Room<U> {
        if self.len == FIRST_LEAF {
            // The first leaf doubles.
            return Room {
                leaves: vec![Vec::with_capacity(LEAF)],
                branch: None,
                branches: None,
            };
        }
        let added = self.added();
        let leaves = std::iter::repeat_with(|| Vec::with_capacity(LEAF.min(added)))
            .take(added.div_ceil(LEAF))
            .collect::<Vec<_>>();
        let (branch, branches) = match self.branches.last() {
            Some(last) if self.len % (LEAF * BRANCH) != 0 => {
                (larger(last, last.len() + leaves.len(), BRANCH), None)
            }
            _ => (
                // Room for all its leaves, but for the first branch, which grows.
                Some(Vec::with_capacity((2 * leaves.len()).clamp(4, BRANCH))),
                larger(&self.branches, self.branches.len() + 1, usize::MAX),
            ),
        };
        Room {
            leaves,
            branch,
            branches,
        }
    }

    /// Grows as [`added`](Self::added) says, in `room` (from [`room`](Self::room), of a table of
    /// this shape: without it, the growth allocates); gives the indices of the new elements, and
    /// what it replaced, to drop later.
    fn grow_into(&mut self, room: Room<T>) -> (std::ops::Range<usize>, Replaced<T>) {
        let added = self.added();
        let Room {
            leaves,
            branch,
            branches,
        } = room;
        let mut replaced: Replaced<T> = Default::default();
        if self.len == FIRST_LEAF {
            let first = &mut self.branches[0][0];
            let mut doubled = leaves.into_iter().next().unwrap_or_default();
            doubled.append(first);
            doubled.resize_with(LEAF, T::default);
            replaced.0 = std::mem::replace(first, doubled);
        } else {
            if self.len % (LEAF * BRANCH) == 0 {
                if let Some(mut larger) = branches {
                    larger.append(&mut self.branches);
                    replaced.2 = std::mem::replace(&mut self.branches, larger);
                }
                self.branches.push(branch.unwrap_or_default());
            } else if let Some(mut larger) = branch {
                let last = self.branches.last_mut().expect("a branch with room");
                larger.append(last);
                replaced.1 = std::mem::replace(last, larger);
            }
            let last = self.branches.last_mut().expect("a branch was just made");
            let mut leaves = leaves.into_iter();
            let mut left = added;
            while left > 0 {
                let mut leaf = leaves.next().unwrap_or_default();
                leaf.resize_with(left.min(LEAF), T::default);
                left -= leaf.len();
                last.push(leaf);
            }
        }
        debug_assert!(self.branches.iter().all(|branch| branch.len() <= BRANCH));
        self.len += added;
        (self.len - added..self.len, replaced)
    }

    fn get(&self, index: usize) -> Option<&T> {
        self.branches
            .get(index >> (LEAF_BITS + BRANCH_BITS))?
            .get((index >> LEAF_BITS) % BRANCH)?
            .get(index % LEAF)
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.branches
            .get_mut(index >> (LEAF_BITS + BRANCH_BITS))?
            .get_mut((index >> LEAF_BITS) % BRANCH)?
            .get_mut(index % LEAF)
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.branches.iter().flatten().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.branches.iter_mut().flatten().flatten()
    }
}

impl<T: Default> std::ops::Index<usize> for Table<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index).expect("an index the table has")
    }
}

impl<T: Default> std::ops::IndexMut<usize> for Table<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.get_mut(index).expect("an index the table has")
    }
}

#[cfg(test)]
mod tests {
    use super::{Block, Chain, Ended, Table};
    use crate::rt::JoinError;

    fn block(index: usize) -> Box<Block<u64>> {
        let mut block = Block::new(1);
        block.outcomes.push_back(Ended {
            index,
            output: Err(JoinError::Cancelled),
        });
        block
    }

    fn indices(mut chain: Chain<u64>) -> Vec<usize> {
        std::iter::from_fn(|| chain.pop())
            .map(|block| block.outcomes[0].index)
            .collect()
    }

    #[test]
    fn a_chain_gives_its_blocks_back_last_first_or_reversed() {
        let mut chain = Chain::default();
        (0..3).for_each(|i| chain.push(block(i)));
        let mut other = Chain::default();
        (3..5).for_each(|i| other.push(block(i)));
        let mut empty = Chain::default();
        empty.append(&mut other);
        assert!(other.is_empty());
        chain.append(&mut empty);
        assert!(empty.is_empty());
        let mut all = indices(chain);
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        let mut chain = Chain::default();
        (0..3).for_each(|i| chain.push(block(i)));
        assert_eq!(indices(chain), [2, 1, 0]);
        let mut chain = Chain::default();
        (0..3).for_each(|i| chain.push(block(i)));
        assert_eq!(indices(chain.reversed()), [0, 1, 2]);
    }

    /// Every vector of `table`, as its buffer and capacity (those with a buffer).
    fn buffers(table: &Table<usize>) -> Vec<(*const usize, usize)> {
        let mut all = vec![(table.branches.as_ptr().cast(), table.branches.capacity())];
        for branch in &table.branches {
            all.push((branch.as_ptr().cast(), branch.capacity()));
            all.extend(branch.iter().map(|leaf| (leaf.as_ptr(), leaf.capacity())));
        }
        all.retain(|&(_, capacity)| capacity > 0);
        all
    }

    #[test]
    fn a_table_grows_into_its_room_and_allocates_nothing_itself() {
        // Past 16,384 elements, where the vector of branches doubles to 64.
        let mut table = Table::<usize>::new();
        while table.len < 20_000 {
            let room = table.room();
            let mut known = buffers(&table);
            known.extend(
                room.leaves
                    .iter()
                    .map(|leaf| (leaf.as_ptr(), leaf.capacity())),
            );
            known.extend(
                room.branch
                    .iter()
                    .map(|b| (b.as_ptr().cast(), b.capacity())),
            );
            known.extend(
                room.branches
                    .iter()
                    .map(|b| (b.as_ptr().cast(), b.capacity())),
            );
            let (_, replaced) = table.grow_into(room);
            for buffer in buffers(&table) {
                assert!(
                    known.contains(&buffer),
                    "a vector of {} elements, at {} elements, not made ahead",
                    buffer.1,
                    table.len
                );
            }
            drop(replaced);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // a million blocks
    fn a_long_chain_is_dropped_without_a_deep_recursion() {
        let mut chain = Chain::default();
        (0..1_000_000).for_each(|i| chain.push(block(i)));
        drop(chain);
    }

    #[test]
    fn a_table_keeps_every_index_apart_as_it_grows() {
        let mut numbers = Table::<usize>::new();
        let mut added = Vec::new();
        for _ in 0..10 {
            let range = numbers.grow();
            added.push(range.len());
            for i in range {
                numbers[i] = i;
            }
        }
        // Doubling up to half a branch, then half a branch each.
        assert_eq!(added, [8, 8, 16, 32, 64, 128, 256, 256, 256, 256]);
        assert!((0..1280).all(|i| numbers[i] == i));
        assert_eq!(
            numbers.iter().copied().collect::<Vec<_>>(),
            (0..1280).collect::<Vec<_>>()
        );
        assert!(numbers.get_mut(1280).is_none());
        // Three branches, of 32, 32 and 16 leaves of 16.
        let leaves = numbers.branches.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(leaves, [32, 32, 16]);
        assert!(
            numbers
                .branches
                .iter()
                .flatten()
                .all(|leaf| leaf.len() == 16)
        );
    }
}
