//! The transport: tempo, beats per cycle, start/stop, and the exact map between cycles and
//! `CLOCK_MONOTONIC` nanoseconds.
//!
//! The map is piecewise linear with rational slope: an anchor (ns, cycle) and a tempo in
//! cycles per second. A tempo change re-anchors at a cycle position the scheduler has already
//! reached, so the phase is continuous (nothing jumps, nothing replays) and every note already
//! published keeps its time. Nanoseconds are computed from the anchor in `i128` each time,
//! never accumulated.

use crate::time::{Q, TimeError};

const NS_PER_S: i128 = 1_000_000_000;

/// Tempi the transport plays at, beats per minute.
pub const BPM: std::ops::RangeInclusive<i64> = 1..=999;
/// Beats per cycle the transport accepts.
pub const BEATS_PER_CYCLE: std::ops::RangeInclusive<u32> = 1..=64;
/// Beats per cycle when nothing says otherwise.
pub const DEFAULT_BEATS_PER_CYCLE: u32 = 4;

/// Tempo and the cycle clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Transport {
    anchor_ns: u64,
    anchor_cycle: Q,
    cps: Q,
    beats_per_cycle: u32,
    running: bool,
}

/// Why a tempo was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TempoError {
    /// Not a usable tempo.
    #[error("tempo must be between {min} and {max} bpm (got {0})", min = BPM.start(), max = BPM.end())]
    OutOfRange(String),
    /// Zero beats per cycle.
    #[error("beats per cycle must be {}..={}", BEATS_PER_CYCLE.start(), BEATS_PER_CYCLE.end())]
    Beats,
    /// Arithmetic overflow.
    #[error(transparent)]
    Time(#[from] TimeError),
}

/// Checks that `bpm` is within [`BPM`].
pub fn check_bpm(bpm: Q) -> Result<(), TempoError> {
    if bpm < Q::int(*BPM.start()) || bpm > Q::int(*BPM.end()) {
        return Err(TempoError::OutOfRange(bpm.to_string()));
    }
    Ok(())
}

/// Cycles per second for `bpm` with `beats` beats per cycle, exactly.
pub fn cps_from_bpm(bpm: Q, beats: u32) -> Result<Q, TempoError> {
    if !BEATS_PER_CYCLE.contains(&beats) {
        return Err(TempoError::Beats);
    }
    check_bpm(bpm)?;
    Ok((bpm / Q::int(60 * beats as i64))?)
}

impl Transport {
    /// A running transport at `bpm`, with cycle 0 at `start_ns`.
    pub fn new(bpm: Q, beats_per_cycle: u32, start_ns: u64) -> Result<Self, TempoError> {
        Ok(Transport {
            anchor_ns: start_ns,
            anchor_cycle: Q::ZERO,
            cps: cps_from_bpm(bpm, beats_per_cycle)?,
            beats_per_cycle,
            running: true,
        })
    }

    /// Cycles per second.
    pub fn cps(&self) -> Q {
        self.cps
    }

    /// Beats per minute.
    pub fn bpm(&self) -> f64 {
        self.cps.to_f64() * 60.0 * self.beats_per_cycle as f64
    }

    /// Beats per cycle.
    pub fn beats_per_cycle(&self) -> u32 {
        self.beats_per_cycle
    }

    /// The anchor (ns, cycle).
    pub fn anchor(&self) -> (u64, Q) {
        (self.anchor_ns, self.anchor_cycle)
    }

    /// Whether the clock runs.
    pub fn running(&self) -> bool {
        self.running
    }

    /// The instant cycle position `c` sounds, rounded to the nearest ns (halves up).
    pub fn ns_at(&self, c: Q) -> Result<u64, TimeError> {
        let d = (c - self.anchor_cycle)?;
        // ns = anchor + d / cps · 1e9 = anchor + d.n · cps.d · 1e9 / (d.d · cps.n)
        let num = (d.numer() as i128)
            .checked_mul(self.cps.denom() as i128)
            .and_then(|x| x.checked_mul(NS_PER_S))
            .ok_or(TimeError::Overflow)?;
        let den = (d.denom() as i128)
            .checked_mul(self.cps.numer() as i128)
            .ok_or(TimeError::Overflow)?;
        let offset = (2 * num + den).div_euclid(2 * den);
        let t = self.anchor_ns as i128 + offset;
        u64::try_from(t).map_err(|_| TimeError::Overflow)
    }

    /// The cycle position at `t_ns`, exactly.
    pub fn cycle_at(&self, t_ns: u64) -> Result<Q, TimeError> {
        let dt = t_ns as i128 - self.anchor_ns as i128;
        let num = dt
            .checked_mul(self.cps.numer() as i128)
            .ok_or(TimeError::Overflow)?;
        let den = NS_PER_S * self.cps.denom() as i128;
        // Reduce through Q so overflow is reported rather than wrapped.
        let num = i64::try_from(num).map_err(|_| TimeError::Overflow)?;
        let den = i64::try_from(den).map_err(|_| TimeError::Overflow)?;
        self.anchor_cycle + Q::new(num, den)?
    }

    /// Changes tempo from cycle position `at` on (which must not be in the past of what was
    /// already scheduled): the anchor moves to `at` so the phase carries on.
    pub fn set_cps(&mut self, at: Q, cps: Q) -> Result<(), TimeError> {
        let at_ns = self.ns_at(at)?;
        self.anchor_ns = at_ns;
        self.anchor_cycle = at;
        self.cps = cps;
        Ok(())
    }

    /// Sets beats per cycle, keeping cycles per second.
    pub fn set_beats_per_cycle(&mut self, beats: u32) -> Result<(), TempoError> {
        if !BEATS_PER_CYCLE.contains(&beats) {
            return Err(TempoError::Beats);
        }
        self.beats_per_cycle = beats;
        Ok(())
    }

    /// Stops the clock (the scheduler stops querying).
    pub fn stop(&mut self) {
        self.running = false;
    }

    /// Resumes so that cycle position `at` sounds at `t_ns`.
    pub fn start(&mut self, at: Q, t_ns: u64) {
        self.anchor_ns = t_ns;
        self.anchor_cycle = at;
        self.running = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    #[test]
    fn cycles_and_nanoseconds_agree() {
        let t = Transport::new(Q::int(120), 4, 1_000).unwrap();
        assert_eq!(t.cps(), q(1, 2));
        assert_eq!(t.ns_at(Q::ONE).unwrap(), 2_000_001_000);
        assert_eq!(t.ns_at(q(1, 3)).unwrap(), 666_667_667);
        assert_eq!(t.cycle_at(2_000_001_000).unwrap(), Q::ONE);
    }

    #[test]
    fn tempo_change_keeps_phase() {
        let mut t = Transport::new(Q::int(120), 4, 0).unwrap();
        let at = q(3, 2);
        let before = t.ns_at(at).unwrap();
        t.set_cps(at, Q::ONE).unwrap();
        assert_eq!(t.ns_at(at).unwrap(), before);
        assert_eq!(t.ns_at(q(5, 2)).unwrap(), before + 1_000_000_000);
    }

    #[test]
    fn bad_tempi_are_refused() {
        assert!(Transport::new(Q::ZERO, 4, 0).is_err());
        assert!(Transport::new(Q::int(120), 0, 0).is_err());
    }
}
