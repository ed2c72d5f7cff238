//! The numbers every part of the synth agrees on, in one leaf module that imports nothing of
//! the synth: how parameters are numbered, how many effects a graph holds, and **the one
//! table of parameter ranges and defaults** — the graph file's defaults, `Set`'s clamping, the
//! engine's smoothers and the parameter table all read it here.

/// Effects a graph may hold (an instrument's send levels are a fixed array of this size).
pub const MAX_EFFECTS: usize = 8;

/// Tempo assumed until the transport says otherwise, bpm.
pub const DEFAULT_BPM: f32 = 120.0;

/// Voices an instrument has unless the graph says otherwise.
pub const DEFAULT_POLYPHONY: usize = 32;

/// Voices an instrument may have.
pub const POLYPHONY: std::ops::RangeInclusive<usize> = 1..=1024;

/// An instrument's parameter numbers, as automation and `Set` address them.
pub mod param {
    /// Output gain.
    pub const GAIN: usize = 0;
    /// Pan.
    pub const PAN: usize = 1;
    /// The definition's first control; control `i` is `FIRST_CONTROL + i`.
    pub const FIRST_CONTROL: usize = 2;
}

pub use param::{FIRST_CONTROL, GAIN, PAN};

/// A parameter: its name as graph files and `Set` write it, its range and its default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// The name.
    pub name: &'static str,
    /// Smallest value (smaller ones are clamped).
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Value when a graph does not say.
    pub default: f32,
}

impl Param {
    /// `value` within the range.
    pub fn clamp(&self, value: f32) -> f32 {
        value.clamp(self.min, self.max)
    }
}

/// The table.
pub mod table {
    use super::Param;

    /// A node's output gain (linear).
    pub const GAIN: Param = Param {
        name: "gain",
        min: 0.0,
        max: 4.0,
        default: 1.0,
    };
    /// An instrument's pan, -1 (left) … 1 (right).
    pub const PAN: Param = Param {
        name: "pan",
        min: -1.0,
        max: 1.0,
        default: 0.0,
    };
    /// A send or route level into an effect.
    pub const SEND: Param = Param {
        name: "send",
        min: 0.0,
        max: 1.0,
        default: 0.0,
    };
    /// An effect's level into the master.
    pub const RETURN: Param = Param {
        name: "return",
        min: 0.0,
        max: 4.0,
        default: 1.0,
    };
    /// A delay's feedback.
    pub const FEEDBACK: Param = Param {
        name: "feedback",
        min: 0.0,
        max: 0.95,
        default: 0.35,
    };
    /// A delay's damping low-pass in the loop, Hz.
    pub const DAMP_HZ: Param = Param {
        name: "damp_hz",
        min: 100.0,
        max: 20_000.0,
        default: 4000.0,
    };
    /// A delay's time in beats of the transport (0.75: a dotted eighth).
    pub const BEATS: Param = Param {
        name: "beats",
        min: 1.0 / 64.0,
        max: 16.0,
        default: 0.75,
    };
    /// A reverb's room size.
    pub const ROOM: Param = Param {
        name: "room",
        min: 0.0,
        max: 1.0,
        default: 0.7,
    };
    /// A reverb's damping.
    pub const DAMP: Param = Param {
        name: "damp",
        min: 0.0,
        max: 1.0,
        default: 0.5,
    };

    /// An instrument's parameters in number order (its definition's controls follow).
    pub const INSTRUMENT: &[Param] = &[GAIN, PAN];
    /// The delay effect's parameters in number order.
    pub const DELAY: &[Param] = &[RETURN, FEEDBACK, DAMP_HZ, BEATS];
    /// The reverb effect's parameters in number order.
    pub const REVERB: &[Param] = &[RETURN, ROOM, DAMP];
    /// An effect definition's parameters in number order (its controls follow).
    pub const DEF_EFFECT: &[Param] = &[RETURN];
}
