//! Packs: the buffers of up to [`LANES`] voices of one instrument and the program run over
//! them step by step — across the voices' lanes, or along time when one voice plays alone
//! (the solo layout). [`crate::voice`] owns the voices and their notes; this is how a block of
//! them is computed and mixed.

use wide::{f32x4, f32x8};

use crate::dsp::filter::Svf;
use crate::dsp::{BLOCK, Block, Column, LANES, LaneBlock, Lanes, Out, Sig, midi_to_hz, sanitize};
use crate::ir::{BPM, FIRST_CONTROL, FREQ, GATE, INPUT, INPUT_RIGHT, Operand, Program, Step, VEL};
use crate::schema::DEFAULT_BPM;
use crate::voice::{GateChange, STEAL_FADE, State, Voice};

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

/// `dst = op(op(in0, in1), in2)…` over the solo layout, `identity` with no operands; the first
/// two operands in one pass (the usual case is two).
fn fold_flat(
    dst: &mut [f32],
    inputs: &[Operand],
    io: &Io<'_>,
    n: usize,
    identity: f32,
    op: impl Fn(f32, f32) -> f32,
) {
    match inputs {
        [] => dst.fill(identity),
        [a] => dst.copy_from_slice(io.flat(*a, n)),
        [a, b, rest @ ..] => {
            let (a, b) = (io.flat(*a, n), io.flat(*b, n));
            for (d, (&x, &y)) in dst.iter_mut().zip(a.iter().zip(b)) {
                *d = op(x, y);
            }
            for &k in rest {
                for (d, &x) in dst.iter_mut().zip(io.flat(k, n)) {
                    *d = op(*d, x);
                }
            }
        }
    }
}

/// Which lanes of a pack play this block.
struct Live {
    on: [bool; LANES],
    count: usize,
    /// One past the last live lane: element-wise steps run over lanes `0..width`.
    width: usize,
}

/// `tanh` of every value, in place, eight at a time: `wide`'s vector `tanh` costs a third of
/// libm's `tanhf`, which is a call per value (`cargo bench -p khorus-synth --bench graph --
/// tanh`).
fn tanh_in_place(xs: &mut [f32]) {
    let (chunks, tail) = xs.as_chunks_mut::<8>();
    for c in chunks {
        *c = f32x8::from(*c).tanh().to_array();
    }
    if !tail.is_empty() {
        let mut pad = [0.0; 8];
        pad[..tail.len()].copy_from_slice(tail);
        let done = f32x8::from(pad).tanh().to_array();
        tail.copy_from_slice(&done[..tail.len()]);
    }
}

/// `f(dst, src)` element-wise over the lanes `0..width` of each row. With more than one live
/// lane, over every lane as one flat run, which the compiler turns into vector operations:
/// a row of eight is two vector operations, cheaper than three lanes one by one (the lanes
/// past `width` compute on stale values that nothing reads; the audio thread flushes
/// denormals, so those cost nothing either). For cheap `f` only: an expensive one runs over
/// the live lanes alone ([`each_live_lane`]).
#[inline(always)]
fn zip_lanes(dst: &mut [Lanes], src: &[Lanes], width: usize, f: impl Fn(&mut f32, f32)) {
    if width > 1 {
        for (d, &x) in dst.as_flattened_mut().iter_mut().zip(src.as_flattened()) {
            f(d, x);
        }
    } else {
        each_live_lane(dst, src, width, f);
    }
}

/// `f(dst, src)` over the lanes `0..width` of each row, one by one.
#[inline(always)]
fn each_live_lane(dst: &mut [Lanes], src: &[Lanes], width: usize, f: impl Fn(&mut f32, f32)) {
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
pub(crate) struct Pack {
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
    pub(crate) fn new(program: &Program) -> Self {
        let mut bufs = vec![[[0.0; LANES]; BLOCK]; program.buffers];
        let mut steady = vec![false; program.buffers];
        for &(k, v) in &program.constants {
            bufs[k] = [[v; LANES]; BLOCK];
            steady[k] = true;
        }
        steady[FREQ] = true;
        steady[VEL] = true;
        // Silent in an instrument; an effect's pack fills them every block.
        steady[INPUT] = true;
        steady[INPUT_RIGHT] = true;
        bufs[BPM] = [[DEFAULT_BPM; LANES]; BLOCK];
        steady[BPM] = true;
        Self {
            bufs,
            steady,
            filled: [(u32::MAX, u32::MAX); LANES],
            filled_solo: None,
        }
    }

    /// The transport's tempo changed: the BPM buffer holds it from the next block (every lane
    /// and sample, so both layouts read it).
    pub(crate) fn follow_tempo(&mut self, bpm: f32) {
        if let Some(b) = self.bufs.get_mut(BPM) {
            *b = [[bpm; LANES]; BLOCK];
        }
    }

    /// Renders `n` frames of `voices` (at most [`LANES`]), adding their sum to `out` (the
    /// left channel only, when the program is mono). `changes` are the voices' gate changes
    /// within this block (sample-accurate note on/off).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render(
        &mut self,
        program: &Program,
        controls: &[Block],
        controls_steady: &[bool],
        voices: &mut [Voice],
        changes: &mut [Option<GateChange>],
        n: usize,
        out: [&mut [f32]; 2],
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
                let steady = self.steady_output(step);
                self.run_solo(s, step, v, n);
                self.mark(step, steady);
            }
            let channels = channels(program);
            let src = program.output.map(|k| &self.bufs[k].as_flattened()[..n]);
            if v.fade == 0 {
                v.level = 0.0;
                for (src, out) in src.into_iter().zip(out).take(channels) {
                    v.level = v.level.max(add_sanitised(src, &mut out[..n]));
                }
            } else {
                mix_voice(v, |c, i| src[c][i], channels, out, n);
            }
            release_if_silent(v);
            return;
        }
        self.inputs(controls, controls_steady, voices, &edges, n);
        for (s, step) in program.steps.iter().enumerate() {
            let steady = self.steady_output(step);
            self.run(s, step, voices, &lanes, n);
            self.mark(step, steady);
        }
        self.mix(program, voices, &lanes, n, out);
    }

    /// Runs an effect definition on a stereo input: a mono definition once per channel
    /// (`voices[0]` on the left input in lane 0, `voices[1]` on the right in lane 1), a stereo
    /// one once (`voices[0]`, both channels in lane 0); writes each channel's output
    /// (sanitised).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render_effect(
        &mut self,
        program: &Program,
        controls: &[Block],
        controls_steady: &[bool],
        voices: &mut [Voice],
        input: [&[f32]; 2],
        n: usize,
        out: [&mut [f32]; 2],
    ) {
        let count = if program.stereo { 1 } else { 2 };
        debug_assert_eq!(voices.len(), count);
        self.inputs(controls, controls_steady, voices, &[None; LANES], n);
        if program.stereo {
            for (k, input) in [INPUT, INPUT_RIGHT].into_iter().zip(input) {
                for (row, x) in self.bufs[k][..n].iter_mut().zip(input) {
                    row[0] = *x;
                }
                self.steady[k] = false;
            }
        } else {
            for (i, row) in self.bufs[INPUT][..n].iter_mut().enumerate() {
                row[0] = input[0][i];
                row[1] = input[1][i];
            }
            self.steady[INPUT] = false;
        }
        let mut on = [false; LANES];
        on[..count].fill(true);
        let live = Live {
            on,
            count,
            width: count,
        };
        for (s, step) in program.steps.iter().enumerate() {
            let steady = self.steady_output(step);
            self.run(s, step, voices, &live, n);
            self.mark(step, steady);
        }
        for (ch, out) in out.into_iter().enumerate() {
            // Stereo: channel `ch` of the one voice; mono: the output of voice `ch`.
            let (k, lane) = if program.stereo {
                (program.output[ch], 0)
            } else {
                (program.output[0], ch)
            };
            for (o, row) in out[..n].iter_mut().zip(&self.bufs[k][..n]) {
                *o = sanitize(row[lane], 4.0);
            }
        }
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
            for (row, &x) in self.bufs[FIRST_CONTROL + c][..n]
                .iter_mut()
                .zip(&block[..n])
            {
                *row = [x; LANES];
            }
            self.steady[FIRST_CONTROL + c] = steady;
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
            self.bufs[FIRST_CONTROL + c].as_flattened_mut()[..n].copy_from_slice(&block[..n]);
            self.steady[FIRST_CONTROL + c] = steady;
        }
    }

    /// Runs step `s` for one voice in the solo layout.
    fn run_solo(&mut self, s: usize, step: &Step, v: &mut Voice, n: usize) {
        let Some(out) = step.out() else {
            if let Step::FeedbackWrite { input, read } = *step
                && let Some(State::Feedback(ring)) = v.states.get_mut(read)
            {
                ring.write(&self.bufs[input].as_flattened()[..n]);
            }
            return;
        };
        let state = &mut v.states[s];
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
            (Step::Mul { inputs, .. }, _) => fold_flat(dst, inputs, &io, n, 1.0, |x, y| x * y),
            (Step::Add { inputs, .. }, _) => fold_flat(dst, inputs, &io, n, 0.0, |x, y| x + y),
            (Step::Tanh { input, drive, .. }, _) => {
                for ((d, x), g) in dst
                    .iter_mut()
                    .zip(io.flat(*input, n))
                    .zip(io.flat(*drive, n))
                {
                    *d = x * g;
                }
                tanh_in_place(dst);
            }
            (Step::MidiToHz { input, .. }, _) => {
                for (d, x) in dst.iter_mut().zip(io.flat(*input, n)) {
                    *d = midi_to_hz(*x);
                }
            }
            (Step::Fun { fun, args, .. }, _) => {
                let [a, b, c] = args.map(|k| io.flat(k, n));
                fun.map(dst, a, b, c);
            }
            (Step::Kernel { args, .. }, State::Kernel(k)) => {
                k.process(&args.map(|a| io.solo_sig(a, n)), dst);
            }
            (Step::FeedbackRead { .. }, State::Feedback(ring)) => ring.read(dst),
            // States are built from the same steps, so kinds always match.
            _ => {}
        }
    }

    /// Whether buffer `k` was steady in the last block.
    #[cfg(test)]
    pub(crate) fn is_steady(&self, k: usize) -> bool {
        self.steady[k]
    }

    /// Whether `step`'s output will hold one value per lane for the whole block: a stateless
    /// step of steady inputs. Steps downstream then take their steady paths — an oscillator
    /// at a detuned pitch runs in lanes, a filter at a computed cutoff sets its coefficients
    /// once a block.
    fn steady_output(&self, step: &Step) -> bool {
        let steady = |k: &Operand| self.steady[*k];
        match step {
            Step::Mul { inputs, .. } | Step::Add { inputs, .. } => inputs.iter().all(steady),
            Step::Tanh { input, drive, .. } => steady(input) && steady(drive),
            Step::MidiToHz { input, .. } => steady(input),
            Step::Fun { args, .. } => args.iter().all(steady),
            _ => false,
        }
    }

    /// Records whether the buffer `step` wrote this block is steady (every step output is
    /// marked each block, in either layout, so no mark outlives the block it was true for).
    fn mark(&mut self, step: &Step, steady: bool) {
        if let Some(out) = step.out() {
            self.steady[out] = steady;
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
                freq, width, out, ..
            } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                // Voice by voice, each along time into its column: four samples a vector
                // step, which costs less than the eight lanes' table reads side by side did
                // at any pack size (BENCHMARKS.md, session 12).
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
                if io.steady(*cutoff) && io.steady(*resonance) {
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
                zip_lanes(dst, io.rows(*drive, n), width, |d, g| *d *= g);
                // Every lane (those past `width` hold values no one reads): whole vectors.
                tanh_in_place(dst.as_flattened_mut());
            }
            Step::MidiToHz { input, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let dst = &mut dst[..n];
                each_live_lane(dst, io.rows(*input, n), width, |d, x| *d = midi_to_hz(x));
            }
            // Functions run over every lane at once, like the element-wise steps.
            Step::Fun { fun, args, out } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                let [a, b, c] = args.map(|k| io.rows(k, n).as_flattened());
                fun.map(dst[..n].as_flattened_mut(), a, b, c);
            }
            Step::Kernel { args, out, .. } => {
                let (dst, io) = Io::split(&mut self.bufs, &self.steady, *out);
                for (l, state) in lanes {
                    if let State::Kernel(k) = state {
                        let sigs = args.map(|a| io.sig(a, n, l));
                        k.process(&sigs, &mut Column::new(&mut dst[..n], l));
                    }
                }
            }
            Step::FeedbackRead { out } => {
                let dst = &mut self.bufs[*out][..n];
                for (l, state) in lanes {
                    if let State::Feedback(ring) = state {
                        ring.read(&mut Column::new(dst, l));
                    }
                }
            }
            Step::FeedbackWrite { input, read } => {
                let src = &self.bufs[*input][..n];
                for (l, v) in voices.iter_mut().enumerate() {
                    if live.on[l]
                        && let Some(State::Feedback(ring)) = v.states.get_mut(*read)
                    {
                        ring.write_lane(src, l);
                    }
                }
            }
        }
    }

    /// Adds the live voices' outputs (sanitised, fading where stolen) to `out`, records each
    /// voice's peak and frees voices that have finished.
    fn mix(
        &mut self,
        program: &Program,
        voices: &mut [Voice],
        live: &Live,
        n: usize,
        mut out: [&mut [f32]; 2],
    ) {
        let channels = channels(program);
        let bufs = &self.bufs;
        let src = program.output.map(|k| &bufs[k][..n]);
        let fading = voices.iter().any(|v| v.fade > 0);
        let vector = !fading && voices.len() == LANES && live.count >= 4;
        let live = &live.on;
        if vector {
            // Lane by lane in vector form: idle lanes masked to zero; each peak as the largest
            // magnitude's bit pattern (the bits of non-negative floats order like the floats).
            let mask: [u32; LANES] = live.map(|on| if on { u32::MAX } else { 0 });
            let mut peak = [0u32; LANES];
            for (src, out) in src.iter().zip(out.iter_mut()).take(channels) {
                for (o, row) in out[..n].iter_mut().zip(*src) {
                    let mut v: Lanes = [0.0; LANES];
                    for l in 0..LANES {
                        v[l] = f32::from_bits(sanitize(row[l], 4.0).to_bits() & mask[l]);
                    }
                    for l in 0..LANES {
                        peak[l] = peak[l].max(v[l].to_bits() & 0x7fff_ffff);
                    }
                    *o += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
                }
            }
            for (l, v) in voices.iter_mut().enumerate() {
                v.level = f32::from_bits(peak[l]);
            }
        } else {
            for (l, v) in voices.iter_mut().enumerate() {
                if live[l] {
                    let [o0, o1] = &mut out;
                    mix_voice(v, |c, i| src[c][i][l], channels, [o0, o1], n);
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

/// How many channels a program outputs.
fn channels(program: &Program) -> usize {
    if program.stereo { 2 } else { 1 }
}

/// Adds one voice's `n` samples of each channel (`sample(channel, i)`, sanitised; fading out
/// where stolen) to `out` and records its peak.
fn mix_voice(
    v: &mut Voice,
    sample: impl Fn(usize, usize) -> f32,
    channels: usize,
    out: [&mut [f32]; 2],
    n: usize,
) {
    let [out_l, out_r] = out;
    let (out_l, out_r) = (&mut out_l[..n], &mut out_r[..n]);
    if v.fade == 0 {
        // Playing, not stolen: the plain sum, the peak as the largest magnitude's bit pattern
        // (the bits of non-negative floats order like the floats).
        let mut peak_bits = 0u32;
        for (c, out) in [out_l, out_r].into_iter().enumerate().take(channels) {
            for (i, o) in out.iter_mut().enumerate() {
                let x = sanitize(sample(c, i), 4.0);
                peak_bits = peak_bits.max(x.to_bits() & 0x7fff_ffff);
                *o += x;
            }
        }
        v.level = f32::from_bits(peak_bits);
        return;
    }
    let mut peak = 0.0f32;
    for i in 0..n {
        let gain = if v.fade > 0 {
            let g = v.fade as f32 / STEAL_FADE as f32;
            v.fade -= 1;
            if v.fade == 0 {
                v.active = false;
                v.id = 0;
            }
            g
        } else if !v.active {
            0.0
        } else {
            1.0
        };
        let l = sanitize(sample(0, i), 4.0) * gain;
        out_l[i] += l;
        peak = peak.max(l.abs());
        if channels == 2 {
            let r = sanitize(sample(1, i), 4.0) * gain;
            out_r[i] += r;
            peak = peak.max(r.abs());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_tanh_is_as_close_as_libms() {
        // A length that leaves a tail, over -12..12 and the special values.
        let mut xs: Vec<f32> = (0..=240_001).map(|i| i as f32 * 1e-4 - 12.0).collect();
        xs.extend([0.0, -0.0, 1e-30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
        let mut ys = xs.clone();
        tanh_in_place(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x.is_nan() {
                assert!(y.is_nan());
                continue;
            }
            let want = (x as f64).tanh();
            let libm = x.tanh() as f64;
            let err = (y as f64 - want).abs();
            assert!(
                err <= (libm - want)
                    .abs()
                    .max(2.0 * f32::EPSILON as f64 * want.abs()),
                "tanh({x}) = {y}, want {want}"
            );
        }
    }

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
}
