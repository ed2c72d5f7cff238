//! The transport: tempo, beats per cycle, start/stop, and the exact map between cycles and
//! `CLOCK_MONOTONIC` nanoseconds.
//!
//! The map is piecewise linear with rational slope: an anchor (ns, cycle) and a tempo in
//! cycles per second. A tempo change re-anchors at a cycle position the scheduler has already
//! reached, so the phase is continuous (nothing jumps, nothing replays) and every note already
//! published keeps its time. Nanoseconds are computed from the anchor in `i128` each time,
//! never accumulated.
//!
//! A tempo ramp (krach's transition: `khorus tempo 140 --over 8`) starts at the anchor and
//! moves the tempo in a straight line in cycles to its end, so the tempo at every beat is
//! exact; the time of a position inside it is the integral of 1/tempo, a logarithm
//! ([`khorus_bus::services::transport::ramp_seconds`], the one place that computes it, for
//! followers too), rounded to the ns. As the scheduler passes each beat of a ramp the anchor
//! moves to it ([`Transport::settle`]), so the published transport carries each beat's tempo.

use khorus_bus::services::transport::{ramp_position, ramp_seconds};

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
    ramp: Option<Ramp>,
}

/// A tempo ramp from the anchor to `end`, reaching `cps` there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// The cycle position it ends at.
    pub end: Q,
    /// Cycles per second from `end` on.
    pub cps: Q,
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

/// The instant `c` sounds at `cps` from (`anchor_ns`, `anchor`), exactly, rounded to the
/// nearest ns (halves up).
fn linear_ns(anchor_ns: u64, anchor: Q, cps: Q, c: Q) -> Result<u64, TimeError> {
    let d = (c - anchor)?;
    // ns = anchor + d / cps · 1e9 = anchor + d.n · cps.d · 1e9 / (d.d · cps.n)
    let num = (d.numer() as i128)
        .checked_mul(cps.denom() as i128)
        .and_then(|x| x.checked_mul(NS_PER_S))
        .ok_or(TimeError::Overflow)?;
    let den = (d.denom() as i128)
        .checked_mul(cps.numer() as i128)
        .ok_or(TimeError::Overflow)?;
    let offset = (2 * num + den).div_euclid(2 * den);
    let t = anchor_ns as i128 + offset;
    u64::try_from(t).map_err(|_| TimeError::Overflow)
}

/// The cycle position at `t_ns` at `cps` from (`anchor_ns`, `anchor`), exactly.
fn linear_cycle(anchor_ns: u64, anchor: Q, cps: Q, t_ns: u64) -> Result<Q, TimeError> {
    let dt = t_ns as i128 - anchor_ns as i128;
    let num = dt
        .checked_mul(cps.numer() as i128)
        .ok_or(TimeError::Overflow)?;
    let den = NS_PER_S * cps.denom() as i128;
    // Reduce through Q so overflow is reported rather than wrapped.
    let num = i64::try_from(num).map_err(|_| TimeError::Overflow)?;
    let den = i64::try_from(den).map_err(|_| TimeError::Overflow)?;
    anchor + Q::new(num, den)?
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
            ramp: None,
        })
    }

    /// Cycles per second at the anchor.
    pub fn cps(&self) -> Q {
        self.cps
    }

    /// The tempo ramp that starts at the anchor, if one runs.
    pub fn ramp(&self) -> Option<Ramp> {
        self.ramp
    }

    /// Cycles per second at cycle position `c` (exact; the anchor's before it).
    pub fn cps_at(&self, c: Q) -> Result<Q, TimeError> {
        let Some(r) = self.ramp else {
            return Ok(self.cps);
        };
        if c <= self.anchor_cycle {
            return Ok(self.cps);
        }
        if c >= r.end {
            return Ok(r.cps);
        }
        let part = ((c - self.anchor_cycle)? / (r.end - self.anchor_cycle)?)?;
        self.cps + ((r.cps - self.cps)? * part)?
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

    /// Seconds (float) from the anchor to the ramp's `c`, and the ramp's length in cycles.
    fn seconds_into(&self, r: Ramp, c: Q) -> Result<f64, TimeError> {
        let span = (r.end - self.anchor_cycle)?.to_f64();
        let x = (c - self.anchor_cycle)?.to_f64();
        Ok(ramp_seconds(self.cps.to_f64(), r.cps.to_f64(), span, x))
    }

    /// Where the ramp ends, ns.
    fn ramp_end_ns(&self, r: Ramp) -> Result<u64, TimeError> {
        let s = self.seconds_into(r, r.end)?;
        u64::try_from(self.anchor_ns as i128 + (s * 1e9).round() as i128)
            .map_err(|_| TimeError::Overflow)
    }

    /// The instant cycle position `c` sounds, rounded to the nearest ns (halves up).
    pub fn ns_at(&self, c: Q) -> Result<u64, TimeError> {
        match self.ramp {
            Some(r) if c > self.anchor_cycle && c <= r.end => {
                let s = self.seconds_into(r, c)?;
                u64::try_from(self.anchor_ns as i128 + (s * 1e9).round() as i128)
                    .map_err(|_| TimeError::Overflow)
            }
            Some(r) if c > r.end => linear_ns(self.ramp_end_ns(r)?, r.end, r.cps, c),
            _ => linear_ns(self.anchor_ns, self.anchor_cycle, self.cps, c),
        }
    }

    /// The cycle position at `t_ns`: exact at a constant tempo, within a nanosecond's worth
    /// (on a grid of 2^-30 cycles) inside a ramp.
    pub fn cycle_at(&self, t_ns: u64) -> Result<Q, TimeError> {
        if let Some(r) = self.ramp
            && t_ns > self.anchor_ns
        {
            let end_ns = self.ramp_end_ns(r)?;
            if t_ns >= end_ns {
                return linear_cycle(end_ns, r.end, r.cps, t_ns);
            }
            let span = (r.end - self.anchor_cycle)?.to_f64();
            let dt = (t_ns - self.anchor_ns) as f64 * 1e-9;
            let x = ramp_position(self.cps.to_f64(), r.cps.to_f64(), span, dt);
            const GRID: i64 = 1 << 30;
            let x = Q::new((x * GRID as f64).floor() as i64, GRID)?;
            return Ok((self.anchor_cycle + x)?.min(r.end).max(self.anchor_cycle));
        }
        linear_cycle(self.anchor_ns, self.anchor_cycle, self.cps, t_ns)
    }

    /// Changes tempo from cycle position `at` on (which must not be in the past of what was
    /// already scheduled): the anchor moves to `at` so the phase carries on. A ramp in
    /// progress stops there.
    pub fn set_cps(&mut self, at: Q, cps: Q) -> Result<(), TimeError> {
        let at_ns = self.ns_at(at)?;
        self.anchor_ns = at_ns;
        self.anchor_cycle = at;
        self.cps = cps;
        self.ramp = None;
        Ok(())
    }

    /// Ramps the tempo from what it is at `at` to `cps` over `cycles` (linear in cycles);
    /// the anchor moves to `at`. A ramp in progress is replaced from there.
    pub fn ramp_to(&mut self, at: Q, cycles: Q, cps: Q) -> Result<(), TimeError> {
        if cycles <= Q::ZERO {
            return self.set_cps(at, cps);
        }
        let from = self.cps_at(at)?;
        self.set_cps(at, from)?;
        self.ramp = Some(Ramp {
            end: (at + cycles)?,
            cps,
        });
        Ok(())
    }

    /// Follows a ramp another transport ran (after a restart), from this anchor.
    pub fn resume_ramp(&mut self, ramp: Ramp) {
        self.ramp = (ramp.end > self.anchor_cycle).then_some(ramp);
    }

    /// Moves the anchor to the last beat at or before `horizon` inside a ramp (or to its end,
    /// which finishes it): nothing at or after the new anchor moves, and the published
    /// transport carries that beat's exact tempo. Returns whether the anchor moved.
    pub fn settle(&mut self, horizon: Q) -> Result<bool, TimeError> {
        let Some(r) = self.ramp else {
            return Ok(false);
        };
        let beats = Q::int(self.beats_per_cycle as i64);
        let beat = Q::int((horizon * beats)?.floor());
        let at = (beat / beats)?.min(r.end);
        if at <= self.anchor_cycle {
            return Ok(false);
        }
        let at_ns = self.ns_at(at)?;
        let cps = self.cps_at(at)?;
        self.anchor_ns = at_ns;
        self.anchor_cycle = at;
        self.cps = cps;
        if at >= r.end {
            self.ramp = None;
        }
        Ok(true)
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
