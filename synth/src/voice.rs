//! Voices: one note's state of a compiled [`Program`] — a state per step (oscillator phase,
//! filter memory, envelope, kernel, feedback ring), its gate, pitch and velocity, and its fade
//! when stolen. [`crate::pack`] runs voices a block at a time; [`crate::instrument`] owns them
//! and their notes. This module imports neither.

use crate::dsp::env::Adsr;
use crate::dsp::filter::Svf;
use crate::dsp::osc::{Noise, Osc};
use crate::dsp::{BLOCK, Out};
use crate::ir::{Program, Step};
use crate::prim::KernelState;

/// Frames over which a stolen voice fades out (5 ms at 48 kHz).
pub(crate) const STEAL_FADE: usize = 240;

// A voice holds one state per step, built with the voice: the filter's four-sample form makes
// it the largest, and boxing it would only add a pointer to chase on the audio thread.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum State {
    Osc(Osc),
    Noise(Noise),
    Svf(Svf),
    Adsr(Adsr),
    Kernel(KernelState),
    Feedback(Ring),
    Stateless,
}

/// A feedback edge's memory: the last [`BLOCK`] samples written, so a read gives what was
/// written exactly one block of samples earlier, whatever the sizes of the blocks rendered.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    buf: Vec<f32>,
    pos: usize,
}

impl Ring {
    fn new() -> Self {
        Self {
            buf: vec![0.0; BLOCK],
            pos: 0,
        }
    }

    fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }

    /// The next `out.frames()` samples, as written [`BLOCK`] samples before them.
    pub(crate) fn read<O: Out + ?Sized>(&self, out: &mut O) {
        for i in 0..out.frames() {
            out.set(i, self.buf[(self.pos + i) % BLOCK]);
        }
    }

    /// Writes a block (after reading it): `xs` follow the samples written before.
    pub(crate) fn write(&mut self, xs: &[f32]) {
        for &x in xs {
            self.buf[self.pos] = if x.is_finite() { x } else { 0.0 };
            self.pos = (self.pos + 1) % BLOCK;
        }
    }

    /// [`Ring::write`] from lane `l` of `rows`.
    pub(crate) fn write_lane(&mut self, rows: &[crate::dsp::Lanes], l: usize) {
        for row in rows {
            let x = row[l];
            self.buf[self.pos] = if x.is_finite() { x } else { 0.0 };
            self.pos = (self.pos + 1) % BLOCK;
        }
    }
}

/// One voice: its note, its envelope gate and its per-step state.
#[derive(Debug, Clone)]
pub(crate) struct Voice {
    pub(crate) states: Vec<State>,
    /// Note instance playing (0 = none).
    pub(crate) id: u64,
    pub(crate) age: u64,
    pub(crate) gate: f32,
    pub(crate) freq: f32,
    pub(crate) vel: f32,
    /// Peak output of the last block (for stealing and silence detection).
    pub(crate) level: f32,
    /// Frames of steal fade left (0 = not fading).
    pub(crate) fade: usize,
    pub(crate) active: bool,
}

impl Voice {
    pub(crate) fn new(program: &Program, rate: f32, seed: u32) -> Self {
        let states = program
            .steps
            .iter()
            .map(|s| match s {
                Step::Osc { wave, .. } => State::Osc(Osc::new(*wave, rate)),
                // Each noise step of a definition draws its own numbers.
                Step::Noise { pink, salt, .. } => {
                    State::Noise(Noise::new(seed ^ salt.wrapping_mul(0x9e37_79b9), *pink))
                }
                Step::Filter { mode, .. } => State::Svf(Svf::new(*mode, rate)),
                Step::Adsr { .. } => State::Adsr(Adsr::new(rate)),
                Step::Kernel { kernel, max_s, .. } => State::Kernel(kernel.build(rate, *max_s)),
                Step::FeedbackRead { .. } => State::Feedback(Ring::new()),
                _ => State::Stateless,
            })
            .collect();
        Self {
            states,
            id: 0,
            age: 0,
            gate: 0.0,
            freq: 440.0,
            vel: 0.0,
            level: 0.0,
            fade: 0,
            active: false,
        }
    }

    pub(crate) fn reset(&mut self) {
        for s in &mut self.states {
            match s {
                State::Osc(o) => o.reset(),
                State::Noise(n) => n.reset(),
                State::Svf(f) => f.reset(),
                State::Adsr(a) => a.reset(),
                State::Kernel(k) => k.reset(),
                State::Feedback(r) => r.reset(),
                State::Stateless => {}
            }
        }
        self.level = 0.0;
        self.fade = 0;
    }
}

/// Pending gate change for a voice within the block being rendered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GateChange {
    pub(crate) at: usize,
    pub(crate) value: f32,
}
