//! Stateful primitives of the definition vocabulary beyond the core four (oscillator, noise,
//! state-variable filter, ADSR, which have hand-vectorised paths in the voice packs). Each is
//! one type implementing [`Kernel`]: built off the audio thread (a delay line is allocated
//! here), `reset` to its starting state, and `tick` for one sample of its inputs. The packs run
//! every kernel through one generic block loop ([`Kernel::process`]), so adding one is a type
//! here and a line in [`crate::prim`]'s table.

use std::f32::consts::TAU;

use super::fx::{DcBlock, Reverb, back, next};
use super::{Cached, Out, Sig};

/// The most inputs a kernel reads.
pub const ARGS: usize = 5;

/// A stateful primitive (see the module docs).
pub trait Kernel: Sized {
    /// Built at `rate` Hz; `max_s` is the longest delay it must hold (delays only).
    fn new(rate: f32, max_s: f32) -> Self;
    /// Back to the state it was built in.
    fn reset(&mut self);
    /// One sample, from one sample of each input (unused ones are 0).
    fn tick(&mut self, x: [f32; ARGS]) -> f32;

    /// Runs at `rate` Hz from now on, as if built there (its lines re-allocated, its state
    /// reset: fundsp's habit, which allows a reset on a rate change). Off the audio thread.
    /// The synth itself never calls it — an engine runs at one rate, and a stream at another
    /// rate is resampled by PipeWire — but a node that can be moved is what a host of nodes
    /// (an offline render at another rate, a future live rate change) needs.
    fn set_sample_rate(&mut self, rate: f32, max_s: f32) {
        *self = Self::new(rate, max_s);
    }

    /// A block: `tick` per sample, so the block and per-sample paths agree exactly.
    #[inline]
    fn process<O: Out + ?Sized>(&mut self, args: &[Sig<'_>; ARGS], out: &mut O) {
        by_ticks(self, args, out);
    }
}

/// A block as one `tick` per sample (the default block path, and a kernel's fallback when its
/// own block path does not apply).
#[inline]
fn by_ticks<K: Kernel, O: Out + ?Sized>(k: &mut K, args: &[Sig<'_>; ARGS], out: &mut O) {
    for i in 0..out.frames() {
        let x = std::array::from_fn(|a| args[a].at(i));
        out.set(i, k.tick(x));
    }
}

/// Flushes values too small to matter to zero, so feedback paths never run on denormals.
#[inline]
fn flush(x: f32) -> f32 {
    if x.abs() < 1e-20 { 0.0 } else { x }
}

/// Phase ramp 0 → 1 at `freq` Hz (not band-limited: a control signal).
#[derive(Debug, Clone)]
pub struct Phasor {
    phase: f32,
    rate: f32,
}

impl Kernel for Phasor {
    fn new(rate: f32, _: f32) -> Self {
        Self { phase: 0.0, rate }
    }
    fn reset(&mut self) {
        self.phase = 0.0;
    }
    #[inline]
    fn tick(&mut self, [freq, ..]: [f32; ARGS]) -> f32 {
        let out = self.phase;
        self.phase = (self.phase + freq / self.rate).rem_euclid(1.0);
        if !self.phase.is_finite() {
            self.phase = 0.0;
        }
        out
    }
}

/// Sine low-frequency oscillator, -1 … 1, starting at 0 rising (a control signal).
#[derive(Debug, Clone)]
pub struct Lfo(Phasor);

impl Kernel for Lfo {
    fn new(rate: f32, max_s: f32) -> Self {
        Self(Phasor::new(rate, max_s))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    #[inline]
    fn tick(&mut self, x: [f32; ARGS]) -> f32 {
        (TAU * self.0.tick(x)).sin()
    }
}

/// One-pole low-pass at `cutoff` Hz (6 dB per octave).
#[derive(Debug, Clone)]
pub struct OnePole {
    y: f32,
    rate: f32,
    a: Cached,
}

impl Kernel for OnePole {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            y: 0.0,
            rate,
            a: Cached::default(),
        }
    }
    fn reset(&mut self) {
        self.y = 0.0;
    }
    #[inline]
    fn tick(&mut self, [x, cutoff, ..]: [f32; ARGS]) -> f32 {
        let rate = self.rate;
        let a = self.a.get(cutoff, |c| {
            1.0 - (-TAU * c.clamp(1.0, rate * 0.49) / rate).exp()
        });
        self.y = flush(self.y + a * (x - self.y));
        self.y
    }
}

/// DC blocker: a one-zero one-pole high-pass at about 10 Hz.
#[derive(Debug, Clone, Default)]
pub struct DcBlocker(DcBlock);

impl Kernel for DcBlocker {
    fn new(_: f32, _: f32) -> Self {
        Self::default()
    }
    fn reset(&mut self) {
        self.0 = DcBlock::default();
    }
    #[inline]
    fn tick(&mut self, [x, ..]: [f32; ARGS]) -> f32 {
        flush(self.0.tick(x))
    }
}

/// Follows its input with a one-pole smoother of time constant `time` seconds (63 % of a step
/// in `time`).
#[derive(Debug, Clone)]
pub struct Smooth {
    y: Option<f32>,
    rate: f32,
    k: Cached,
}

impl Kernel for Smooth {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            y: None,
            rate,
            k: Cached::default(),
        }
    }
    fn reset(&mut self) {
        self.y = None;
    }
    #[inline]
    fn tick(&mut self, [x, time, ..]: [f32; ARGS]) -> f32 {
        // Starts at its first input rather than gliding up from zero.
        let y = self.y.unwrap_or(x);
        let rate = self.rate;
        let k = self
            .k
            .get(time, |t| (-1.0 / (t.max(0.0) * rate).max(1.0)).exp());
        let y = flush(x + (y - x) * k);
        self.y = Some(y);
        y
    }
}

/// Attack–release envelope: rises linearly to 1 over `attack` seconds while `gate` is above
/// 0.5, then falls linearly at the rate that takes 1 to 0 in `release` seconds.
#[derive(Debug, Clone)]
pub struct Ar {
    level: f32,
    rate: f32,
}

impl Kernel for Ar {
    fn new(rate: f32, _: f32) -> Self {
        Self { level: 0.0, rate }
    }
    fn reset(&mut self) {
        self.level = 0.0;
    }
    #[inline]
    fn tick(&mut self, [gate, attack, release, ..]: [f32; ARGS]) -> f32 {
        let step = |t: f32| 1.0 / (t.max(0.0) * self.rate).max(1.0);
        // Within half a step of the end it is the end: summing steps in f32 drifts by a few
        // ulps, which must not cost a sample.
        self.level = if gate > 0.5 {
            let s = step(attack);
            let next = self.level + s;
            if next >= 1.0 - 0.5 * s { 1.0 } else { next }
        } else {
            let s = step(release);
            let next = self.level - s;
            if next <= 0.5 * s { 0.0 } else { next }
        };
        self.level
    }
}

/// Percussive decay: jumps to 1 when `trigger` rises above 0.5 and falls exponentially,
/// reaching -60 dB after `time` seconds.
#[derive(Debug, Clone)]
pub struct Decay {
    level: f32,
    high: bool,
    rate: f32,
    k: Cached,
}

impl Kernel for Decay {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            level: 0.0,
            high: false,
            rate,
            k: Cached::default(),
        }
    }
    fn reset(&mut self) {
        self.level = 0.0;
        self.high = false;
    }
    #[inline]
    fn tick(&mut self, [trigger, time, ..]: [f32; ARGS]) -> f32 {
        let high = trigger > 0.5;
        if high && !self.high {
            self.level = 1.0;
        }
        self.high = high;
        let out = self.level;
        // 1000 = 60 dB: level × k^(time · rate) = level / 1000.
        let rate = self.rate;
        let k = self.k.get(time, |t| {
            (-(1000.0f32.ln()) / (t.max(0.0) * rate).max(1.0)).exp()
        });
        self.level = flush(self.level * k);
        out
    }
}

/// A line of samples read at a fractional delay.
#[derive(Debug, Clone)]
struct Line {
    buf: Vec<f32>,
    pos: usize,
}

impl Line {
    fn new(samples: usize) -> Self {
        Self {
            buf: vec![0.0; samples.max(2)],
            pos: 0,
        }
    }

    fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }

    /// The sample written `d` samples ago (1 ≤ d < len; fractional: linear interpolation).
    #[inline]
    fn read(&self, d: f32) -> f32 {
        let n = self.buf.len();
        let d = d.clamp(1.0, (n - 1) as f32);
        let whole = d as usize;
        let frac = d - whole as f32;
        let a = self.buf[back(self.pos, whole, n)];
        let b = self.buf[back(self.pos, (whole + 1).min(n - 1), n)];
        a + (b - a) * frac
    }

    #[inline]
    fn write(&mut self, x: f32) {
        self.buf[self.pos] = flush(x);
        self.pos = next(self.pos, self.buf.len());
    }
}

/// Delay by `time` seconds (rounded to the nearest sample, at most its `max`; at least one
/// sample), wet only.
#[derive(Debug, Clone)]
pub struct DelayLine {
    line: Line,
    rate: f32,
}

impl Kernel for DelayLine {
    fn new(rate: f32, max_s: f32) -> Self {
        Self {
            line: Line::new((max_s * rate) as usize + 2),
            rate,
        }
    }
    fn reset(&mut self) {
        self.line.reset();
    }
    #[inline]
    fn tick(&mut self, [x, time, ..]: [f32; ARGS]) -> f32 {
        // Read before writing: d positions back from the next write is d samples ago.
        let y = self.line.read((time * self.rate).round());
        self.line.write(x);
        y
    }
}

/// Echo: a delay of `time` seconds whose output is fed back into it at `feedback` (0 … 0.98),
/// through a gentle low-pass at 6 kHz so repeats darken; wet only.
#[derive(Debug, Clone)]
pub struct Echo {
    line: Line,
    damp: OnePole,
    rate: f32,
}

impl Kernel for Echo {
    fn new(rate: f32, max_s: f32) -> Self {
        Self {
            line: Line::new((max_s * rate) as usize + 2),
            damp: OnePole::new(rate, 0.0),
            rate,
        }
    }
    fn reset(&mut self) {
        self.line.reset();
        self.damp.reset();
    }
    #[inline]
    fn tick(&mut self, [x, time, feedback, ..]: [f32; ARGS]) -> f32 {
        let y = self.line.read((time * self.rate).round());
        let back = self.damp.tick([y, 6000.0, 0.0, 0.0, 0.0]);
        self.line.write(x + back * feedback.clamp(0.0, 0.98));
        y
    }
}

/// A copy of the input delayed by `base_s` ± `depth` × `swing_s`, swept by a sine at `speed`
/// Hz, fed back at `feedback` and mixed at `mix` (0 dry … 1 wet): chorus and flanger.
#[derive(Debug, Clone)]
struct Swept {
    line: Line,
    lfo: Lfo,
    rate: f32,
}

impl Swept {
    fn new(rate: f32, longest_s: f32) -> Self {
        Self {
            line: Line::new((longest_s * rate) as usize + 4),
            lfo: Lfo::new(rate, 0.0),
            rate,
        }
    }

    fn reset(&mut self) {
        self.line.reset();
        self.lfo.reset();
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn tick(
        &mut self,
        x: f32,
        base_s: f32,
        swing_s: f32,
        speed: f32,
        depth: f32,
        feedback: f32,
        mix: f32,
    ) -> f32 {
        let sweep = self.lfo.tick([speed, 0.0, 0.0, 0.0, 0.0]);
        let d = (base_s + swing_s * depth.clamp(0.0, 1.0) * sweep) * self.rate;
        let wet = self.line.read(d);
        self.line.write(x + wet * feedback);
        let mix = mix.clamp(0.0, 1.0);
        x * (1.0 - mix) + wet * mix
    }
}

/// Chorus: the input mixed with a copy delayed by 15 ms ± `depth` × 10 ms, swept by a sine at
/// `speed` Hz; `mix` 0 (dry) … 1 (wet).
#[derive(Debug, Clone)]
pub struct Chorus(Swept);

impl Kernel for Chorus {
    fn new(rate: f32, _: f32) -> Self {
        Self(Swept::new(rate, 0.03))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    #[inline]
    fn tick(&mut self, [x, speed, depth, mix, _]: [f32; ARGS]) -> f32 {
        self.0.tick(x, 0.015, 0.01, speed, depth, 0.0, mix)
    }
}

/// Flanger: a copy delayed by 2.5 ms ± `depth` × 2 ms, swept at `speed` Hz, fed back at
/// `feedback` (-0.95 … 0.95) and mixed at `mix`.
#[derive(Debug, Clone)]
pub struct Flanger(Swept);

impl Kernel for Flanger {
    fn new(rate: f32, _: f32) -> Self {
        Self(Swept::new(rate, 0.006))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    #[inline]
    fn tick(&mut self, [x, speed, depth, feedback, mix]: [f32; ARGS]) -> f32 {
        self.0.tick(
            x,
            0.0025,
            0.002,
            speed,
            depth,
            feedback.clamp(-0.95, 0.95),
            mix,
        )
    }
}

/// Freeverb on one channel (its left half; a stereo effect definition runs once per channel),
/// `room` 0 … 1, `damp` 0 … 1; wet only.
#[derive(Debug, Clone)]
pub struct MonoReverb(Box<Reverb>);

impl Kernel for MonoReverb {
    fn new(rate: f32, _: f32) -> Self {
        Self(Box::new(Reverb::new(rate)))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    #[inline]
    fn tick(&mut self, [x, room, damp, ..]: [f32; ARGS]) -> f32 {
        // The left channel only, the input fed as both of Freeverb's.
        let mut one = [x];
        self.0.process(&mut one, &mut [], room, damp);
        one[0]
    }

    /// A block at steady settings runs Freeverb block-wise (the same samples as `tick`).
    fn process<O: Out + ?Sized>(&mut self, args: &[Sig<'_>; ARGS], out: &mut O) {
        let n = out.frames();
        let (Sig::Steady(room), Sig::Steady(damp), true) = (args[1], args[2], n <= super::BLOCK)
        else {
            return by_ticks(self, args, out);
        };
        let mut block = [0.0f32; super::BLOCK];
        for (i, b) in block[..n].iter_mut().enumerate() {
            *b = args[0].at(i);
        }
        self.0.process(&mut block[..n], &mut [], room, damp);
        for (i, &y) in block[..n].iter().enumerate() {
            out.set(i, y);
        }
    }
}

/// The sample rate, Hz.
#[derive(Debug, Clone)]
pub struct SampleRate(f32);

impl Kernel for SampleRate {
    fn new(rate: f32, _: f32) -> Self {
        Self(rate)
    }
    fn reset(&mut self) {}
    #[inline]
    fn tick(&mut self, _: [f32; ARGS]) -> f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::{KernelKind, KernelState};

    const RATE: f32 = 48_000.0;

    /// Inputs that exercise a kernel: a decaying 220 Hz tone with a gate/trigger that goes
    /// high then low, and its other inputs at their defaults.
    fn drive(kind: KernelKind, i: usize) -> [f32; ARGS] {
        let t = i as f32 / RATE;
        let tone = (TAU * 220.0 * t).sin() * (-3.0 * t).exp();
        let mut x = [0.0; ARGS];
        for (k, arg) in kind.args().iter().enumerate() {
            x[k] = match arg.name {
                "input" => tone,
                "gate" | "trigger" => f32::from(i % 9000 < 4000),
                "freq" => 3.0,
                _ => arg.default.unwrap_or(0.0),
            };
        }
        x
    }

    fn run(state: &mut KernelState, kind: KernelKind, from: usize, n: usize) -> Vec<f32> {
        (from..from + n)
            .map(|i| state.tick(drive(kind, i)))
            .collect()
    }

    #[test]
    fn every_kernel_moved_to_another_rate_sounds_as_one_built_there() {
        for &kind in KernelKind::ALL {
            let mut moved = kind.build(RATE, 1.0);
            run(&mut moved, kind, 0, 5_000);
            moved.set_sample_rate(96_000.0, 1.0);
            let mut built = kind.build(96_000.0, 1.0);
            assert_eq!(
                run(&mut moved, kind, 0, 20_000),
                run(&mut built, kind, 0, 20_000),
                "{}",
                kind.name()
            );
        }
    }

    #[test]
    fn every_kernel_resets_exactly_and_its_block_path_agrees_with_ticks() {
        for &kind in KernelKind::ALL {
            let mut a = kind.build(RATE, 1.0);
            let first = run(&mut a, kind, 0, 20_000);
            a.reset();
            assert_eq!(
                run(&mut a, kind, 0, 20_000),
                first,
                "{}: reset",
                kind.name()
            );
            // Blocks of uneven sizes through `process` against the ticks above.
            let mut b = kind.build(RATE, 1.0);
            let mut blocked = Vec::new();
            let mut i = 0;
            for size in [64usize, 1, 17, 64, 5].iter().cycle() {
                if i >= 20_000 {
                    break;
                }
                let n = (*size).min(20_000 - i);
                let cols: Vec<Vec<f32>> = (0..ARGS)
                    .map(|k| (i..i + n).map(|j| drive(kind, j)[k]).collect())
                    .collect();
                let sigs: [Sig<'_>; ARGS] = std::array::from_fn(|k| Sig::Varying(&cols[k]));
                let mut out = vec![0.0; n];
                b.process(&sigs, &mut out[..]);
                blocked.extend(out);
                i += n;
            }
            assert_eq!(blocked, first, "{}: blocks vs ticks", kind.name());
        }
    }

    #[test]
    fn no_kernel_leaves_denormals_or_non_finite_values_behind() {
        for &kind in KernelKind::ALL {
            let mut k = kind.build(RATE, 1.0);
            // Ten seconds: the tone decays far below the smallest normal float.
            for i in 0..480_000 {
                let y = k.tick(drive(kind, i));
                assert!(y.is_finite(), "{}: {y} at {i}", kind.name());
                assert!(
                    y == 0.0 || y.abs() >= f32::MIN_POSITIVE,
                    "{}: denormal {y:e} at {i}",
                    kind.name()
                );
            }
        }
    }

    fn impulse_response(kind: KernelKind, args: [f32; ARGS], n: usize) -> Vec<f32> {
        let mut k = kind.build(RATE, 1.0);
        (0..n)
            .map(|i| {
                let mut x = args;
                x[0] = f32::from(i == 0);
                k.tick(x)
            })
            .collect()
    }

    #[test]
    fn a_delay_sounds_at_the_exact_frame_and_an_echo_repeats_with_its_feedback() {
        let y = impulse_response(KernelKind::Delay, [0.0, 0.25, 1.0, 0.0, 0.0], 30_000);
        let hits: Vec<usize> = (0..y.len()).filter(|&i| y[i] != 0.0).collect();
        assert_eq!(hits, [12_000], "0.25 s at 48 kHz");
        let y = impulse_response(KernelKind::Echo, [0.0, 0.1, 0.5, 1.0, 0.0], 20_000);
        assert_eq!(y[4800], 1.0, "first echo exact");
        assert!(y[..4800].iter().all(|&v| v == 0.0));
        // The repeat goes through the loop's low-pass (unity gain at DC): it is spread over a
        // few samples from 9600 on, and sums to the feedback.
        assert!(y[4801..9600].iter().all(|&v| v == 0.0));
        let second: f32 = y[9600..9700].iter().sum();
        assert!(
            (second - 0.5).abs() < 0.01,
            "second echo sums to 0.5: {second}"
        );
    }

    #[test]
    fn envelopes_keep_their_times_to_the_sample() {
        // ar: attack 10 ms = 480 samples to reach 1, release 20 ms = 960 to reach 0.
        let mut ar = KernelKind::Ar.build(RATE, 0.0);
        let up: Vec<f32> = (0..600)
            .map(|_| ar.tick([1.0, 0.01, 0.02, 0.0, 0.0]))
            .collect();
        assert!(up[478] < 1.0 && up[479] == 1.0, "{} {}", up[478], up[479]);
        let down: Vec<f32> = (0..1000)
            .map(|_| ar.tick([0.0, 0.01, 0.02, 0.0, 0.0]))
            .collect();
        assert!(
            down[958] > 0.0 && down[959] == 0.0,
            "{} {}",
            down[958],
            down[959]
        );
        // decay: -60 dB after 0.5 s = 24 000 samples.
        let mut d = KernelKind::Decay.build(RATE, 0.0);
        let y: Vec<f32> = (0..30_000)
            .map(|i| d.tick([f32::from(i < 100), 0.5, 0.0, 0.0, 0.0]))
            .collect();
        assert_eq!(y[0], 1.0);
        assert!((y[24_000] - 1e-3).abs() < 1e-5, "{}", y[24_000]);
    }

    /// Steady-state gain of a kernel for a sine at `hz`, dB.
    fn gain_db(kind: KernelKind, args: [f32; ARGS], hz: f32) -> f32 {
        let mut k = kind.build(RATE, 1.0);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for i in 0..96_000 {
            let x = (TAU * hz * i as f32 / RATE).sin();
            let mut a = args;
            a[0] = x;
            let y = k.tick(a);
            if i >= 48_000 {
                num += (y * y) as f64;
                den += (x * x) as f64;
            }
        }
        (10.0 * (num / den).log10()) as f32
    }

    #[test]
    fn one_pole_and_dc_blocker_respond_as_their_curves_say() {
        let lp = |hz| gain_db(KernelKind::OnePole, [0.0, 1000.0, 0.0, 0.0, 0.0], hz);
        assert!(lp(50.0).abs() < 0.1, "passband {}", lp(50.0));
        assert!(
            (lp(1000.0) + 3.0).abs() < 0.6,
            "-3 dB at the cutoff: {}",
            lp(1000.0)
        );
        assert!(
            (lp(8000.0) + 18.0).abs() < 1.5,
            "6 dB/octave: {}",
            lp(8000.0)
        );
        let dc = |hz| gain_db(KernelKind::DcBlock, [0.0; ARGS], hz);
        assert!(
            dc(1000.0).abs() < 0.1 && dc(1.0) < -15.0,
            "{} {}",
            dc(1000.0),
            dc(1.0)
        );
    }

    #[test]
    fn control_signals_run_at_their_frequency_and_smooth_at_its_time_constant() {
        let mut p = KernelKind::Phasor.build(RATE, 0.0);
        let ramp: Vec<f32> = (0..48_000)
            .map(|_| p.tick([100.0, 0.0, 0.0, 0.0, 0.0]))
            .collect();
        let wraps = ramp.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(
            wraps, 99,
            "100 Hz: 99 wraps after the first cycle in a second"
        );
        let mut l = KernelKind::Lfo.build(RATE, 0.0);
        let s: Vec<f32> = (0..48_000)
            .map(|_| l.tick([2.0, 0.0, 0.0, 0.0, 0.0]))
            .collect();
        assert!(
            s[0] == 0.0 && (s[6000] - 1.0).abs() < 1e-3,
            "sine from 0, peak at ¼ cycle"
        );
        let mut sm = KernelKind::Smooth.build(RATE, 0.0);
        sm.tick([0.0, 0.01, 0.0, 0.0, 0.0]);
        let y: Vec<f32> = (0..480)
            .map(|_| sm.tick([1.0, 0.01, 0.0, 0.0, 0.0]))
            .collect();
        assert!(
            (y[479] - 0.632).abs() < 0.01,
            "63 % after one time constant: {}",
            y[479]
        );
        let mut r = KernelKind::SampleRate.build(RATE, 0.0);
        assert_eq!(r.tick([0.0; ARGS]), RATE);
    }

    #[test]
    fn modulated_delays_and_the_reverb_colour_the_sound_and_mix_zero_is_dry() {
        for kind in [KernelKind::Chorus, KernelKind::Flanger] {
            let mix = kind.args().iter().position(|a| a.name == "mix").unwrap();
            let mut dry_args = drive(kind, 0);
            dry_args[mix] = 0.0;
            let mut k = kind.build(RATE, 0.0);
            for i in 0..4800 {
                let mut a = drive(kind, i);
                a[mix] = 0.0;
                assert_eq!(k.tick(a), a[0], "{}: mix 0 is dry", kind.name());
            }
            let mut k = kind.build(RATE, 0.0);
            let diff: f32 = (0..48_000)
                .map(|i| {
                    let a = drive(kind, i);
                    (k.tick(a) - a[0]).abs()
                })
                .sum();
            assert!(
                diff > 10.0,
                "{}: wet differs from dry ({diff})",
                kind.name()
            );
        }
        let y = impulse_response(KernelKind::Reverb, [0.0, 0.7, 0.5, 0.0, 0.0], 96_000);
        let energy = |r: std::ops::Range<usize>| y[r].iter().map(|v| v * v).sum::<f32>();
        let (early, late) = (energy(0..24_000), energy(72_000..96_000));
        assert!(
            early > 0.0 && late < early * 0.01,
            "decays: {early} → {late}"
        );
    }
}
