//! The synth's commands: set a node's parameter, replace the graph.
//!
//! Nodes and parameters are named as in the graph file (an instrument's `name`; `gain`, `pan`
//! or one of its definition's controls), so OSC clients and scripts need no numeric ids. The
//! synth validates a request completely before changing anything; a refusal names the node
//! and parameter (or, for a graph, the definition node) at fault.

use serde::{Deserialize, Serialize};

use crate::command::{Common, CommonReply};

/// A request to the synth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SynthCommand {
    /// Ping, status, shutdown.
    Common(Common),
    /// Sets `param` of instrument `node` to `value` from the next audio block, smoothed (no
    /// zipper noise). Values outside the parameter's range are clamped; non-finite values are
    /// refused.
    Set {
        /// The instrument's name in the graph.
        node: String,
        /// `gain`, `pan`, or a control of the instrument's definition.
        param: String,
        /// The new value.
        value: f32,
    },
    /// Replaces the whole graph (the JSON of a graph file): built and checked off the audio
    /// thread, then swapped in with an equal-power crossfade of `fade_ms`.
    LoadGraph {
        /// The graph, as in `khorus-synth --graph FILE`.
        json: String,
        /// Crossfade length, ms (clamped to 1 ..= 2000).
        fade_ms: u32,
    },
    /// Asks for the graph the synth plays, as JSON, with every `Set` since it was loaded
    /// applied (what control compares with its session).
    Describe,
}

/// The synth's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SynthReply {
    /// Answer to a `Common` command.
    Common(CommonReply),
    /// The change was accepted and applies from the next audio block.
    Applied,
    /// The graph it plays (`None`: the built-in patch it started with).
    Graph {
        /// The graph file's JSON.
        json: Option<String>,
    },
}
