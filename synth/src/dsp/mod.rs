//! DSP primitives. Each keeps its own state, processes one sample with `tick` and a block with
//! `process` (the same arithmetic, so block and per-sample paths agree exactly), and `reset`
//! returns it to the state it was created in.

pub mod env;
pub mod filter;
pub mod fx;
pub mod kernel;
pub mod osc;

/// Makes this thread's float arithmetic treat values below the normal range as zero, in and
/// out (x86-64: MXCSR's DAZ and FTZ; aarch64: FPCR.FZ). Sound never needs them, and on many
/// processors an operation on one takes a hundred times as long — a decaying tail, or the
/// stale values that idle lanes compute on. [`crate::engine::Engine::render`] calls it, so
/// every thread that renders (PipeWire's, an offline render's) does.
#[inline]
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes this thread's MXCSR only, setting DAZ (bit 6) and FTZ (bit 15):
    // no memory but the local `csr` is touched, and rounding of normal values is unchanged.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        // Written only when not set yet: reading the register is cheap, writing it is not.
        if csr & 0x8040 != 0x8040 {
            csr |= 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags));
        }
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads and writes this thread's FPCR only, setting FZ (bit 24).
    unsafe {
        let mut fpcr: u64;
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        if fpcr & (1 << 24) == 0 {
            fpcr |= 1 << 24;
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
    }
}

/// Frames per processing block.
pub const BLOCK: usize = 64;

/// A block of samples.
pub type Block = [f32; BLOCK];

/// Voices run side by side in lanes: each step of a program runs for up to this many voices
/// at once, so the compiler's vector instructions serve several voices and the latency of one
/// voice's recurrences (a filter's state, say) overlaps the others'.
pub const LANES: usize = 8;

/// One sample of each lane.
pub type Lanes = [f32; LANES];

/// A block of samples for every lane, sample-major (`block[i][lane]`).
pub type LaneBlock = [Lanes; BLOCK];

/// Where a block's samples go: a plain slice, or one lane of a lane block.
pub trait Out {
    /// Samples to write.
    fn frames(&self) -> usize;
    /// Writes sample `i`.
    fn set(&mut self, i: usize, v: f32);
    /// Writes `v` to every sample from `from` on.
    fn fill_from(&mut self, from: usize, v: f32) {
        for i in from..self.frames() {
            self.set(i, v);
        }
    }

    /// The samples as one contiguous slice, when they are (for loops that run along time
    /// several samples at once).
    fn contiguous(&mut self) -> Option<&mut [f32]> {
        None
    }
}

impl Out for [f32] {
    #[inline]
    fn frames(&self) -> usize {
        self.len()
    }

    #[inline]
    fn set(&mut self, i: usize, v: f32) {
        self[i] = v;
    }

    #[inline]
    fn fill_from(&mut self, from: usize, v: f32) {
        self[from..].fill(v);
    }

    #[inline]
    fn contiguous(&mut self) -> Option<&mut [f32]> {
        Some(self)
    }
}

/// One lane of the first rows of a lane block.
#[derive(Debug)]
pub struct Column<'a> {
    rows: &'a mut [Lanes],
    lane: usize,
}

impl<'a> Column<'a> {
    /// Lane `lane` of `rows`.
    pub fn new(rows: &'a mut [Lanes], lane: usize) -> Self {
        assert!(lane < LANES, "lane {lane} out of range");
        Self { rows, lane }
    }
}

impl Out for Column<'_> {
    #[inline]
    fn frames(&self) -> usize {
        self.rows.len()
    }

    #[inline]
    fn set(&mut self, i: usize, v: f32) {
        self.rows[i][self.lane % LANES] = v;
    }

    #[inline]
    fn fill_from(&mut self, from: usize, v: f32) {
        let lane = self.lane % LANES;
        for row in &mut self.rows[from..] {
            row[lane] = v;
        }
    }
}

/// Converts a MIDI note number (69 = A4) to Hz, at A4 = 440 Hz.
pub fn midi_to_hz(note: f32) -> f32 {
    440.0 * ((note - 69.0) / 12.0).exp2()
}

/// A block input: one value for the whole block (a constant, the note's pitch, a settled
/// control — the DSP runs a tighter loop) or a value per sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sig<'a> {
    /// The same value at every sample.
    Steady(f32),
    /// One value per sample.
    Varying(&'a [f32]),
    /// One value per sample, in one lane of a lane block.
    Lane(&'a [Lanes], usize),
}

impl Sig<'_> {
    /// The value at sample `i`.
    #[inline]
    pub fn at(&self, i: usize) -> f32 {
        match self {
            Sig::Steady(v) => *v,
            Sig::Varying(xs) => xs[i],
            Sig::Lane(rows, lane) => rows[i][*lane % LANES],
        }
    }
}

/// Replaces NaN and infinities with 0 and clamps to ±`limit`: a guard at every boundary where
/// user-supplied numbers enter the audio path.
pub fn sanitize(x: f32, limit: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-limit, limit)
    } else {
        0.0
    }
}

/// How a control moves to an automation breakpoint (mirrors the bus's `CurveShape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Straight line.
    Linear,
    /// Constant ratio per sample (for frequencies and gains; falls back to linear through 0).
    Exponential,
    /// Raised cosine: zero slope at both ends.
    Smooth,
    /// Quarter sine: the rising half of an equal-power crossfade (the falling half is the
    /// quarter cosine), for a node fading in while another fades out.
    Rise,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    shape: Shape,
    start: f32,
    pos: u32,
    len: u32,
}

/// A coefficient computed from one input (an `exp` of a cutoff or a time), recomputed only
/// when the input changes: inputs are mostly steady, and a transcendental per sample is what
/// a filter or envelope would otherwise spend its time on. The same numbers either way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cached {
    key: Option<u32>,
    value: f32,
}

impl Cached {
    /// `f(x)`, from the cache when `x` is the input it was last computed for.
    #[inline(always)]
    pub(crate) fn get(&mut self, x: f32, f: impl FnOnce(f32) -> f32) -> f32 {
        if self.key != Some(x.to_bits()) {
            self.key = Some(x.to_bits());
            self.value = f(x);
        }
        self.value
    }
}

/// A control value: one-pole smoothing toward plain sets (no zipper noise; ~63 % of a step in
/// `time_s`), or an exact per-sample ramp to an automation breakpoint.
#[derive(Debug, Clone, Copy)]
pub struct Smoother {
    value: f32,
    target: f32,
    coeff: f32,
    ramp: Option<Segment>,
}

impl Smoother {
    /// Starts at `value`, smoothing over `time_s` at `rate`.
    pub fn new(value: f32, time_s: f32, rate: f32) -> Self {
        Self {
            value,
            target: value,
            coeff: (-1.0 / (time_s * rate).max(1.0)).exp(),
            ramp: None,
        }
    }

    /// Follows every set at once (a gate or a trigger, which smoothing would blur).
    pub fn instant(value: f32) -> Self {
        Self {
            value,
            target: value,
            coeff: 0.0,
            ramp: None,
        }
    }

    /// Sets the value to move to (smoothed).
    pub fn set(&mut self, target: f32) {
        self.target = target;
        self.ramp = None;
    }

    /// Jumps to `value` at once.
    pub fn jump(&mut self, value: f32) {
        self.value = value;
        self.target = value;
        self.ramp = None;
    }

    /// Moves from the current value to `target` over exactly `frames` samples along `shape`
    /// (reaching it on the last of them).
    pub fn ramp(&mut self, target: f32, frames: u32, shape: Shape) {
        self.target = target;
        self.ramp = (frames > 0).then_some(Segment {
            shape,
            start: self.value,
            pos: 0,
            len: frames,
        });
        if frames == 0 {
            self.value = target;
        }
    }

    /// The next value.
    #[inline]
    pub fn tick(&mut self) -> f32 {
        match &mut self.ramp {
            Some(seg) => {
                seg.pos += 1;
                let x = seg.pos as f32 / seg.len as f32;
                let (a, b) = (seg.start, self.target);
                self.value = match seg.shape {
                    Shape::Linear => a + (b - a) * x,
                    Shape::Exponential if a > 0.0 && b > 0.0 => a * (b / a).powf(x),
                    Shape::Exponential => a + (b - a) * x,
                    Shape::Smooth => a + (b - a) * 0.5 * (1.0 - (std::f32::consts::PI * x).cos()),
                    Shape::Rise => a + (b - a) * (std::f32::consts::FRAC_PI_2 * x).sin(),
                };
                if seg.pos >= seg.len {
                    self.value = b;
                    self.ramp = None;
                }
            }
            None => {
                let next = self.target + (self.value - self.target) * self.coeff;
                // In f32 the step rounds to nothing a little short of the target (for a delay
                // time, a few frames short): land on it instead of stalling there.
                self.value = if next == self.value {
                    self.target
                } else {
                    next
                };
            }
        }
        self.value
    }

    /// Whether it rests on its target (no ramp, no smoothing left).
    #[inline]
    pub fn settled(&self) -> bool {
        self.ramp.is_none() && self.value == self.target
    }

    /// Moves on `n` values without using them (a node that had nothing to render).
    pub fn advance(&mut self, n: usize) {
        for _ in 0..n {
            if self.settled() {
                return;
            }
            self.tick();
        }
    }

    /// Fills `out` with the next values; true when they are all the same (settled).
    pub fn fill(&mut self, out: &mut [f32]) -> bool {
        if self.settled() {
            out.fill(self.value);
            return true;
        }
        for x in out.iter_mut() {
            *x = self.tick();
        }
        false
    }

    /// Multiplies `xs` by the next values (a settled unity gain costs nothing).
    #[inline]
    pub fn apply(&mut self, xs: &mut [f32]) {
        if self.settled() {
            let g = self.value;
            if g != 1.0 {
                xs.iter_mut().for_each(|x| *x *= g);
            }
            return;
        }
        for x in xs.iter_mut() {
            *x *= self.tick();
        }
    }

    /// [`Smoother::apply`] to a pair of channels: both by the same values.
    #[inline]
    pub fn apply_stereo(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.settled() {
            let g = self.value;
            if g != 1.0 {
                left.iter_mut()
                    .chain(right.iter_mut())
                    .for_each(|x| *x *= g);
            }
            return;
        }
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let g = self.tick();
            *l *= g;
            *r *= g;
        }
    }

    /// The value now.
    pub fn value(&self) -> f32 {
        self.value
    }

    /// The value it moves to (its value when settled).
    pub fn target(&self) -> f32 {
        self.target
    }
}

/// Moves `now` toward `target` by at most `max_step`; returns (before, after), for a linear
/// glide across a block (send and route levels: a change never steps).
#[inline]
pub fn glide(now: &mut f32, target: f32, max_step: f32) -> (f32, f32) {
    let from = *now;
    *now = if (target - from).abs() <= max_step {
        target
    } else {
        from + max_step.copysign(target - from)
    };
    (from, *now)
}

/// How far a send moves a frame to go from `now` to `level` in `frames` (0: the engine's
/// glide).
pub(crate) fn send_rate(now: f32, level: f32, frames: u32) -> f32 {
    match frames {
        0 => 0.0,
        f => (level - now).abs() / f as f32,
    }
}

/// Moves send level `now` toward `target` by `n` frames: at `rate` a frame while a ramp runs
/// (which ends, `rate` back to 0, once there), else at the engine's `engine_glide`.
#[inline]
pub(crate) fn move_send(
    now: &mut f32,
    target: f32,
    rate: &mut f32,
    engine_glide: f32,
    n: usize,
) -> (f32, f32) {
    let step = if *rate > 0.0 { *rate } else { engine_glide };
    let moved = glide(now, target, step * n as f32);
    if *now == target {
        *rate = 0.0;
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_flushes_denormals_computes_them_as_zero() {
        let tiny = std::hint::black_box(1e-30f32);
        std::thread::spawn(move || {
            assert!(
                tiny * std::hint::black_box(1e-10f32) > 0.0,
                "a denormal by default"
            );
            flush_denormals();
            assert_eq!(tiny * std::hint::black_box(1e-10f32), 0.0, "result flushed");
            let denormal = std::hint::black_box(f32::from_bits(1));
            assert_eq!(
                denormal * std::hint::black_box(2.0f32),
                0.0,
                "input flushed"
            );
            assert_eq!(
                std::hint::black_box(1.5f32) * 2.0,
                3.0,
                "normal values as ever"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a4_is_440_and_octaves_double() {
        assert!((midi_to_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((midi_to_hz(81.0) - 880.0).abs() < 1e-2);
        assert!((midi_to_hz(57.0) - 220.0).abs() < 1e-3);
    }

    #[test]
    fn ramps_follow_their_shape_and_land_exactly() {
        for (shape, mid) in [
            (Shape::Linear, 0.5),
            (Shape::Exponential, 0.4),
            (Shape::Smooth, 0.5),
        ] {
            let mut s = Smoother::new(0.2, 0.01, 48_000.0);
            s.ramp(0.8, 100, shape);
            let v: Vec<f32> = (0..100).map(|_| s.tick()).collect();
            assert!((v[49] - mid).abs() < 0.01, "{shape:?} midpoint {}", v[49]);
            assert_eq!(v[99], 0.8, "{shape:?} lands on the target");
            assert_eq!(s.tick(), 0.8, "and stays");
        }
        let mut s = Smoother::new(0.2, 0.01, 48_000.0);
        s.ramp(0.8, 100, Shape::Smooth);
        let (a, b, c) = (s.tick(), s.tick(), s.tick());
        assert!(
            b - a < 0.001 && c - b < 0.001,
            "smooth starts with zero slope"
        );
    }

    #[test]
    fn smoothing_reaches_its_target_exactly() {
        let mut s = Smoother::new(0.375, 0.05, 48_000.0);
        s.set(0.75);
        let last = (0..48_000).map(|_| s.tick()).last().unwrap();
        assert_eq!(last, 0.75);
    }

    #[test]
    fn sanitize_removes_nan_and_clamps() {
        assert_eq!(sanitize(f32::NAN, 1.0), 0.0);
        assert_eq!(sanitize(f32::INFINITY, 1.0), 0.0);
        assert_eq!(sanitize(5.0, 1.0), 1.0);
    }
}
