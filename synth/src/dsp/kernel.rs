//! Stateful primitives of the definition vocabulary beyond the core four (oscillator, noise,
//! state-variable filter, ADSR, which have hand-vectorised paths in the voice packs). Each is
//! one type implementing [`Kernel`]: built off the audio thread (a delay line is allocated
//! here), `reset` to its starting state, and `tick` for one sample of its inputs. The packs run
//! every kernel through one generic block loop ([`Kernel::process`]), so adding one is a type
//! here and a line in [`crate::prim`]'s table.

use std::f32::consts::TAU;

use super::fx::{DcBlock, Reverb};
use super::{Out, Sig};

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

    /// A block: `tick` per sample, so the block and per-sample paths agree exactly.
    #[inline]
    fn process<O: Out + ?Sized>(&mut self, args: &[Sig<'_>; ARGS], out: &mut O) {
        for i in 0..out.frames() {
            let x = std::array::from_fn(|k| args[k].at(i));
            out.set(i, self.tick(x));
        }
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
}

impl Kernel for OnePole {
    fn new(rate: f32, _: f32) -> Self {
        Self { y: 0.0, rate }
    }
    fn reset(&mut self) {
        self.y = 0.0;
    }
    #[inline]
    fn tick(&mut self, [x, cutoff, ..]: [f32; ARGS]) -> f32 {
        let c = cutoff.clamp(1.0, self.rate * 0.49);
        let a = 1.0 - (-TAU * c / self.rate).exp();
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
}

impl Kernel for Smooth {
    fn new(rate: f32, _: f32) -> Self {
        Self { y: None, rate }
    }
    fn reset(&mut self) {
        self.y = None;
    }
    #[inline]
    fn tick(&mut self, [x, time, ..]: [f32; ARGS]) -> f32 {
        // Starts at its first input rather than gliding up from zero.
        let y = self.y.unwrap_or(x);
        let k = (-1.0 / (time.max(0.0) * self.rate).max(1.0)).exp();
        let y = flush(x + (y - x) * k);
        self.y = Some(y);
        y
    }
}

/// Attack–release envelope: rises linearly to 1 over `attack` seconds while `gate` is above
/// 0.5, then falls linearly to 0 over `release` seconds (from wherever it is).
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
        self.level = if gate > 0.5 {
            (self.level + step(attack)).min(1.0)
        } else {
            (self.level - step(release)).max(0.0)
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
}

impl Kernel for Decay {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            level: 0.0,
            high: false,
            rate,
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
        let k = (-(1000.0f32.ln()) / (time.max(0.0) * self.rate).max(1.0)).exp();
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
        let a = self.buf[(self.pos + n - whole) % n];
        let b = self.buf[(self.pos + n - (whole + 1).min(n - 1)) % n];
        a + (b - a) * frac
    }

    #[inline]
    fn write(&mut self, x: f32) {
        self.buf[self.pos] = flush(x);
        self.pos = (self.pos + 1) % self.buf.len();
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

/// Chorus: the input mixed with a copy delayed by 15 ms ± `depth` × 10 ms, swept by a sine at
/// `speed` Hz; `mix` 0 (dry) … 1 (wet).
#[derive(Debug, Clone)]
pub struct Chorus {
    line: Line,
    lfo: Lfo,
    rate: f32,
}

impl Kernel for Chorus {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            line: Line::new((0.03 * rate) as usize + 4),
            lfo: Lfo::new(rate, 0.0),
            rate,
        }
    }
    fn reset(&mut self) {
        self.line.reset();
        self.lfo.reset();
    }
    #[inline]
    fn tick(&mut self, [x, speed, depth, mix, _]: [f32; ARGS]) -> f32 {
        let sweep = self.lfo.tick([speed, 0.0, 0.0, 0.0, 0.0]);
        let d = (0.015 + 0.01 * depth.clamp(0.0, 1.0) * sweep) * self.rate;
        let wet = self.line.read(d);
        self.line.write(x);
        let mix = mix.clamp(0.0, 1.0);
        x * (1.0 - mix) + wet * mix
    }
}

/// Flanger: a copy delayed by 2.5 ms ± `depth` × 2 ms, swept at `speed` Hz, fed back at
/// `feedback` (-0.95 … 0.95) and mixed at `mix`.
#[derive(Debug, Clone)]
pub struct Flanger {
    line: Line,
    lfo: Lfo,
    rate: f32,
}

impl Kernel for Flanger {
    fn new(rate: f32, _: f32) -> Self {
        Self {
            line: Line::new((0.006 * rate) as usize + 4),
            lfo: Lfo::new(rate, 0.0),
            rate,
        }
    }
    fn reset(&mut self) {
        self.line.reset();
        self.lfo.reset();
    }
    #[inline]
    fn tick(&mut self, [x, speed, depth, feedback, mix]: [f32; ARGS]) -> f32 {
        let sweep = self.lfo.tick([speed, 0.0, 0.0, 0.0, 0.0]);
        let d = (0.0025 + 0.002 * depth.clamp(0.0, 1.0) * sweep) * self.rate;
        let wet = self.line.read(d);
        self.line.write(x + wet * feedback.clamp(-0.95, 0.95));
        let mix = mix.clamp(0.0, 1.0);
        x * (1.0 - mix) + wet * mix
    }
}

/// Freeverb on one channel (its left half; a stereo effect definition runs once per channel),
/// `room` 0 … 1, `damp` 0 … 1; wet only.
#[derive(Debug, Clone)]
pub struct MonoReverb(Reverb);

impl Kernel for MonoReverb {
    fn new(rate: f32, _: f32) -> Self {
        Self(Reverb::new(rate))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    #[inline]
    fn tick(&mut self, [x, room, damp, ..]: [f32; ARGS]) -> f32 {
        // Freeverb sums its two inputs: feed the channel as both.
        self.0.tick(x * 0.5, x * 0.5, room, damp).0
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
