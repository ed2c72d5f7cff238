//! Stems: every instrument's and effect's post-fader output as a PipeWire output of its own,
//! `<synth>.<node>` (e.g. `khorus-synth.bass:output_FL`), patchable in pw-link, Helvum and
//! qpwgraph while the master mix autoconnects as before.
//!
//! Each node of a graph gets a *slot* (one of [`MAX_STEMS`]) by name on the bus thread
//! ([`StemSlots`]): a node keeps its slot across graph edits, and a slot freed by an edit is
//! not given to another node in the same edit (the freed node is still fading out in the old
//! graph, and a stem never carries another node's sound). The audio thread copies each
//! slot's node output into the slot's buffer as it renders ([`crate::rt::Renderer`]); the
//! PipeWire thread runs one stream per slot in use, in the master's `node.group` so all of
//! them follow the same driver cycle ([`crate::node`]).
//!
//! Why streams and not one `pw_filter` with many ports: pipewire-rs 0.10 has no safe
//! `Filter`, and in libpipewire 0.3.65 adding or removing a filter port while it runs is not
//! safe (the real-time thread walks the port list unlocked and removal frees at once). A
//! stream per stem can be created and destroyed at any time without touching the master.

/// Stems a synth offers at most (nodes beyond get none, and a warning).
pub const MAX_STEMS: usize = 16;

/// Per slot, whether anyone listens to the stem: the renderer copies only those (a relaxed
/// atomic each, set by the PipeWire thread as links come and go).
#[derive(Debug)]
pub struct StemSwitches([std::sync::atomic::AtomicBool; MAX_STEMS]);

impl StemSwitches {
    /// Every stem copied (offline renders and tests read any of them).
    pub fn all_on() -> Self {
        Self(std::array::from_fn(|_| {
            std::sync::atomic::AtomicBool::new(true)
        }))
    }

    /// Whether slot `slot` is copied.
    #[inline]
    pub fn is_on(&self, slot: usize) -> bool {
        self.0
            .get(slot)
            .is_some_and(|b| b.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Copies slot `slot` or not.
    pub fn set(&self, slot: usize, on: bool) {
        if let Some(b) = self.0.get(slot) {
            b.store(on, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Which node's output a slot carries, in an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemSource {
    /// Instrument `i`.
    Instrument(usize),
    /// Effect `k`.
    Effect(usize),
}

/// The slots of a graph's nodes, by name (the bus thread's side).
#[derive(Debug, Clone, Default)]
pub struct StemSlots {
    names: [Option<String>; MAX_STEMS],
}

impl StemSlots {
    /// Assigns slots for a graph whose nodes are `names` (instruments, then effects, as
    /// [`StemSource`] indexes them): (slot, source) for the engine, and the names of the
    /// nodes that got none (more than [`MAX_STEMS`]).
    pub fn assign<'a>(
        &mut self,
        instruments: impl Iterator<Item = &'a str>,
        effects: impl Iterator<Item = &'a str>,
    ) -> (Vec<(usize, StemSource)>, Vec<String>) {
        let nodes: Vec<(&str, StemSource)> = instruments
            .enumerate()
            .map(|(i, n)| (n, StemSource::Instrument(i)))
            .chain(effects.enumerate().map(|(k, n)| (n, StemSource::Effect(k))))
            .collect();
        // Freed by this edit: the old graph may still be fading that node out, so the slot
        // waits for the next edit (which comes only after this crossfade is over).
        let mut freed = [false; MAX_STEMS];
        let mut kept: [Option<String>; MAX_STEMS] = Default::default();
        for (slot, name) in self.names.iter_mut().enumerate() {
            match name {
                Some(n) if nodes.iter().any(|(m, _)| m == n) => kept[slot] = name.take(),
                Some(_) => {
                    *name = None;
                    freed[slot] = true;
                }
                None => {}
            }
        }
        let mut map = Vec::with_capacity(nodes.len());
        let mut without = Vec::new();
        for (name, source) in nodes {
            let slot = match kept.iter().position(|k| k.as_deref() == Some(name)) {
                Some(s) => Some(s),
                None => {
                    let free = (0..MAX_STEMS).find(|&s| kept[s].is_none() && !freed[s]);
                    if let Some(s) = free {
                        kept[s] = Some(name.to_string());
                    }
                    free
                }
            };
            match slot {
                Some(s) => map.push((s, source)),
                None => without.push(name.to_string()),
            }
        }
        self.names = kept;
        (map, without)
    }

    /// The slots in use: (slot, node name).
    pub fn in_use(&self) -> Vec<(usize, String)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(s, n)| Some((s, n.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_slot_and_a_freed_slot_waits_one_edit() {
        let mut slots = StemSlots::default();
        let (map, without) = slots.assign(["bass", "pad"].into_iter(), ["verb"].into_iter());
        assert_eq!(
            map,
            [
                (0, StemSource::Instrument(0)),
                (1, StemSource::Instrument(1)),
                (2, StemSource::Effect(0))
            ]
        );
        assert!(without.is_empty());
        // pad removed, lead added, bass moved: bass keeps 0, lead does not take pad's 1.
        let (map, _) = slots.assign(["lead", "bass"].into_iter(), ["verb"].into_iter());
        assert_eq!(
            map,
            [
                (3, StemSource::Instrument(0)),
                (0, StemSource::Instrument(1)),
                (2, StemSource::Effect(0))
            ]
        );
        // One edit later slot 1 is free again.
        let (map, _) = slots.assign(["lead", "bass", "kick"].into_iter(), std::iter::empty());
        assert_eq!(map[2], (1, StemSource::Instrument(2)));
        assert_eq!(
            slots.in_use(),
            [(0, "bass".into()), (1, "kick".into()), (3, "lead".into())]
        );
    }

    #[test]
    fn nodes_beyond_the_slots_get_none_and_are_named() {
        let names: Vec<String> = (0..MAX_STEMS + 2).map(|i| format!("n{i}")).collect();
        let mut slots = StemSlots::default();
        let (map, without) = slots.assign(names.iter().map(String::as_str), std::iter::empty());
        assert_eq!(map.len(), MAX_STEMS);
        assert_eq!(without, ["n16", "n17"]);
    }
}
