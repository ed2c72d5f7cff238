//! What each stage needs to play a session: the synth's graph (with control's ids), the
//! composer's slots, tempo and score; and what changed between two sessions, as the stage
//! commands that turn one into the other.
//!
//! Checking happens here too, with the stages' own code: the graph is built by the synth's
//! graph builder and every slot compiled and test-queried by the composer's, so a batch that
//! passes [`Plan::of`] is one the stages accept.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use khorus_bus::commands::composer::{
    ComposerCommand, ControlParam, ControlSpec, NoteRoute, ParamRamp, ScoreParams, ScoreRoutes,
    SlotSpec, Source, Target, TempoChange, TransportInfo,
};
use khorus_bus::commands::control::PatternSpec;
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::{CurveShape, Role};
use khorus_synth::graph::{EffectSpec, GraphSpec, IdSpec, InstrumentSpec, Sends};
use khorus_synth::schema::table;

use crate::session::{ControlValue, Kind, Node, Session};

/// The rate graphs are checked at (the synth builds them again at its own).
const CHECK_RATE: f32 = 48_000.0;
/// Crossfade of a whole-graph change, ms.
pub const GRAPH_FADE_MS: u32 = 60;
/// Curve points per cycle for a control driven by a signal expression.
const CURVE_POINTS_PER_CYCLE: u32 = 16;

/// A session as the stages see it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The synth's graph.
    pub graph: GraphSpec,
    /// The graph as JSON (what `LoadGraph` carries), made when first asked for: most changes
    /// never need it (a 256-node graph is megabytes of it), and a plan whose graph did not
    /// change shares its predecessor's.
    graph_json: OnceLock<Arc<str>>,
    /// Composer slots by name (`node/<name>`, `ctl/<name>/<param>`).
    pub slots: BTreeMap<String, SlotSpec>,
    /// Tempo, if the session sets one.
    pub tempo: Option<TempoChange>,
    /// The score command, if a score plays.
    pub score: Option<ComposerCommand>,
    /// The score's tempo, bpm (its default or its `bpm` parameter), if a score plays.
    pub score_bpm: Option<f64>,
    /// The session's number ramps, as the composer plays them.
    pub ramps: Vec<ParamRamp>,
    /// Whether a send level's ramp waits for the composer to say where the next cycle starts
    /// (the synth moves sends; the composer only places them).
    routes_unplaced: bool,
}

/// Why a session cannot be played: the element at fault and the stage's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{element}: {message}")]
pub struct PlanError {
    /// `node pad`, `pattern of bass`, `score`…
    pub element: String,
    /// What the stage's code said.
    pub message: String,
}

fn perr(element: impl Into<String>, message: impl ToString) -> PlanError {
    PlanError {
        element: element.into(),
        message: message.to_string(),
    }
}

impl Plan {
    /// The plan of `session`, checked with the synth's and the composer's own code.
    pub fn of(session: &Session) -> Result<Self, PlanError> {
        Self::checked(session, None)
    }

    /// The plan of `session`, a change from the session `old` is the plan of: checked the
    /// same way, but what `old` already checked (an instrument with the same spec, a slot
    /// with the same spec) is not checked again, so a one-node change costs one node's check
    /// however large the session.
    pub fn after(session: &Session, old: &Plan) -> Result<Self, PlanError> {
        Self::checked(session, Some(old))
    }

    fn checked(session: &Session, old: Option<&Plan>) -> Result<Self, PlanError> {
        let mut graph = graph_of(session)?;
        hold_ramped(&mut graph, session, old.map(|o| &o.graph));
        let checked = match old.map(|o| graph.changed_since(&o.graph)) {
            Some(None) => Ok(()),
            Some(Some(part)) => part.check(CHECK_RATE),
            None => graph.check(CHECK_RATE),
        };
        khorus_bus::memory::release_freed_heap();
        if let Err(e) = checked {
            // Said as the whole graph's check says it (its instrument index counts every
            // instrument); a refusal is rare, so checking the whole graph then costs little.
            let e = match old {
                Some(_) => graph.check(CHECK_RATE).err().unwrap_or(e),
                None => e,
            };
            return Err(perr("synth graph", e));
        }
        let graph_json = match old {
            Some(o) if o.graph == graph => o.graph_json.clone(),
            _ => OnceLock::new(),
        };
        let mut slots = BTreeMap::new();
        let mut check = |name: String, spec: SlotSpec, element: &dyn Fn() -> String| {
            if old.and_then(|o| o.slots.get(&name)) != Some(&spec) {
                khorus_composer::stage::check_slot(&spec).map_err(|e| perr(element(), e))?;
            }
            slots.insert(name, spec);
            Ok::<(), PlanError>(())
        };
        for (name, node) in &session.nodes {
            if let Some(p) = &node.pattern {
                let target = Target::Notes {
                    node: node.id,
                    role: node.role,
                    channel: None,
                };
                let element = || format!("pattern of {name}");
                let spec = slot_of(node, p, target).map_err(|e| perr(element(), e))?;
                check(format!("node/{name}"), spec, &element)?;
            }
            for (param, value) in &node.controls {
                let target = Target::Curve {
                    node: node.id,
                    param: node.params[param],
                    shape: CurveShape::Linear,
                };
                let element = || format!("{name}.{param}");
                let spec = match value {
                    ControlValue::Number(_) => continue,
                    ControlValue::Expr(expr) => SlotSpec {
                        source: Source::Expr {
                            expr: expr.clone(),
                            per_cycle: CURVE_POINTS_PER_CYCLE,
                        },
                        transforms: Vec::new(),
                        controls: Vec::new(),
                        target,
                        quantum: None,
                    },
                    ControlValue::Pattern(p) => {
                        slot_of(node, p, target).map_err(|e| perr(element(), e))?
                    }
                };
                check(format!("ctl/{name}/{param}"), spec, &element)?;
            }
        }
        let (ramps, tempo, routes_unplaced) = ramps_of(session);
        let score = match &session.score {
            None => None,
            Some(choice) => {
                let p = &choice.params;
                let number = |k: &str| -> Result<Option<f64>, PlanError> {
                    p.get(k)
                        .map(|v| {
                            v.parse::<f64>().map_err(|_| {
                                perr(format!("score {k}"), format!("{v:?} is not a number"))
                            })
                        })
                        .transpose()
                };
                let params = ScoreParams {
                    key: p.get("key").cloned(),
                    scale: p.get("scale").cloned(),
                    bpm: number("bpm")?,
                    density: number("density")?,
                    routes: Some(score_routes(session)),
                };
                let score =
                    khorus_composer::score::Score::from_name(&choice.name).ok_or_else(|| {
                        perr(
                            "score",
                            format!(
                                "unknown score {:?} (ambient, percussive, arp, drone, none)",
                                choice.name
                            ),
                        )
                    })?;
                let bpm = score.params(&params).map_err(|e| perr("score", e))?.bpm;
                Some((
                    ComposerCommand::SelectScore {
                        name: choice.name.clone(),
                        params,
                    },
                    bpm.to_f64(),
                ))
            }
        };
        let (score, score_bpm) = score.unzip();
        Ok(Self {
            graph,
            graph_json,
            slots,
            tempo,
            score,
            score_bpm,
            ramps,
            routes_unplaced,
        })
    }

    /// The graph as JSON (what `LoadGraph` carries).
    pub fn graph_json(&self) -> Arc<str> {
        self.graph_json
            .get_or_init(|| {
                serde_json::to_string(&self.graph)
                    .unwrap_or_default()
                    .into()
            })
            .clone()
    }

    /// Takes the session's ramps again (after the composer placed the new ones).
    pub fn refresh_ramps(&mut self, session: &Session) {
        (self.ramps, self.tempo, self.routes_unplaced) = ramps_of(session);
    }

    /// The ramps a restarted stage resumes where they are (those the composer has placed).
    pub fn ramps_resumed(&self) -> Option<ComposerCommand> {
        let placed: Vec<ParamRamp> = self
            .ramps
            .iter()
            .filter(|r| r.start.is_some())
            .cloned()
            .collect();
        (!placed.is_empty()).then_some(ComposerCommand::Ramps(placed))
    }

    /// Everything the composer needs, in order, to play this plan from scratch (after a
    /// restart, or a new `khorus up`): the score, tempo, then the slots.
    pub fn composer_replay(&self) -> Vec<ComposerCommand> {
        let mut out = vec![ComposerCommand::Hush { slot: None }];
        out.extend(self.score.clone());
        out.extend(self.tempo.map(ComposerCommand::Tempo));
        for (slot, spec) in &self.slots {
            out.push(ComposerCommand::SetSlot {
                slot: slot.clone(),
                spec: spec.clone(),
                fade: 0,
            });
        }
        out
    }

    /// Everything the composer needs to play this plan on from another composer's clock
    /// (`clock`: the one a composer that exited ran): the replay, then `Follow` — after the
    /// score and slots, so they start on the cycle the old clock is at — then the tempo the
    /// session plays at (its own, else the score's) again: the old clock runs at the tempo
    /// it had when its composer exited, and a tempo or score chosen since must win. The
    /// composer ignores a tempo it already runs at.
    pub fn composer_replay_following(&self, clock: TransportInfo) -> Vec<ComposerCommand> {
        let mut out = self.composer_replay();
        out.push(ComposerCommand::Follow(clock));
        let tempo = self.tempo.or(self.score_bpm.map(|bpm| TempoChange {
            bpm: Some(bpm),
            cps: None,
            beats_per_cycle: None,
            over: None,
        }));
        out.extend(tempo.map(ComposerCommand::Tempo));
        // On the old clock, the ramps go on from where they are.
        out.extend(self.ramps_resumed());
        out
    }

    /// The synth commands that take the synth from `old` to `self`: parameter sets when
    /// only numbers changed, else the new graph.
    pub fn synth_changes(&self, old: &Plan) -> Vec<SynthCommand> {
        if self.graph == old.graph {
            return Vec::new();
        }
        match number_changes(&old.graph, &self.graph) {
            Some(sets) => sets,
            None => vec![SynthCommand::LoadGraph {
                json: self.graph_json().to_string(),
                fade_ms: GRAPH_FADE_MS,
            }],
        }
    }

    /// The synth command that sets up this plan from scratch.
    pub fn synth_replay(&self) -> SynthCommand {
        SynthCommand::LoadGraph {
            json: self.graph_json().to_string(),
            fade_ms: GRAPH_FADE_MS,
        }
    }

    /// The composer commands that take the composer from `old` to `self`; a node's new
    /// pattern crossfades with its old one over `fade` cycles.
    pub fn composer_changes(&self, old: &Plan, fade: u32) -> Vec<ComposerCommand> {
        let mut out = Vec::new();
        if self.score != old.score {
            out.push(self.score.clone().unwrap_or(ComposerCommand::SelectScore {
                name: "none".into(),
                params: ScoreParams::default(),
            }));
        }
        if self.tempo != old.tempo || (self.score != old.score && self.tempo.is_some()) {
            // A score sets its own tempo; the session's tempo wins when it has one.
            out.extend(self.tempo.map(ComposerCommand::Tempo));
        }
        for (slot, spec) in &self.slots {
            if old.slots.get(slot) != Some(spec) {
                out.push(ComposerCommand::SetSlot {
                    slot: slot.clone(),
                    spec: spec.clone(),
                    fade,
                });
            }
        }
        for slot in old.slots.keys() {
            if !self.slots.contains_key(slot) {
                out.push(ComposerCommand::Hush {
                    slot: Some(slot.clone()),
                });
            }
        }
        // New ramps start; ramps gone from the session end where they are.
        let key = |r: &ParamRamp| (r.node, r.param);
        let mut ramps: Vec<ParamRamp> = self
            .ramps
            .iter()
            .filter(|r| !old.ramps.contains(r))
            .cloned()
            .collect();
        for r in &old.ramps {
            if !self.ramps.iter().any(|n| key(n) == key(r)) {
                ramps.push(ParamRamp {
                    cycles: 0,
                    start: None,
                    ..r.clone()
                });
            }
        }
        // Ramps of send levels alone still ask where the next cycle starts (no ramps: the
        // answer is that boundary).
        if !ramps.is_empty() || self.routes_unplaced {
            out.push(ComposerCommand::Ramps(ramps));
        }
        out
    }
}

/// The synth graph of a session: instruments, effects in an order where routes go forwards,
/// sends from routes, and every node's ids.
pub fn graph_of(session: &Session) -> Result<GraphSpec, PlanError> {
    let order = session.effect_order().map_err(|e| perr("routes", e))?;
    let sends_of = |name: &str| -> BTreeMap<String, f32> {
        session
            .routes
            .iter()
            .filter(|r| r.from == name)
            .map(|r| (r.to.clone(), r.level as f32))
            .collect()
    };
    let mut instruments = Vec::new();
    for (name, node) in session
        .nodes
        .iter()
        .filter(|(_, n)| n.kind() == Kind::Instrument)
    {
        let def = node.def.clone();
        instruments.push(InstrumentSpec {
            name: Some(name.clone()),
            builtin: node.builtin.clone(),
            def,
            polyphony: node.polyphony.unwrap_or(32) as usize,
            gain: if node.mute { 0.0 } else { node.gain as f32 },
            pan: node.pan as f32,
            sends: Sends::Named(sends_of(name)),
            controls: numbers(node),
        });
    }
    let mut effects = Vec::new();
    for name in &order {
        let node = &session.nodes[name];
        effects.push(effect_spec(name, node, sends_of(name))?);
    }
    let ids = session
        .nodes
        .iter()
        .map(|(name, n)| {
            (
                name.clone(),
                IdSpec {
                    id: n.id,
                    params: n.params.clone(),
                },
            )
        })
        .collect();
    Ok(GraphSpec {
        instruments,
        effects,
        ids,
    })
}

/// The composer's side of the session's ramps: the number ramps with ids, and the tempo (a
/// ramp not yet placed goes with it).
fn ramps_of(session: &Session) -> (Vec<ParamRamp>, Option<TempoChange>, bool) {
    let mut ramps = Vec::new();
    let mut tempo_over = None;
    let mut routes_unplaced = false;
    for r in &session.ramps {
        if r.what == "tempo" {
            tempo_over = r.start.is_none().then_some(r.bars);
            continue;
        }
        if r.route().is_some() {
            routes_unplaced |= r.start.is_none();
            continue;
        }
        let Some((node, param)) = r.param() else {
            continue;
        };
        let Some(n) = session.nodes.get(node) else {
            continue;
        };
        let Some(&param) = n.params.get(param) else {
            continue;
        };
        ramps.push(ParamRamp {
            node: n.id,
            param,
            from: r.from as f32,
            to: r.to as f32,
            start: r.start.clone(),
            cycles: r.bars,
        });
    }
    let tempo = session.tempo.map(|t| TempoChange {
        bpm: Some(t.bpm),
        cps: None,
        beats_per_cycle: Some(t.beats_per_cycle),
        over: tempo_over,
    });
    (ramps, tempo, routes_unplaced)
}

/// While a number ramps, the graph keeps the value the synth has for it (`old`'s, else where
/// the ramp starts): the composer's curve points move it, and a graph edit elsewhere must not
/// set it.
fn hold_ramped(graph: &mut GraphSpec, session: &Session, old: Option<&GraphSpec>) {
    for r in &session.ramps {
        if let Some((from, to)) = r.route() {
            let held = old.and_then(|g| g.send(from, to)).unwrap_or(r.from as f32);
            if let Some(level) = graph.send_mut(from, to) {
                *level = held;
            }
            continue;
        }
        let Some((node, param)) = r.param() else {
            continue;
        };
        let muted = session.nodes.get(node).is_some_and(|n| n.mute);
        if muted && (param == "gain" || param == "return") {
            continue;
        }
        let held = old
            .and_then(|g| g.number(node, param))
            .unwrap_or(r.from as f32);
        if let Some(v) = graph.number_mut(node, param) {
            *v = held;
        }
    }
}

/// A node's numeric control values (expressions and curve patterns are the composer's).
fn numbers(node: &Node) -> BTreeMap<String, f32> {
    node.controls
        .iter()
        .filter_map(|(k, v)| match v {
            ControlValue::Number(x) => Some((k.clone(), *x as f32)),
            ControlValue::Expr(_) | ControlValue::Pattern(_) => None,
        })
        .collect()
}

/// The composer's slot for a node's pattern aimed at `target`, its controls' names turned
/// into the node's ids.
fn slot_of(node: &Node, p: &PatternSpec, target: Target) -> Result<SlotSpec, String> {
    let PatternSpec {
        source,
        transforms,
        controls,
        quantum,
    } = p;
    let controls = controls
        .iter()
        .map(|c| {
            let param = match c.param.as_str() {
                "velocity" => ControlParam::Velocity,
                "legato" => ControlParam::Legato,
                name => ControlParam::Param(*node.params.get(name).ok_or_else(|| {
                    format!("control {name:?} is neither velocity, legato nor a parameter")
                })?),
            };
            Ok(ControlSpec {
                param,
                value: c.value.clone(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(SlotSpec {
        source: source.clone(),
        transforms: transforms.clone(),
        controls,
        target,
        quantum: quantum.clone(),
    })
}

fn effect_spec(
    name: &str,
    node: &Node,
    sends: BTreeMap<String, f32>,
) -> Result<EffectSpec, PlanError> {
    let defaults = match (&node.builtin, &node.def) {
        (Some(b), _) => crate::session::EFFECTS
            .iter()
            .find(|(n, _)| n == b)
            .map(|(_, d)| *d)
            .ok_or_else(|| perr(format!("node {name}"), "not an effect"))?,
        (None, Some(_)) => table::DEF_EFFECT,
        (None, None) => return Err(perr(format!("node {name}"), "not an effect")),
    };
    let v = |k: &str| -> f32 {
        let default = defaults
            .iter()
            .find(|p| p.name == k)
            .map_or(0.0, |p| f64::from(p.default));
        let value = match node.controls.get(k) {
            Some(ControlValue::Number(x)) => *x,
            _ => default,
        };
        if node.mute && k == "return" {
            0.0
        } else {
            value as f32
        }
    };
    if let (None, Some(def)) = (&node.builtin, &node.def) {
        let mut controls = numbers(node);
        controls.remove("return");
        return Ok(EffectSpec::Def {
            name: name.into(),
            def: def.clone(),
            controls,
            ret: v("return"),
            sends,
        });
    }
    Ok(match node.builtin.as_deref() {
        Some("delay") => EffectSpec::Delay {
            name: name.into(),
            beats: v("beats"),
            feedback: v("feedback"),
            damp_hz: v("damp_hz"),
            ret: v("return"),
            sends,
        },
        _ => EffectSpec::Reverb {
            name: name.into(),
            room: v("room"),
            damp: v("damp"),
            ret: v("return"),
            sends,
        },
    })
}

/// When two graphs differ only in numbers an instrument or effect can be set to (gain, pan,
/// control values, effect settings), the `Set` commands that make the change without a
/// crossfade; else `None`.
fn number_changes(old: &GraphSpec, new: &GraphSpec) -> Option<Vec<SynthCommand>> {
    if old.ids != new.ids || old.instruments.len() != new.instruments.len() {
        return None;
    }
    let mut sets = Vec::new();
    let set = |sets: &mut Vec<SynthCommand>, node: &str, param: &str, value: f32| {
        sets.push(SynthCommand::Set {
            node: node.into(),
            param: param.into(),
            value,
        })
    };
    for (a, b) in old.instruments.iter().zip(&new.instruments) {
        let same_shape = a.name == b.name
            && a.builtin == b.builtin
            && a.def == b.def
            && a.polyphony == b.polyphony
            && same_routes(&a.sends, &b.sends)
            && a.controls.keys().all(|k| b.controls.contains_key(k));
        if !same_shape {
            return None;
        }
        let name = b.name.as_deref()?;
        if let (Sends::Named(x), Sends::Named(y)) = (&a.sends, &b.sends) {
            send_changes(&mut sets, name, x, y);
        }
        if a.gain != b.gain {
            set(&mut sets, name, "gain", b.gain);
        }
        if a.pan != b.pan {
            set(&mut sets, name, "pan", b.pan);
        }
        for (k, v) in &b.controls {
            if a.controls.get(k) != Some(v) {
                set(&mut sets, name, k, *v);
            }
        }
    }
    if serde_json::to_value(&old.effects).ok()? == serde_json::to_value(&new.effects).ok()? {
        return Some(sets);
    }
    // Effects: same names, kinds and routes; settings may differ.
    if old.effects.len() != new.effects.len() {
        return None;
    }
    for (a, b) in old.effects.iter().zip(&new.effects) {
        match (a, b) {
            (
                EffectSpec::Delay {
                    name: n1,
                    sends: s1,
                    beats: b1,
                    feedback: f1,
                    damp_hz: d1,
                    ret: r1,
                },
                EffectSpec::Delay {
                    name: n2,
                    sends: s2,
                    beats: b2,
                    feedback: f2,
                    damp_hz: d2,
                    ret: r2,
                },
            ) if n1 == n2 && s1.keys().eq(s2.keys()) && s2.values().all(|&l| l > 0.0) => {
                send_changes(&mut sets, n2, s1, s2);
                for (p, x, y) in [
                    ("beats", b1, b2),
                    ("feedback", f1, f2),
                    ("damp_hz", d1, d2),
                    ("return", r1, r2),
                ] {
                    if x != y {
                        set(&mut sets, n2, p, *y);
                    }
                }
            }
            (
                EffectSpec::Reverb {
                    name: n1,
                    sends: s1,
                    room: m1,
                    damp: d1,
                    ret: r1,
                },
                EffectSpec::Reverb {
                    name: n2,
                    sends: s2,
                    room: m2,
                    damp: d2,
                    ret: r2,
                },
            ) if n1 == n2 && s1.keys().eq(s2.keys()) && s2.values().all(|&l| l > 0.0) => {
                send_changes(&mut sets, n2, s1, s2);
                for (p, x, y) in [("room", m1, m2), ("damp", d1, d2), ("return", r1, r2)] {
                    if x != y {
                        set(&mut sets, n2, p, *y);
                    }
                }
            }
            _ => return None,
        }
    }
    Some(sets)
}

/// Whether two sends go to the same effects (their levels may differ; none is 0).
fn same_routes(a: &Sends, b: &Sends) -> bool {
    match (a, b) {
        (Sends::Named(x), Sends::Named(y)) => {
            x.keys().eq(y.keys()) && y.values().all(|&level| level > 0.0)
        }
        _ => a == b,
    }
}

/// A `Send` for each route of `node` whose level changed (no graph change: the synth moves it).
fn send_changes(
    sets: &mut Vec<SynthCommand>,
    node: &str,
    old: &BTreeMap<String, f32>,
    new: &BTreeMap<String, f32>,
) {
    for (to, &level) in new {
        if old.get(to) != Some(&level) {
            sets.push(SynthCommand::Send {
                from: node.into(),
                to: to.clone(),
                level,
                at_ns: 0,
                over_ns: 0,
            });
        }
    }
}

/// Which nodes a score's parts play: the first node of each role; percussion notes by the
/// General MIDI drum numbers each built-in drum answers to (any other percussion node takes
/// the rest); the cutoff curve drives every melody node that has a `cutoff`.
pub fn score_routes(session: &Session) -> ScoreRoutes {
    let mut notes = Vec::new();
    let by_id = |role: Role| {
        let mut v: Vec<&Node> = session.nodes.values().filter(|n| n.role == role).collect();
        v.sort_by_key(|n| n.id);
        v
    };
    for role in [Role::Melody, Role::Bass, Role::Chords, Role::Other] {
        if let Some(n) = by_id(role).first() {
            notes.push(NoteRoute {
                role,
                lo: 0,
                hi: 127,
                node: n.id,
            });
        }
    }
    let drums = by_id(Role::Percussion);
    for n in &drums {
        let range = match n.builtin.as_deref() {
            Some("kick") => Some((35, 36)),
            Some("click") => Some((37, 40)),
            Some("hat") => Some((42, 46)),
            _ => None,
        };
        if let Some((lo, hi)) = range {
            notes.push(NoteRoute {
                role: Role::Percussion,
                lo,
                hi,
                node: n.id,
            });
        }
    }
    let catch_all = drums
        .iter()
        .find(|n| !matches!(n.builtin.as_deref(), Some("kick" | "click" | "hat")))
        .or(drums.first());
    if let Some(n) = catch_all {
        notes.push(NoteRoute {
            role: Role::Percussion,
            lo: 0,
            hi: 127,
            node: n.id,
        });
    }
    let cutoff = by_id(Role::Melody)
        .iter()
        .filter_map(|n| Some((n.id, *n.params.get("cutoff")?)))
        .collect();
    ScoreRoutes { notes, cutoff }
}

#[cfg(test)]
mod tests;
