//! How a graph is checked and built into an [`Engine`]: its instruments, effects and routes,
//! and the ids notes and curve points are addressed by.

use super::spec::{EffectSpec, GraphError, GraphSpec, InstrumentSpec, Sends, default_effect_specs};
use crate::builtin;
use crate::effect::{Effect, Route};
use crate::engine::{Engine, RATE_HZ, param};
use crate::ids::NodeIds;
use crate::instrument::Instrument;
use crate::params::ParamTable;
use crate::schema::{DEFAULT_POLYPHONY, MAX_EFFECTS, table};

/// What an engine is built for.
#[derive(Debug, Clone, Copy)]
enum Use {
    /// To be rendered: everything the audio thread reads is made now.
    Render,
    /// To be checked and dropped.
    Check,
}

impl GraphSpec {
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

    /// The part of this graph [`GraphSpec::check`] must still see when `old` was checked:
    /// the instruments that are new or changed, every effect (their sends must resolve), and
    /// their ids; `None` when there is nothing to check. What passed in `old` passes again:
    /// an instrument's check depends only on its own spec and the effects' names, and the
    /// names are unique in both graphs.
    pub fn changed_since(&self, old: &GraphSpec) -> Option<GraphSpec> {
        let instruments: Vec<InstrumentSpec> = self
            .instruments
            .iter()
            .filter(|i| !old.instruments.contains(i))
            .cloned()
            .collect();
        if instruments.is_empty() && self.effects == old.effects && self.ids == old.ids {
            return None;
        }
        // With no instrument at all a graph stands for the built-in patch: check the effects
        // with the graph's first instrument beside them.
        let instruments = match (instruments.is_empty(), self.instruments.first()) {
            (true, Some(first)) => vec![first.clone()],
            _ => instruments,
        };
        let keep: Vec<String> = instruments
            .iter()
            .map(|i| i.node_name().to_string())
            .chain(self.effects.iter().map(|e| e.name().to_string()))
            .collect();
        Some(GraphSpec {
            instruments,
            effects: self.effects.clone(),
            ids: self
                .ids
                .iter()
                .filter(|(n, _)| keep.contains(n))
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect(),
        })
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
