//! A graph changed node by node: the edit commands (`put`, `remove`, `route`) applied to a
//! [`GraphSpec`], giving the graph playing with one change; and the graph with nothing left
//! implied, which edits start from and `khorus-synth graph` prints. Which nodes of the result
//! continue the sound of the graph playing is [`crate::edit`]'s.

use khorus_bus::commands::synth::GraphEdit;

use super::spec::{EffectSpec, GraphError, GraphSpec, InstrumentSpec, Sends, default_effect_specs};
use crate::schema::{DEFAULT_POLYPHONY, table};

impl GraphSpec {
    /// This graph with one node-by-node edit applied (the built-in patch spelt out first when
    /// the graph is empty). Nothing is built here: [`GraphSpec::build`] checks the result.
    pub fn edited(&self, edit: &GraphEdit) -> Result<Self, GraphError> {
        let mut g = self.named();
        let unknown = |node: &str, g: &GraphSpec| GraphError::Edit {
            node: node.to_string(),
            message: format!(
                "no such node (nodes: {})",
                g.node_names().collect::<Vec<_>>().join(", ")
            ),
        };
        match edit {
            GraphEdit::Put { json } => {
                let value: serde_json::Value = serde_json::from_str(json)?;
                if value.get("type").is_some() {
                    let effect: EffectSpec = serde_json::from_value(value)?;
                    let name = effect.name().to_string();
                    g.instruments.retain(|i| i.node_name() != name);
                    match g.effects.iter_mut().find(|e| e.name() == name) {
                        Some(e) => *e = effect,
                        None => {
                            if g.effects.is_empty() {
                                // The default pair the graph implied stays in it.
                                g.effects = default_effect_specs();
                            }
                            g.effects.push(effect);
                        }
                    }
                } else {
                    let mut inst: InstrumentSpec = serde_json::from_value(value)?;
                    let name = inst.node_name().to_string();
                    inst.name = Some(name.clone());
                    g.effects.retain(|e| e.name() != name);
                    match g.instruments.iter_mut().find(|i| i.node_name() == name) {
                        Some(i) => *i = inst,
                        None => g.instruments.push(inst),
                    }
                    g.name_sends();
                }
            }
            GraphEdit::Remove { node } => {
                let before = g.instruments.len() + g.effects.len();
                g.instruments.retain(|i| i.node_name() != node);
                if g.effects.is_empty() && (node == "delay" || node == "reverb") {
                    g.effects = default_effect_specs();
                }
                g.effects.retain(|e| e.name() != node);
                if g.instruments.len() + g.effects.len() == before {
                    return Err(unknown(node, &g));
                }
                for i in &mut g.instruments {
                    if let Sends::Named(m) = &mut i.sends {
                        m.remove(node);
                    }
                }
                for e in &mut g.effects {
                    e.routes_mut().remove(node);
                }
            }
            GraphEdit::Route { from, to, level } => {
                if !level.is_finite() {
                    return Err(GraphError::Edit {
                        node: from.clone(),
                        message: format!("route level {level} is not a finite number"),
                    });
                }
                if g.effects.is_empty() {
                    g.effects = default_effect_specs();
                }
                if !g.effects.iter().any(|e| e.name() == to) {
                    return Err(GraphError::Edit {
                        node: to.clone(),
                        message: "routes go into effects, and this is not one".into(),
                    });
                }
                let level = table::SEND.clamp(*level);
                let sends =
                    if let Some(i) = g.instruments.iter_mut().find(|i| i.node_name() == from) {
                        match &mut i.sends {
                            Sends::Named(m) => m,
                            Sends::Levels(_) => unreachable!("named above"),
                        }
                    } else if let Some(e) = g.effects.iter_mut().find(|e| e.name() == from) {
                        e.routes_mut()
                    } else {
                        return Err(unknown(from, &g));
                    };
                if level == 0.0 {
                    sends.remove(to.as_str());
                } else {
                    sends.insert(to.clone(), level);
                }
            }
        }
        Ok(g)
    }

    /// Every node's name: instruments, then effects (the default pair when none are listed).
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        let defaults: &[&str] = if self.effects.is_empty() {
            &["delay", "reverb"]
        } else {
            &[]
        };
        self.instruments
            .iter()
            .map(|i| i.node_name())
            .chain(self.effects.iter().map(|e| e.name()))
            .chain(defaults.iter().copied())
    }

    /// The same graph with nothing left implied: the built-in patch for an empty graph, the
    /// default delay and reverb when it names no effects, every send by its effect's name. It
    /// builds the same engine; it is what `khorus-synth graph` prints for a synth started
    /// from it, and what a `Set` on any of its nodes is recorded in.
    pub fn spelled_out(&self) -> Self {
        let mut g = self.named();
        if g.effects.is_empty() {
            g.effects = default_effect_specs();
        }
        g
    }

    /// The graph with its nodes named: the built-in patch for an empty graph, sends by effect
    /// name (what an edit starts from).
    fn named(&self) -> Self {
        let mut g = if self.instruments.is_empty() && self.effects.is_empty() {
            Self::builtin_patch(DEFAULT_POLYPHONY)
        } else {
            self.clone()
        };
        g.name_sends();
        g
    }

    /// Sends by effect name instead of by position, so the graph can change around them.
    fn name_sends(&mut self) {
        let effects: Vec<String> = if self.effects.is_empty() {
            vec!["delay".into(), "reverb".into()]
        } else {
            self.effects.iter().map(|e| e.name().to_string()).collect()
        };
        for i in &mut self.instruments {
            if let Sends::Levels(levels) = i.sends {
                i.sends = Sends::Named(
                    levels
                        .iter()
                        .zip(&effects)
                        .filter(|(l, _)| **l != 0.0)
                        .map(|(l, e)| (e.clone(), *l))
                        .collect(),
                );
            }
        }
    }
}
