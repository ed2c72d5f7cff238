//! `khorus nodes`: who is on the bus, and cleaning up after processes that died.

use std::io::Write;

use anyhow::{Context, Result};
use khorus_bus::nodes::{self, NodeLiveness};
use khorus_bus::{Bus, BusConfig};

use crate::write_line;

/// Prints the nodes on the bus; with `cleanup`, removes what dead ones left behind first.
pub fn run(config: &BusConfig, cleanup: bool, json: bool, out: &mut impl Write) -> Result<()> {
    if cleanup {
        let bus = Bus::open("nodes", config).context("failed to join the bus")?;
        let result = bus.cleanup_dead_nodes();
        eprintln!(
            "cleaned {} dead node(s), {} could not be cleaned",
            result.cleaned, result.failed
        );
    }
    let list = nodes::list(config).context("failed to list the bus nodes")?;
    for node in list {
        let state = match node.state {
            NodeLiveness::Alive => "alive",
            NodeLiveness::Dead => "dead",
            NodeLiveness::Unknown => "unknown",
        };
        let line = if json {
            serde_json::json!({"name": node.name, "pid": node.pid, "state": state}).to_string()
        } else {
            format!(
                "{:<12} pid={:<8} {state}",
                node.name,
                node.pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            )
        };
        if !write_line(out, &line)? {
            break;
        }
    }
    Ok(())
}
