//! DSP primitives. Each keeps its own state, processes one sample with `tick` and a block with
//! `process` (the same arithmetic, so block and per-sample paths agree exactly), and `reset`
//! returns it to the state it was created in.

pub mod env;
pub mod filter;
pub mod fx;
pub mod osc;

/// Frames per processing block.
pub const BLOCK: usize = 64;

/// A block of samples.
pub type Block = [f32; BLOCK];

/// Converts a MIDI note number (69 = A4) to Hz, at A4 = 440 Hz.
pub fn midi_to_hz(note: f32) -> f32 {
    440.0 * ((note - 69.0) / 12.0).exp2()
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

/// A one-pole smoother for control values (no zipper noise): reaches ~63 % of a step in
/// `time_s`.
#[derive(Debug, Clone, Copy)]
pub struct Smoother {
    value: f32,
    target: f32,
    coeff: f32,
}

impl Smoother {
    /// Starts at `value`, smoothing over `time_s` at `rate`.
    pub fn new(value: f32, time_s: f32, rate: f32) -> Self {
        Self {
            value,
            target: value,
            coeff: (-1.0 / (time_s * rate).max(1.0)).exp(),
        }
    }

    /// Sets the value to move to.
    pub fn set(&mut self, target: f32) {
        self.target = target;
    }

    /// Jumps to `value` at once.
    pub fn jump(&mut self, value: f32) {
        self.value = value;
        self.target = value;
    }

    /// The next smoothed value.
    #[inline]
    pub fn tick(&mut self) -> f32 {
        self.value = self.target + (self.value - self.target) * self.coeff;
        self.value
    }

    /// The value now.
    pub fn value(&self) -> f32 {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a4_is_440_and_octaves_double() {
        assert!((midi_to_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((midi_to_hz(81.0) - 880.0).abs() < 1e-2);
        assert!((midi_to_hz(57.0) - 220.0).abs() < 1e-3);
    }

    #[test]
    fn sanitize_removes_nan_and_clamps() {
        assert_eq!(sanitize(f32::NAN, 1.0), 0.0);
        assert_eq!(sanitize(f32::INFINITY, 1.0), 0.0);
        assert_eq!(sanitize(5.0, 1.0), 1.0);
    }
}
