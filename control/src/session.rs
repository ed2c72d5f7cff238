//! The session: everything the music is made of — nodes (instruments and effects) with their
//! parameters, routes with send levels, each node's pattern, tempo and the kernel score — owned
//! by control alone, persisted, and replayed to any stage that restarts.
//!
//! A change arrives as a batch of [`Change`]s; [`Session::apply`] makes the new session or
//! names the change and element at fault, and leaves `self` untouched either way. Turning a
//! session into what each stage needs (the synth's graph, the composer's slots) is
//! [`crate::session::plan`]'s job.

pub mod plan;
pub mod ramps;
pub mod state;

use std::collections::BTreeMap;

use khorus_bus::Role;
use khorus_bus::commands::control::{Change, NodeSpec, PatternSpec, Value};
use serde::{Deserialize, Serialize};

use khorus_composer::transport;
use khorus_synth::ir::SynthDef;
use khorus_synth::schema::{POLYPHONY, Param, table};

pub use ramps::Ramp;

/// Most nodes a session holds (the published id table's size).
pub const MAX_NODES: usize = khorus_bus::services::ids::MAX_NODES;

/// Built-in effects, with their parameters and defaults: the synth's own table.
pub const EFFECTS: &[(&str, &[Param])] = &[("delay", table::DELAY), ("reverb", table::REVERB)];

/// The session. Serialised as `khorus session --json` prints it and `session load` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Tempo; `None` follows the score's.
    #[serde(default)]
    pub tempo: Option<Tempo>,
    /// The kernel score, if one plays.
    #[serde(default)]
    pub score: Option<ScoreChoice>,
    /// Nodes by name.
    #[serde(default)]
    pub nodes: BTreeMap<String, Node>,
    /// Routes from a node into an effect, with send levels (sorted by from, to).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// The next node id to give.
    #[serde(default = "first_id")]
    pub next_id: u32,
    /// Numbers on their way to their values over bars (see [`ramps`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ramps: Vec<Ramp>,
}

fn first_id() -> u32 {
    1
}

/// Tempo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tempo {
    /// Beats per minute.
    pub bpm: f64,
    /// Beats per cycle.
    pub beats_per_cycle: u32,
}

/// A kernel score and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreChoice {
    /// `ambient`, `percussive`, `arp` or `drone`.
    pub name: String,
    /// `key`, `scale`, `bpm`, `density`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// A node: an instrument or an effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Its numeric id (notes and curve points carry it).
    pub id: u32,
    /// A built-in instrument or effect…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// …or a synth definition (parsed once, when the node is added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub def: Option<SynthDef>,
    /// Its role: default MIDI channel, and which part of a score it plays.
    pub role: Role,
    /// Voices (instruments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polyphony: Option<u32>,
    /// Output gain 0..=4 (instruments; an effect's level is its `return`).
    #[serde(default = "one")]
    pub gain: f64,
    /// Pan -1..=1.
    #[serde(default)]
    pub pan: f64,
    /// Muted: gain 0 in the synth, the gain kept here.
    #[serde(default)]
    pub mute: bool,
    /// Control values: numbers, or signal expressions the composer sends as curves.
    #[serde(default)]
    pub controls: BTreeMap<String, ControlValue>,
    /// The pattern its slot plays (a session file may also write the older
    /// `{"mini": …, "quantum": …}`).
    #[serde(
        default,
        deserialize_with = "pattern_file",
        skip_serializing_if = "Option::is_none"
    )]
    pub pattern: Option<PatternSpec>,
    /// Parameter ids by name (stable: a parameter keeps its id while the node exists).
    #[serde(default)]
    pub params: BTreeMap<String, u32>,
}

fn one() -> f64 {
    1.0
}

/// A control value as the session file writes it: a number, an expression string, or a
/// pattern played as a curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ControlValue {
    /// A constant.
    Number(f64),
    /// A signal expression (a curve of 16 points a cycle).
    Expr(String),
    /// A pattern whose numbers are the curve's points.
    Pattern(PatternSpec),
}

impl From<Value> for ControlValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Number(n) => Self::Number(n),
            Value::Expr(e) => Self::Expr(e),
        }
    }
}

/// A pattern in a few words, for listings: its source as written, then its transforms and
/// quantum (`"a1 ~ e2" +2 transforms, quantum 4`).
pub fn brief(p: &PatternSpec) -> String {
    use khorus_bus::commands::composer::Source;
    let mut out = match &p.source {
        Source::Mini(m) => format!("{m:?}"),
        Source::Expr { expr, per_cycle } => format!("{expr:?} ×{per_cycle}/cycle"),
    };
    if !p.transforms.is_empty() {
        out.push_str(&format!(" +{} transforms", p.transforms.len()));
    }
    if !p.controls.is_empty() {
        out.push_str(&format!(" +{} controls", p.controls.len()));
    }
    if let Some(q) = &p.quantum {
        out.push_str(&format!(", quantum {q}"));
    }
    out
}

/// A node's pattern as a session file may write it: the whole spec, or mini-notation and a
/// quantum (the older form, still read).
#[derive(Deserialize)]
#[serde(untagged)]
enum PatternFile {
    Spec(PatternSpec),
    Mini(MiniFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MiniFile {
    mini: String,
    #[serde(default)]
    quantum: Option<String>,
}

fn pattern_file<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PatternSpec>, D::Error> {
    Ok(match Option::<PatternFile>::deserialize(d)? {
        None => None,
        Some(PatternFile::Spec(spec)) => Some(spec),
        Some(PatternFile::Mini(MiniFile { mini, quantum })) => {
            Some(PatternSpec::mini(mini, quantum))
        }
    })
}

/// A route from a node into an effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Source node.
    pub from: String,
    /// Effect node.
    pub to: String,
    /// Send level 0..=1.
    pub level: f64,
}

/// Why a batch was refused: which change, and what is wrong with which element.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("change {index} ({what}): {message}")]
pub struct BatchError {
    /// Position of the change in the batch (1-based).
    pub index: usize,
    /// The change, briefly (`set pad.cutoff`).
    pub what: String,
    /// What is wrong, naming the element.
    pub message: String,
}

impl Default for Session {
    fn default() -> Self {
        Self::empty()
    }
}

/// What a node is, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plays notes.
    Instrument,
    /// Processes what is routed into it.
    Effect,
}

impl Node {
    /// Instrument or effect.
    pub fn kind(&self) -> Kind {
        match &self.builtin {
            Some(b) if EFFECTS.iter().any(|(n, _)| n == b) => Kind::Effect,
            // A definition that reads "input" is an effect.
            None if self.user_def().is_some_and(|d| d.reads_input()) => Kind::Effect,
            _ => Kind::Instrument,
        }
    }

    /// Its parameter names, in the synth's order: `gain`, `pan`, then the definition's
    /// controls (instruments), or the effect's settings.
    pub fn param_names(&self) -> Vec<String> {
        match (self.kind(), self.builtin.as_deref()) {
            (Kind::Effect, Some(b)) => EFFECTS
                .iter()
                .find(|(n, _)| *n == b)
                .map(|(_, ps)| ps.iter().map(|p| p.name.to_string()).collect())
                .unwrap_or_default(),
            (Kind::Effect, None) => {
                let mut names: Vec<String> = table::DEF_EFFECT
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect();
                names.extend(self.def_controls());
                names
            }
            _ => {
                let mut names = vec!["gain".to_string(), "pan".to_string()];
                names.extend(self.def_controls());
                names
            }
        }
    }

    /// The default of an effect's setting `param` (the synth's table; a definition's control
    /// default), as written there (0.7, not the f32's 0.699999988…).
    pub fn setting_default(&self, param: &str) -> Option<f64> {
        let as_written = |v: f32| (f64::from(v) * 1e6).round() / 1e6;
        let table = match (&self.builtin, self.user_def()) {
            (Some(b), _) => EFFECTS.iter().find(|(n, _)| n == b)?.1,
            (None, Some(d)) => match d.controls.iter().find(|c| c.name == param) {
                Some(c) => return Some(as_written(c.default)),
                None => table::DEF_EFFECT,
            },
            (None, None) => return None,
        };
        let p = table.iter().find(|p| p.name == param)?;
        Some(as_written(p.default))
    }

    /// Its user definition (None for built-ins).
    fn user_def(&self) -> Option<&SynthDef> {
        match (&self.builtin, &self.def) {
            (None, Some(d)) => Some(d),
            _ => None,
        }
    }

    /// The control names of its definition (built-in or user).
    fn def_controls(&self) -> Vec<String> {
        match &self.builtin {
            Some(b) => builtin_controls(b),
            None => self
                .user_def()
                .map(|d| d.controls.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// Gives every parameter an id, keeping those it has.
    fn assign_param_ids(&mut self) {
        let mut next = self.params.values().max().map_or(0, |m| m + 1);
        for name in self.param_names() {
            self.params.entry(name).or_insert_with(|| {
                next += 1;
                next - 1
            });
        }
    }
}

/// `v` if it is within the synth's range for `param` (the synth's schema table owns it).
fn within(param: &Param, node: &str, v: f64) -> Result<f64, String> {
    let (lo, hi) = (f64::from(param.min), f64::from(param.max));
    if !(lo..=hi).contains(&v) {
        return Err(format!("{node}.{}: {v} is outside {lo}..={hi}", param.name));
    }
    Ok(v)
}

/// A built-in instrument's control names (its definition parsed once per process).
fn builtin_controls(name: &str) -> Vec<String> {
    static CONTROLS: std::sync::OnceLock<BTreeMap<&'static str, Vec<String>>> =
        std::sync::OnceLock::new();
    CONTROLS
        .get_or_init(|| {
            khorus_synth::builtin::names()
                .filter_map(|n| {
                    let d = khorus_synth::builtin::def(n)?;
                    Some((n, d.controls.iter().map(|c| c.name.clone()).collect()))
                })
                .collect()
        })
        .get(name)
        .cloned()
        .unwrap_or_default()
}

/// Node names: short, and plain enough for ids tables, PipeWire port names and OSC paths.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() < khorus_bus::services::ids::NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node name {name:?}: 1..={} characters of A-Z a-z 0-9 _ -",
            khorus_bus::services::ids::NAME_BYTES - 1
        ))
    }
}

impl Session {
    /// No nodes, no score.
    pub fn empty() -> Self {
        Self {
            tempo: None,
            score: None,
            nodes: BTreeMap::new(),
            routes: Vec::new(),
            next_id: 1,
            ramps: Vec::new(),
        }
    }

    /// What `khorus up` plays with no saved session: the built-in instruments through a delay
    /// and a reverb, playing the ambient score from live kernel activity.
    pub fn default_session() -> Self {
        let mut s = Self::empty();
        let nodes: &[(&str, Role, f64, f64, f64)] = &[
            // name, role, pan, delay send, reverb send
            ("pad", Role::Melody, 0.0, 0.15, 0.45),
            ("lead", Role::Other, 0.15, 0.25, 0.25),
            ("bass", Role::Bass, 0.0, 0.0, 0.08),
            ("chords", Role::Chords, 0.0, 0.15, 0.45),
            ("kick", Role::Percussion, 0.0, 0.0, 0.08),
            ("click", Role::Percussion, -0.3, 0.3, 0.2),
            ("hat", Role::Percussion, 0.35, 0.0, 0.08),
            ("glitch", Role::Percussion, 0.0, 0.3, 0.2),
        ];
        let mut changes = vec![
            Change::AddNode {
                name: "delay".into(),
                node: builtin_spec("delay", Role::Other),
            },
            Change::AddNode {
                name: "reverb".into(),
                node: builtin_spec("reverb", Role::Other),
            },
        ];
        for &(name, role, pan, d, r) in nodes {
            changes.push(Change::AddNode {
                name: name.into(),
                node: builtin_spec(name, role),
            });
            if pan != 0.0 {
                changes.push(Change::Set {
                    node: name.into(),
                    param: "pan".into(),
                    value: Value::Number(pan),
                });
            }
            for (to, level) in [("delay", d), ("reverb", r)] {
                if level > 0.0 {
                    changes.push(Change::Route {
                        from: name.into(),
                        to: to.into(),
                        level: level as f32,
                    });
                }
            }
        }
        changes.push(Change::Score {
            name: "ambient".into(),
            params: Vec::new(),
        });
        s = s
            .apply(&changes)
            .expect("the default session is a valid batch");
        s
    }

    /// The batch that builds this session from an empty one: how a loaded session is checked
    /// (every node as if added anew), and the one place that spells the session as changes.
    ///
    /// Every field is taken apart by name (no `..`), so a field added to [`Session`] or
    /// [`Node`] does not compile until it is handled here. What changes cannot say is the ids:
    /// nodes are added in id order and params named in the definition's order, so a session
    /// whose ids were given that way (no node removed or replaced) comes back equal.
    pub fn to_changes(&self) -> Vec<Change> {
        let Session {
            tempo,
            score,
            nodes,
            routes,
            next_id: _,
            ramps,
        } = self;
        let mut out = Vec::new();
        let mut by_id: Vec<_> = nodes.iter().collect();
        by_id.sort_by_key(|(_, n)| n.id);
        for (name, node) in by_id {
            let Node {
                id: _,
                builtin,
                def,
                role,
                polyphony,
                gain,
                pan,
                mute,
                controls,
                pattern,
                params: _,
            } = node;
            out.push(Change::AddNode {
                name: name.clone(),
                node: NodeSpec {
                    builtin: builtin.clone(),
                    def: def
                        .as_ref()
                        .map(|d| serde_json::to_string(d).unwrap_or_default()),
                    role: *role,
                    polyphony: *polyphony,
                },
            });
            let set = |param: &str, value: Value| Change::Set {
                node: name.clone(),
                param: param.into(),
                value,
            };
            if node.kind() == Kind::Instrument {
                out.push(set("gain", Value::Number(*gain)));
                out.push(set("pan", Value::Number(*pan)));
            }
            if *mute {
                out.push(set("mute", Value::Number(1.0)));
            }
            for (param, v) in controls {
                out.push(match v {
                    ControlValue::Number(x) => set(param, Value::Number(*x)),
                    ControlValue::Expr(e) => set(param, Value::Expr(e.clone())),
                    ControlValue::Pattern(spec) => Change::Play {
                        node: name.clone(),
                        param: Some(param.clone()),
                        pattern: Some(spec.clone()),
                    },
                });
            }
            if let Some(spec) = pattern {
                out.push(Change::Play {
                    node: name.clone(),
                    param: None,
                    pattern: Some(spec.clone()),
                });
            }
        }
        for Route { from, to, level } in routes {
            out.push(Change::Route {
                from: from.clone(),
                to: to.clone(),
                level: *level as f32,
            });
        }
        if let Some(Tempo {
            bpm,
            beats_per_cycle,
        }) = tempo
        {
            out.push(Change::Tempo {
                bpm: *bpm,
                beats_per_cycle: Some(*beats_per_cycle),
            });
        }
        if let Some(ScoreChoice { name, params }) = score {
            out.push(Change::Score {
                name: name.clone(),
                params: params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            });
        }
        for Ramp {
            what,
            from,
            to,
            bars,
            start,
        } in ramps
        {
            out.push(Change::Ramp {
                what: what.clone(),
                from: *from,
                to: *to,
                bars: *bars,
                start: start.clone(),
            });
        }
        out
    }

    /// The session after `changes`, or the first change that cannot be made. `self` is
    /// never modified.
    ///
    /// A [`Change::Over`] anywhere makes the numbers the batch changes ramp (see [`ramps`]);
    /// a number changed without one ends its ramp.
    pub fn apply(&self, changes: &[Change]) -> Result<Session, BatchError> {
        let mut next = self.clone();
        let mut over = 0;
        for (i, change) in changes.iter().enumerate() {
            let refused = |message| BatchError {
                index: i + 1,
                what: describe(change),
                message,
            };
            match change {
                Change::Over { bars } => over = ramps::check_bars(*bars).map_err(refused)?,
                Change::Ramp {
                    what,
                    from,
                    to,
                    bars,
                    start,
                } => next
                    .add_ramp(Ramp {
                        what: what.clone(),
                        from: *from,
                        to: *to,
                        bars: *bars,
                        start: start.clone(),
                    })
                    .map_err(refused)?,
                _ => next.apply_one(change).map_err(refused)?,
            }
        }
        next.check_routes().map_err(|message| BatchError {
            index: changes.len(),
            what: "routes".into(),
            message,
        })?;
        next.settle_ramps(self, over);
        Ok(next)
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut Node, String> {
        let known = self.nodes.keys().cloned().collect::<Vec<_>>().join(", ");
        self.nodes
            .get_mut(name)
            .ok_or_else(|| format!("no node named {name:?} (nodes: {known})"))
    }

    fn apply_one(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::AddNode { name, node } => self.add_node(name, node),
            Change::RemoveNode { name } => {
                self.node_mut(name)?;
                self.nodes.remove(name);
                self.routes.retain(|r| r.from != *name && r.to != *name);
                Ok(())
            }
            Change::Set { node, param, value } => self.set(node, param, value),
            Change::Route { from, to, level } => {
                self.node_mut(from)?;
                let kind = self.node_mut(to)?.kind();
                if kind != Kind::Effect {
                    return Err(format!(
                        "route {from} -> {to}: {to:?} is an instrument; routes go into effects"
                    ));
                }
                if from == to {
                    return Err(format!("route {from} -> {to}: a node cannot feed itself"));
                }
                if !(level.is_finite() && (0.0..=1.0).contains(level)) {
                    return Err(format!(
                        "route {from} -> {to}: level {level} is outside 0..=1"
                    ));
                }
                // As typed (0.45, not 0.449999…): f32 on the wire, six decimals here.
                let level = (*level as f64 * 1e6).round() / 1e6;
                match self
                    .routes
                    .iter_mut()
                    .find(|r| r.from == *from && r.to == *to)
                {
                    Some(r) => r.level = level,
                    None => self.routes.push(Route {
                        from: from.clone(),
                        to: to.clone(),
                        level,
                    }),
                }
                self.routes
                    .sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
                self.effect_order().map(drop).map_err(|_| {
                    format!(
                        "route {from} -> {to} would close a loop (effects feed each other in \
                         one direction only)"
                    )
                })
            }
            Change::Unroute { from, to } => {
                let before = self.routes.len();
                self.routes.retain(|r| !(r.from == *from && r.to == *to));
                if self.routes.len() == before {
                    return Err(format!("no route {from} -> {to}"));
                }
                Ok(())
            }
            Change::Play {
                node,
                param,
                pattern,
            } => self.play(node, param.as_deref(), pattern.as_ref()),
            Change::Tempo {
                bpm,
                beats_per_cycle,
            } => {
                // The composer's transport owns these ranges.
                let (lo, hi) = (*transport::BPM.start(), *transport::BPM.end());
                if !(bpm.is_finite() && (lo as f64..=hi as f64).contains(bpm)) {
                    return Err(format!("tempo {bpm} bpm is outside {lo}..={hi}"));
                }
                let beats = beats_per_cycle
                    .or(self.tempo.map(|t| t.beats_per_cycle))
                    .unwrap_or(transport::DEFAULT_BEATS_PER_CYCLE);
                if !transport::BEATS_PER_CYCLE.contains(&beats) {
                    let r = &transport::BEATS_PER_CYCLE;
                    return Err(format!(
                        "{beats} beats per cycle is outside {}..={}",
                        r.start(),
                        r.end()
                    ));
                }
                self.tempo = Some(Tempo {
                    bpm: *bpm,
                    beats_per_cycle: beats,
                });
                Ok(())
            }
            Change::Score { name, params } => {
                if name == "none" {
                    self.score = None;
                    return Ok(());
                }
                let mut map = BTreeMap::new();
                for (k, v) in params {
                    if !["key", "scale", "bpm", "density"].contains(&k.as_str()) {
                        return Err(format!(
                            "score parameter {k:?}: the parameters are key, scale, bpm, density"
                        ));
                    }
                    map.insert(k.clone(), v.clone());
                }
                self.score = Some(ScoreChoice {
                    name: name.clone(),
                    params: map,
                });
                Ok(())
            }
            Change::HushAll => {
                self.score = None;
                for n in self.nodes.values_mut() {
                    n.pattern = None;
                }
                Ok(())
            }
            // Batch-wide: [`Session::apply`] reads them.
            Change::Over { .. } | Change::Ramp { .. } => Ok(()),
        }
    }

    fn add_node(&mut self, name: &str, spec: &NodeSpec) -> Result<(), String> {
        check_name(name)?;
        let def = match (&spec.builtin, &spec.def) {
            (Some(b), None) => {
                let known = khorus_synth::builtin::names()
                    .chain(EFFECTS.iter().map(|(n, _)| *n))
                    .collect::<Vec<_>>();
                if !known.contains(&b.as_str()) {
                    return Err(format!(
                        "node {name:?}: unknown built-in {b:?} (built-ins: {})",
                        known.join(", ")
                    ));
                }
                None
            }
            (None, Some(text)) => Some(
                serde_json::from_str::<SynthDef>(text)
                    .map_err(|e| format!("node {name:?}: definition: {e}"))?,
            ),
            _ => {
                return Err(format!(
                    "node {name:?}: give a built-in or a definition, not both or neither"
                ));
            }
        };
        if let Some(p) = spec.polyphony
            && !POLYPHONY.contains(&(p as usize))
        {
            return Err(format!(
                "node {name:?}: polyphony {p} is outside {}..={}",
                POLYPHONY.start(),
                POLYPHONY.end()
            ));
        }
        let (id, params, gain, pan, mute, controls, pattern) = match self.nodes.get(name) {
            // Replacing a node keeps its id, mix settings and pattern.
            Some(old) => (
                old.id,
                old.params.clone(),
                old.gain,
                old.pan,
                old.mute,
                old.controls.clone(),
                old.pattern.clone(),
            ),
            None => {
                if self.nodes.len() >= MAX_NODES {
                    return Err(format!("a session holds at most {MAX_NODES} nodes"));
                }
                let id = self.next_id;
                self.next_id += 1;
                (id, BTreeMap::new(), 1.0, 0.0, false, BTreeMap::new(), None)
            }
        };
        let mut node = Node {
            id,
            builtin: spec.builtin.clone(),
            def,
            role: spec.role,
            polyphony: spec.polyphony,
            gain,
            pan,
            mute,
            controls,
            pattern,
            params,
        };
        let names = node.param_names();
        node.controls.retain(|k, _| names.contains(k));
        if node.kind() == Kind::Effect {
            node.pattern = None;
        }
        node.assign_param_ids();
        self.nodes.insert(name.to_string(), node);
        Ok(())
    }

    /// A pattern on a node's notes, or a curve on one of its parameters; `None` hushes it.
    fn play(
        &mut self,
        node: &str,
        param: Option<&str>,
        pattern: Option<&PatternSpec>,
    ) -> Result<(), String> {
        let n = self.node_mut(node)?;
        let Some(param) = param else {
            if n.kind() == Kind::Effect {
                return Err(format!("{node:?} is an effect: it plays no notes"));
            }
            if let Some(spec) = pattern {
                for c in &spec.controls {
                    if !matches!(c.param.as_str(), "velocity" | "legato")
                        && !n.params.contains_key(&c.param)
                    {
                        return Err(format!(
                            "{node}: a pattern's control {:?} is neither velocity, legato nor \
                             a parameter of {node:?} ({})",
                            c.param,
                            n.param_names().join(", ")
                        ));
                    }
                }
            }
            n.pattern = pattern.cloned();
            return Ok(());
        };
        if !n.params.contains_key(param) {
            return Err(format!(
                "{node:?} has no parameter {param:?} to play a curve on (parameters: {})",
                n.param_names().join(", ")
            ));
        }
        if let Some(spec) = pattern
            && !spec.controls.is_empty()
        {
            return Err(format!(
                "{node}.{param}: a curve's pattern takes no controls (its numbers are the curve)"
            ));
        }
        match pattern {
            Some(spec) => {
                n.controls
                    .insert(param.to_string(), ControlValue::Pattern(spec.clone()));
            }
            None => {
                if !matches!(n.controls.get(param), Some(ControlValue::Pattern(_))) {
                    return Err(format!("{node}.{param} plays no curve to hush"));
                }
                n.controls.remove(param);
            }
        }
        Ok(())
    }

    fn set(&mut self, node: &str, param: &str, value: &Value) -> Result<(), String> {
        let n = self.node_mut(node)?;
        if let Value::Number(v) = value
            && !v.is_finite()
        {
            return Err(format!("{node}.{param}: {v} is not a finite number"));
        }
        let number = |v: &Value| match v {
            Value::Number(x) => Ok(*x),
            Value::Expr(e) => Err(format!(
                "{node}.{param}: {e:?} — {param} takes a number, not a signal expression"
            )),
        };
        match (param, n.kind()) {
            ("mute", _) => {
                n.mute = number(value)? != 0.0;
                Ok(())
            }
            ("gain", Kind::Instrument) => {
                n.gain = within(&table::GAIN, node, number(value)?)?;
                // A number replaces a curve playing on it.
                n.controls.remove(param);
                Ok(())
            }
            ("pan", Kind::Instrument) => {
                n.pan = within(&table::PAN, node, number(value)?)?;
                n.controls.remove(param);
                Ok(())
            }
            _ => {
                let names = n.param_names();
                if !names.iter().any(|p| p == param) {
                    return Err(format!(
                        "{node:?} has no parameter {param:?} (parameters: {}, mute)",
                        names.join(", ")
                    ));
                }
                n.controls.insert(param.to_string(), value.clone().into());
                Ok(())
            }
        }
    }

    /// Routes must name nodes, go into effects, and never loop.
    fn check_routes(&self) -> Result<(), String> {
        self.effect_order().map(drop)
    }

    /// The effects in an order where every route between effects goes forwards, or the loop.
    pub fn effect_order(&self) -> Result<Vec<String>, String> {
        let effects: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.kind() == Kind::Effect)
            .map(|(k, _)| k)
            .collect();
        let mut order: Vec<String> = Vec::new();
        let mut left: Vec<&String> = effects.clone();
        while !left.is_empty() {
            // An effect whose every effect source is already placed.
            let ready = left.iter().position(|e| {
                self.routes
                    .iter()
                    .filter(|r| &r.to == *e && effects.contains(&&r.from))
                    .all(|r| order.contains(&r.from))
            });
            match ready {
                Some(i) => order.push(left.remove(i).clone()),
                None => {
                    let r = self
                        .routes
                        .iter()
                        .find(|r| left.contains(&&r.to) && left.contains(&&r.from))
                        .expect("a cycle has a route inside it");
                    return Err(format!(
                        "route {} -> {} closes a loop (effects may only feed each other in one direction)",
                        r.from, r.to
                    ));
                }
            }
        }
        Ok(order)
    }
}

fn builtin_spec(name: &str, role: Role) -> NodeSpec {
    NodeSpec {
        builtin: Some(name.into()),
        def: None,
        role,
        polyphony: None,
    }
}

/// A change, briefly, for error messages.
pub fn describe(change: &Change) -> String {
    match change {
        Change::AddNode { name, .. } => format!("node add {name}"),
        Change::RemoveNode { name } => format!("node remove {name}"),
        Change::Set { node, param, .. } => format!("set {node}.{param}"),
        Change::Route { from, to, .. } => format!("route {from} {to}"),
        Change::Unroute { from, to } => format!("unroute {from} {to}"),
        Change::Play {
            node, param: None, ..
        } => format!("play {node}"),
        Change::Play {
            node,
            param: Some(param),
            ..
        } => format!("play {node}.{param}"),
        Change::Tempo { .. } => "tempo".into(),
        Change::Score { name, .. } => format!("score {name}"),
        Change::HushAll => "hush".into(),
        Change::Over { bars } => format!("over {bars} bars"),
        Change::Ramp { what, .. } => format!("ramp {what}"),
    }
}

#[cfg(test)]
mod tests;
