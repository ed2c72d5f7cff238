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
//! The edit commands (`put`, `remove`, `route`) are
//! [`GraphSpec::edited`](crate::graph::GraphSpec::edited): the graph playing with one change,
//! built and carried like any other.
//!
//! [`Carry`] is the plan: which old node each new node continues, computed here from the
//! nodes' names and keys ([`Outline`] of each graph, [`crate::engine::Engine::outline`], kept by the bus thread).

use std::hash::{Hash, Hasher};

use crate::ir::SynthDef;

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
