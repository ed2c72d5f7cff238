//! Filters: the topology-preserving-transform state-variable filter (low/high/band-pass with
//! resonance) and a one-pole low-pass.

use std::f32::consts::PI;

use super::Sig;

/// Which output of the state-variable filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Low-pass.
    Lowpass,
    /// High-pass.
    Highpass,
    /// Band-pass.
    Bandpass,
}

/// TPT state-variable filter (zero-delay feedback; stable under fast modulation).
#[derive(Debug, Clone, Copy)]
pub struct Svf {
    mode: Mode,
    rate: f32,
    ic1: f32,
    ic2: f32,
    // Coefficients for (cutoff, resonance) last seen; recomputed only when they change.
    key: (f32, f32),
    k: f32,
    a1: f32,
    a2: f32,
    a3: f32,
}

impl Svf {
    /// A filter at rest.
    pub fn new(mode: Mode, rate: f32) -> Self {
        let mut f = Self {
            mode,
            rate,
            ic1: 0.0,
            ic2: 0.0,
            key: (f32::NAN, f32::NAN),
            k: 2.0,
            a1: 0.0,
            a2: 0.0,
            a3: 0.0,
        };
        f.coefficients(1000.0, 0.0);
        f
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.ic1 = 0.0;
        self.ic2 = 0.0;
    }

    /// Changes the sample rate.
    pub fn set_sample_rate(&mut self, rate: f32) {
        self.rate = rate;
        self.key = (f32::NAN, f32::NAN);
    }

    #[inline]
    fn coefficients(&mut self, cutoff: f32, resonance: f32) {
        if self.key == (cutoff, resonance) {
            return;
        }
        self.key = (cutoff, resonance);
        let fc = cutoff.clamp(10.0, self.rate * 0.49);
        let g = (PI * fc / self.rate).tan();
        // Resonance 0 → k = 2 (Q 0.5, no peak); 1 → k = 0.05 (Q 20, nearly self-oscillating).
        self.k = 2.0 - 1.95 * resonance.clamp(0.0, 1.0);
        self.a1 = 1.0 / (1.0 + g * (g + self.k));
        self.a2 = g * self.a1;
        self.a3 = g * self.a2;
    }

    /// One sample.
    #[inline]
    pub fn tick(&mut self, x: f32, cutoff: f32, resonance: f32) -> f32 {
        self.coefficients(cutoff, resonance);
        let v3 = x - self.ic2;
        let v1 = self.a1 * self.ic1 + self.a2 * v3;
        let v2 = self.ic2 + self.a2 * self.ic1 + self.a3 * v3;
        self.ic1 = 2.0 * v1 - self.ic1;
        self.ic2 = 2.0 * v2 - self.ic2;
        match self.mode {
            Mode::Lowpass => v2,
            Mode::Bandpass => v1,
            Mode::Highpass => x - self.k * v1 - v2,
        }
    }

    /// A block, with per-sample cutoff and resonance; a block at one setting runs with its
    /// coefficients fixed.
    pub fn process(&mut self, x: &[f32], cutoff: Sig<'_>, resonance: Sig<'_>, out: &mut [f32]) {
        let (Sig::Steady(c), Sig::Steady(r)) = (cutoff, resonance) else {
            for (i, (o, &x)) in out.iter_mut().zip(x).enumerate() {
                *o = self.tick(x, cutoff.at(i), resonance.at(i));
            }
            return;
        };
        self.coefficients(c, r);
        let (a1, a2, a3, k) = (self.a1, self.a2, self.a3, self.k);
        let (mut ic1, mut ic2) = (self.ic1, self.ic2);
        // One loop per mode, so the mode is not decided per sample.
        macro_rules! run {
            ($pick:expr) => {
                for (o, &x) in out.iter_mut().zip(x) {
                    let v3 = x - ic2;
                    let v1 = a1 * ic1 + a2 * v3;
                    let v2 = ic2 + a2 * ic1 + a3 * v3;
                    ic1 = 2.0 * v1 - ic1;
                    ic2 = 2.0 * v2 - ic2;
                    *o = $pick(x, v1, v2);
                }
            };
        }
        match self.mode {
            Mode::Lowpass => run!(|_, _, v2| v2),
            Mode::Bandpass => run!(|_, v1, _| v1),
            Mode::Highpass => run!(|x: f32, v1: f32, v2: f32| x - k * v1 - v2),
        }
        self.ic1 = ic1;
        self.ic2 = ic2;
    }
}

/// One-pole low-pass.
#[derive(Debug, Clone, Copy)]
pub struct OnePole {
    rate: f32,
    y: f32,
}

impl OnePole {
    /// At rest.
    pub fn new(rate: f32) -> Self {
        Self { rate, y: 0.0 }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.y = 0.0;
    }

    /// One sample.
    #[inline]
    pub fn tick(&mut self, x: f32, cutoff: f32) -> f32 {
        let a = 1.0 - (-2.0 * PI * cutoff.clamp(1.0, self.rate * 0.49) / self.rate).exp();
        self.y += a * (x - self.y);
        self.y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::osc::{Osc, Wave};

    fn rms(xs: &[f32]) -> f32 {
        (xs.iter().map(|x| x * x).sum::<f32>() / xs.len() as f32).sqrt()
    }

    fn response(mode: Mode, freq: f32, cutoff: f32, res: f32) -> f32 {
        let mut osc = Osc::new(Wave::Sine, 48_000.0);
        let mut f = Svf::new(mode, 48_000.0);
        let out: Vec<f32> = (0..48_000)
            .map(|_| f.tick(osc.tick(freq, 0.5), cutoff, res))
            .collect();
        rms(&out[24_000..]) / std::f32::consts::FRAC_1_SQRT_2
    }

    #[test]
    fn lowpass_passes_lows_and_cuts_highs() {
        assert!(response(Mode::Lowpass, 100.0, 1000.0, 0.0) > 0.95);
        assert!(response(Mode::Lowpass, 10_000.0, 1000.0, 0.0) < 0.02);
        assert!(response(Mode::Highpass, 10_000.0, 1000.0, 0.0) > 0.95);
        assert!(response(Mode::Highpass, 100.0, 1000.0, 0.0) < 0.02);
    }

    #[test]
    fn resonance_raises_the_peak_at_cutoff() {
        let flat = response(Mode::Lowpass, 1000.0, 1000.0, 0.0);
        let mid = response(Mode::Lowpass, 1000.0, 1000.0, 0.5);
        let high = response(Mode::Lowpass, 1000.0, 1000.0, 0.9);
        assert!(flat < mid && mid < high, "{flat} {mid} {high}");
    }

    #[test]
    fn block_matches_samples_and_reset_reproduces() {
        let input: Vec<f32> = (0..64)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let cutoff: Vec<f32> = (0..64).map(|i| 200.0 + i as f32 * 50.0).collect();
        let res = [0.4f32; 64];
        let mut a = Svf::new(Mode::Lowpass, 48_000.0);
        let mut b = Svf::new(Mode::Lowpass, 48_000.0);
        let mut block = [0.0f32; 64];
        a.process(
            &input,
            Sig::Varying(&cutoff),
            Sig::Varying(&res),
            &mut block,
        );
        let single: Vec<f32> = (0..64)
            .map(|i| b.tick(input[i], cutoff[i], res[i]))
            .collect();
        assert_eq!(block.to_vec(), single);
        a.reset();
        let mut again = [0.0f32; 64];
        a.process(
            &input,
            Sig::Varying(&cutoff),
            Sig::Varying(&res),
            &mut again,
        );
        assert_eq!(block, again);
        // The steady path computes what `tick` does at a fixed setting.
        let (mut c, mut d) = (
            Svf::new(Mode::Highpass, 48_000.0),
            Svf::new(Mode::Highpass, 48_000.0),
        );
        c.process(&input, Sig::Steady(900.0), Sig::Steady(0.7), &mut block);
        let single: Vec<f32> = input.iter().map(|&x| d.tick(x, 900.0, 0.7)).collect();
        assert_eq!(block.to_vec(), single);
    }
}
