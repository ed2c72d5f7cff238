//! Band-limited oscillators from mipmapped wavetables: each table holds only the harmonics
//! that stay below ~0.45 × the sample rate for the pitches it serves, so nothing aliases
//! (a 5 kHz saw at 48 kHz plays a 4-harmonic table). Pulse is the difference of two saws,
//! which keeps it band-limited at any width. Also sine, and white and pink noise. Phase is
//! kept in f64 so long notes do not drift.

use std::f64::consts::TAU;
use std::sync::OnceLock;

/// Oscillator waveform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wave {
    /// Pure sine.
    Sine,
    /// Band-limited sawtooth.
    Saw,
    /// Band-limited pulse; `width` 0.5 is a square.
    Pulse,
    /// Band-limited triangle.
    Triangle,
}

const TABLE: usize = 4096;
/// Harmonic counts of the mipmap levels (a level serves pitches whose harmonic budget is at
/// least its count).
const LEVELS: [usize; 22] = [
    1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384,
];

struct Tables {
    saw: Vec<Vec<f32>>,
    triangle: Vec<Vec<f32>>,
}

/// Built once, on first use (when an instrument is built, never on the audio thread).
fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let build = |harmonics: usize, amp: &dyn Fn(usize) -> f64| {
            let mut t: Vec<f32> = (0..=TABLE)
                .map(|i| {
                    let x = i as f64 / TABLE as f64;
                    (1..=harmonics)
                        .map(|k| amp(k) * (TAU * k as f64 * x).sin())
                        .sum::<f64>() as f32
                })
                .collect();
            t[TABLE] = t[0];
            t
        };
        // Rising saw 2t - 1 = -(2/π) Σ sin(2πkt)/k.
        let saw = LEVELS
            .iter()
            .map(|&h| build(h, &|k| -2.0 / std::f64::consts::PI / k as f64))
            .collect();
        // Triangle: (8/π²) Σ over odd k of (-1)^((k-1)/2) sin(2πkt)/k².
        let triangle = LEVELS
            .iter()
            .map(|&h| {
                build(h, &|k| {
                    if k % 2 == 0 {
                        0.0
                    } else {
                        let sign = if (k / 2) % 2 == 0 { 1.0 } else { -1.0 };
                        sign * 8.0 / (std::f64::consts::PI.powi(2) * (k * k) as f64)
                    }
                })
            })
            .collect();
        Tables { saw, triangle }
    })
}

#[inline]
fn lookup(table: &[f32], phase: f64) -> f32 {
    let x = phase * TABLE as f64;
    let i = x as usize;
    let frac = (x - i as f64) as f32;
    let a = table[i];
    a + (table[i + 1] - a) * frac
}

/// A band-limited oscillator.
#[derive(Debug, Clone, Copy)]
pub struct Osc {
    wave: Wave,
    phase: f64,
    rate: f64,
    /// (frequency, level) last used: the level is recomputed only when the pitch changes.
    cached: (f32, usize),
}

impl Osc {
    /// A new oscillator at phase 0.
    pub fn new(wave: Wave, rate: f32) -> Self {
        tables();
        Self {
            wave,
            phase: 0.0,
            rate: rate as f64,
            cached: (f32::NAN, 0),
        }
    }

    /// Back to phase 0.
    pub fn reset(&mut self) {
        self.phase = 0.0;
    }

    /// Changes the sample rate (keeps the phase).
    pub fn set_sample_rate(&mut self, rate: f32) {
        self.rate = rate as f64;
        self.cached = (f32::NAN, 0);
    }

    #[inline]
    fn level(&mut self, freq: f32) -> usize {
        if self.cached.0 != freq {
            let budget = (0.45 * self.rate / (freq.abs() as f64).max(1e-3)) as usize;
            let level = LEVELS.partition_point(|&h| h <= budget).saturating_sub(1);
            self.cached = (freq, level);
        }
        self.cached.1
    }

    /// One sample at frequency `freq` Hz (pulse `width` in 0..1).
    #[inline]
    pub fn tick(&mut self, freq: f32, width: f32) -> f32 {
        let dt = (freq as f64 / self.rate).clamp(0.0, 0.49);
        let t = self.phase;
        let out = match self.wave {
            Wave::Sine => (t * TAU).sin() as f32,
            Wave::Saw => lookup(&tables().saw[self.level(freq)], t),
            Wave::Triangle => lookup(&tables().triangle[self.level(freq)], t),
            Wave::Pulse => {
                let w = (width as f64).clamp(0.01, 0.99);
                let table = &tables().saw[self.level(freq)];
                let shifted = (t - w).rem_euclid(1.0);
                // saw(t) - saw(t - w) is ±1 around an offset of 2w - 1.
                -(lookup(table, t) - lookup(table, shifted) - (2.0 * w - 1.0) as f32)
            }
        };
        self.phase += dt;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        out
    }

    /// A block of samples with per-sample frequency.
    pub fn process(&mut self, freq: &[f32], width: &[f32], out: &mut [f32]) {
        for ((o, &f), &w) in out.iter_mut().zip(freq).zip(width) {
            *o = self.tick(f, w);
        }
    }
}

/// White or pink noise from a 32-bit xorshift (deterministic from its seed).
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    seed: u32,
    state: u32,
    pink: bool,
    b: [f32; 3],
}

impl Noise {
    /// White (or pink) noise seeded with `seed`.
    pub fn new(seed: u32, pink: bool) -> Self {
        let seed = seed.max(1);
        Self {
            seed,
            state: seed,
            pink,
            b: [0.0; 3],
        }
    }

    /// Back to the start of its sequence.
    pub fn reset(&mut self) {
        self.state = self.seed;
        self.b = [0.0; 3];
    }

    /// One sample in -1..1.
    #[inline]
    pub fn tick(&mut self) -> f32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        let white = (x as f32 / u32::MAX as f32) * 2.0 - 1.0;
        if !self.pink {
            return white;
        }
        // Paul Kellet's economy pink filter.
        self.b[0] = 0.99765 * self.b[0] + white * 0.099_046;
        self.b[1] = 0.963 * self.b[1] + white * 0.296_516_4;
        self.b[2] = 0.57 * self.b[2] + white * 1.052_691_3;
        (self.b[0] + self.b[1] + self.b[2] + white * 0.1848) * 0.25
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_sample_paths_agree_and_reset_reproduces() {
        for wave in [Wave::Sine, Wave::Saw, Wave::Pulse, Wave::Triangle] {
            let mut a = Osc::new(wave, 48_000.0);
            let mut b = Osc::new(wave, 48_000.0);
            let freq = [331.0f32; 64];
            let width = [0.3f32; 64];
            let mut block = [0.0f32; 64];
            a.process(&freq, &width, &mut block);
            let single: Vec<f32> = (0..64).map(|_| b.tick(331.0, 0.3)).collect();
            assert_eq!(block.to_vec(), single, "{wave:?}");
            a.reset();
            let mut again = [0.0f32; 64];
            a.process(&freq, &width, &mut again);
            assert_eq!(block, again, "{wave:?}: reset reproduces");
        }
    }

    #[test]
    fn outputs_stay_bounded() {
        for wave in [Wave::Sine, Wave::Saw, Wave::Pulse, Wave::Triangle] {
            let mut o = Osc::new(wave, 48_000.0);
            for i in 0..48_000 {
                let f = 20.0 + (i % 2000) as f32 * 10.0;
                let v = o.tick(f, 0.5);
                // Band-limited edges ring (Gibbs): about 9 % per saw edge, twice for a pulse.
                assert!(v.abs() <= 1.3, "{wave:?} {v}");
            }
        }
    }

    #[test]
    fn noise_is_deterministic_and_centered() {
        let mut a = Noise::new(7, false);
        let mut b = Noise::new(7, false);
        let xs: Vec<f32> = (0..10_000).map(|_| a.tick()).collect();
        let ys: Vec<f32> = (0..10_000).map(|_| b.tick()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.05);
    }
}
