//! Node and parameter ids: how notes and curve points, which carry numbers only, find their
//! node and parameter in a graph.

/// The numeric ids control gave the graph's nodes and their parameters, so notes and curve
/// points (which carry no names) reach the right node. Nodes are numbered instruments first,
/// then effects, as [`Engine::schedule_set`](crate::engine::Engine::schedule_set) counts
/// them. Small vectors scanned linearly: a graph has tens of nodes, and the audio thread
/// resolves without allocating.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeIds {
    /// (node id, node index).
    nodes: Vec<(u32, usize)>,
    /// Per node index: (parameter id, parameter number).
    params: Vec<Vec<(u32, usize)>>,
}

impl NodeIds {
    /// Ids by position, for graphs without ids (standalone use): node `i` has id `i + 1`,
    /// parameter `p` has id `p`.
    pub fn positional(nodes: usize, params_per_node: impl Fn(usize) -> usize) -> Self {
        Self {
            nodes: (0..nodes).map(|i| (i as u32 + 1, i)).collect(),
            params: (0..nodes)
                .map(|i| (0..params_per_node(i)).map(|p| (p as u32, p)).collect())
                .collect(),
        }
    }

    /// An empty table for `nodes` nodes; fill it with [`NodeIds::insert`].
    pub fn with_nodes(nodes: usize) -> Self {
        Self {
            nodes: Vec::new(),
            params: vec![Vec::new(); nodes],
        }
    }

    /// Gives node `index` the id `id` and its parameters (id, number) pairs.
    pub fn insert(&mut self, index: usize, id: u32, params: Vec<(u32, usize)>) {
        self.nodes.retain(|&(i, n)| i != id && n != index);
        self.nodes.push((id, index));
        if let Some(p) = self.params.get_mut(index) {
            *p = params;
        }
    }

    /// The node index of id `id`.
    pub fn node(&self, id: u32) -> Option<usize> {
        self.nodes.iter().find(|&&(i, _)| i == id).map(|&(_, n)| n)
    }

    /// The id of node index `index`.
    pub fn id_of(&self, index: usize) -> Option<u32> {
        self.nodes
            .iter()
            .find(|&&(_, n)| n == index)
            .map(|&(i, _)| i)
    }

    /// Parameter number of parameter id `param` of node index `node`.
    pub fn param(&self, node: usize, param: u32) -> Option<usize> {
        self.params
            .get(node)?
            .iter()
            .find(|&&(i, _)| i == param)
            .map(|&(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_ids_and_given_ids_resolve_both_ways() {
        let p = NodeIds::positional(2, |i| i + 2);
        assert_eq!(p.node(1), Some(0));
        assert_eq!(p.node(3), None, "id 0 and ids past the nodes are nobody's");
        assert_eq!(p.param(1, 2), Some(2));
        assert_eq!(p.param(0, 2), None);
        let mut ids = NodeIds::with_nodes(2);
        ids.insert(1, 40, vec![(7, 3)]);
        ids.insert(0, 41, vec![]);
        assert_eq!((ids.node(40), ids.id_of(0)), (Some(1), Some(41)));
        assert_eq!(ids.param(1, 7), Some(3));
        // Giving a node a new id takes the old one away.
        ids.insert(1, 42, vec![]);
        assert_eq!((ids.node(40), ids.node(42)), (None, Some(1)));
    }
}
