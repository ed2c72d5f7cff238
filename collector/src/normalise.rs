//! Raw rates to musical levels: log scaling against a reference maximum, then first-order
//! smoothing with separate attack and release time constants.
//!
//! Smoothing uses `alpha = 1 - exp(-dt / tau)` with the measured interval, which is the exact
//! response of a one-pole low-pass to a input held over the interval: the result does not
//! depend on the tick length (two 10 ms ticks equal one 20 ms tick).

use khorus_bus::SignalFrame;
use khorus_bus::signals::{SIGNAL_COUNT, SIGNALS, SignalId};

use crate::config::Tuning;
use crate::sample::Sample;

/// Per-signal smoothing state.
#[derive(Debug, Clone)]
pub struct Normaliser {
    tuning: Vec<Tuning>,
    level: Vec<f64>,
}

/// The target level of a rate before smoothing: `ln(1 + rate) / ln(1 + reference)`, in 0..=1.
pub fn log_level(rate: f64, reference_max: f64) -> f64 {
    // NaN compares false, so this also rejects NaN inputs.
    let positive = rate > 0.0 && reference_max > 0.0;
    if !positive {
        return 0.0;
    }
    ((1.0 + rate).ln() / (1.0 + reference_max).ln()).clamp(0.0, 1.0)
}

impl Normaliser {
    /// A normaliser with `tuning` per signal (indexed by [`SignalId`]); levels start at 0.
    pub fn new(tuning: Vec<Tuning>) -> Self {
        assert_eq!(tuning.len(), SIGNAL_COUNT, "one tuning per signal");
        Self {
            tuning,
            level: vec![0.0; SIGNAL_COUNT],
        }
    }

    /// Turns one sample into a frame and advances the smoothing state.
    pub fn frame(&mut self, sample: &Sample) -> SignalFrame {
        let mut frame = SignalFrame {
            t_ns: sample.t_ns,
            dt_ns: sample.dt_ns,
            source: khorus_bus::SignalSource::from(sample.source) as u8,
            ..Default::default()
        };
        let dt_ms = sample.dt_ns as f64 * 1e-6;
        for i in 0..SIGNALS.len() {
            let id = SignalId(i as u8);
            let Some(rate) = sample.rate(id) else {
                continue;
            };
            let tuning = &self.tuning[i];
            let target = log_level(rate, tuning.reference_max);
            let tau = if target > self.level[i] {
                tuning.attack_ms
            } else {
                tuning.release_ms
            };
            let alpha = if tau <= 0.0 {
                1.0
            } else {
                1.0 - (-dt_ms / tau).exp()
            };
            self.level[i] += alpha * (target - self.level[i]);
            frame.set(id, rate as f32, self.level[i] as f32);
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_tuning;
    use crate::sample::SourceKind;
    use proptest::prelude::*;

    fn csw_sample(dt_ns: u64, per_s: u64) -> Sample {
        let mut s = Sample::new(0, dt_ns, SourceKind::Synthetic);
        s.set(SignalId::CSW, per_s * dt_ns / 1_000_000_000);
        s
    }

    #[test]
    fn log_scale_hits_the_reference_at_one() {
        assert_eq!(log_level(0.0, 250.0), 0.0);
        assert!((log_level(250.0, 250.0) - 1.0).abs() < 1e-12);
        assert_eq!(log_level(1e9, 250.0), 1.0);
        assert!(log_level(15.0, 250.0) > 0.4, "log scale lifts small rates");
        assert_eq!(log_level(f64::NAN, 250.0), 0.0);
    }

    #[test]
    fn smoothing_does_not_depend_on_the_tick_length() {
        let mut a = Normaliser::new(default_tuning());
        let mut b = Normaliser::new(default_tuning());
        for _ in 0..10 {
            a.frame(&csw_sample(10_000_000, 50_000));
            a.frame(&csw_sample(10_000_000, 50_000));
            b.frame(&csw_sample(20_000_000, 50_000));
        }
        let la = a.frame(&csw_sample(20_000_000, 0)).level[SignalId::CSW.index()];
        let lb = b.frame(&csw_sample(20_000_000, 0)).level[SignalId::CSW.index()];
        assert!((la - lb).abs() < 1e-6, "{la} vs {lb}");
    }

    #[test]
    fn attack_is_faster_than_release_for_memory() {
        let t = default_tuning();
        let mem = &t[SignalId::MEM_PRESSURE.index()];
        let retx = &t[SignalId::RETX.index()];
        assert!(mem.release_ms > 1000.0, "memory pressure is a slow mood");
        assert!(retx.attack_ms <= 5.0, "retransmits stay spiky");
    }

    proptest! {
        #[test]
        fn levels_stay_in_range(deltas in proptest::collection::vec((any::<u64>(), 1u64..2_000_000_000), 1..50)) {
            let mut n = Normaliser::new(default_tuning());
            for (d, dt) in deltas {
                let mut s = Sample::new(0, dt, SourceKind::Synthetic);
                for i in 0..SIGNAL_COUNT { s.set(SignalId(i as u8), d >> (i % 40)); }
                let f = n.frame(&s);
                for i in 0..SIGNAL_COUNT {
                    prop_assert!((0.0..=1.0).contains(&f.level[i]), "{}", f.level[i]);
                    prop_assert!(f.rate[i].is_finite());
                }
            }
        }
    }
}
