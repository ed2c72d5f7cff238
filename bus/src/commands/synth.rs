//! The synth's commands: set a node's parameter, replace the graph, edit it node by node.
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
    /// Edits the graph node by node: applied like a `LoadGraph` of the edited graph, so every
    /// node the edit does not touch plays on untouched (its voices, delay lines and tails),
    /// and what it touches crossfades over `fade_ms`.
    Edit {
        /// The edit.
        edit: GraphEdit,
        /// Crossfade of the nodes it adds, replaces or removes, ms (clamped to 1 ..= 2000).
        fade_ms: u32,
    },
    /// Moves the level of an existing send (instrument → effect) or route (effect → later
    /// effect) without a graph change: from `at_ns` (0: now) along a line over `over_ns`
    /// (0: the usual glide). A route that does not exist is refused: add one with
    /// [`GraphEdit::Route`].
    Send {
        /// An instrument or an effect.
        from: String,
        /// An effect it already sends to.
        to: String,
        /// 0 ..= 1 (more than 0).
        level: f32,
        /// Monotonic time it starts moving, ns (0: at once).
        at_ns: u64,
        /// How long it takes, ns (0: the usual glide).
        over_ns: u64,
    },
    /// Asks for the graph the synth plays, as JSON, with every `Set` since it was loaded
    /// applied (what control compares with its session).
    Describe,
    /// Takes over notes published before this synth was listening (control sends what the
    /// composer's [`Sounding`](crate::commands::composer::ComposerCommand::Sounding) answers
    /// when a synth starts): a note whose time has passed sounds from the next block to its
    /// own end, one still ahead at its time; a note that already came on the bus is skipped.
    /// Counted in status as `resumed`, not as late.
    Resume {
        /// The notes, as published (at most
        /// [`SOUNDING_MAX`](crate::commands::composer::SOUNDING_MAX)).
        notes: Vec<crate::NoteEvent>,
    },
}

/// One node-by-node change of the synth's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GraphEdit {
    /// Adds an instrument or an effect, or replaces the node of its name: the JSON of one
    /// entry of a graph file's `instruments` (no `"type"`) or `effects` (with a `"type"`).
    Put {
        /// The entry.
        json: String,
    },
    /// Removes the node named, and every send and route into it.
    Remove {
        /// Its name.
        node: String,
    },
    /// Sets the send (or route) from node `from` into effect `to` to `level`; 0 removes it.
    /// The level glides there (no step).
    Route {
        /// An instrument or an effect.
        from: String,
        /// An effect.
        to: String,
        /// 0 ..= 1.
        level: f32,
    },
}

/// The synth's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SynthReply {
    /// Answer to a `Common` command.
    Common(CommonReply),
    /// The change was accepted and applies from the next audio block.
    Applied,
    /// The graph it plays: the one it started with (its `--graph` file or the built-in patch,
    /// spelled out), or the last loaded, with every `Set` since recorded (`None` only if it
    /// could not be written as JSON).
    Graph {
        /// The graph file's JSON.
        json: Option<String>,
    },
}
