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

use std::collections::HashMap;
use std::sync::Arc;

use super::phase::PhaseInner;
use super::{DynComponent, LifecycleError, PhaseKind};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum End {
    Start,
    Finish,
}

type Node = (usize, End);

fn id(phase: &Arc<PhaseInner>) -> usize {
    Arc::as_ptr(phase) as usize
}

#[derive(Default)]
struct Graph {
    phases: HashMap<usize, Arc<PhaseInner>>,
    children: HashMap<usize, Vec<usize>>,
    parents: HashMap<usize, Vec<usize>>,
}

impl Graph {
    /// Walks the component tree under `root`: names each phase, records parent/child edges.
    fn walk(root: &dyn DynComponent, kind: PhaseKind) -> Self {
        let mut graph = Self::default();
        let mut stack = vec![root];
        while let Some(component) = stack.pop() {
            let phase = component.dyn_lifecycle().phase(kind);
            phase.name_as(&component.dyn_name(), kind);
            let parent = id(phase.inner());
            if graph.phases.insert(parent, phase.inner().clone()).is_some() {
                continue; // a shared child, already walked
            }
            for child in component.dyn_children().into_items() {
                let child_id = id(child.dyn_lifecycle().phase(kind).inner());
                graph.children.entry(parent).or_default().push(child_id);
                graph.parents.entry(child_id).or_default().push(parent);
                stack.push(child);
            }
        }
        graph
    }

    fn edges(&mut self, (node, end): Node) -> Vec<Node> {
        let phase = self.phases[&node].clone();
        if phase.is_over() {
            return Vec::new();
        }
        fn around(map: &HashMap<usize, Vec<usize>>, node: usize, end: End) -> Vec<Node> {
            map.get(&node)
                .map(|others| others.iter().map(|&other| (other, end)).collect())
                .unwrap_or_default()
        }
        match end {
            End::Finish => {
                let mut edges = around(&self.children, node, End::Finish);
                edges.push((node, End::Start));
                edges
            }
            End::Start if phase.is_started() => Vec::new(),
            End::Start => {
                let mut edges = around(&self.parents, node, End::Start);
                for target in phase.afters().iter().filter_map(std::sync::Weak::upgrade) {
                    let target_id = id(&target);
                    self.phases.entry(target_id).or_insert(target);
                    edges.push((target_id, End::Finish));
                }
                edges
            }
        }
    }

    /// The first cycle found by a depth-first search from every node of the tree.
    fn find_cycle(&mut self) -> Option<Vec<usize>> {
        #[derive(PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let mut marks: HashMap<Node, Mark> = HashMap::new();
        let roots: Vec<usize> = self.phases.keys().copied().collect();
        for root in roots {
            for start in [(root, End::Finish), (root, End::Start)] {
                if marks.contains_key(&start) {
                    continue;
                }
                // The path: each node with the edges not yet followed.
                let mut path: Vec<(Node, Vec<Node>)> = vec![(start, self.edges(start))];
                marks.insert(start, Mark::OnPath);
                while let Some((node, pending)) = path.last_mut() {
                    let node = *node;
                    match pending.pop() {
                        None => {
                            marks.insert(node, Mark::Done);
                            path.pop();
                        }
                        Some(next) => match marks.get(&next) {
                            Some(Mark::Done) => {}
                            Some(Mark::OnPath) => {
                                let from = path.iter().position(|(n, _)| *n == next)?;
                                let mut cycle: Vec<usize> =
                                    path[from..].iter().map(|((id, _), _)| *id).collect();
                                cycle.push(next.0);
                                cycle.dedup();
                                return Some(cycle);
                            }
                            None => {
                                marks.insert(next, Mark::OnPath);
                                let edges = self.edges(next);
                                path.push((next, edges));
                            }
                        },
                    }
                }
            }
        }
        None
    }
}

/// `Err(Cycle)` if the phases of `kind` under `root`, with their `after` edges, would wait for
/// each other forever.
pub(crate) fn check(root: &dyn DynComponent, kind: PhaseKind) -> Result<(), LifecycleError> {
    let mut graph = Graph::walk(root, kind);
    match graph.find_cycle() {
        None => Ok(()),
        Some(cycle) => {
            let mut path: Vec<String> = cycle.iter().map(|id| graph.phases[id].name()).collect();
            if path.len() == 1 {
                // A phase after itself: show it as a loop.
                path.push(path[0].clone());
            }
            Err(LifecycleError::Cycle { path })
        }
    }
}
