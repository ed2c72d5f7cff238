//! The graph file's schema: instruments (a built-in or a definition, polyphony, gain, pan,
//! sends, control values), effect nodes (delay, reverb, or a definition that reads `"input"`)
//! with routes to later effects, control's id table, and why a graph is refused. Every default
//! and range comes from [`crate::schema::table`].

use serde::{Deserialize, Serialize};

use crate::builtin;
use crate::engine::RATE_HZ;
use crate::ir::{DefError, SynthDef};
use crate::schema::{DEFAULT_POLYPHONY, table};

/// One instrument of a graph file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// Its name in the graph, which `Set` commands use (default: the definition's or the
    /// built-in's name). Names are unique within a graph.
    #[serde(default)]
    pub name: Option<String>,
    /// A built-in instrument by name…
    #[serde(default)]
    pub builtin: Option<String>,
    /// …or a definition.
    #[serde(default)]
    pub def: Option<SynthDef>,
    /// Voices (default 32).
    #[serde(default = "default_polyphony")]
    pub polyphony: usize,
    /// Output gain.
    #[serde(default = "default_gain")]
    pub gain: f32,
    /// Pan -1..1.
    #[serde(default)]
    pub pan: f32,
    /// Send levels (post-fader) to the graph's effects: `[delay, reverb]` for the default
    /// effects, or `{"effect name": level, …}`.
    #[serde(default)]
    pub sends: Sends,
    /// Starting values of the definition's controls by name (clamped to their ranges);
    /// unset ones start at their defaults.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub controls: std::collections::BTreeMap<String, f32>,
}

impl InstrumentSpec {
    /// Its name in the graph: `name`, else its definition's or built-in's name.
    pub fn node_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.def.as_ref().map(|d| d.name.as_str()))
            .or(self.builtin.as_deref())
            .unwrap_or("")
    }
}

/// The default effects a graph without `effects` has, spelt out (every setting at the
/// table's default).
pub(crate) fn default_effect_specs() -> Vec<EffectSpec> {
    vec![
        EffectSpec::Delay {
            name: "delay".into(),
            beats: table::BEATS.default,
            feedback: table::FEEDBACK.default,
            damp_hz: table::DAMP_HZ.default,
            ret: table::RETURN.default,
            sends: Default::default(),
        },
        EffectSpec::Reverb {
            name: "reverb".into(),
            room: table::ROOM.default,
            damp: table::DAMP.default,
            ret: table::RETURN.default,
            sends: Default::default(),
        },
    ]
}

/// An instrument's send levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sends {
    /// Levels to the first two effects (the default `delay` and `reverb`).
    Levels([f32; 2]),
    /// Levels by effect name.
    Named(std::collections::BTreeMap<String, f32>),
}

impl Default for Sends {
    fn default() -> Self {
        Self::Levels([0.0; 2])
    }
}

impl From<[f32; 2]> for Sends {
    fn from(levels: [f32; 2]) -> Self {
        Self::Levels(levels)
    }
}

/// One effect node of a graph file: `{"name": …, "type": "delay" | "reverb", settings…,
/// "return": level into the master, "sends": {"later effect": level}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EffectSpec {
    /// Tempo-synced stereo delay.
    Delay {
        /// Its name, which sends and routes use.
        name: String,
        /// Delay time in beats of the transport (default 0.75).
        #[serde(default = "default_beats")]
        beats: f32,
        /// Feedback 0 ..< 1 (default 0.35).
        #[serde(default = "default_feedback")]
        feedback: f32,
        /// Damping in the loop, Hz (default 4000).
        #[serde(default = "default_damp_hz")]
        damp_hz: f32,
        /// Level into the master (default 1).
        #[serde(default = "default_return", rename = "return")]
        ret: f32,
        /// Levels into effects listed after this one, by name (routes never loop).
        #[serde(default)]
        sends: std::collections::BTreeMap<String, f32>,
    },
    /// Freeverb.
    Reverb {
        /// Its name, which sends and routes use.
        name: String,
        /// Room size 0..1 (default 0.7).
        #[serde(default = "default_room")]
        room: f32,
        /// Damping 0..1 (default 0.5).
        #[serde(default = "default_damp")]
        damp: f32,
        /// Level into the master (default 1).
        #[serde(default = "default_return", rename = "return")]
        ret: f32,
        /// Levels into effects listed after this one, by name (routes never loop).
        #[serde(default)]
        sends: std::collections::BTreeMap<String, f32>,
    },
    /// A definition that reads `"input"`, run once per channel (`{"type": "def", "name": …,
    /// "def": {…}}`).
    Def {
        /// Its name, which sends and routes use.
        name: String,
        /// The definition.
        def: SynthDef,
        /// Starting values of its controls by name (clamped to their ranges).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        controls: std::collections::BTreeMap<String, f32>,
        /// Level into the master (default 1).
        #[serde(default = "default_return", rename = "return")]
        ret: f32,
        /// Levels into effects listed after this one, by name (routes never loop).
        #[serde(default)]
        sends: std::collections::BTreeMap<String, f32>,
    },
}

impl EffectSpec {
    /// Its setting `param` as `Set` names it (`return`, a delay's `beats`, `feedback`,
    /// `damp_hz`, a reverb's `room`, `damp`, a definition's controls: the value given, else
    /// the definition's default).
    pub fn setting(&self, param: &str) -> Option<f32> {
        match (self, param) {
            (
                Self::Delay { ret, .. } | Self::Reverb { ret, .. } | Self::Def { ret, .. },
                "return",
            ) => Some(*ret),
            (Self::Delay { beats, .. }, "beats") => Some(*beats),
            (Self::Delay { feedback, .. }, "feedback") => Some(*feedback),
            (Self::Delay { damp_hz, .. }, "damp_hz") => Some(*damp_hz),
            (Self::Reverb { room, .. }, "room") => Some(*room),
            (Self::Reverb { damp, .. }, "damp") => Some(*damp),
            (Self::Def { def, controls, .. }, p) => {
                let default = def.controls.iter().find(|c| c.name == p)?.default;
                Some(controls.get(p).copied().unwrap_or(default))
            }
            _ => None,
        }
    }

    /// [`EffectSpec::setting`], to change.
    pub fn setting_mut(&mut self, param: &str) -> Option<&mut f32> {
        match (self, param) {
            (
                Self::Delay { ret, .. } | Self::Reverb { ret, .. } | Self::Def { ret, .. },
                "return",
            ) => Some(ret),
            (Self::Delay { beats, .. }, "beats") => Some(beats),
            (Self::Delay { feedback, .. }, "feedback") => Some(feedback),
            (Self::Delay { damp_hz, .. }, "damp_hz") => Some(damp_hz),
            (Self::Reverb { room, .. }, "room") => Some(room),
            (Self::Reverb { damp, .. }, "damp") => Some(damp),
            (Self::Def { def, controls, .. }, p) => {
                let default = def.controls.iter().find(|c| c.name == p)?.default;
                Some(controls.entry(p.to_string()).or_insert(default))
            }
            _ => None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Self::Delay { name, .. } | Self::Reverb { name, .. } | Self::Def { name, .. } => name,
        }
    }

    pub(crate) fn routes_mut(&mut self) -> &mut std::collections::BTreeMap<String, f32> {
        match self {
            Self::Delay { sends, .. } | Self::Reverb { sends, .. } | Self::Def { sends, .. } => {
                sends
            }
        }
    }

    pub(crate) fn routes(&self) -> &std::collections::BTreeMap<String, f32> {
        match self {
            Self::Delay { sends, .. } | Self::Reverb { sends, .. } | Self::Def { sends, .. } => {
                sends
            }
        }
    }
}

// serde's defaults, from the one table.
fn default_beats() -> f32 {
    table::BEATS.default
}
fn default_feedback() -> f32 {
    table::FEEDBACK.default
}
fn default_damp_hz() -> f32 {
    table::DAMP_HZ.default
}
fn default_room() -> f32 {
    table::ROOM.default
}
fn default_damp() -> f32 {
    table::DAMP.default
}
fn default_polyphony() -> usize {
    DEFAULT_POLYPHONY
}
fn default_gain() -> f32 {
    table::GAIN.default
}
fn default_return() -> f32 {
    table::RETURN.default
}

/// A graph file: instruments in node order (note `node` n plays instrument n - 1; node 0 picks
/// by role from the built-in patch layout).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// The instruments (none: the built-in patch).
    #[serde(default)]
    pub instruments: Vec<InstrumentSpec>,
    /// Effect nodes in processing order (none: a `delay` and a `reverb`).
    #[serde(default)]
    pub effects: Vec<EffectSpec>,
    /// Numeric ids of nodes and their parameters by name, as control assigns them (notes and
    /// curve points carry ids). Without it, node `i` (instruments, then effects) has id
    /// `i + 1` and parameter `p` has id `p`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ids: std::collections::BTreeMap<String, IdSpec>,
}

/// A node's id and its parameters' ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// The node's id (≥ 1).
    pub id: u32,
    /// Parameter ids by parameter name.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, u32>,
}

/// Why a graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The sample rate is outside [`RATE_HZ`].
    #[error(
        "sample rate {0} Hz is outside {min}..={max} Hz",
        min = RATE_HZ.start(),
        max = RATE_HZ.end()
    )]
    Rate(f32),
    /// The text is not a graph file (serde's message names the line, column and field).
    #[error("invalid graph JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An instrument names no definition, or an unknown built-in.
    #[error("instrument {index} ({node:?}): {message}")]
    Instrument {
        /// Its position.
        index: usize,
        /// Its name in the graph.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// An effect or a route is invalid.
    #[error("effect {name:?}: {message}")]
    Effect {
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The id table names an unknown node or parameter, or gives an id twice.
    #[error("ids of {name:?}: {message}")]
    Ids {
        /// The node.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A node-by-node edit names a node that is not there, or a route that cannot be.
    #[error("{node:?}: {message}")]
    Edit {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A definition is invalid.
    #[error("instrument {index} ({node:?}): {source}")]
    Def {
        /// Its position.
        index: usize,
        /// Its name in the graph.
        node: String,
        /// The definition's error.
        source: DefError,
    },
}

impl GraphSpec {
    /// Parses a graph file's JSON.
    pub fn from_json(json: &str) -> Result<Self, GraphError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The level of the send (or route) from `from` into `to`, if there is one.
    pub fn send(&self, from: &str, to: &str) -> Option<f32> {
        if let Some(i) = self.instruments.iter().find(|i| i.node_name() == from) {
            return match &i.sends {
                Sends::Named(m) => m.get(to).copied(),
                Sends::Levels(_) => None,
            };
        }
        self.effects
            .iter()
            .find(|e| e.name() == from)?
            .routes()
            .get(to)
            .copied()
    }

    /// [`GraphSpec::send`], to change (recording an applied `Send`).
    pub fn send_mut(&mut self, from: &str, to: &str) -> Option<&mut f32> {
        if let Some(i) = self.instruments.iter_mut().find(|i| i.node_name() == from) {
            return match &mut i.sends {
                Sends::Named(m) => m.get_mut(to),
                Sends::Levels(_) => None,
            };
        }
        self.effects
            .iter_mut()
            .find(|e| e.name() == from)?
            .routes_mut()
            .get_mut(to)
    }

    /// Records `node.param = value` (an applied `Set`) in the graph, so the graph describes
    /// what plays.
    pub fn record_set(&mut self, node: &str, param: &str, value: f32) {
        if let Some(v) = self.number_mut(node, param) {
            *v = value;
        } else if let Some(i) = self
            .instruments
            .iter_mut()
            .find(|i| i.name.as_deref() == Some(node))
        {
            // A control the graph did not set yet.
            i.controls.insert(param.to_string(), value);
        }
    }

    /// Node `node`'s number `param` as the graph sets it: an instrument's gain, pan or a
    /// control it gives, an effect's setting ([`EffectSpec::setting`]).
    pub fn number(&self, node: &str, param: &str) -> Option<f32> {
        if let Some(i) = self
            .instruments
            .iter()
            .find(|i| i.name.as_deref() == Some(node))
        {
            return match param {
                "gain" => Some(i.gain),
                "pan" => Some(i.pan),
                p => i.controls.get(p).copied(),
            };
        }
        self.effects
            .iter()
            .find(|e| e.name() == node)?
            .setting(param)
    }

    /// [`GraphSpec::number`], to change.
    pub fn number_mut(&mut self, node: &str, param: &str) -> Option<&mut f32> {
        if let Some(i) = self
            .instruments
            .iter_mut()
            .find(|i| i.name.as_deref() == Some(node))
        {
            return match param {
                "gain" => Some(&mut i.gain),
                "pan" => Some(&mut i.pan),
                p => i.controls.get_mut(p),
            };
        }
        self.effects
            .iter_mut()
            .find(|e| e.name() == node)?
            .setting_mut(param)
    }

    /// The built-in patch as a graph: every built-in instrument ([`builtin::MIX`]: its sends
    /// to the default delay and reverb, its pan), `polyphony` voices each — what a synth plays
    /// until it is given a graph, and what an empty graph file means.
    pub fn builtin_patch(polyphony: usize) -> Self {
        let instruments = builtin::MIX
            .iter()
            .map(|&(name, delay, reverb, pan)| InstrumentSpec {
                name: Some(name.into()),
                builtin: Some(name.into()),
                def: None,
                polyphony,
                gain: table::GAIN.default,
                pan,
                sends: Sends::Levels([delay, reverb]),
                controls: Default::default(),
            })
            .collect();
        Self {
            instruments,
            ..Self::default()
        }
    }
}
