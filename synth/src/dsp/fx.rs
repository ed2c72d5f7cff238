//! Effects and mixing: feedback delay with damping, Freeverb-style reverb, equal-power pan,
//! DC blocker, and the master limiter that never hard-clips. Buffers are allocated when the
//! effect is built, never while processing.

use std::f32::consts::{FRAC_PI_2, SQRT_2};

use super::filter::OnePole;

/// Equal-power pan: `pan` -1 (left) … 1 (right) → (left gain, right gain).
#[inline]
pub fn pan_gains(pan: f32) -> (f32, f32) {
    let p = (pan.clamp(-1.0, 1.0) + 1.0) * 0.5 * FRAC_PI_2;
    (p.cos(), p.sin())
}

/// The gains by which `pan` (-1 left … 1 right) balances a stereo signal: the pan law scaled
/// so that the centre leaves both channels as they are, each gain at most 1.
pub fn balance_gains(pan: f32) -> (f32, f32) {
    let (l, r) = pan_gains(pan);
    ((l * SQRT_2).min(1.0), (r * SQRT_2).min(1.0))
}

/// DC blocker (one-zero one-pole high-pass at ~10 Hz).
#[derive(Debug, Clone, Copy, Default)]
pub struct DcBlock {
    x1: f32,
    y1: f32,
}

impl DcBlock {
    /// One sample.
    #[inline]
    pub fn tick(&mut self, x: f32) -> f32 {
        let y = x - self.x1 + 0.9987 * self.y1;
        self.x1 = x;
        self.y1 = y;
        y
    }
}

/// A feedback delay line with a low-pass in the feedback path.
#[derive(Debug, Clone)]
pub struct Delay {
    buf: Vec<f32>,
    pos: usize,
    damp: OnePole,
    rate: f32,
}

impl Delay {
    /// A delay holding up to `max_s` seconds.
    pub fn new(max_s: f32, rate: f32) -> Self {
        Self {
            buf: vec![0.0; (max_s * rate) as usize + 2],
            pos: 0,
            damp: OnePole::new(rate),
            rate,
        }
    }

    /// Clears the line.
    pub fn reset(&mut self) {
        self.buf.iter_mut().for_each(|s| *s = 0.0);
        self.pos = 0;
        self.damp.reset();
    }

    /// One sample: returns the delayed signal; feeds back `feedback` of it through a low-pass
    /// at `damp_hz`.
    #[inline]
    pub fn tick(&mut self, x: f32, time_s: f32, feedback: f32, damp_hz: f32) -> f32 {
        let n = self.buf.len();
        let d = ((time_s * self.rate) as usize).clamp(1, n - 1);
        let out = self.buf[back(self.pos, d, n)];
        let fb = self.damp.tick(out, damp_hz) * feedback.clamp(0.0, 0.98);
        self.buf[self.pos] = x + fb;
        self.pos = next(self.pos, n);
        out
    }
}

/// The position after `pos` in a ring of `n` (a compare, not a division: rings are read
/// every sample).
#[inline(always)]
pub(crate) fn next(pos: usize, n: usize) -> usize {
    if pos + 1 >= n { 0 } else { pos + 1 }
}

/// The position `d` (≤ `n`) before `pos` in a ring of `n`.
#[inline(always)]
pub(crate) fn back(pos: usize, d: usize, n: usize) -> usize {
    if pos >= d { pos - d } else { pos + n - d }
}

/// Delay time of `beats` at `bpm` (tempo-synced delay).
pub fn synced_delay_s(bpm: f32, beats: f32) -> f32 {
    60.0 / bpm.max(1.0) * beats
}

#[derive(Debug, Clone)]
struct Comb {
    buf: Vec<f32>,
    pos: usize,
    store: f32,
}

impl Comb {
    #[inline]
    fn tick(&mut self, x: f32, feedback: f32, damp: f32) -> f32 {
        let out = self.buf[self.pos];
        self.store = out * (1.0 - damp) + self.store * damp;
        self.buf[self.pos] = x + self.store * feedback;
        self.pos = next(self.pos, self.buf.len());
        out
    }
}

#[derive(Debug, Clone)]
struct Allpass {
    buf: Vec<f32>,
    pos: usize,
}

impl Allpass {
    #[inline]
    fn tick(&mut self, x: f32) -> f32 {
        let b = self.buf[self.pos];
        let out = b - x;
        self.buf[self.pos] = x + b * 0.5;
        self.pos = next(self.pos, self.buf.len());
        out
    }
}

/// Freeverb: 8 parallel damped combs into 4 series allpasses per channel, the right channel
/// with slightly longer lines for width.
#[derive(Debug, Clone)]
pub struct Reverb {
    combs: [Vec<Comb>; 2],
    allpasses: [Vec<Allpass>; 2],
}

const COMB_TUNING: [usize; 8] = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617];
const ALLPASS_TUNING: [usize; 4] = [556, 441, 341, 225];
const STEREO_SPREAD: usize = 23;

impl Reverb {
    /// Builds the lines for `rate` (tunings are for 44.1 kHz and scaled).
    pub fn new(rate: f32) -> Self {
        let scale = rate / 44_100.0;
        let line = |n: usize| vec![0.0; ((n as f32 * scale) as usize).max(1)];
        let chan = |spread: usize| {
            (
                COMB_TUNING
                    .iter()
                    .map(|&n| Comb {
                        buf: line(n + spread),
                        pos: 0,
                        store: 0.0,
                    })
                    .collect::<Vec<_>>(),
                ALLPASS_TUNING
                    .iter()
                    .map(|&n| Allpass {
                        buf: line(n + spread),
                        pos: 0,
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let (cl, al) = chan(0);
        let (cr, ar) = chan(STEREO_SPREAD);
        Self {
            combs: [cl, cr],
            allpasses: [al, ar],
        }
    }

    /// Clears every line.
    pub fn reset(&mut self) {
        for c in self.combs.iter_mut().flatten() {
            c.buf.iter_mut().for_each(|s| *s = 0.0);
            c.store = 0.0;
            c.pos = 0;
        }
        for a in self.allpasses.iter_mut().flatten() {
            a.buf.iter_mut().for_each(|s| *s = 0.0);
            a.pos = 0;
        }
    }

    /// One stereo sample of wet signal; `room` 0..1 (size), `damp` 0..1.
    #[inline]
    pub fn tick(&mut self, l: f32, r: f32, room: f32, damp: f32) -> (f32, f32) {
        let feedback = 0.7 + 0.28 * room.clamp(0.0, 1.0);
        let damp = damp.clamp(0.0, 1.0) * 0.4;
        let input = (l + r) * 0.015;
        let mut out = [0.0f32; 2];
        for ((o, combs), allpasses) in out.iter_mut().zip(&mut self.combs).zip(&mut self.allpasses)
        {
            let mut acc = 0.0;
            for c in combs {
                acc += c.tick(input, feedback, damp);
            }
            for a in allpasses {
                acc = a.tick(acc);
            }
            *o = acc;
        }
        (out[0], out[1])
    }
}

/// The master limiter: an instant-attack peak follower with smooth release, so the output
/// never exceeds `ceiling` and is never clipped (gain, not truncation).
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    ceiling: f32,
    env: f32,
    release: f32,
}

impl Limiter {
    /// A limiter at `ceiling` (linear), releasing over ~`release_s`.
    pub fn new(ceiling: f32, release_s: f32, rate: f32) -> Self {
        Self {
            ceiling,
            env: 0.0,
            release: (-1.0 / (release_s * rate)).exp(),
        }
    }

    /// One stereo sample.
    #[inline]
    pub fn tick(&mut self, l: f32, r: f32) -> (f32, f32) {
        let l = if l.is_finite() { l } else { 0.0 };
        let r = if r.is_finite() { r } else { 0.0 };
        let peak = l.abs().max(r.abs());
        self.env = peak.max(self.env * self.release);
        let gain = if self.env > self.ceiling {
            self.ceiling / self.env
        } else {
            1.0
        };
        (l * gain, r * gain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_is_equal_power() {
        for p in [-1.0, -0.3, 0.0, 0.5, 1.0] {
            let (l, r) = pan_gains(p);
            assert!((l * l + r * r - 1.0).abs() < 1e-6);
        }
        assert!((pan_gains(-1.0).1).abs() < 1e-6);
    }

    #[test]
    fn limiter_never_exceeds_the_ceiling_and_passes_quiet_signals() {
        let mut lim = Limiter::new(0.9, 0.05, 48_000.0);
        for i in 0..48_000 {
            let x = ((i as f32) * 0.05).sin() * 10.0;
            let (l, r) = lim.tick(x, -x);
            assert!(l.abs() <= 0.9 + 1e-6 && r.abs() <= 0.9 + 1e-6);
        }
        let mut lim = Limiter::new(0.9, 0.05, 48_000.0);
        assert_eq!(lim.tick(0.3, -0.2), (0.3, -0.2));
        assert_eq!(lim.tick(f32::NAN, 0.1), (0.0, 0.1));
    }

    #[test]
    fn delay_repeats_after_its_time() {
        let mut d = Delay::new(1.0, 1000.0);
        let out: Vec<f32> = (0..300)
            .map(|i| d.tick((i == 0) as u8 as f32, 0.1, 0.5, 20_000.0))
            .collect();
        assert!(out[100] > 0.99, "{}", out[100]);
        assert!(out[200] > 0.3 && out[200] < 0.6, "{}", out[200]);
    }

    #[test]
    fn reverb_tail_decays_and_reset_silences() {
        let mut rv = Reverb::new(48_000.0);
        let mut energy_early = 0.0;
        let mut energy_late = 0.0;
        for i in 0..96_000 {
            let x = if i < 100 { 1.0 } else { 0.0 };
            let (l, r) = rv.tick(x, x, 0.5, 0.5);
            if (4800..9600).contains(&i) {
                energy_early += l * l + r * r;
            }
            if i >= 91_200 {
                energy_late += l * l + r * r;
            }
        }
        assert!(energy_early > 0.0 && energy_late < energy_early * 0.1);
        rv.reset();
        assert_eq!(rv.tick(0.0, 0.0, 0.5, 0.5), (0.0, 0.0));
    }
}
