//! Voices and instruments: a compiled [`Program`] run per voice, polyphony with stealing of
//! the quietest (then oldest) voice through a short fade, note-offs matched to note instances,
//! and smoothed instrument controls. All memory is allocated when an instrument is built.

use crate::dsp::env::Adsr;
use crate::dsp::filter::Svf;
use crate::dsp::osc::{Noise, Osc};
use crate::dsp::{BLOCK, Block, Sig, Smoother, midi_to_hz, sanitize};
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
    /// Per buffer: whether it holds one value for the whole block being rendered (constants,
    /// pitch and velocity always; the gate unless it changes in the block; settled controls).
    steady: Vec<bool>,
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
    /// The (pitch, velocity) bits the FREQ and VEL buffers hold.
    filled: (u32, u32),
}

/// The buffers of a voice split around one step's output: the output mutably, every other
/// buffer (its inputs — a step never reads its own output) shared.
struct Io<'a> {
    before: &'a [Block],
    after: &'a [Block],
    out: usize,
    steady: &'a [bool],
}

impl<'a> Io<'a> {
    fn split(bufs: &'a mut [Block], steady: &'a [bool], out: usize) -> (&'a mut Block, Self) {
        let (before, rest) = bufs.split_at_mut(out);
        let (o, after) = rest.split_first_mut().expect("output buffer in range");
        let io = Self {
            before,
            after,
            out,
            steady,
        };
        (o, io)
    }

    /// The first `n` samples of input buffer `k`.
    #[inline]
    fn get(&self, k: Operand, n: usize) -> &'a [f32] {
        let b = if k < self.out {
            &self.before[k]
        } else {
            &self.after[k - self.out - 1]
        };
        &b[..n]
    }

    /// Input `k` as a signal: one value when the buffer holds one value for the whole block.
    #[inline]
    fn sig(&self, k: Operand, n: usize) -> Sig<'a> {
        let b = self.get(k, n);
        if self.steady[k] && n > 0 {
            Sig::Steady(b[0])
        } else {
            Sig::Varying(b)
        }
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
        let mut bufs = vec![[0.0; BLOCK]; program.buffers];
        let mut steady = vec![false; program.buffers];
        for &(k, v) in &program.constants {
            bufs[k] = [v; BLOCK];
            steady[k] = true;
        }
        steady[FREQ] = true;
        steady[VEL] = true;
        Self {
            states,
            bufs,
            steady,
            id: 0,
            age: 0,
            gate: 0.0,
            freq: 440.0,
            vel: 0.0,
            level: 0.0,
            fade: 0,
            active: false,
            filled: (u32::MAX, u32::MAX),
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
        controls_steady: &[bool],
        gate_at: Option<(usize, f32)>,
        n: usize,
        out: &mut [f32],
    ) {
        match gate_at {
            Some((at_frame, g)) if at_frame < n => {
                self.steady[GATE] = at_frame == 0 || g == self.gate;
                self.bufs[GATE][..at_frame].fill(self.gate);
                self.gate = g;
                self.bufs[GATE][at_frame..n].fill(g);
            }
            _ => {
                self.steady[GATE] = true;
                self.bufs[GATE][..n].fill(self.gate);
            }
        }
        // Pitch and velocity change per note, not per block: refill only when they did (no
        // step ever writes these buffers).
        if self.filled != (self.freq.to_bits(), self.vel.to_bits()) {
            self.filled = (self.freq.to_bits(), self.vel.to_bits());
            self.bufs[FREQ].fill(self.freq);
            self.bufs[VEL].fill(self.vel);
        }
        for (c, (block, &steady)) in controls.iter().zip(controls_steady).enumerate() {
            self.bufs[3 + c][..n].copy_from_slice(&block[..n]);
            self.steady[3 + c] = steady;
        }
        for (step, state) in program.steps.iter().zip(&mut self.states) {
            match (step, state) {
                (
                    Step::Osc {
                        freq, width, out, ..
                    },
                    State::Osc(o),
                ) => {
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    o.process(io.sig(*freq, n), io.sig(*width, n), &mut dst[..n]);
                }
                (Step::Noise { out, .. }, State::Noise(z)) => {
                    for t in &mut self.bufs[*out][..n] {
                        *t = z.tick();
                    }
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
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    f.process(
                        io.get(*input, n),
                        io.sig(*cutoff, n),
                        io.sig(*resonance, n),
                        &mut dst[..n],
                    );
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
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    e.process(
                        [
                            io.sig(*gate, n),
                            io.sig(*a, n),
                            io.sig(*d, n),
                            io.sig(*s, n),
                            io.sig(*r, n),
                        ],
                        &mut dst[..n],
                    );
                }
                (Step::Mul { inputs, out }, _) => {
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    let dst = &mut dst[..n];
                    match inputs.split_first() {
                        None => dst.fill(1.0),
                        Some((&first, rest)) => {
                            dst.copy_from_slice(io.get(first, n));
                            for &k in rest {
                                for (d, x) in dst.iter_mut().zip(io.get(k, n)) {
                                    *d *= x;
                                }
                            }
                        }
                    }
                }
                (Step::Add { inputs, out }, _) => {
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    let dst = &mut dst[..n];
                    dst.fill(0.0);
                    for &k in inputs {
                        for (d, x) in dst.iter_mut().zip(io.get(k, n)) {
                            *d += x;
                        }
                    }
                }
                (Step::Tanh { input, drive, out }, _) => {
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    for ((d, x), g) in dst[..n]
                        .iter_mut()
                        .zip(io.get(*input, n))
                        .zip(io.get(*drive, n))
                    {
                        *d = (x * g).tanh();
                    }
                }
                (Step::MidiToHz { input, out }, _) => {
                    let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                    for (d, x) in dst[..n].iter_mut().zip(io.get(*input, n)) {
                        *d = midi_to_hz(*x);
                    }
                }
                // States are built from the same steps, so kinds always match.
                (_, _) => {}
            }
        }
        let mut peak = 0.0f32;
        let src = &self.bufs[program.output][..n];
        if self.fade == 0 {
            // The peak as the largest magnitude's bit pattern (the bits of non-negative floats
            // order like the floats): an integer reduction the compiler vectorises.
            let mut peak_bits = 0u32;
            for (o, &x) in out[..n].iter_mut().zip(src) {
                let v = sanitize(x, 4.0);
                peak_bits = peak_bits.max(v.to_bits() & 0x7fff_ffff);
                *o += v;
            }
            peak = f32::from_bits(peak_bits);
        } else {
            for (o, &x) in out[..n].iter_mut().zip(src) {
                let mut v = sanitize(x, 4.0);
                if self.fade > 0 {
                    v *= self.fade as f32 / STEAL_FADE as f32;
                    self.fade -= 1;
                    if self.fade == 0 {
                        self.active = false;
                        self.id = 0;
                    }
                } else {
                    v = 0.0;
                }
                peak = peak.max(v.abs());
                *o += v;
            }
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
    control_steady: Vec<bool>,
    name: String,
    /// Output gain, 0..=4 (smoothed).
    pub gain: Smoother,
    /// Pan, -1..=1 (smoothed).
    pub pan: Smoother,
    /// Send levels to the graph's effects, by effect index (post-fader).
    pub sends: [f32; crate::engine::MAX_EFFECTS],
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
            control_steady: vec![false; program.controls.len()],
            changes: vec![None; polyphony],
            program,
            voices,
            fading,
            controls,
            gain: Smoother::new(1.0, 0.02, rate),
            pan: Smoother::new(0.0, 0.02, rate),
            sends: [0.0; crate::engine::MAX_EFFECTS],
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
        for ((s, b), steady) in self
            .controls
            .iter_mut()
            .zip(&mut self.control_bufs)
            .zip(&mut self.control_steady)
        {
            *steady = s.fill(&mut b[..n]);
        }
        for (v, change) in self.voices.iter_mut().zip(&mut self.changes) {
            let c = change.take();
            if v.active || c.is_some() {
                v.render(
                    &self.program,
                    &self.control_bufs,
                    &self.control_steady,
                    c.map(|c| (c.at, c.value)),
                    n,
                    out,
                );
            }
        }
        for v in &mut self.fading {
            if v.active {
                v.render(
                    &self.program,
                    &self.control_bufs,
                    &self.control_steady,
                    None,
                    n,
                    out,
                );
            }
        }
        self.gain.apply(&mut out[..n]);
    }
}
