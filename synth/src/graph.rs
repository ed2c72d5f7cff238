//! The graph file's schema — what `khorus-synth --graph FILE`, `LoadGraph` and control's
//! plan speak: instruments (a built-in or a definition, polyphony, gain, pan, sends, control
//! values), effect nodes (delay, reverb, or a definition that reads `"input"`) with routes to
//! later effects, and control's id table — and how a graph is checked and built into an
//! [`Engine`]. Every default and range comes from [`crate::schema::table`].

use serde::{Deserialize, Serialize};

use crate::builtin;
use crate::effect::{Effect, Route};
use crate::engine::{Engine, RATE_HZ, param};
use crate::ids::NodeIds;
use crate::instrument::Instrument;
use crate::ir::{DefError, SynthDef};
use crate::params::ParamTable;
use crate::schema::{DEFAULT_POLYPHONY, MAX_EFFECTS, table};

/// One instrument of a graph file.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

    fn routes(&self) -> &std::collections::BTreeMap<String, f32> {
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// What an engine is built for.
#[derive(Debug, Clone, Copy)]
enum Use {
    /// To be rendered: everything the audio thread reads is made now.
    Render,
    /// To be checked and dropped.
    Check,
}

impl GraphSpec {
    /// Parses a graph file's JSON.
    pub fn from_json(json: &str) -> Result<Self, GraphError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Records `node.param = value` (an applied `Set`) in the graph, so the graph describes
    /// what plays.
    pub fn record_set(&mut self, node: &str, param: &str, value: f32) {
        if let Some(i) = self
            .instruments
            .iter_mut()
            .find(|i| i.name.as_deref() == Some(node))
        {
            match param {
                "gain" => i.gain = value,
                "pan" => i.pan = value,
                _ => {
                    i.controls.insert(param.to_string(), value);
                }
            }
            return;
        }
        for e in &mut self.effects {
            match e {
                EffectSpec::Delay {
                    name,
                    beats,
                    feedback,
                    damp_hz,
                    ret,
                    ..
                } if name == node => match param {
                    "beats" => *beats = value,
                    "feedback" => *feedback = value,
                    "damp_hz" => *damp_hz = value,
                    "return" => *ret = value,
                    _ => {}
                },
                EffectSpec::Reverb {
                    name,
                    room,
                    damp,
                    ret,
                    ..
                } if name == node => match param {
                    "room" => *room = value,
                    "damp" => *damp = value,
                    "return" => *ret = value,
                    _ => {}
                },
                EffectSpec::Def {
                    name,
                    controls,
                    ret,
                    ..
                } if name == node => match param {
                    "return" => *ret = value,
                    _ => {
                        controls.insert(param.to_string(), value);
                    }
                },
                _ => {}
            }
        }
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

    /// Builds an engine for this graph (the built-in patch when it has no instruments) at
    /// `rate` Hz, which must be within [`RATE_HZ`].
    pub fn build(&self, rate: f32) -> Result<Engine, GraphError> {
        self.assemble(rate, Use::Render)
    }

    /// Whether [`GraphSpec::build`] would succeed, by the same code, without preparing what
    /// only rendering needs (the oscillator tables): how control checks a graph before the
    /// synth gets it.
    pub fn check(&self, rate: f32) -> Result<(), GraphError> {
        self.assemble(rate, Use::Check).map(drop)
    }

    fn assemble(&self, rate: f32, purpose: Use) -> Result<Engine, GraphError> {
        if !(rate >= *RATE_HZ.start() as f32 && rate <= *RATE_HZ.end() as f32) {
            return Err(GraphError::Rate(rate));
        }
        let mut engine = if self.instruments.is_empty() && self.effects.is_empty() {
            Self::builtin_patch(DEFAULT_POLYPHONY).build_nodes(rate, purpose)?
        } else {
            self.build_nodes(rate, purpose)?
        };
        if !self.ids.is_empty() {
            engine.set_ids(self.node_ids(&engine)?);
        }
        Ok(engine)
    }

    /// The id table of `ids`, checked against the engine's names.
    fn node_ids(&self, engine: &Engine) -> Result<NodeIds, GraphError> {
        let table = ParamTable::of(engine);
        let n = engine.instruments().len() + engine.effects().len();
        let mut ids = NodeIds::with_nodes(n);
        let mut seen = std::collections::BTreeMap::new();
        for (name, spec) in &self.ids {
            let err = |message: String| GraphError::Ids {
                name: name.clone(),
                message,
            };
            let index = table.node(name).map_err(|e| err(e.to_string()))?;
            if spec.id == 0 {
                return Err(err("node id 0 is reserved (no node)".into()));
            }
            if let Some(other) = seen.insert(spec.id, name) {
                return Err(err(format!("id {} is also {other:?}'s", spec.id)));
            }
            let params = spec
                .params
                .iter()
                .map(|(p, &id)| {
                    table
                        .locate(name, p)
                        .map(|(_, number)| (id, number))
                        .map_err(|e| err(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ids.insert(index, spec.id, params);
        }
        Ok(ids)
    }

    fn build_nodes(&self, rate: f32, purpose: Use) -> Result<Engine, GraphError> {
        let effects = self.build_effects(rate)?;
        let effect_index = |name: &str| effects.iter().position(|e| e.name == name);
        let mut instruments = Vec::new();
        for (index, spec) in self.instruments.iter().enumerate() {
            let node = spec.node_name().to_string();
            let def = match (&spec.builtin, &spec.def) {
                (Some(name), None) => builtin::def(name).ok_or_else(|| GraphError::Instrument {
                    index,
                    node: node.clone(),
                    message: format!(
                        "unknown built-in {name:?} (known: {})",
                        builtin::names().collect::<Vec<_>>().join(", ")
                    ),
                })?,
                (None, Some(def)) => def.clone(),
                _ => {
                    return Err(GraphError::Instrument {
                        index,
                        node: node.clone(),
                        message: "give exactly one of \"builtin\" or \"def\"".into(),
                    });
                }
            };
            let program = def.compile().map_err(|source| GraphError::Def {
                index,
                node: node.clone(),
                source,
            })?;
            if program.reads_input {
                return Err(GraphError::Instrument {
                    index,
                    node: node.clone(),
                    message: format!(
                        "{:?} reads \"input\": it is an effect — list it under \"effects\" as \
                         {{\"type\": \"def\", \"name\": …, \"def\": …}}",
                        def.name
                    ),
                });
            }
            let name = spec.name.as_deref().unwrap_or(&def.name);
            if let Some(first) = instruments
                .iter()
                .position(|i: &Instrument| i.name() == name)
            {
                return Err(GraphError::Instrument {
                    index,
                    node: node.clone(),
                    message: format!(
                        "name {name:?} is already used by instrument {first}; give one of them \"name\""
                    ),
                });
            }
            let levels: Vec<(usize, f32)> = match &spec.sends {
                Sends::Levels(l) => l
                    .iter()
                    .enumerate()
                    .filter(|&(i, &v)| i < effects.len() || v == 0.0)
                    .map(|(i, &v)| (i, v))
                    .collect(),
                Sends::Named(m) => m
                    .iter()
                    .map(|(k, &v)| {
                        effect_index(k)
                            .map(|i| (i, v))
                            .ok_or_else(|| GraphError::Instrument {
                                index,
                                node: node.clone(),
                                message: format!(
                                    "sends to {k:?}, which is not an effect of the graph"
                                ),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            };
            if !(spec.gain.is_finite()
                && spec.pan.is_finite()
                && levels.iter().all(|(_, s)| s.is_finite()))
            {
                return Err(GraphError::Instrument {
                    index,
                    node: node.clone(),
                    message: "gain, pan and sends must be finite".into(),
                });
            }
            let mut inst = Instrument::new(program, spec.polyphony, rate);
            inst.set_name(name);
            inst.key = crate::edit::instrument_key(&def, spec.polyphony);
            for (control, &value) in &spec.controls {
                let Some(i) = inst.controls().iter().position(|c| &c.name == control) else {
                    return Err(GraphError::Instrument {
                        index,
                        node: node.clone(),
                        message: format!("{name:?} has no control {control:?}"),
                    });
                };
                if !value.is_finite() {
                    return Err(GraphError::Instrument {
                        index,
                        node: node.clone(),
                        message: format!("{name}.{control}: {value} is not a finite number"),
                    });
                }
                inst.start(param::FIRST_CONTROL + i, value);
            }
            inst.start(param::GAIN, spec.gain);
            inst.start(param::PAN, spec.pan);
            for (i, v) in levels {
                if let Some(s) = inst.sends.get_mut(i) {
                    *s = table::SEND.clamp(v);
                }
            }
            instruments.push(inst);
        }
        if let Some(e) = effects
            .iter()
            .find(|e| instruments.iter().any(|i| i.name() == e.name))
        {
            return Err(GraphError::Effect {
                name: e.name.clone(),
                message:
                    "an instrument has the same name; names address nodes, so they must be unique"
                        .into(),
            });
        }
        Ok(match purpose {
            Use::Render => Engine::new(rate, instruments, effects),
            Use::Check => Engine::unprepared(rate, instruments, effects),
        })
    }

    /// The effect nodes (the default pair when the graph lists none), routes checked: names
    /// unique and not an instrument's, sends only to later effects, numbers finite.
    fn build_effects(&self, rate: f32) -> Result<Vec<Effect>, GraphError> {
        if self.effects.is_empty() {
            let defaults = Self {
                effects: default_effect_specs(),
                ..Self::default()
            };
            return defaults.build_effects(rate);
        }
        let err = |name: &str, message: String| GraphError::Effect {
            name: name.to_string(),
            message,
        };
        if self.effects.len() > MAX_EFFECTS {
            return Err(err(
                self.effects[MAX_EFFECTS].name(),
                format!("a graph holds at most {MAX_EFFECTS} effects"),
            ));
        }
        let mut out: Vec<Effect> = Vec::with_capacity(self.effects.len());
        for (i, spec) in self.effects.iter().enumerate() {
            let name = spec.name();
            if out.iter().any(|e| e.name == name) {
                return Err(err(name, "the name is used twice".into()));
            }
            let finite = |xs: &[f32]| xs.iter().all(|x| x.is_finite());
            let mut e = match *spec {
                EffectSpec::Delay {
                    beats,
                    feedback,
                    damp_hz,
                    ret,
                    ..
                } => {
                    if !finite(&[beats, feedback, damp_hz, ret]) {
                        return Err(err(name, "settings must be finite".into()));
                    }
                    Effect::delay(
                        name,
                        rate,
                        table::BEATS.clamp(beats),
                        table::FEEDBACK.clamp(feedback),
                        table::DAMP_HZ.clamp(damp_hz),
                        table::RETURN.clamp(ret),
                    )
                }
                EffectSpec::Reverb {
                    room, damp, ret, ..
                } => {
                    if !finite(&[room, damp, ret]) {
                        return Err(err(name, "settings must be finite".into()));
                    }
                    Effect::reverb(
                        name,
                        rate,
                        table::ROOM.clamp(room),
                        table::DAMP.clamp(damp),
                        table::RETURN.clamp(ret),
                    )
                }
                EffectSpec::Def {
                    ref def,
                    ref controls,
                    ret,
                    ..
                } => {
                    let program = def.compile().map_err(|e| err(name, e.to_string()))?;
                    if !program.reads_input {
                        return Err(err(
                            name,
                            "its definition never reads \"input\": an effect processes the \
                             sound routed into it (make it an instrument instead)"
                                .into(),
                        ));
                    }
                    if !ret.is_finite() {
                        return Err(err(name, "settings must be finite".into()));
                    }
                    let mut e = Effect::def(
                        name,
                        program,
                        rate,
                        table::RETURN.clamp(ret),
                        crate::edit::instrument_key(def, 0),
                    );
                    let params = e.params();
                    for (control, &value) in controls {
                        let Some(p) = params.iter().skip(1).position(|(n, _, _)| n == control)
                        else {
                            return Err(err(
                                name,
                                format!("its definition has no control {control:?}"),
                            ));
                        };
                        if !value.is_finite() {
                            return Err(err(name, format!("{control}: {value} is not finite")));
                        }
                        e.start(p + 1, value);
                    }
                    e
                }
            };
            for (target, &level) in spec.routes() {
                let Some(t) = self.effects.iter().position(|x| x.name() == target) else {
                    return Err(err(
                        name,
                        format!("sends to {target:?}, which is not an effect"),
                    ));
                };
                if t == i {
                    return Err(err(name, "sends to itself: routes cannot loop".into()));
                }
                if t < i {
                    return Err(err(
                        name,
                        format!(
                            "sends to {target:?}, listed before it: routes go to later effects \
                             (list {target:?} after {name:?}), so they cannot loop"
                        ),
                    ));
                }
                if !level.is_finite() {
                    return Err(err(name, format!("send to {target:?} is not finite")));
                }
                e.routes.push(Route::new(t, table::SEND.clamp(level)));
            }
            out.push(e);
        }
        Ok(out)
    }
}
