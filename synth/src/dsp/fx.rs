//! Effects and mixing: feedback delay with damping, Freeverb-style reverb, equal-power pan,
//! DC blocker, and the master limiter that never hard-clips. Buffers are allocated when the
//! effect is built, never while processing.

use std::f32::consts::{FRAC_PI_2, SQRT_2};

use wide::{f32x4, f32x8};

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

    /// A block at one delay time: the same samples as [`Delay::tick`] on each in turn. When
    /// the delay is at least the block, nothing written in it is read back within it, so it
    /// runs over the ring in stretches where neither the read nor the write position wraps
    /// (no ring arithmetic per sample); a shorter delay runs sample by sample.
    pub fn process(&mut self, x: &mut [f32], time_s: f32, feedback: f32, damp_hz: f32) {
        let n = self.buf.len();
        let d = ((time_s * self.rate) as usize).clamp(1, n - 1);
        if d < x.len() {
            for v in x.iter_mut() {
                *v = self.tick(*v, time_s, feedback, damp_hz);
            }
            return;
        }
        let feedback = feedback.clamp(0.0, 0.98);
        let mut rest = x;
        while !rest.is_empty() {
            let read = back(self.pos, d, n);
            let len = rest.len().min(n - self.pos).min(n - read);
            let (now, later) = rest.split_at_mut(len);
            for (i, v) in now.iter_mut().enumerate() {
                let out = self.buf[read + i];
                let fb = self.damp.tick(out, damp_hz) * feedback;
                self.buf[self.pos + i] = *v + fb;
                *v = out;
            }
            self.pos = (self.pos + len) % n;
            rest = later;
        }
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

/// The stretches of a ring of `len` that `n` (at most `len`) samples from `pos` take: to the
/// ring's end, then on from its start — each with the offset in the block it begins at.
#[inline(always)]
fn ring_runs(pos: usize, n: usize, len: usize) -> [(std::ops::Range<usize>, usize); 2] {
    let first = n.min(len - pos);
    [(pos..pos + first, 0), (0..n - first, first)]
}

/// Delay time of `beats` at `bpm` (tempo-synced delay).
pub fn synced_delay_s(bpm: f32, beats: f32) -> f32 {
    60.0 / bpm.max(1.0) * beats
}

/// The eight damped combs of a channel, run side by side in one ring: row `i` holds what each
/// comb wrote at position `i`, and comb `c` reads the row `delay[c]` behind the one written
/// now. A comb with its own line of `delay[c]` samples reads the same values (what it wrote
/// that many samples ago); here a sample's eight writes are one 32-byte row, not eight
/// scattered stores and their ring arithmetic. The damping (a one-pole per comb, the recursion
/// Freeverb spends its time on) runs as one vector across the eight.
#[derive(Debug, Clone)]
struct Combs {
    ring: Vec<[f32; 8]>,
    /// The row the next sample writes.
    pos: usize,
    /// Each comb's delay, samples (its line length in Freeverb): more than a block, at most
    /// the ring's length.
    delay: [usize; 8],
    store: f32x8,
    /// Each comb's stretch of a block, sample-major: overwritten (rows `..n`) before every
    /// read, so never cleared (a zeroed array on the stack was 2 KiB of `memset` per call).
    taps: Box<[[f32; 8]; super::BLOCK]>,
}

impl Combs {
    fn new(len: impl Fn(usize) -> usize) -> Self {
        let delay = COMB_TUNING.map(len);
        let rows = delay.iter().copied().max().unwrap_or(0);
        Self {
            ring: vec![[0.0; 8]; rows],
            pos: 0,
            delay,
            store: f32x8::ZERO,
            taps: Box::new([[0.0; 8]; super::BLOCK]),
        }
    }

    fn reset(&mut self) {
        self.ring.fill([0.0; 8]);
        self.pos = 0;
        self.store = f32x8::ZERO;
    }

    /// Adds the sum of the combs' outputs for each input sample of `x` (at most a block) to
    /// `acc`. Every delay is longer than a block, so nothing written here is read back within
    /// it: each comb's stretch is gathered into a sample-major scratch block first, and the
    /// recursion then writes whole rows.
    #[inline]
    fn run(&mut self, x: &[f32], acc: &mut [f32], feedback: f32, damp: f32) {
        let n = x.len().min(acc.len()).min(super::BLOCK);
        let rows = self.ring.len();
        let taps = &mut self.taps[..n];
        for (c, &d) in self.delay.iter().enumerate() {
            for (ring, at) in ring_runs(back(self.pos, d, rows), n, rows) {
                for (t, row) in taps[at..].iter_mut().zip(&self.ring[ring]) {
                    t[c] = row[c];
                }
            }
        }
        let (keep, take, feedback) = (
            f32x8::splat(damp),
            f32x8::splat(1.0 - damp),
            f32x8::splat(feedback),
        );
        let [(first, _), (second, _)] = ring_runs(self.pos, n, rows);
        let (head, tail) = self.ring.split_at_mut(first.start);
        let writes = tail[..first.len()].iter_mut().chain(&mut head[second]);
        for (((&x, acc), out), w) in x.iter().zip(acc.iter_mut()).zip(taps.iter()).zip(writes) {
            let o = f32x8::new(*out);
            self.store = o * take + self.store * keep;
            *w = (f32x8::splat(x) + self.store * feedback).to_array();
            // ((o0 + o1) + (o2 + o3)) + ((o4 + o5) + (o6 + o7)): the pairs as one vector add.
            let pairs = (f32x4::new([out[0], out[2], out[4], out[6]])
                + f32x4::new([out[1], out[3], out[5], out[7]]))
            .to_array();
            *acc += (pairs[0] + pairs[1]) + (pairs[2] + pairs[3]);
        }
        self.pos = (self.pos + n) % rows;
    }
}

#[derive(Debug, Clone)]
struct Allpass {
    buf: Vec<f32>,
    pos: usize,
}

impl Allpass {
    /// Runs over `x` in place. Its line is longer than a block, so within one nothing it
    /// writes is read back: each run between wraps of the ring is a plain vector loop.
    #[inline]
    fn run(&mut self, x: &mut [f32]) {
        let mut x = x;
        while !x.is_empty() {
            let n = x.len().min(self.buf.len() - self.pos);
            let (now, rest) = x.split_at_mut(n);
            for (x, b) in now.iter_mut().zip(&mut self.buf[self.pos..self.pos + n]) {
                let old = *b;
                *b = *x + old * 0.5;
                *x = old - *x;
            }
            self.pos = (self.pos + n) % self.buf.len();
            x = rest;
        }
    }
}

/// Freeverb: 8 parallel damped combs into 4 series allpasses per channel, the right channel
/// with slightly longer lines for width. Lines are longer than a block ([`super::BLOCK`]),
/// which [`Reverb::process`] relies on.
#[derive(Debug, Clone)]
pub struct Reverb {
    combs: [Combs; 2],
    allpasses: [[Allpass; 4]; 2],
}

const COMB_TUNING: [usize; 8] = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617];
const ALLPASS_TUNING: [usize; 4] = [556, 441, 341, 225];
const STEREO_SPREAD: usize = 23;

impl Reverb {
    /// Builds the lines for `rate` (tunings are for 44.1 kHz and scaled).
    pub fn new(rate: f32) -> Self {
        let scale = rate / 44_100.0;
        // At least a block and one more, whatever the rate.
        let len = |n: usize| ((n as f32 * scale) as usize).max(super::BLOCK + 1);
        let chan = |spread: usize| {
            (
                Combs::new(|n| len(n + spread)),
                ALLPASS_TUNING.map(|n| Allpass {
                    buf: vec![0.0; len(n + spread)],
                    pos: 0,
                }),
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
        for c in &mut self.combs {
            c.reset();
        }
        for a in self.allpasses.iter_mut().flatten() {
            a.buf.fill(0.0);
            a.pos = 0;
        }
    }

    /// A block (at most [`super::BLOCK`] frames) in place: `l`, `r` in, the wet signal out;
    /// `room` 0..1 (size), `damp` 0..1. Only the channels asked for are computed: `r` may be
    /// empty (a mono reverb: the left channel of `l` fed as both inputs).
    pub fn process(&mut self, l: &mut [f32], r: &mut [f32], room: f32, damp: f32) {
        let n = l.len().min(super::BLOCK);
        let feedback = 0.7 + 0.28 * room.clamp(0.0, 1.0);
        let damp = damp.clamp(0.0, 1.0) * 0.4;
        let mut input = [0.0f32; super::BLOCK];
        if r.is_empty() {
            for (i, x) in input.iter_mut().zip(&l[..n]) {
                *i = x * 0.015;
            }
        } else {
            for ((i, a), b) in input.iter_mut().zip(&l[..n]).zip(&r[..n]) {
                *i = (a + b) * 0.015;
            }
        }
        let channels = if r.is_empty() { 1 } else { 2 };
        for (ch, out) in [l, r].into_iter().enumerate().take(channels) {
            let out = &mut out[..n];
            out.fill(0.0);
            self.combs[ch].run(&input[..n], out, feedback, damp);
            for a in &mut self.allpasses[ch] {
                a.run(out);
            }
        }
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

    /// A block in place, bit for bit [`tick`](Self::tick) at every sample. Below the ceiling
    /// the follower's exact level changes nothing: while it is at or under the ceiling the
    /// gain is 1 and stays 1 until a sample passes the ceiling, which sets the level to that
    /// sample whatever it was. So a block whose samples are all finite and within the
    /// ceiling, entered with the level within it, passes unchanged with no per-sample
    /// recursion — the usual case, checked as one vector pass.
    pub fn process(&mut self, l: &mut [f32], r: &mut [f32]) {
        let ceiling = self.ceiling;
        let mut within = self.env <= ceiling;
        let mut peak = 0.0f32;
        for (a, b) in l.iter().zip(r.iter()) {
            let p = a.abs().max(b.abs());
            // `<=` is false for NaN and infinities, so they take the per-sample way.
            within &= (a.abs() <= ceiling) & (b.abs() <= ceiling);
            peak = peak.max(p);
        }
        if within {
            self.env = peak;
            return;
        }
        for (a, b) in l.iter_mut().zip(r.iter_mut()) {
            (*a, *b) = self.tick(*a, *b);
        }
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
    fn a_limiter_block_is_its_samples_one_by_one_bit_for_bit() {
        // Quiet stretches, loud bursts (the follower above the ceiling and releasing back
        // under it mid-block), and a NaN: every output sample and the level that carries on.
        let input: Vec<f32> = (0..48_000)
            .map(|i| {
                let loud = if (i / 3000) % 3 == 1 { 4.0 } else { 0.5 };
                ((i as f32) * 0.031).sin() * loud
            })
            .collect();
        let (mut block, mut one) = (
            Limiter::new(0.89, 0.01, 48_000.0),
            Limiter::new(0.89, 0.01, 48_000.0),
        );
        let mut fast_blocks = 0;
        for (k, chunk) in input.chunks(64).enumerate() {
            let mut l = chunk.to_vec();
            let mut r: Vec<f32> = chunk.iter().map(|x| -0.7 * x).collect();
            if k == 400 {
                l[5] = f32::NAN;
            }
            let want: Vec<(f32, f32)> = l.iter().zip(&r).map(|(&a, &b)| one.tick(a, b)).collect();
            if block.env <= 0.89 && l.iter().chain(&r).all(|x| x.abs() <= 0.89) {
                fast_blocks += 1;
            }
            block.process(&mut l, &mut r);
            for (i, (&a, &b)) in l.iter().zip(&r).enumerate() {
                assert_eq!(
                    (a.to_bits(), b.to_bits()),
                    (want[i].0.to_bits(), want[i].1.to_bits()),
                    "block {k} sample {i}"
                );
            }
        }
        assert!(
            fast_blocks > 100,
            "the quiet blocks took the block way: {fast_blocks}"
        );
    }

    #[test]
    fn a_delay_block_is_its_samples_one_by_one_bit_for_bit() {
        let input: Vec<f32> = (0..20_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        // A line of 1002 samples: blocks wrap the ring at every offset; a time of 30 samples
        // is shorter than most blocks (the per-sample way), 0.3 s and 0.99 s are not.
        for time in [0.03, 0.3, 0.99] {
            let (mut block, mut one) = (Delay::new(1.0, 1000.0), Delay::new(1.0, 1000.0));
            let mut a = input.clone();
            let b: Vec<f32> = input
                .iter()
                .map(|&x| one.tick(x, time, 0.7, 300.0))
                .collect();
            let mut at = 0;
            for &n in [64, 1, 63, 17, 40, 64, 5].iter().cycle() {
                if at >= a.len() {
                    break;
                }
                let end = (at + n).min(a.len());
                block.process(&mut a[at..end], time, 0.7, 300.0);
                at = end;
            }
            assert!(a.iter().any(|&x| x.abs() > 0.1));
            assert_eq!(a, b, "time {time}");
            assert_eq!(block.pos, one.pos);
        }
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

    /// The combs sample by sample as Freeverb writes them, each with its own line: the reference
    /// `Combs::run`'s shared ring must match bit for bit.
    struct LineCombs {
        lines: [Vec<f32>; 8],
        pos: [usize; 8],
        store: f32x8,
    }

    impl LineCombs {
        fn new(len: impl Fn(usize) -> usize) -> Self {
            Self {
                lines: std::array::from_fn(|c| vec![0.0; len(COMB_TUNING[c])]),
                pos: [0; 8],
                store: f32x8::ZERO,
            }
        }

        fn run(&mut self, x: &[f32], acc: &mut [f32], feedback: f32, damp: f32) {
            let (keep, take, feedback) = (
                f32x8::splat(damp),
                f32x8::splat(1.0 - damp),
                f32x8::splat(feedback),
            );
            for (&x, acc) in x.iter().zip(acc.iter_mut()) {
                let mut out = [0.0f32; 8];
                for ((o, line), &p) in out.iter_mut().zip(&self.lines).zip(&self.pos) {
                    *o = line[p];
                }
                let o = f32x8::new(out);
                self.store = o * take + self.store * keep;
                let w = (f32x8::splat(x) + self.store * feedback).to_array();
                for ((line, p), w) in self.lines.iter_mut().zip(&mut self.pos).zip(w) {
                    line[*p] = w;
                    *p = next(*p, line.len());
                }
                *acc += ((out[0] + out[1]) + (out[2] + out[3]))
                    + ((out[4] + out[5]) + (out[6] + out[7]));
            }
        }
    }

    #[test]
    fn the_combs_shared_ring_is_freeverbs_separate_lines_bit_for_bit() {
        let len = |n: usize| n * 48 / 44 + 1;
        let (mut block, mut sample) = (Combs::new(len), LineCombs::new(len));
        let input: Vec<f32> = (0..30_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let (mut a, mut b) = (vec![0.0f32; input.len()], vec![0.0f32; input.len()]);
        // Blocks of varied sizes, so the runs wrap around every line at every offset.
        let mut at = 0;
        for &n in [64, 1, 63, 17, 40, 64, 5].iter().cycle() {
            if at >= input.len() {
                break;
            }
            let end = (at + n).min(input.len());
            block.run(&input[at..end], &mut a[at..end], 0.84, 0.2);
            sample.run(&input[at..end], &mut b[at..end], 0.84, 0.2);
            at = end;
        }
        assert!(a.iter().any(|&x| x.abs() > 0.1));
        assert_eq!(a, b);
    }

    /// The reverb's stereo output for `input` fed to both channels, in blocks of `sizes`
    /// (cycled).
    fn reverb_out(input: &[f32], sizes: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let mut rv = Reverb::new(48_000.0);
        let (mut l, mut r) = (input.to_vec(), input.to_vec());
        let mut at = 0;
        for &n in sizes.iter().cycle() {
            if at >= input.len() {
                break;
            }
            let end = (at + n).min(input.len());
            rv.process(&mut l[at..end], &mut r[at..end], 0.5, 0.5);
            at = end;
        }
        (l, r)
    }

    #[test]
    fn reverb_tail_decays_and_reset_silences() {
        let input: Vec<f32> = (0..96_000)
            .map(|i| if i < 100 { 1.0 } else { 0.0 })
            .collect();
        let (l, r) = reverb_out(&input, &[64]);
        let energy = |a: usize, b: usize| (a..b).map(|i| l[i] * l[i] + r[i] * r[i]).sum::<f32>();
        assert!(energy(4800, 9600) > 0.0 && energy(91_200, 96_000) < energy(4800, 9600) * 0.1);
        let mut rv = Reverb::new(48_000.0);
        let (mut a, mut b) = ([1.0f32; 64], [1.0f32; 64]);
        rv.process(&mut a, &mut b, 0.5, 0.5);
        rv.reset();
        let (mut a, mut b) = ([0.0f32; 64], [0.0f32; 64]);
        rv.process(&mut a, &mut b, 0.5, 0.5);
        assert!(a.iter().chain(&b).all(|&x| x == 0.0));
    }

    #[test]
    fn reverb_blocks_of_any_size_give_the_same_samples_and_mono_is_the_left() {
        let input: Vec<f32> = (0..20_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let whole = reverb_out(&input, &[64]);
        assert_eq!(reverb_out(&input, &[1]), whole);
        assert_eq!(reverb_out(&input, &[17, 64, 3, 40]), whole);
        // Mono: the left channel of the input fed as both halves.
        let mut rv = Reverb::new(48_000.0);
        let mut mono = input.iter().map(|x| x * 2.0).collect::<Vec<_>>();
        for chunk in mono.chunks_mut(64) {
            rv.process(chunk, &mut [], 0.5, 0.5);
        }
        assert_eq!(mono, whole.0);
    }
}
