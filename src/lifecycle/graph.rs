//! The cycle check that runs before a tree's init or deinit.
//!
//! Each phase is two nodes, its start and its finish, and an edge `x -> y` means "x cannot
//! happen before y":
//!
//! - finish(p) -> start(p): a phase finishes after it starts;
//! - start(p) -> finish(q) for each `p.after(q)`;
//! - start(child) -> start(parent): a child's phase is run only once its parent's has started;
//! - finish(parent) -> finish(child): a parent finishes after its children.
//!
//! A cycle in this graph is a set of phases that would wait for each other forever. Modelling the
//! start and the finish apart is what catches a parent that waits `after` its own child (the child
//! only starts once the parent has). Phases that are already over wait for nothing, and a started
//! phase's start waits for nothing; `wait_before` futures are opaque and not part of the graph.
//!
//! A plain tree (no `after` edge anywhere, no child reached twice) cannot have a cycle, so then
//! only the walk runs: the check costs one visit per component.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Weak};

use super::phase::PhaseInner;
use super::{DynComponent, LifecycleError, PhaseKind};

/// The graph's maps (and a service report's) are keyed by addresses, which are unique and
/// already spread: a multiply mixes them (the "lifecycle init, chain" row: SipHash cost it a
/// sixth more instructions per link).
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, address: usize) {
        self.0 = (address as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

pub(crate) type ByAddress = BuildHasherDefault<AddressHasher>;

/// A phase in the graph: its state, and the component it belongs to if it is in the tree.
struct Node<'a> {
    /// Borrowed from its component for a phase in the tree; owned for one outside it, found
    /// through an `after` edge.
    phase: Cow<'a, Arc<PhaseInner>>,
    component: Option<&'a dyn DynComponent>,
    /// The first parent; a shared child's others are in [`Graph::other_parents`].
    parent: Option<usize>,
    /// Its children: `children[from..to]` of the graph (a walk lists a node's children at once).
    children: (usize, usize),
}

struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    /// Each node by the address of its phase.
    index: HashMap<usize, usize, ByAddress>,
    /// The children of every node, each node's in one run.
    children: Vec<usize>,
    /// `(child, parent)` for each parent of a shared child but the first (most trees have none).
    other_parents: Vec<(usize, usize)>,
}

impl<'a> Graph<'a> {
    fn node(
        &mut self,
        phase: Cow<'a, Arc<PhaseInner>>,
        component: Option<&'a dyn DynComponent>,
    ) -> (usize, bool) {
        let index = self.nodes.len();
        match self.index.entry(Arc::as_ptr(&phase) as usize) {
            Entry::Occupied(known) => (*known.get(), false),
            Entry::Vacant(new) => {
                new.insert(index);
                self.nodes.push(Node {
                    phase,
                    component,
                    parent: None,
                    children: (0, 0),
                });
                (index, true)
            }
        }
    }

    /// Walks the component tree under `root`, recording the parent/child edges.
    fn walk(root: &'a dyn DynComponent, kind: PhaseKind) -> Self {
        let mut graph = Graph {
            nodes: Vec::new(),
            index: HashMap::default(),
            children: Vec::new(),
            other_parents: Vec::new(),
        };
        let root_phase = Cow::Borrowed(root.dyn_lifecycle().phase(kind).inner());
        let (root_index, _) = graph.node(root_phase, Some(root));
        let mut stack = vec![(root, root_index)];
        while let Some((component, parent)) = stack.pop() {
            let children = component.dyn_children().into_items();
            graph.nodes.reserve(children.len());
            graph.index.reserve(children.len());
            stack.reserve(children.len());
            let from = graph.children.len();
            for child in children {
                let phase = Cow::Borrowed(child.dyn_lifecycle().phase(kind).inner());
                let (index, new) = graph.node(phase, Some(child));
                graph.children.push(index);
                match graph.nodes[index].parent {
                    None => graph.nodes[index].parent = Some(parent),
                    Some(_) => graph.other_parents.push((index, parent)),
                }
                if new {
                    stack.push((child, index));
                }
            }
            graph.nodes[parent].children = (from, graph.children.len());
        }
        graph
    }

    /// Pushes onto `out` the nodes a node waits for; a node is `2 * index` (start) or
    /// `2 * index + 1` (finish).
    fn edges(&mut self, node: usize, out: &mut Vec<usize>) {
        let (index, finish) = (node / 2, node % 2 == 1);
        let phase = &self.nodes[index].phase;
        if phase.is_over() {
            return;
        }
        if finish {
            let (from, to) = self.nodes[index].children;
            out.extend(self.children[from..to].iter().map(|c| 2 * c + 1));
            out.push(2 * index);
            return;
        }
        if phase.is_started() {
            return;
        }
        let node = &self.nodes[index];
        out.extend(node.parent.iter().map(|p| 2 * p));
        if !self.other_parents.is_empty() {
            let others = self.other_parents.iter().filter(|(c, _)| *c == index);
            out.extend(others.map(|(_, p)| 2 * p));
        }
        if !phase.has_afters() {
            return;
        }
        // Found by address: only a phase outside the tree is kept alive (by the graph), and
        // added once the phase is no longer borrowed.
        let mut outside = Vec::new();
        let known = &self.index;
        phase.each_after(|target| match known.get(&(Weak::as_ptr(target) as usize)) {
            Some(&index) => out.push(2 * index + 1),
            None => outside.extend(target.upgrade()),
        });
        for target in outside {
            let (index, _) = self.node(Cow::Owned(target), None);
            out.push(2 * index + 1);
        }
    }

    /// The first cycle found by a depth-first search, as node indices (the first repeated last).
    ///
    /// One stack holds the edges not yet followed of every node on the path, so that a visit
    /// allocates nothing.
    fn find_cycle(&mut self) -> Option<Vec<usize>> {
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        // Sized for the tree; a node found outside it (through an `after` edge) grows them.
        let mut marks: Vec<u8> = vec![NEW; 2 * self.nodes.len()];
        let mut unfollowed: Vec<usize> = Vec::with_capacity(2 * self.nodes.len());
        // Each node on the path, and where its edges start in `unfollowed`.
        let mut path: Vec<(usize, usize)> = Vec::with_capacity(2 * self.nodes.len());
        let mut start = 0;
        while start < 2 * self.nodes.len() {
            if marks.len() < 2 * self.nodes.len() {
                marks.resize(2 * self.nodes.len(), NEW);
            }
            if marks[start] != NEW {
                start += 1;
                continue;
            }
            marks[start] = ON_PATH;
            path.push((start, unfollowed.len()));
            self.edges(start, &mut unfollowed);
            while let Some(&(node, from)) = path.last() {
                if unfollowed.len() == from {
                    marks[node] = DONE;
                    path.pop();
                    continue;
                }
                let next = unfollowed.pop()?;
                if next >= marks.len() {
                    marks.resize(2 * self.nodes.len(), NEW);
                }
                match marks[next] {
                    DONE => {}
                    ON_PATH => {
                        let from = path.iter().position(|&(n, _)| n == next)?;
                        let mut cycle: Vec<usize> =
                            path[from..].iter().map(|(n, _)| n / 2).collect();
                        cycle.push(next / 2);
                        cycle.dedup();
                        return Some(cycle);
                    }
                    _ => {
                        marks[next] = ON_PATH;
                        path.push((next, unfollowed.len()));
                        self.edges(next, &mut unfollowed);
                    }
                }
            }
            start += 1;
        }
        None
    }

    fn name(&self, index: usize) -> String {
        let node = &self.nodes[index];
        match node.component {
            Some(component) => component.dyn_name().into_owned(),
            None => node.phase.name(),
        }
    }
}

/// The fast pass: a visit per component, no graph. `false` for a plain tree (no `after` edge, no
/// parent reached twice), which cannot have a cycle.
///
/// Only parents go into the set of seen components: a cycle runs through `after` edges (seen on
/// every component) or through parents that own each other, so a leaf reached twice (a shared
/// child) cannot close one, and a wide tree costs one atomic load per leaf.
fn may_have_cycle(root: &dyn DynComponent, kind: PhaseKind) -> bool {
    let mut seen: HashSet<usize, ByAddress> = HashSet::default();
    let mut stack = vec![root];
    while let Some(component) = stack.pop() {
        let phase = component.dyn_lifecycle().phase(kind).inner();
        if phase.has_afters() {
            return true;
        }
        let children = component.dyn_children().into_items();
        if children.is_empty() {
            continue;
        }
        if !seen.insert(Arc::as_ptr(phase) as usize) {
            return true;
        }
        stack.extend(children);
    }
    false
}

/// `Err(Cycle)` if the phases of `kind` under `root`, with their `after` edges, would wait for
/// each other forever.
pub(crate) fn check(root: &dyn DynComponent, kind: PhaseKind) -> Result<(), LifecycleError> {
    if !may_have_cycle(root, kind) {
        return Ok(());
    }
    let mut graph = Graph::walk(root, kind);
    let Some(cycle) = graph.find_cycle() else {
        return Ok(());
    };
    let mut path: Vec<String> = cycle.iter().map(|&index| graph.name(index)).collect();
    if path.len() == 1 {
        // A phase after itself: show it as a loop.
        path.push(path[0].clone());
    }
    Err(LifecycleError::Cycle { path })
}
