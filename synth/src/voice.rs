//! Voices and instruments: a compiled [`Program`] run per voice, polyphony with stealing of
//! the quietest (then oldest) voice through a short fade, note-offs matched to note instances,
//! and smoothed instrument controls. All memory is allocated when an instrument is built.

use crate::dsp::env::Adsr;
use crate::dsp::filter::Svf;
use crate::dsp::osc::{Noise, Osc};
use crate::dsp::{BLOCK, Block, Smoother, midi_to_hz, sanitize};
use crate::ir::{ControlDef, FREQ, GATE, Operand, Program, Step, VEL};

/// Frames over which a stolen voice fades out (5 ms at 48 kHz).
const STEAL_FADE: usize = 240;

#[derive(Debug, Clone)]
enum State {
    Osc(Osc),
    Noise(Noise),
    Svf(Svf),
    Adsr(Adsr),
    Stateless,
}

/// One voice: per-step state and per-buffer blocks.
#[derive(Debug, Clone)]
pub struct Voice {
    states: Vec<State>,
    bufs: Vec<Block>,
    /// Note instance playing (0 = none).
    pub id: u64,
    age: u64,
    gate: f32,
    freq: f32,
    vel: f32,
    /// Peak output of the last block (for stealing and silence detection).
    level: f32,
    /// Frames of steal fade left (0 = not fading).
    fade: usize,
    active: bool,
}

#[inline]
fn at(bufs: &[Block], op: Operand, i: usize) -> f32 {
    match op {
        Operand::Const(v) => v,
        Operand::Buf(b) => bufs[b][i],
    }
}

impl Voice {
    fn new(program: &Program, rate: f32, seed: u32) -> Self {
        let states = program
            .steps
            .iter()
            .map(|s| match s {
                Step::Osc { wave, .. } => State::Osc(Osc::new(*wave, rate)),
                Step::Noise { pink, .. } => State::Noise(Noise::new(seed, *pink)),
                Step::Filter { mode, .. } => State::Svf(Svf::new(*mode, rate)),
                Step::Adsr { .. } => State::Adsr(Adsr::new(rate)),
                _ => State::Stateless,
            })
            .collect();
        Self {
            states,
            bufs: vec![[0.0; BLOCK]; program.buffers],
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

    fn reset(&mut self) {
        for s in &mut self.states {
            match s {
                State::Osc(o) => o.reset(),
                State::Noise(n) => n.reset(),
                State::Svf(f) => f.reset(),
                State::Adsr(a) => a.reset(),
                State::Stateless => {}
            }
        }
        self.level = 0.0;
        self.fade = 0;
    }

    /// Renders `n` frames, adding `gain ×` the output to `out`. `gate_at` changes the gate to
    /// the given value from a frame offset on (sample-accurate note on/off).
    fn render(
        &mut self,
        program: &Program,
        controls: &[Block],
        gate_at: Option<(usize, f32)>,
        n: usize,
        out: &mut [f32],
    ) {
        let mut tmp = [0.0f32; BLOCK];
        for i in 0..n {
            if let Some((at_frame, g)) = gate_at
                && i == at_frame
            {
                self.gate = g;
            }
            self.bufs[GATE][i] = self.gate;
            self.bufs[FREQ][i] = self.freq;
            self.bufs[VEL][i] = self.vel;
        }
        for (c, block) in controls.iter().enumerate() {
            self.bufs[3 + c][..n].copy_from_slice(&block[..n]);
        }
        for (step, state) in program.steps.iter().zip(&mut self.states) {
            let bufs = &self.bufs;
            let out_buf = match (step, state) {
                (
                    Step::Osc {
                        freq, width, out, ..
                    },
                    State::Osc(o),
                ) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = o.tick(at(bufs, *freq, i), at(bufs, *width, i));
                    }
                    *out
                }
                (Step::Noise { out, .. }, State::Noise(z)) => {
                    for t in &mut tmp[..n] {
                        *t = z.tick();
                    }
                    *out
                }
                (
                    Step::Filter {
                        input,
                        cutoff,
                        resonance,
                        out,
                        ..
                    },
                    State::Svf(f),
                ) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = f.tick(
                            at(bufs, *input, i),
                            at(bufs, *cutoff, i),
                            at(bufs, *resonance, i),
                        );
                    }
                    *out
                }
                (
                    Step::Adsr {
                        gate,
                        a,
                        d,
                        s,
                        r,
                        out,
                    },
                    State::Adsr(e),
                ) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = e.tick(
                            at(bufs, *gate, i),
                            at(bufs, *a, i),
                            at(bufs, *d, i),
                            at(bufs, *s, i),
                            at(bufs, *r, i),
                        );
                    }
                    *out
                }
                (Step::Mul { inputs, out }, _) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = inputs.iter().map(|&x| at(bufs, x, i)).product();
                    }
                    *out
                }
                (Step::Add { inputs, out }, _) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = inputs.iter().map(|&x| at(bufs, x, i)).sum();
                    }
                    *out
                }
                (Step::Tanh { input, drive, out }, _) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = (at(bufs, *input, i) * at(bufs, *drive, i)).tanh();
                    }
                    *out
                }
                (Step::MidiToHz { input, out }, _) => {
                    for (i, t) in tmp[..n].iter_mut().enumerate() {
                        *t = midi_to_hz(at(bufs, *input, i));
                    }
                    *out
                }
                // States are built from the same steps, so kinds always match.
                (_, _) => continue,
            };
            self.bufs[out_buf][..n].copy_from_slice(&tmp[..n]);
        }
        let mut peak = 0.0f32;
        for (i, o) in out[..n].iter_mut().enumerate() {
            let mut v = sanitize(at(&self.bufs, program.output, i), 4.0);
            if self.fade > 0 {
                v *= self.fade as f32 / STEAL_FADE as f32;
                self.fade -= 1;
                if self.fade == 0 {
                    self.active = false;
                    self.id = 0;
                }
            }
            peak = peak.max(v.abs());
            *o += v;
        }
        self.level = peak;
        // A released voice that has gone silent is free again.
        if self.gate <= 0.5 && peak < 1e-5 {
            self.active = false;
            self.id = 0;
        }
    }
}

/// Pending gate change for a voice within the block being rendered.
#[derive(Debug, Clone, Copy, Default)]
struct GateChange {
    at: usize,
    value: f32,
}

/// A polyphonic instrument.
#[derive(Debug, Clone)]
pub struct Instrument {
    program: Program,
    voices: Vec<Voice>,
    changes: Vec<Option<GateChange>>,
    fading: Vec<Voice>,
    controls: Vec<Smoother>,
    control_bufs: Vec<Block>,
    name: String,
    /// Output gain, 0..=4 (smoothed).
    pub gain: Smoother,
    /// Pan, -1..=1 (smoothed).
    pub pan: Smoother,
    /// Send levels to the delay and reverb (post-fader).
    pub sends: [f32; 2],
    mono: bool,
    clock: u64,
    /// Voices stolen so far.
    pub stolen: u64,
}

impl Instrument {
    /// Builds an instrument with `polyphony` voices (1 = mono, legato).
    pub fn new(program: Program, polyphony: usize, rate: f32) -> Self {
        let polyphony = polyphony.clamp(1, 1024);
        let voices = (0..polyphony)
            .map(|i| Voice::new(&program, rate, 1 + i as u32))
            .collect();
        let fading = (0..8)
            .map(|i| Voice::new(&program, rate, 10_000 + i))
            .collect();
        let controls = program
            .controls
            .iter()
            .map(|c| Smoother::new(c.default, 0.01, rate))
            .collect();
        Self {
            name: program.name.clone(),
            control_bufs: vec![[0.0; BLOCK]; program.controls.len()],
            changes: vec![None; polyphony],
            program,
            voices,
            fading,
            controls,
            gain: Smoother::new(1.0, 0.02, rate),
            pan: Smoother::new(0.0, 0.02, rate),
            sends: [0.0; 2],
            mono: polyphony == 1,
            clock: 0,
            stolen: 0,
        }
    }

    /// Its name in the graph (the definition's name unless the graph renames it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it (a graph may hold two instruments of the same definition).
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Its definition's controls, in index order.
    pub fn controls(&self) -> &[ControlDef] {
        &self.program.controls
    }

    /// Voices sounding.
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
            + self.fading.iter().filter(|v| v.active).count()
    }

    /// Index of a named control.
    pub fn control_index(&self, name: &str) -> Option<usize> {
        self.program.controls.iter().position(|c| c.name == name)
    }

    /// Moves parameter `param` ([`crate::engine::param`]) to `value`: smoothed, or along a
    /// ramp of `(frames, shape)`. Values are clamped to the parameter's range; non-finite
    /// values and unknown parameters are ignored.
    pub fn automate(&mut self, param: usize, value: f32, ramp: Option<(u32, crate::dsp::Shape)>) {
        use crate::engine::param::{FIRST_CONTROL, GAIN, PAN};
        if !value.is_finite() {
            return;
        }
        let (smoother, value) = match param {
            GAIN => (&mut self.gain, value.clamp(0.0, 4.0)),
            PAN => (&mut self.pan, value.clamp(-1.0, 1.0)),
            p => {
                let i = p - FIRST_CONTROL;
                match (self.controls.get_mut(i), self.program.controls.get(i)) {
                    (Some(s), Some(def)) => (s, value.clamp(def.min, def.max)),
                    _ => return,
                }
            }
        };
        match ramp {
            None => smoother.set(value),
            Some((frames, shape)) => smoother.ramp(value, frames, shape),
        }
    }

    /// Starts note instance `id` at frame offset `at` of the next block.
    pub fn note_on(&mut self, id: u64, note: f32, vel: f32, at: usize) {
        let freq = midi_to_hz(sanitize(note, 200.0));
        let vel = sanitize(vel, 1.0).max(0.0);
        self.clock += 1;
        if self.mono && self.voices[0].active && self.voices[0].gate > 0.5 {
            // Legato: same envelope, new pitch.
            let v = &mut self.voices[0];
            v.id = id;
            v.freq = freq;
            v.vel = vel;
            return;
        }
        let slot = match self.voices.iter().position(|v| !v.active) {
            Some(i) => i,
            None => self.steal(),
        };
        let v = &mut self.voices[slot];
        v.reset();
        v.id = id;
        v.freq = freq;
        v.vel = vel;
        v.age = self.clock;
        v.active = true;
        v.gate = 0.0;
        self.changes[slot] = Some(GateChange { at, value: 1.0 });
    }

    /// Moves the quietest (then oldest) voice to the fade pool; returns its freed slot.
    fn steal(&mut self) -> usize {
        self.stolen += 1;
        let victim = (0..self.voices.len())
            .min_by(|&a, &b| {
                let (va, vb) = (&self.voices[a], &self.voices[b]);
                va.level.total_cmp(&vb.level).then(va.age.cmp(&vb.age))
            })
            .unwrap_or(0);
        let spare = self
            .fading
            .iter()
            .position(|v| !v.active)
            .unwrap_or_else(|| {
                (0..self.fading.len())
                    .min_by_key(|&i| self.fading[i].fade)
                    .unwrap_or(0)
            });
        std::mem::swap(&mut self.voices[victim], &mut self.fading[spare]);
        self.fading[spare].fade = STEAL_FADE;
        self.changes[victim] = None;
        victim
    }

    /// Releases note instance `id` at frame offset `at` (no-op if it was stolen or ended).
    pub fn note_off(&mut self, id: u64, at: usize) {
        if let Some(i) = self.voices.iter().position(|v| v.active && v.id == id) {
            self.changes[i] = Some(GateChange { at, value: 0.0 });
        }
    }

    /// Renders `n` frames of this instrument (mono, after gain) into `out` (overwritten).
    pub fn render(&mut self, n: usize, out: &mut [f32]) {
        out[..n].iter_mut().for_each(|x| *x = 0.0);
        for (s, b) in self.controls.iter_mut().zip(&mut self.control_bufs) {
            for x in &mut b[..n] {
                *x = s.tick();
            }
        }
        for (v, change) in self.voices.iter_mut().zip(&mut self.changes) {
            let c = change.take();
            if v.active || c.is_some() {
                v.render(
                    &self.program,
                    &self.control_bufs,
                    c.map(|c| (c.at, c.value)),
                    n,
                    out,
                );
            }
        }
        for v in &mut self.fading {
            if v.active {
                v.render(&self.program, &self.control_bufs, None, n, out);
            }
        }
        for x in &mut out[..n] {
            *x *= self.gain.tick();
        }
    }
}
