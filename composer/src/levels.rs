//! Kernel signal levels as patterns see them: a snapshot of the latest frame's levels,
//! quantised to 1/[`LEVEL_STEPS`]. It is what a query's [`Context`](crate::pattern::Context) carries and
//! what [`signal`](crate::signal) expressions read; quantising makes a replayed trace give
//! bit-identical choices.

use khorus_bus::signals::SIGNAL_CAPACITY;
use khorus_bus::{SignalFrame, SignalId};

use crate::time::Q;

/// Quantisation steps of a level in `0..=1`.
pub const LEVEL_STEPS: i64 = 1024;

/// Signal levels as seen by patterns, quantised to `1/LEVEL_STEPS`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signals {
    levels: [u16; SIGNAL_CAPACITY],
}

impl Signals {
    /// Takes the levels a frame measured; signals it did not measure keep their last value.
    pub fn update(&mut self, frame: &SignalFrame) {
        for i in 0..SIGNAL_CAPACITY {
            let id = SignalId(i as u8);
            if frame.is_available(id) {
                self.set(id, frame.level[i]);
            }
        }
    }

    /// Sets one level (clamped to `0..=1`; NaN reads as 0).
    pub fn set(&mut self, id: SignalId, level: f32) {
        if let Some(slot) = self.levels.get_mut(id.index()) {
            let l = if level.is_nan() {
                0.0
            } else {
                level.clamp(0.0, 1.0)
            };
            *slot = (l as f64 * LEVEL_STEPS as f64).round() as u16;
        }
    }

    /// One level as an exact fraction.
    pub fn level(&self, id: SignalId) -> Q {
        let k = self.levels.get(id.index()).copied().unwrap_or(0);
        Q::new(k as i64, LEVEL_STEPS).unwrap_or(Q::ZERO)
    }

    /// The quantised levels (for traces and tests).
    pub fn raw(&self) -> &[u16; SIGNAL_CAPACITY] {
        &self.levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    fn exec_at(level: f32) -> Q {
        let mut s = Signals::default();
        s.set(SignalId::EXEC, level);
        s.level(SignalId::EXEC)
    }

    #[test]
    fn levels_are_quantised() {
        assert_eq!(exec_at(0.300_01), q(307, 1024));
        assert_eq!(exec_at(7.0), Q::ONE);
        assert_eq!(exec_at(f32::NAN), Q::ZERO);
    }
}
