//! Which processes are on the bus, which of them died, and cleaning up after the dead.
//!
//! A process killed with SIGKILL leaves its iceoryx2 node behind: shared memory, its records
//! under the bus root, its registrations in services. Control (or any survivor) detects such
//! nodes by their owner's death and removes what they left, so restarts never leak.

use iceoryx2::node::NodeView;
use iceoryx2::prelude::*;

use crate::service::Ipc;
use crate::{BusConfig, BusError};

/// One node on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's name (`collector`, `tap`, …), empty when unreadable.
    pub name: String,
    /// The owning process, when known.
    pub pid: Option<i32>,
    /// Whether its process is alive.
    pub state: NodeLiveness,
}

/// Liveness of a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLiveness {
    /// Its process is running.
    Alive,
    /// Its process is gone and its resources are stale.
    Dead,
    /// We may not look (another user's node) or its records are half written.
    Unknown,
}

/// Outcome of a dead-node cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// Dead nodes whose resources were removed.
    pub cleaned: u64,
    /// Dead nodes that could not be removed (permissions, or being removed by someone else).
    pub failed: u64,
}

/// Lists the nodes on the bus described by `config`.
pub fn list(config: &BusConfig) -> Result<Vec<NodeInfo>, BusError> {
    crate::config::quiet_iceoryx_logs();
    let iox = config.iceoryx_config()?;
    let mut out = Vec::new();
    Node::<Ipc>::list(&iox, |state| {
        let (details, liveness) = match &state {
            NodeState::Alive(view) => (view.details().clone(), NodeLiveness::Alive),
            NodeState::Dead(view) => (view.details().clone(), NodeLiveness::Dead),
            NodeState::Inaccessible(_) | NodeState::Undefined(_) => (None, NodeLiveness::Unknown),
        };
        out.push(NodeInfo {
            name: details
                .as_ref()
                .map(|d| d.name().as_str().to_string())
                .unwrap_or_default(),
            pid: details.as_ref().map(|d| d.process_id().value()),
            state: liveness,
        });
        CallbackProgression::Continue
    })
    .map_err(|e| BusError::iceoryx("list the bus nodes", e))?;
    Ok(out)
}
