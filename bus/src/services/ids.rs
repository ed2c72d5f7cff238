//! `khorus/ids`: control's table of node and parameter ids, so the hot path carries numbers
//! and anyone on the bus (the router, `khorus tap`, a web UI) can name them.
//!
//! Published by control whenever the session's nodes change, with history 1: a process that
//! joins later gets the current table at once. The table is fixed-size (512 nodes × 64
//! parameters, 912 KiB) but written in place ([`IdTable::fill`]): a session touches shared
//! memory only for the nodes it has.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// Nodes the table holds.
pub const MAX_NODES: usize = 512;
/// Parameters per node the table holds.
pub const MAX_PARAMS: usize = 64;
/// Bytes of a name, zero-padded (names are at most `NAME_BYTES - 1` bytes).
pub const NAME_BYTES: usize = 24;

/// One parameter's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ZeroCopySend)]
#[repr(C)]
pub struct ParamId {
    /// Its id.
    pub id: u32,
    /// Its name, zero-padded.
    pub name: [u8; NAME_BYTES],
}

/// One node's id, role and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ZeroCopySend)]
#[repr(C)]
pub struct NodeId {
    /// Its id (≥ 1).
    pub id: u32,
    /// Parameters listed.
    pub n_params: u16,
    /// [`Role`](crate::Role) as a byte.
    pub role: u8,
    /// 1 for an effect, 0 for an instrument.
    pub effect: u8,
    /// Its name, zero-padded.
    pub name: [u8; NAME_BYTES],
    /// Its parameters.
    pub params: [ParamId; MAX_PARAMS],
}

/// The table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ZeroCopySend)]
#[type_name("khorus::IdTable/v2")]
#[repr(C)]
pub struct IdTable {
    /// Per-publisher sequence number.
    pub seq: u64,
    /// Monotonic time of publication, ns.
    pub t_ns: u64,
    /// The session version it describes.
    pub version: u64,
    /// Nodes listed.
    pub n_nodes: u32,
    /// Padding, zero.
    pub _pad: u32,
    /// The nodes.
    pub nodes: [NodeId; MAX_NODES],
}

const EMPTY_PARAM: ParamId = ParamId {
    id: 0,
    name: [0; NAME_BYTES],
};
const EMPTY_NODE: NodeId = NodeId {
    id: 0,
    n_params: 0,
    role: 0,
    effect: 0,
    name: [0; NAME_BYTES],
    params: [EMPTY_PARAM; MAX_PARAMS],
};

impl Default for IdTable {
    fn default() -> Self {
        Self {
            seq: 0,
            t_ns: 0,
            version: 0,
            n_nodes: 0,
            _pad: 0,
            nodes: [EMPTY_NODE; MAX_NODES],
        }
    }
}

fn pack(name: &str) -> [u8; NAME_BYTES] {
    let mut out = [0; NAME_BYTES];
    let n = name.len().min(NAME_BYTES - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

fn unpack(name: &[u8; NAME_BYTES]) -> &str {
    let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    std::str::from_utf8(&name[..end]).unwrap_or("?")
}

/// A table entry in readable form (what `khorus tap ids --json` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node id.
    pub id: u32,
    /// Node name.
    pub name: String,
    /// Its role.
    pub role: crate::Role,
    /// An effect?
    pub effect: bool,
    /// Parameter ids by name, in id order.
    pub params: Vec<(String, u32)>,
}

impl IdTable {
    /// Writes the table of `nodes` into `self` (at most [`MAX_NODES`], [`MAX_PARAMS`]
    /// parameters each; the rest are left out and the return says how many), touching only
    /// the entries it lists: what lies past `n_nodes` and `n_params` is never read.
    pub fn fill(&mut self, version: u64, nodes: &[NodeEntry]) -> usize {
        self.version = version;
        self._pad = 0;
        let mut left_out = 0;
        for (slot, n) in self.nodes.iter_mut().zip(nodes) {
            slot.id = n.id;
            slot.role = n.role as u8;
            slot.effect = n.effect as u8;
            slot.name = pack(&n.name);
            for (p, (name, id)) in slot.params.iter_mut().zip(&n.params) {
                p.id = *id;
                p.name = pack(name);
            }
            slot.n_params = n.params.len().min(MAX_PARAMS) as u16;
            left_out += n.params.len().saturating_sub(MAX_PARAMS);
        }
        self.n_nodes = nodes.len().min(MAX_NODES) as u32;
        left_out + nodes.len().saturating_sub(MAX_NODES)
    }

    /// The entries, readable.
    pub fn entries(&self) -> Vec<NodeEntry> {
        self.nodes[..(self.n_nodes as usize).min(MAX_NODES)]
            .iter()
            .map(|n| NodeEntry {
                id: n.id,
                name: unpack(&n.name).to_string(),
                role: crate::Role::from_u8(n.role),
                effect: n.effect != 0,
                params: n.params[..(n.n_params as usize).min(MAX_PARAMS)]
                    .iter()
                    .map(|p| (unpack(&p.name).to_string(), p.id))
                    .collect(),
            })
            .collect()
    }

    /// The name of node `id`.
    pub fn node_name(&self, id: u32) -> Option<&str> {
        self.nodes[..(self.n_nodes as usize).min(MAX_NODES)]
            .iter()
            .find(|n| n.id == id)
            .map(|n| unpack(&n.name))
    }
}

// Changes only when the session's nodes do; the latest one is all that matters.
topic!(IdTable, "khorus/ids", buffer: 2, history: 1, publishers: 4, subscribers: 16);

// SAFETY: `#[repr(C)]` of integers and arrays of integers only (`role` and `effect` are
// bytes, read back with `Role::from_u8` and `!= 0`).
unsafe impl crate::pubsub::AnyBits for IdTable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_long_names_are_cut() {
        let nodes = vec![NodeEntry {
            id: 7,
            name: "pad".into(),
            role: crate::Role::Chords,
            effect: false,
            params: vec![("gain".into(), 0), ("cutoff".into(), 2)],
        }];
        // Over a table that held something else (a reused slot): only the listed entries count.
        let mut t = Box::new(IdTable::default());
        let many: Vec<NodeEntry> = (1..=MAX_NODES as u32 + 3)
            .map(|id| NodeEntry {
                id,
                name: format!("n{id}"),
                role: crate::Role::Bass,
                effect: true,
                params: (0..MAX_PARAMS as u32 + 1)
                    .map(|p| (format!("p{p}"), p))
                    .collect(),
            })
            .collect();
        assert_eq!(t.fill(1, &many), 3 + MAX_NODES);
        assert_eq!(t.entries().len(), MAX_NODES);
        assert_eq!(t.entries()[MAX_NODES - 1].params.len(), MAX_PARAMS);
        assert_eq!(t.fill(3, &nodes), 0);
        assert_eq!(t.entries(), nodes);
        assert_eq!(t.node_name(7), Some("pad"));
        assert_eq!(t.node_name(8), None, "what lies past n_nodes is not read");
        let long = NodeEntry {
            name: "x".repeat(40),
            ..nodes[0].clone()
        };
        t.fill(1, &[long]);
        assert_eq!(t.entries()[0].name.len(), NAME_BYTES - 1);
    }
}
