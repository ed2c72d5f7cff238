//! Graph edits node by node. A new graph is always built whole on the bus thread, but when it
//! takes over, every node it shares with the graph playing — same name, same definition (or
//! effect kind) and polyphony — continues that node's sound: its voices, phases, filter
//! memory, delay lines and reverb tail move into the new graph bit for bit
//! ([`crate::engine::Engine::transplant`], on the audio thread, without allocating). Only the
//! nodes that differ crossfade: a new or replaced node fades in along a quarter sine while
//! the old graph, now holding only the replaced and removed nodes, fades out along a quarter
//! cosine (equal power). A replaced node's held notes fade out on the old definition; its
//! notes still to come play on the new one.
//!
//! The edit commands (`put`, `remove`, `route`) are [`GraphSpec::edited`]: the graph playing
//! with one change, built and carried like any other.
//!
//! [`Carry`] is the plan: which old node each new node continues, computed here from the
//! nodes' names and keys ([`Outline`] of each graph, [`crate::engine::Engine::outline`], kept by the bus thread).

use std::hash::{Hash, Hasher};

use khorus_bus::commands::synth::GraphEdit;

use crate::graph::{
    EffectSpec, GraphError, GraphSpec, InstrumentSpec, Sends, default_effect_specs,
};
use crate::ir::SynthDef;
use crate::schema::{DEFAULT_POLYPHONY, table};

/// What a graph's nodes are, by index: (name, key) of each instrument and each effect — what
/// the bus thread remembers of the graph it handed to the audio thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// Instruments: (name, key).
    pub instruments: Vec<(String, u64)>,
    /// Effects: (name, key).
    pub effects: Vec<(String, u64)>,
}

/// Which nodes of the graph playing a new graph continues (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// For each new instrument, the old instrument it continues.
    pub instruments: Vec<Option<usize>>,
    /// For each old instrument, the new instrument of its name, and whether it continues it
    /// (same key) or replaces it.
    pub successors: Vec<Option<(usize, bool)>>,
    /// For each new effect, the old effect it continues.
    pub effects: Vec<Option<usize>>,
    /// For each old effect, the new effect that continues it.
    pub effect_successors: Vec<Option<usize>>,
}

impl Carry {
    /// The plan for `new` taking over from a graph of shape `old`.
    pub fn between(old: &Outline, new: &Outline) -> Self {
        let find = |list: &[(String, u64)], name: &str| list.iter().position(|(n, _)| n == name);
        let instruments: Vec<Option<usize>> = new
            .instruments
            .iter()
            .map(|(name, key)| {
                find(&old.instruments, name).filter(|&i| old.instruments[i].1 == *key)
            })
            .collect();
        let successors = old
            .instruments
            .iter()
            .map(|(name, _)| {
                let j = find(&new.instruments, name)?;
                Some((j, instruments[j].is_some()))
            })
            .collect();
        let effects: Vec<Option<usize>> = new
            .effects
            .iter()
            .map(|(name, key)| find(&old.effects, name).filter(|&i| old.effects[i].1 == *key))
            .collect();
        let effect_successors = old
            .effects
            .iter()
            .map(|(name, _)| find(&new.effects, name).filter(|&j| effects[j].is_some()))
            .collect();
        Self {
            instruments,
            successors,
            effects,
            effect_successors,
        }
    }

    /// Nodes carried over.
    pub fn carried(&self) -> usize {
        self.instruments.iter().flatten().count() + self.effects.iter().flatten().count()
    }
}

/// The key of an instrument: a hash of its definition and polyphony (two instruments with the
/// same key run the same program with the same voices).
pub fn instrument_key(def: &SynthDef, polyphony: usize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // The JSON of a definition is canonical for it (fields in declaration order, numbers
    // printed exactly), so equal definitions hash equal.
    serde_json::to_string(def).unwrap_or_default().hash(&mut h);
    polyphony.hash(&mut h);
    h.finish()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(instruments: &[(&str, u64)], effects: &[(&str, u64)]) -> Outline {
        let own = |xs: &[(&str, u64)]| xs.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        Outline {
            instruments: own(instruments),
            effects: own(effects),
        }
    }

    #[test]
    fn nodes_are_carried_by_name_and_key_wherever_they_move() {
        let old = shape(
            &[("bass", 1), ("pad", 2), ("lead", 3)],
            &[("delay", 1), ("verb", 2)],
        );
        let new = shape(
            &[("lead", 3), ("pad", 9), ("kick", 4)],
            &[("verb", 2), ("delay", 2)],
        );
        let c = Carry::between(&old, &new);
        assert_eq!(c.instruments, [Some(2), None, None]);
        assert_eq!(c.successors, [None, Some((1, false)), Some((0, true))]);
        assert_eq!(
            c.effects,
            [Some(1), None],
            "a delay became a reverb: not carried"
        );
        assert_eq!(c.effect_successors, [None, Some(0)]);
        assert_eq!(c.carried(), 2);
    }
}
