//! The module graph of one crate and the cycles in it. A node is a module with a file of its
//! own; an edge is an import of one module by another. A module's imports of its ancestors or
//! descendants are no edges: a parent declares its children and may re-export them, and a
//! child may use what its parent holds, without the two being tangled.
//!
//! Cycles are looked for among the children of each module, each child standing for itself and
//! everything below it: `edit` importing `graph` (an item `graph/mod.rs` re-exports) while
//! `graph::build` imports `edit` is a cycle between `graph` and `edit`, though no two files
//! import each other. Every cycle between files shows up this way too, at the level of their
//! closest common ancestor.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Site;

/// A module's path from the crate root (`["graph", "build"]`); the root is empty.
pub(super) type Module = Vec<String>;

/// Modules and the imports between them.
#[derive(Debug, Default)]
pub(super) struct Graph {
    modules: BTreeSet<Module>,
    edges: BTreeMap<Module, BTreeMap<Module, Vec<Site>>>,
}

impl Graph {
    /// A graph of `modules` (the root is always one) without edges.
    pub(super) fn new(modules: impl IntoIterator<Item = Module>) -> Self {
        let mut modules: BTreeSet<Module> = modules.into_iter().collect();
        modules.insert(Module::new());
        Self {
            modules,
            edges: BTreeMap::new(),
        }
    }

    /// Records that `from` names `path` at `site`: a dependency on the module `path` names, or
    /// on the longest prefix of it that is a module (an item of `a::b` is in `a::b`).
    pub(super) fn import(&mut self, from: &Module, path: &[String], site: Site) {
        let to: Module = (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| self.modules.contains(prefix))
            .unwrap_or_default();
        if to.starts_with(from) || from.starts_with(&to) {
            return;
        }
        self.edges
            .entry(from.clone())
            .or_default()
            .entry(to)
            .or_default()
            .push(site);
    }

    /// Where a module in or below `from` imports one in or below `to`, each line once.
    pub(super) fn sites(&self, from: &Module, to: &Module) -> Vec<Site> {
        let mut sites: Vec<Site> = self
            .edges
            .iter()
            .filter(|(f, _)| f.starts_with(from))
            .flat_map(|(_, e)| e.iter())
            .filter(|(t, _)| t.starts_with(to))
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        sites.sort();
        sites.dedup();
        sites
    }

    /// The shortest cycle through each child of each module that is on one, each once: a list
    /// of siblings starting at the least, each importing the next and the last the first.
    pub(super) fn cycles(&self) -> Vec<Vec<Module>> {
        let mut found = BTreeSet::new();
        for parent in &self.modules {
            let level = self.children_of(parent);
            for start in level.keys() {
                if let Some(mut cycle) = shortest_cycle(&level, start) {
                    let least = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap_or(0);
                    cycle.rotate_left(least);
                    found.insert(cycle);
                }
            }
        }
        found.into_iter().collect()
    }

    /// The imports between the children of `parent`, each child standing for its subtree.
    fn children_of(&self, parent: &Module) -> BTreeMap<Module, BTreeSet<Module>> {
        let child = |m: &Module| m[..=parent.len()].to_vec();
        let mut level: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (from, tos) in &self.edges {
            if from.len() <= parent.len() || !from.starts_with(parent) {
                continue;
            }
            for to in tos.keys() {
                if to.len() > parent.len() && to.starts_with(parent) && child(from) != child(to) {
                    level.entry(child(from)).or_default().insert(child(to));
                }
            }
        }
        level
    }
}

/// Breadth-first from `start` back to it.
fn shortest_cycle(
    next: &BTreeMap<Module, BTreeSet<Module>>,
    start: &Module,
) -> Option<Vec<Module>> {
    let mut came_from: BTreeMap<&Module, &Module> = BTreeMap::new();
    let mut queue: VecDeque<&Module> = VecDeque::from([start]);
    while let Some(m) = queue.pop_front() {
        for n in next.get(m).into_iter().flatten() {
            if n == start {
                let mut cycle = vec![m.clone()];
                let mut at = m;
                while at != start {
                    at = came_from[at];
                    cycle.push(at.clone());
                }
                cycle.reverse();
                return Some(cycle);
            }
            if !came_from.contains_key(n) {
                came_from.insert(n, m);
                queue.push_back(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str) -> Module {
        path.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn site(line: u32) -> Site {
        Site {
            file: "src/x.rs".into(),
            line,
        }
    }

    fn graph(modules: &[&str], imports: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new(modules.iter().map(|s| m(s)));
        for (line, (from, path)) in imports.iter().enumerate() {
            g.import(&m(from), &m(path), site(line as u32 + 1));
        }
        g
    }

    fn names(cycles: Vec<Vec<Module>>) -> Vec<String> {
        cycles
            .into_iter()
            .map(|c| {
                c.iter()
                    .map(|m| m.join("::"))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
            .collect()
    }

    #[test]
    fn an_item_import_depends_on_the_longest_module_prefix() {
        let g = graph(&["a", "a::b"], &[("c", "a::b::Item"), ("c", "a::x::Item")]);
        assert_eq!(g.edges[&m("c")][&m("a::b")], [site(1)]);
        assert_eq!(g.edges[&m("c")][&m("a")], [site(2)]);
    }

    #[test]
    fn imports_of_ancestors_and_descendants_are_no_edges() {
        let g = graph(
            &["a", "a::b", "a::b::c"],
            &[("a", "a::b::c::X"), ("a::b::c", "a::Y"), ("a::b", "Z")],
        );
        assert!(g.edges.is_empty());
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn each_cycle_is_found_once_from_its_least_module() {
        let g = graph(
            &["a", "b", "c", "d"],
            &[("b", "c::X"), ("c", "a::Y"), ("a", "b::Z"), ("d", "a::W")],
        );
        assert_eq!(names(g.cycles()), ["a -> b -> c"]);
    }

    #[test]
    fn a_subtree_importing_a_sibling_that_imports_it_is_a_cycle() {
        // `edit` takes an item `graph` re-exports from `graph::spec`; `graph::build` uses
        // `edit`. No two files import each other; `graph` and `edit` do.
        let g = graph(
            &["graph", "graph::build", "graph::spec", "edit"],
            &[
                ("edit", "graph::Spec"),
                ("graph::build", "edit::key"),
                ("graph::build", "graph::spec::Spec"),
            ],
        );
        assert_eq!(names(g.cycles()), ["edit -> graph"]);
        assert_eq!(g.sites(&m("graph"), &m("edit")), [site(2)]);
    }

    #[test]
    fn a_cycle_deep_in_a_tree_is_found_among_its_closest_common_ancestor_children() {
        let g = graph(
            &["a", "a::b", "a::b::c", "a::d", "e"],
            &[("a::b::c", "a::d::X"), ("a::d", "a::b::c::Y")],
        );
        assert_eq!(names(g.cycles()), ["a::b -> a::d"]);
        assert_eq!(g.sites(&m("a::b"), &m("a::d")), [site(1)]);
    }

    #[test]
    fn two_cycles_through_one_module_are_both_found() {
        let g = graph(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")],
        );
        assert_eq!(names(g.cycles()), ["a -> b", "a -> c"]);
    }
}
