//! Voices and instruments: a compiled [`Program`] run per voice, polyphony with stealing of
//! the quietest (then oldest) voice through a short fade, note-offs matched to note instances,
//! and smoothed instrument controls. All memory is allocated when an instrument is built.
//!
//! Voices run in packs of [`LANES`]: a pack's buffers hold one lane per voice
//! ([`LaneBlock`]), and the program runs step by step over the whole pack — element-wise
//! steps, filters and the oscillators' arithmetic as vector operations across the voices,
//! envelopes lane by lane (or as a fill when they all hold a level). A pack with one voice
//! playing runs it in time order instead (the solo layout). A voice keeps its own step states,
//! so stealing moves a voice between packs by moving its states; a pack's buffers are
//! refilled every block.

use crate::dsp::env::Adsr;
use crate::dsp::filter::Svf;
use crate::dsp::osc::{self, Noise, Osc};
use crate::dsp::{
    BLOCK, Block, Column, LANES, LaneBlock, Lanes, Out, Sig, Smoother, midi_to_hz, sanitize,
};
use crate::ir::{ControlDef, FREQ, GATE, Operand, Program, Step, VEL};
use wide::f32x4;

/// Frames over which a stolen voice fades out (5 ms at 48 kHz).
const STEAL_FADE: usize = 240;

// A voice holds one state per step, built with the voice: the filter's four-sample form makes
// it the largest, and boxing it would only add a pointer to chase on the audio thread.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum State {
    Osc(Osc),
    Noise(Noise),
    Svf(Svf),
    Adsr(Adsr),
    Stateless,
}

/// One voice: its note, its envelope gate and its per-step state.
#[derive(Debug, Clone)]
struct Voice {
    states: Vec<State>,
    /// Note instance playing (0 = none).
    id: u64,
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
}

/// The buffers of a pack split around one step's output: the output mutably, every other
/// buffer (its inputs — a step never reads its own output) shared.
struct Io<'a> {
    before: &'a [LaneBlock],
    after: &'a [LaneBlock],
    out: usize,
    steady: &'a [bool],
}

impl<'a> Io<'a> {
    fn split(
        bufs: &'a mut [LaneBlock],
        steady: &'a [bool],
        out: usize,
    ) -> (&'a mut LaneBlock, Self) {
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

    /// The first `n` rows of input buffer `k`.
    #[inline]
    fn rows(&self, k: Operand, n: usize) -> &'a [Lanes] {
        let b = if k < self.out {
            &self.before[k]
        } else {
            &self.after[k - self.out - 1]
        };
        &b[..n]
    }

    /// Whether every lane of input `k` holds one value for the whole block.
    #[inline]
    fn steady(&self, k: Operand) -> bool {
        self.steady[k]
    }

    /// The first `n` samples of input `k` in the solo layout (one voice, in time order).
    #[inline]
    fn flat(&self, k: Operand, n: usize) -> &'a [f32] {
        let b = if k < self.out {
            &self.before[k]
        } else {
            &self.after[k - self.out - 1]
        };
        &b.as_flattened()[..n]
    }

    /// Input `k` in the solo layout as a signal: one value when the buffer is steady.
    #[inline]
    fn solo_sig(&self, k: Operand, n: usize) -> Sig<'a> {
        let xs = self.flat(k, n);
        if self.steady[k] && n > 0 {
            Sig::Steady(xs[0])
        } else {
            Sig::Varying(xs)
        }
    }

    /// Lane `lane` of input `k` as a signal: one value when the buffer is steady.
    #[inline]
    fn sig(&self, k: Operand, n: usize, lane: usize) -> Sig<'a> {
        let rows = self.rows(k, n);
        if self.steady[k] && n > 0 {
            Sig::Steady(rows[0][lane])
        } else {
            Sig::Lane(rows, lane)
        }
    }
}

/// Live voices from which a pack runs its oscillators side by side (the lane kernel reads
/// tables for all [`LANES`] lanes: with fewer voices, running them one by one costs less).
const OSC_LANES_FROM: usize = 5;
/// Live voices from which a pack runs its filters side by side (below, one by one: one
/// voice's filter is bound by its recurrence's latency, which lanes overlap from two voices).
const SVF_LANES_FROM: usize = 2;

/// Which lanes of a pack play this block.
struct Live {
    on: [bool; LANES],
    count: usize,
    /// One past the last live lane: element-wise steps run over lanes `0..width`.
    width: usize,
}

/// `f(dst, src)` element-wise over the lanes `0..width` of each row (all lanes at once as one
/// flat run when the pack is full, which the compiler turns into vector operations).
#[inline(always)]
fn zip_lanes(dst: &mut [Lanes], src: &[Lanes], width: usize, f: impl Fn(&mut f32, f32)) {
    if width == LANES {
        for (d, &x) in dst.as_flattened_mut().iter_mut().zip(src.as_flattened()) {
            f(d, x);
        }
    } else {
        for (d, x) in dst.iter_mut().zip(src) {
            for (d, &x) in d[..width].iter_mut().zip(&x[..width]) {
                f(d, x);
            }
        }
    }
}

/// The buffers of up to [`LANES`] voices run side by side (lane `l` = the pack's `l`-th voice).
///
/// A block in which only one voice of the pack plays runs in the *solo layout* instead: each
/// buffer's first samples hold that voice's block in time order (`as_flattened()[..n]`), and
/// the steps run along time — vector operations over samples instead of lanes, the filter four
/// samples per step ([`Svf::process_span`]) — so a lone voice costs one voice, not eight.
/// Constants fill every lane and so read the same in both layouts; everything else is written
/// every block in the layout of that block.
#[derive(Debug, Clone)]
struct Pack {
    bufs: Vec<LaneBlock>,
    /// Per buffer: whether every lane holds one value for the whole block being rendered
    /// (constants, pitch and velocity always; the gate unless it changes within the block;
    /// settled controls).
    steady: Vec<bool>,
    /// The (pitch, velocity) bits the FREQ and VEL buffers hold, per lane (lane layout).
    filled: [(u32, u32); LANES],
    /// The (pitch, velocity) bits they hold in the solo layout.
    filled_solo: Option<(u32, u32)>,
}

impl Pack {
    fn new(program: &Program) -> Self {
        let mut bufs = vec![[[0.0; LANES]; BLOCK]; program.buffers];
        let mut steady = vec![false; program.buffers];
        for &(k, v) in &program.constants {
            bufs[k] = [[v; LANES]; BLOCK];
            steady[k] = true;
        }
        steady[FREQ] = true;
        steady[VEL] = true;
        Self {
            bufs,
            steady,
            filled: [(u32::MAX, u32::MAX); LANES],
            filled_solo: None,
        }
    }

    /// Renders `n` frames of `voices` (at most [`LANES`]), adding their sum to `out`.
    /// `changes` are the voices' gate changes within this block (sample-accurate note on/off).
    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        program: &Program,
        controls: &[Block],
        controls_steady: &[bool],
        voices: &mut [Voice],
        changes: &mut [Option<GateChange>],
        n: usize,
        out: &mut [f32],
    ) {
        debug_assert!(voices.len() <= LANES && changes.len() == voices.len());
        let mut live = [false; LANES];
        let mut edges = [None; LANES];
        for (l, (v, c)) in voices.iter().zip(changes.iter_mut()).enumerate() {
            let c = c.take();
            live[l] = v.active || c.is_some();
            edges[l] = c.filter(|c| c.at < n);
        }
        if n == 0 || !live.contains(&true) {
            return;
        }
        let (mut count, mut width) = (0, 0);
        for (l, &on) in live[..voices.len()].iter().enumerate() {
            if on {
                count += 1;
                width = l + 1;
            }
        }
        let lanes = Live {
            on: live,
            count,
            width,
        };
        if lanes.count == 1 {
            let l = lanes.width - 1;
            let v = &mut voices[l];
            self.inputs_solo(controls, controls_steady, v, edges[l], n);
            for (s, step) in program.steps.iter().enumerate() {
                self.run_solo(s, step, v, n);
            }
            let src = &self.bufs[program.output].as_flattened()[..n];
            if v.fade == 0 {
                v.level = add_sanitised(src, &mut out[..n]);
            } else {
                mix_voice(v, src.iter().copied(), &mut out[..n]);
            }
            release_if_silent(v);
            return;
        }
        self.inputs(controls, controls_steady, voices, &edges, n);
        for (s, step) in program.steps.iter().enumerate() {
            self.run(s, step, voices, &lanes, n);
        }
        self.mix(program.output, voices, &lanes, n, out);
    }

    /// Fills the voice inputs (gate, pitch, velocity) and the controls.
    fn inputs(
        &mut self,
        controls: &[Block],
        controls_steady: &[bool],
        voices: &mut [Voice],
        edges: &[Option<GateChange>; LANES],
        n: usize,
    ) {
        let gates: Lanes = std::array::from_fn(|l| voices.get(l).map_or(0.0, |v| v.gate));
        let gate = &mut self.bufs[GATE];
        gate[..n].fill(gates);
        let mut steady = true;
        for (l, e) in edges.iter().enumerate() {
            if let Some(GateChange { at, value }) = *e {
                let v = &mut voices[l];
                steady &= at == 0 || value == v.gate;
                v.gate = value;
                for row in &mut gate[at..n] {
                    row[l] = value;
                }
            }
        }
        self.steady[GATE] = steady;
        // Pitch and velocity change per note, not per block: refill only when they did (no
        // step ever writes these buffers).
        let keys: [(u32, u32); LANES] = std::array::from_fn(|l| {
            voices
                .get(l)
                .map_or((0, 0), |v| (v.freq.to_bits(), v.vel.to_bits()))
        });
        if keys != self.filled {
            self.filled = keys;
            self.filled_solo = None;
            self.bufs[FREQ].fill(keys.map(|k| f32::from_bits(k.0)));
            self.bufs[VEL].fill(keys.map(|k| f32::from_bits(k.1)));
        }
        for (c, (block, &steady)) in controls.iter().zip(controls_steady).enumerate() {
            for (row, &x) in self.bufs[3 + c][..n].iter_mut().zip(&block[..n]) {
                *row = [x; LANES];
            }
            self.steady[3 + c] = steady;
        }
    }

    /// [`Pack::inputs`] for one voice in the solo layout.
    fn inputs_solo(
        &mut self,
        controls: &[Block],
        controls_steady: &[bool],
        v: &mut Voice,
        edge: Option<GateChange>,
        n: usize,
    ) {
        let gate = &mut self.bufs[GATE].as_flattened_mut()[..n];
        self.steady[GATE] = match edge {
            Some(GateChange { at, value }) => {
                gate[..at].fill(v.gate);
                gate[at..].fill(value);
                let steady = at == 0 || value == v.gate;
                v.gate = value;
                steady
            }
            None => {
                gate.fill(v.gate);
                true
            }
        };
        let key = (v.freq.to_bits(), v.vel.to_bits());
        if self.filled_solo != Some(key) {
            self.filled_solo = Some(key);
            self.filled = [(u32::MAX, u32::MAX); LANES];
            self.bufs[FREQ].as_flattened_mut()[..BLOCK].fill(v.freq);
            self.bufs[VEL].as_flattened_mut()[..BLOCK].fill(v.vel);
        }
        for (c, (block, &steady)) in controls.iter().zip(controls_steady).enumerate() {
            self.bufs[3 + c].as_flattened_mut()[..n].copy_from_slice(&block[..n]);
            self.steady[3 + c] = steady;
        }
    }

    /// Runs step `s` for one voice in the solo layout.
    fn run_solo(&mut self, s: usize, step: &Step, v: &mut Voice, n: usize) {
        let state = &mut v.states[s];
        let out = match step {
            Step::Osc { out, .. }
            | Step::Noise { out, .. }
            | Step::Filter { out, .. }
            | Step::Adsr { out, .. }
            | Step::Mul { out, .. }
            | Step::Add { out, .. }
            | Step::Tanh { out, .. }
            | Step::MidiToHz { out, .. } => *out,
        };
        let (dst, io) = Io::split(&mut self.bufs, &self.steady, out);
        let dst = &mut dst.as_flattened_mut()[..n];
        match (step, state) {
            (Step::Osc { freq, width, .. }, State::Osc(o)) => {
                o.process(io.solo_sig(*freq, n), io.solo_sig(*width, n), dst);
            }
            (Step::Noise { .. }, State::Noise(z)) => dst.iter_mut().for_each(|x| *x = z.tick()),
            (
                Step::Filter {
                    input,
                    cutoff,
                    resonance,
                    ..
                },
                State::Svf(f),
            ) => match (io.solo_sig(*cutoff, n), io.solo_sig(*resonance, n)) {
                (Sig::Steady(c), Sig::Steady(r)) => f.process_span(io.flat(*input, n), c, r, dst),
                (c, r) => f.process(Sig::Varying(io.flat(*input, n)), c, r, dst),
            },
            (
                Step::Adsr {
                    gate,
                    a,
                    d,
                    s: sustain,
                    r,
                    ..
                },
                State::Adsr(e),
            ) => {
                // Holding a level (sustaining, or idle) is a fill, as in the lanes.
                if let (Sig::Steady(g), Sig::Steady(level)) =
                    (io.solo_sig(*gate, n), io.solo_sig(*sustain, n))
                    && let Some(v) = e.holding(g, level)
                {
                    dst.fill(v);
                    return;
                }
                let inputs = [
                    io.solo_sig(*gate, n),
                    io.solo_sig(*a, n),
                    io.solo_sig(*d, n),
                    io.solo_sig(*sustain, n),
                    io.solo_sig(*r, n),
                ];
                e.process(inputs, dst);
            }
            // The first two operands in one pass (the usual case is two).
            (Step::Mul { inputs, .. }, _) => match inputs.as_slice() {
                [] => dst.fill(1.0),
                [a] => dst.copy_from_slice(io.flat(*a, n)),
                [a, b, rest @ ..] => {
                    let (a, b) = (io.flat(*a, n), io.flat(*b, n));
                    dst.iter_mut()
                        .zip(a.iter().zip(b))
                        .for_each(|(d, (x, y))| *d = x * y);
                    for &k in rest {
                        dst.iter_mut().zip(io.flat(k, n)).for_each(|(d, x)| *d *= x);
                    }
                }
            },
            (Step::Add { inputs, .. }, _) => match inputs.as_slice() {
                [] => dst.fill(0.0),
                [a] => dst.copy_from_slice(io.flat(*a, n)),
                [a, b, rest @ ..] => {
                    let (a, b) = (io.flat(*a, n), io.flat(*b, n));
                    dst.iter_mut()
                        .zip(a.iter().zip(b))
                        .for_each(|(d, (x, y))| *d = x + y);
                    for &k in rest {
                        dst.iter_mut().zip(io.flat(k, n)).for_each(|(d, x)| *d += x);
                    }
                }
            },
            (Step::Tanh { input, drive, .. }, _) => {
                for ((d, x), g) in dst
                    .iter_mut()
                    .zip(io.flat(*input, n))
                    .zip(io.flat(*drive, n))
                {
                    *d = (x * g).tanh();
                }
            }
            (Step::MidiToHz { input, .. }, _) => {
                for (d, x) in dst.iter_mut().zip(io.flat(*input, n)) {
                    *d = midi_to_hz(*x);
                }
            }
            // States are built from the same steps, so kinds always match.
            _ => {}
        }
    }

    /// Runs step `s` for the live lanes.
    fn run(&mut self, s: usize, step: &Step, voices: &mut [Voice], live: &Live, n: usize) {
        let width = live.width;
        // The live voices with their state of this step, by lane.
        let lanes = voices
            .iter_mut()
            .enumerate()
            .filter(|(l, _)| live.on[*l])
            .map(move |(l, v)| (l, &mut v.states[s]));
        match step {
            Step::Osc {
                wave,
                freq,
                width,
                out,
            } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                if osc::runs_in_lanes(*wave) && io.steady(*freq) && live.count >= OSC_LANES_FROM {
                    // The usual case: every voice's oscillator at its note's pitch.
                    let mut oscs: [Option<&mut Osc>; LANES] = Default::default();
                    for (l, state) in lanes {
                        if let State::Osc(o) = state {
                            oscs[l] = Some(o);
                        }
                    }
                    Osc::process_lanes(*wave, &mut oscs, &io.rows(*freq, 1)[0], &mut dst[..n]);
                    return;
                }
                for (l, state) in lanes {
                    if let State::Osc(o) = state {
                        let (f, w) = (io.sig(*freq, n, l), io.sig(*width, n, l));
                        o.process(f, w, &mut Column::new(&mut dst[..n], l));
                    }
                }
            }
            Step::Noise { out, .. } => {
                for (l, state) in lanes {
                    if let State::Noise(z) = state {
                        for row in &mut self.bufs[*out][..n] {
                            row[l] = z.tick();
                        }
                    }
                }
            }
            Step::Filter {
                mode,
                input,
                cutoff,
                resonance,
                out,
            } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                if io.steady(*cutoff) && io.steady(*resonance) && live.count >= SVF_LANES_FROM {
                    // The usual case: every voice's filter at a fixed setting for the block,
                    // all of them run side by side.
                    let mut filters: [Option<&mut Svf>; LANES] = Default::default();
                    for (l, state) in lanes {
                        if let State::Svf(f) = state {
                            filters[l] = Some(f);
                        }
                    }
                    Svf::process_lanes(
                        *mode,
                        &mut filters,
                        &io.rows(*cutoff, 1)[0],
                        &io.rows(*resonance, 1)[0],
                        io.rows(*input, n),
                        &mut dst[..n],
                    );
                } else {
                    for (l, state) in lanes {
                        if let State::Svf(f) = state {
                            f.process(
                                io.sig(*input, n, l),
                                io.sig(*cutoff, n, l),
                                io.sig(*resonance, n, l),
                                &mut Column::new(&mut dst[..n], l),
                            );
                        }
                    }
                }
            }
            Step::Adsr {
                gate,
                a,
                d,
                s: sustain,
                r,
                out,
            } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let steady = [*gate, *a, *d, *sustain, *r].iter().all(|&k| io.steady(k));
                // Envelopes that just hold a level for the block (sustaining, or idle) are
                // filled row by row for the whole pack; the rest run lane by lane.
                let mut held: [Option<f32>; LANES] = [None; LANES];
                let mut all_held = steady;
                for (l, state) in lanes {
                    if let State::Adsr(e) = state {
                        let inputs = [
                            io.sig(*gate, n, l),
                            io.sig(*a, n, l),
                            io.sig(*d, n, l),
                            io.sig(*sustain, n, l),
                            io.sig(*r, n, l),
                        ];
                        let level = match inputs {
                            [Sig::Steady(g), _, _, Sig::Steady(s), _] if steady => e.holding(g, s),
                            _ => None,
                        };
                        held[l] = level;
                        if level.is_none() {
                            all_held = false;
                            e.process(inputs, &mut Column::new(&mut dst[..n], l));
                        }
                    }
                }
                if all_held {
                    dst[..n].fill(held.map(|v| v.unwrap_or(0.0)));
                } else {
                    for (l, v) in held.iter().enumerate() {
                        if let Some(v) = *v {
                            Column::new(&mut dst[..n], l).fill_from(0, v);
                        }
                    }
                }
            }
            // Element-wise steps run over every lane at once (idle lanes compute on stale
            // values that nothing reads).
            Step::Mul { inputs, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let dst = &mut dst[..n];
                match inputs.split_first() {
                    None => dst.fill([1.0; LANES]),
                    Some((&first, rest)) => {
                        zip_lanes(dst, io.rows(first, n), width, |d, x| *d = x);
                        for &k in rest {
                            zip_lanes(dst, io.rows(k, n), width, |d, x| *d *= x);
                        }
                    }
                }
            }
            Step::Add { inputs, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let dst = &mut dst[..n];
                dst.fill([0.0; LANES]);
                for &k in inputs {
                    zip_lanes(dst, io.rows(k, n), width, |d, x| *d += x);
                }
            }
            Step::Tanh { input, drive, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let dst = &mut dst[..n];
                zip_lanes(dst, io.rows(*input, n), width, |d, x| *d = x);
                zip_lanes(dst, io.rows(*drive, n), width, |d, g| *d = (*d * g).tanh());
            }
            Step::MidiToHz { input, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let dst = &mut dst[..n];
                zip_lanes(dst, io.rows(*input, n), width, |d, x| *d = midi_to_hz(x));
            }
        }
    }

    /// Adds the live voices' outputs (sanitised, fading where stolen) to `out`, records each
    /// voice's peak and frees voices that have finished.
    fn mix(
        &mut self,
        output: Operand,
        voices: &mut [Voice],
        live: &Live,
        n: usize,
        out: &mut [f32],
    ) {
        let src = &self.bufs[output][..n];
        let fading = voices.iter().any(|v| v.fade > 0);
        let vector = !fading && voices.len() == LANES && live.count >= 4;
        let live = &live.on;
        if vector {
            // Lane by lane in vector form: idle lanes masked to zero; each peak as the largest
            // magnitude's bit pattern (the bits of non-negative floats order like the floats).
            let mask: [u32; LANES] = live.map(|on| if on { u32::MAX } else { 0 });
            let mut peak = [0u32; LANES];
            for (o, row) in out[..n].iter_mut().zip(src) {
                let mut v: Lanes = [0.0; LANES];
                for l in 0..LANES {
                    v[l] = f32::from_bits(sanitize(row[l], 4.0).to_bits() & mask[l]);
                }
                for l in 0..LANES {
                    peak[l] = peak[l].max(v[l].to_bits() & 0x7fff_ffff);
                }
                *o += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
            }
            for (l, v) in voices.iter_mut().enumerate() {
                v.level = f32::from_bits(peak[l]);
            }
        } else {
            for (l, v) in voices.iter_mut().enumerate() {
                if live[l] {
                    mix_voice(v, src.iter().map(|row| row[l]), &mut out[..n]);
                }
            }
        }
        for (l, v) in voices.iter_mut().enumerate() {
            if live[l] {
                release_if_silent(v);
            }
        }
    }
}

/// Adds one voice's samples (sanitised; fading out where stolen) to `out` and records its
/// peak.
fn mix_voice(v: &mut Voice, samples: impl Iterator<Item = f32>, out: &mut [f32]) {
    if v.fade == 0 {
        // Playing, not stolen: the plain sum, the peak as the largest magnitude's bit pattern
        // (the bits of non-negative floats order like the floats).
        let mut peak_bits = 0u32;
        for (o, x) in out.iter_mut().zip(samples) {
            let x = sanitize(x, 4.0);
            peak_bits = peak_bits.max(x.to_bits() & 0x7fff_ffff);
            *o += x;
        }
        v.level = f32::from_bits(peak_bits);
        return;
    }
    let mut peak = 0.0f32;
    for (o, x) in out.iter_mut().zip(samples) {
        let mut x = sanitize(x, 4.0);
        if v.fade > 0 {
            x *= v.fade as f32 / STEAL_FADE as f32;
            v.fade -= 1;
            if v.fade == 0 {
                v.active = false;
                v.id = 0;
            }
        } else if !v.active {
            x = 0.0;
        }
        peak = peak.max(x.abs());
        *o += x;
    }
    v.level = peak;
}

/// Adds `src`, sanitised, to `out`, four samples at a time; returns the peak magnitude. The
/// same numbers as `sanitize` sample by sample.
fn add_sanitised(src: &[f32], out: &mut [f32]) -> f32 {
    let (lo, hi) = (f32x4::splat(-4.0), f32x4::splat(4.0));
    let mut peak = f32x4::ZERO;
    let len = src.len().min(out.len());
    let (xs, x_tail) = src[..len].as_chunks::<4>();
    let (os, o_tail) = out[..len].as_chunks_mut::<4>();
    for (x, o) in xs.iter().zip(os) {
        let x = f32x4::new(*x);
        // Clamped, and zero where not finite (max/min then the mask; NaN never survives).
        let v = x.fast_max(lo).fast_min(hi) & x.is_finite();
        peak = peak.fast_max(v.abs());
        *o = (f32x4::new(*o) + v).to_array();
    }
    let mut peak = peak.to_array().into_iter().fold(0.0f32, f32::max);
    for (&x, o) in x_tail.iter().zip(o_tail) {
        let v = sanitize(x, 4.0);
        peak = peak.max(v.abs());
        *o += v;
    }
    peak
}

/// A released voice that has gone silent is free again.
fn release_if_silent(v: &mut Voice) {
    if v.gate <= 0.5 && v.level < 1e-5 {
        v.active = false;
        v.id = 0;
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
    /// Buffers for the voices, [`LANES`] voices to a pack.
    packs: Vec<Pack>,
    /// Stolen voices fading out (one pack).
    fading: Vec<Voice>,
    fading_pack: Pack,
    /// Gate changes of the fading voices (never any).
    no_changes: [Option<GateChange>; LANES],
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
        let fading = (0..LANES)
            .map(|i| Voice::new(&program, rate, 10_000 + i as u32))
            .collect();
        let packs = (0..polyphony.div_ceil(LANES))
            .map(|_| Pack::new(&program))
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
            fading_pack: Pack::new(&program),
            program,
            voices,
            packs,
            fading,
            no_changes: [None; LANES],
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
        let packs = self
            .voices
            .chunks_mut(LANES)
            .zip(self.changes.chunks_mut(LANES))
            .zip(&mut self.packs)
            .chain(
                // The fade pool, when a stolen voice is fading in it.
                (self.fading.iter().filter(|v| v.active).count() > 0).then_some((
                    (&mut self.fading[..], &mut self.no_changes[..]),
                    &mut self.fading_pack,
                )),
            );
        for ((voices, changes), pack) in packs {
            pack.render(
                &self.program,
                &self.control_bufs,
                &self.control_steady,
                voices,
                changes,
                n,
                out,
            );
        }
        self.gain.apply(&mut out[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::SynthDef;

    #[test]
    fn sanitised_sums_match_sanitize_sample_by_sample() {
        let src: Vec<f32> = [
            0.5,
            -7.0,
            f32::NAN,
            4.0,
            f32::INFINITY,
            -0.0,
            3.99,
            f32::NEG_INFINITY,
        ]
        .into_iter()
        .cycle()
        .take(67)
        .enumerate()
        .map(|(i, x)| x * (1.0 + i as f32 / 100.0))
        .collect();
        let mut out: Vec<f32> = (0..67).map(|i| i as f32 / 10.0).collect();
        let mut want = out.clone();
        let peak = add_sanitised(&src, &mut out);
        let mut want_peak = 0.0f32;
        for (w, &x) in want.iter_mut().zip(&src) {
            let v = sanitize(x, 4.0);
            want_peak = want_peak.max(v.abs());
            *w += v;
        }
        assert_eq!(out, want);
        assert_eq!(peak, want_peak);
        assert_eq!(peak, 4.0);
    }

    fn program() -> Program {
        // Saw and pulse (lanes and the per-lane path), a filter swept by the envelope (per
        // lane) and one at a fixed setting (lanes), an envelope with an edge mid-block.
        let def = r#"{"name":"t","nodes":[
            {"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}},
            {"id":"p","type":"osc","wave":"pulse","freq":{"control":"freq"},"width":0.3},
            {"id":"e","type":"adsr","gate":{"control":"gate"},"attack":0.002,"decay":0.05,"sustain":0.5,"release":0.03},
            {"id":"c","type":"mul","inputs":[{"node":"e"},3000]},
            {"id":"m","type":"add","inputs":[{"node":"o"},{"node":"p"}]},
            {"id":"f","type":"filter","mode":"lowpass","input":{"node":"m"},"cutoff":{"node":"c"},"resonance":0.2},
            {"id":"g","type":"filter","mode":"highpass","input":{"node":"f"},"cutoff":120,"resonance":0.1},
            {"id":"out","type":"mul","inputs":[{"node":"g"},{"node":"e"},{"control":"vel"}]}],
            "output":{"node":"out"}}"#;
        serde_json::from_str::<SynthDef>(def)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn voices_in_lanes_sound_as_they_do_alone() {
        let notes: Vec<(f32, usize, usize)> = (0..11)
            .map(|k| (36.0 + 5.0 * k as f32, (k * 7) % BLOCK, 40 + k * 9))
            .collect();
        let blocks = 200;
        let mut together = Instrument::new(program(), 16, 48_000.0);
        let mut alone: Vec<Instrument> = notes
            .iter()
            .map(|_| Instrument::new(program(), 4, 48_000.0))
            .collect();
        let mut sum_together = Vec::new();
        let mut sum_alone = Vec::new();
        for b in 0..blocks {
            for (k, &(note, at, off_block)) in notes.iter().enumerate() {
                if b == k {
                    together.note_on(k as u64 + 1, note, 0.8, at);
                    alone[k].note_on(1, note, 0.8, at);
                }
                if b == off_block {
                    together.note_off(k as u64 + 1, at);
                    alone[k].note_off(1, at);
                }
            }
            let mut out = [0.0; BLOCK];
            together.render(BLOCK, &mut out);
            sum_together.extend_from_slice(&out);
            let mut mix = [0.0f32; BLOCK];
            for inst in &mut alone {
                let mut one = [0.0; BLOCK];
                inst.render(BLOCK, &mut one);
                for (m, x) in mix.iter_mut().zip(one) {
                    *m += x;
                }
            }
            sum_alone.extend_from_slice(&mix);
        }
        let peak = sum_alone.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.1, "audible: {peak}");
        for (i, (a, b)) in sum_together.iter().zip(&sum_alone).enumerate() {
            // Only rounding differs: the order of summing the voices, and a lone voice runs
            // its filters four samples per step.
            assert!(
                (a - b).abs() <= 1e-5 * peak.max(1.0),
                "sample {i}: {a} vs {b}"
            );
        }
        assert_eq!(together.active_voices(), 0, "all released and freed");
    }
}
