//! Envelopes with exponential segments: ADSR (attack, decay, sustain, release), and AR and
//! one-shot decay as special cases. Gate edges start and release the envelope.

use super::{Out, Sig};

/// Envelope stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// At rest, output 0.
    Idle,
    /// Rising toward 1.
    Attack,
    /// Falling toward the sustain level.
    Decay,
    /// Holding while the gate is high.
    Sustain,
    /// Falling toward 0 after the gate fell.
    Release,
}

/// A segment coefficient for the time it was computed for: recomputed only when the time
/// input changes (an `exp` per sample would dominate a voice's cost).
#[derive(Debug, Clone, Copy)]
struct Cached {
    time: f32,
    coeff: f32,
}

impl Cached {
    const EMPTY: Self = Self {
        time: f32::NAN,
        coeff: 0.0,
    };

    #[inline]
    fn get(&mut self, time: f32, f: impl FnOnce(f32) -> f32) -> f32 {
        if self.time != time {
            self.refresh(time, f);
        }
        self.coeff
    }

    /// Out of line: inlined, the `exp` inside is a pure intrinsic the optimiser hoists out of
    /// the stage loop and runs for every stage on every block, wanted or not.
    #[cold]
    #[inline(never)]
    fn refresh(&mut self, time: f32, f: impl FnOnce(f32) -> f32) {
        self.time = time;
        self.coeff = f(time);
    }
}

/// An exponential ADSR.
///
/// A segment moves its distance to its target — `offset`, the level minus 1.3 in the
/// attack, minus the sustain level in the decay, the level itself in the release — by one
/// multiply a sample, and the level is the target plus that: the recursion a voice waits on
/// is the multiply alone, not a subtract, multiply and add.
#[derive(Debug, Clone, Copy)]
pub struct Adsr {
    rate: f32,
    stage: Stage,
    value: f32,
    /// The level's distance to the segment's target (see above).
    offset: f32,
    /// The sustain level `offset` is measured from in the decay.
    target: f32,
    gate: bool,
    attack_c: Cached,
    decay_c: Cached,
    release_c: Cached,
}

/// Time-constant coefficient so that an exponential covers ~99 % of the way in `time_s`.
#[inline]
fn coeff(time_s: f32, rate: f32) -> f32 {
    (-4.6 / (time_s.max(0.0005) * rate)).exp()
}

/// Output below which a releasing envelope counts as finished.
pub const SILENT: f32 = 1e-4;

impl Adsr {
    /// At rest.
    pub fn new(rate: f32) -> Self {
        Self {
            rate,
            stage: Stage::Idle,
            value: 0.0,
            offset: 0.0,
            target: 0.0,
            gate: false,
            attack_c: Cached::EMPTY,
            decay_c: Cached::EMPTY,
            release_c: Cached::EMPTY,
        }
    }

    /// Back to rest.
    pub fn reset(&mut self) {
        self.stage = Stage::Idle;
        self.value = 0.0;
        self.offset = 0.0;
        self.target = 0.0;
        self.gate = false;
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// At a gate steady at `gate` for a block: when the envelope just holds a level through it
    /// (sustaining with the gate on, or idle with it off), moves to that level — what `tick`
    /// would output at every sample of the block — and returns it; otherwise `None` and
    /// nothing changes.
    pub fn holding(&mut self, gate: f32, sustain: f32) -> Option<f32> {
        let on = gate > 0.5;
        match self.stage {
            Stage::Sustain if on && self.gate => {
                self.value = sustain.clamp(0.0, 1.0);
                Some(self.value)
            }
            Stage::Idle if !on => {
                self.gate = false;
                self.value = 0.0;
                Some(0.0)
            }
            _ => None,
        }
    }

    /// The current output.
    pub fn value(&self) -> f32 {
        self.value
    }

    /// A block: `inputs` are gate, attack, decay, sustain, release per sample. With every
    /// input steady (the usual case) each stage runs as a tight loop with its coefficient
    /// looked up once — the same arithmetic as `tick`, so the output is identical.
    pub fn process<O: Out + ?Sized>(&mut self, inputs: [Sig<'_>; 5], out: &mut O) {
        let [gate, attack, decay, sustain, release] = inputs;
        let n = out.frames();
        if let [
            Sig::Steady(g),
            Sig::Steady(a),
            Sig::Steady(d),
            Sig::Steady(s),
            Sig::Steady(r),
        ] = inputs
        {
            if n == 0 {
                return;
            }
            // The first sample takes any gate edge; after it the gate cannot change.
            let first = self.tick(g, a, d, s, r);
            out.set(0, first);
            self.run_steady(a, d, s.clamp(0.0, 1.0), r, out, 1);
            return;
        }
        for i in 0..n {
            let v = self.tick(
                gate.at(i),
                attack.at(i),
                decay.at(i),
                sustain.at(i),
                release.at(i),
            );
            out.set(i, v);
        }
    }

    /// The rest of a block (from sample `i`) at a steady gate: stage by stage, each a loop
    /// with a fixed coefficient, moving on when `tick` would.
    fn run_steady<O: Out + ?Sized>(
        &mut self,
        attack: f32,
        decay: f32,
        sustain: f32,
        release: f32,
        out: &mut O,
        mut i: usize,
    ) {
        let rate = self.rate;
        let n = out.frames();
        while i < n {
            match self.stage {
                Stage::Idle => {
                    self.value = 0.0;
                    out.fill_from(i, 0.0);
                    return;
                }
                Stage::Sustain => {
                    self.value = sustain;
                    out.fill_from(i, sustain);
                    return;
                }
                Stage::Attack => {
                    let c = self.attack_c.get(attack, |t| {
                        ((0.3f32 / 1.3).ln() / (t.max(0.0005) * rate)).exp()
                    });
                    while i < n {
                        self.offset *= c;
                        self.value = 1.3 + self.offset;
                        if self.value >= 1.0 {
                            self.decay_from_peak(sustain);
                            out.set(i, 1.0);
                            i += 1;
                            break;
                        }
                        out.set(i, self.value);
                        i += 1;
                    }
                }
                Stage::Decay => {
                    let c = self.decay_c.get(decay, |t| coeff(t, rate));
                    self.aim_decay(sustain);
                    while i < n {
                        self.offset *= c;
                        self.value = sustain + self.offset;
                        if self.offset.abs() < SILENT {
                            self.value = sustain;
                            self.stage = Stage::Sustain;
                            out.set(i, sustain);
                            i += 1;
                            break;
                        }
                        out.set(i, self.value);
                        i += 1;
                    }
                }
                Stage::Release => {
                    let c = self.release_c.get(release, |t| coeff(t, rate));
                    while i < n {
                        self.offset *= c;
                        self.value = self.offset;
                        if self.value < SILENT {
                            self.value = 0.0;
                            self.stage = Stage::Idle;
                            out.set(i, 0.0);
                            i += 1;
                            break;
                        }
                        out.set(i, self.value);
                        i += 1;
                    }
                }
            }
        }
    }

    /// One sample with gate `gate` (> 0.5 = on) and times in seconds.
    #[inline]
    pub fn tick(&mut self, gate: f32, attack: f32, decay: f32, sustain: f32, release: f32) -> f32 {
        let on = gate > 0.5;
        if on && !self.gate {
            self.stage = Stage::Attack;
            self.offset = self.value - 1.3;
        } else if !on && self.gate && self.stage != Stage::Idle {
            self.stage = Stage::Release;
            self.offset = self.value;
        }
        self.gate = on;
        let sustain = sustain.clamp(0.0, 1.0);
        match self.stage {
            Stage::Idle => self.value = 0.0,
            Stage::Attack => {
                // Aim past 1 (at 1.3) so the attack is an exponential rise that reaches 1
                // exactly after `attack` seconds: 1.3·(1 - c^n) = 1 at n = attack·rate.
                let rate = self.rate;
                let c = self.attack_c.get(attack, |t| {
                    ((0.3f32 / 1.3).ln() / (t.max(0.0005) * rate)).exp()
                });
                self.offset *= c;
                self.value = 1.3 + self.offset;
                if self.value >= 1.0 {
                    self.decay_from_peak(sustain);
                }
            }
            Stage::Decay => {
                let rate = self.rate;
                let c = self.decay_c.get(decay, |t| coeff(t, rate));
                self.aim_decay(sustain);
                self.offset *= c;
                self.value = sustain + self.offset;
                if self.offset.abs() < SILENT {
                    self.value = sustain;
                    self.stage = Stage::Sustain;
                }
            }
            Stage::Sustain => self.value = sustain,
            Stage::Release => {
                let rate = self.rate;
                let c = self.release_c.get(release, |t| coeff(t, rate));
                self.offset *= c;
                self.value = self.offset;
                if self.value < SILENT {
                    self.value = 0.0;
                    self.stage = Stage::Idle;
                }
            }
        }
        self.value
    }

    /// The attack reached 1: the decay starts from there toward `sustain`.
    #[inline]
    fn decay_from_peak(&mut self, sustain: f32) {
        self.value = 1.0;
        self.stage = Stage::Decay;
        self.target = sustain;
        self.offset = 1.0 - sustain;
    }

    /// Measures the decay's offset from `sustain`, if the sustain level moved.
    #[inline]
    fn aim_decay(&mut self, sustain: f32) {
        if self.target != sustain {
            self.target = sustain;
            self.offset = self.value - sustain;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_blocks_equal_the_per_sample_path_through_every_stage() {
        let (mut block, mut single) = (Adsr::new(48_000.0), Adsr::new(48_000.0));
        let params = (0.004, 0.03, 0.4, 0.02);
        // 40 blocks on (attack, decay, sustain), 40 off (release, idle), and again.
        for k in 0..160 {
            let gate = if (k / 40) % 2 == 0 { 1.0 } else { 0.0 };
            let mut out = [0.0f32; 64];
            block.process(
                [
                    Sig::Steady(gate),
                    Sig::Steady(params.0),
                    Sig::Steady(params.1),
                    Sig::Steady(params.2),
                    Sig::Steady(params.3),
                ],
                &mut out[..],
            );
            for (i, &o) in out.iter().enumerate() {
                let want = single.tick(gate, params.0, params.1, params.2, params.3);
                assert_eq!(o, want, "block {k} sample {i}");
            }
            assert_eq!(block.stage(), single.stage(), "block {k}");
        }
    }

    #[test]
    fn holding_levels_are_what_tick_gives_through_the_block() {
        let (mut held, mut single) = (Adsr::new(48_000.0), Adsr::new(48_000.0));
        let (a, d, s, r) = (0.002, 0.01, 0.4, 0.01);
        let mut seen_hold = [false; 2];
        for k in 0..400 {
            let gate = if (k / 100) % 2 == 0 { 1.0 } else { 0.0 };
            let sustain = if k > 150 { 0.6 } else { s };
            let mut block = [0.0f32; 64];
            match held.holding(gate, sustain) {
                Some(v) => {
                    seen_hold[(gate > 0.5) as usize] = true;
                    block.fill(v);
                }
                None => held.process([gate, a, d, sustain, r].map(Sig::Steady), &mut block[..]),
            }
            for (i, &o) in block.iter().enumerate() {
                assert_eq!(
                    o,
                    single.tick(gate, a, d, sustain, r),
                    "block {k} sample {i}"
                );
            }
            assert_eq!(held.stage(), single.stage(), "block {k}");
        }
        assert_eq!(seen_hold, [true, true], "held both sustaining and idle");
        // An edge is never held: a gate rising on an idle envelope, or falling in sustain.
        let mut e = Adsr::new(48_000.0);
        assert_eq!(e.holding(1.0, 0.5), None);
    }

    #[test]
    fn stages_follow_the_gate() {
        let mut e = Adsr::new(48_000.0);
        let mut peak: f32 = 0.0;
        for _ in 0..4800 {
            peak = peak.max(e.tick(1.0, 0.01, 0.05, 0.5, 0.1));
        }
        assert!((peak - 1.0).abs() < 1e-6, "reaches 1 in the attack");
        assert!(
            (e.value() - 0.5).abs() < 0.01,
            "settles at sustain: {}",
            e.value()
        );
        for _ in 0..48_000 {
            e.tick(0.0, 0.01, 0.05, 0.5, 0.1);
        }
        assert_eq!(e.stage(), Stage::Idle);
        assert_eq!(e.value(), 0.0);
    }

    #[test]
    fn attack_time_is_respected() {
        let mut e = Adsr::new(48_000.0);
        let mut n = 0;
        while e.tick(1.0, 0.02, 0.1, 0.8, 0.1) < 1.0 {
            n += 1;
        }
        let ms = n as f32 / 48.0;
        assert!((19.0..=21.0).contains(&ms), "attack took {ms} ms");
    }

    #[test]
    fn reset_reproduces() {
        let mut e = Adsr::new(48_000.0);
        let a: Vec<f32> = (0..500)
            .map(|i| e.tick((i < 300) as u8 as f32, 0.001, 0.01, 0.3, 0.02))
            .collect();
        e.reset();
        let b: Vec<f32> = (0..500)
            .map(|i| e.tick((i < 300) as u8 as f32, 0.001, 0.01, 0.3, 0.02))
            .collect();
        assert_eq!(a, b);
    }
}
