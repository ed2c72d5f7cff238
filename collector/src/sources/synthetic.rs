//! A seeded, deterministic signal generator for demos and tests: slow swells, noise and
//! bursts per signal, the same for the same seed and tick, whatever the machine is doing.

use khorus_bus::signals::{SIGNAL_COUNT, SIGNALS, SignalId};

use super::{Source, SourceError, Tick};
use crate::sample::{Sample, SourceKind, raw_unit};

/// The generator.
#[derive(Debug, Clone)]
pub struct Synthetic {
    seed: u64,
    tick_ns: u64,
    step: u64,
}

/// SplitMix64: a tiny, well-known mixing function; enough for musical noise and keeps the
/// sequence fixed forever (a dependency's generator could change between versions).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Synthetic {
    /// A generator with `seed`, stepping `tick_ns` per tick.
    pub fn new(seed: u64, tick_ns: u64) -> Self {
        Self {
            seed,
            tick_ns,
            step: 0,
        }
    }

    /// The sample for step `k`, stamped `t_ns`.
    pub fn sample(&self, k: u64, t_ns: u64) -> Sample {
        let mut s = Sample::new(t_ns, self.tick_ns, SourceKind::Synthetic);
        let t = k as f64 * self.tick_ns as f64 * 1e-9;
        for (i, info) in SIGNALS.iter().enumerate().take(SIGNAL_COUNT) {
            let id = SignalId(i as u8);
            let h = mix(self.seed ^ mix(i as u64));
            let period = 4.0 + 20.0 * unit(h);
            let phase = unit(mix(h)) * std::f64::consts::TAU;
            let swell = 0.5 + 0.5 * (t * std::f64::consts::TAU / period + phase).sin();
            let noise = unit(mix(h ^ k));
            let burst = if unit(mix(h ^ k.rotate_left(17))) > 0.97 {
                1.0
            } else {
                0.0
            };
            // Fraction of the reference rate, on a log-ish scale like real activity.
            let frac = (0.02 + 0.5 * swell * swell + 0.1 * noise + 0.6 * burst).min(1.5);
            let rate = info.reference_max as f64 * frac.powi(2);
            let raw = rate * self.tick_ns as f64 * 1e-9 / raw_unit(id).per_raw;
            s.set(id, raw.round() as u64);
        }
        s
    }
}

impl Source for Synthetic {
    fn kind(&self) -> SourceKind {
        SourceKind::Synthetic
    }

    fn tick(&mut self, now_ns: u64, _read_errors: &mut u64) -> Result<Tick, SourceError> {
        let s = self.sample(self.step, now_ns);
        self.step += 1;
        Ok(Tick::Sample(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_signals_different_seed_different() {
        let a = Synthetic::new(7, 20_000_000);
        let b = Synthetic::new(7, 20_000_000);
        let c = Synthetic::new(8, 20_000_000);
        for k in 0..100 {
            assert_eq!(a.sample(k, 0).deltas, b.sample(k, 0).deltas);
        }
        assert_ne!(
            (0..100).map(|k| a.sample(k, 0).deltas).collect::<Vec<_>>(),
            (0..100).map(|k| c.sample(k, 0).deltas).collect::<Vec<_>>()
        );
    }
}
