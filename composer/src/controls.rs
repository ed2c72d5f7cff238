//! Control maps: what one event carries besides its time (note, velocity, legato, node
//! parameters), combined the way Tidal's `#` combines control patterns: structure from the
//! left, values from the right overriding.

use crate::mini::Value;
use crate::notes::{Scale, drum_note, word_gain};
use crate::pattern::Pattern;
use crate::time::Q;

/// Velocity of a note that sets none.
pub const DEFAULT_VELOCITY: f64 = 0.8;

/// One event's controls. Unset fields take the slot's defaults when the note is made.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Controls {
    /// Pitch (MIDI, fractional allowed), or a curve slot's value.
    pub note: Option<f64>,
    /// Velocity 0..1.
    pub velocity: Option<f64>,
    /// Fraction of the event's length the note is held.
    pub legato: Option<f64>,
    /// Node parameters (id, value), sent as curve points at the onset.
    pub params: Vec<(u32, f64)>,
}

impl Controls {
    /// A note.
    pub fn note(n: f64) -> Self {
        Controls {
            note: Some(n),
            ..Default::default()
        }
    }

    /// `self # other`: fields set in `other` win.
    pub fn union(&self, other: &Controls) -> Controls {
        let mut params = self.params.clone();
        for (id, v) in &other.params {
            match params.iter_mut().find(|(i, _)| i == id) {
                Some(p) => p.1 = *v,
                None => params.push((*id, *v)),
            }
        }
        Controls {
            note: other.note.or(self.note),
            velocity: other.velocity.or(self.velocity),
            legato: other.legato.or(self.legato),
            params,
        }
    }
}

/// Which control a numeric pattern sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Velocity.
    Velocity,
    /// Legato.
    Legato,
    /// A node parameter.
    Param(u32),
}

/// Turns mini-notation values into notes: numbers are MIDI notes (or scale degrees when a
/// scale is given), note names are themselves, drum words are General MIDI drums (`bd:3`
/// picks a variant, a third field scales the default velocity: `sd:1:0.5`).
pub fn to_notes(p: Pattern<Value>, scale: Option<Scale>) -> Pattern<Controls> {
    p.fmap(move |v| match v {
        Value::Num(q) => Controls::note(match scale {
            Some(s) => s.degree(q.floor()),
            None => q.to_f64(),
        }),
        Value::Note(m, _) => Controls::note(*m as f64),
        Value::Word(w) => Controls {
            velocity: word_gain(w).map(|g| g * DEFAULT_VELOCITY),
            ..Controls::note(drum_note(w).unwrap_or(60.0))
        },
    })
}

impl Pattern<Controls> {
    /// `self # control(values)`: sets a control from a numeric pattern (signals included),
    /// sampled at each event.
    pub fn set(self, control: Control, values: Pattern<Q>) -> Self {
        self.app_left(values, move |c, v| {
            let v = v.to_f64();
            let mut c = c.clone();
            match control {
                Control::Velocity => c.velocity = Some(v),
                Control::Legato => c.legato = Some(v),
                Control::Param(id) => {
                    c = c.union(&Controls {
                        params: vec![(id, v)],
                        ..Default::default()
                    })
                }
            }
            c
        })
    }

    /// `self |+ note(n)`: transposes by a numeric pattern.
    pub fn add_note(self, semitones: Pattern<Q>) -> Self {
        self.app_left(semitones, |c, s| {
            let mut c = c.clone();
            c.note = c.note.map(|n| n + s.to_f64());
            c
        })
    }

    /// `self # other`.
    pub fn union(self, other: Pattern<Controls>) -> Self {
        self.app_left(other, |a, b| a.union(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Context;
    use crate::time::q;

    #[test]
    fn hash_takes_structure_from_the_left() {
        let notes = to_notes(crate::mini::parse("c4 e4").unwrap(), None);
        let vel = crate::mini::parse_numbers("0.5 0.25 1").unwrap();
        let haps = notes
            .set(Control::Velocity, vel)
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap();
        assert_eq!(haps.len(), 2);
        assert_eq!(haps[0].value.note, Some(60.0));
        assert_eq!(haps[0].value.velocity, Some(0.5));
        assert_eq!(haps[1].whole.unwrap().begin, q(1, 2));
        // 1/2 falls in the second third of the velocity pattern.
        assert_eq!(haps[1].value.velocity, Some(0.25));
    }
}
