//! `khorus/transport`: the composer's clock, so the synth (tempo-synced delays) and the router
//! (MIDI clock, start/stop) can follow it.
//!
//! The map from cycles to monotonic time is exact: at `anchor_ns` the transport was at cycle
//! `anchor_cycle_num / anchor_cycle_den`, advancing `cps_num / cps_den` cycles per second while
//! running. Published whenever it changes, and again when a subscriber joins (so that a
//! newcomer has it at once; `history: 1` alone reaches a newcomer only at the next send).
//!
//! A tempo ramp (krach's transition) starts at the anchor: the tempo then moves in a straight
//! line *in cycles* from `cps` at the anchor to `ramp_cps` at `ramp_end`, and stays there. The
//! time to a position inside the ramp is the integral of 1/tempo — a logarithm, so floats
//! ([`ramp_seconds`], [`ramp_position`]: the one place that computes it, for the composer and
//! every follower). During a ramp the composer re-anchors at every beat, so each beat is
//! published with its exact tempo.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// The transport's state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ZeroCopySend, Serialize, Deserialize)]
#[type_name("khorus::TransportState/v3")]
#[repr(C)]
pub struct TransportState {
    /// Per-publisher sequence number, set by [`Publisher::publish`](crate::Publisher::publish).
    pub seq: u64,
    /// Monotonic time of this report, ns.
    pub t_ns: u64,
    /// Monotonic time of the anchor, ns.
    pub anchor_ns: u64,
    /// Cycle at the anchor: numerator.
    pub anchor_cycle_num: i64,
    /// Cycle at the anchor: denominator (> 0).
    pub anchor_cycle_den: i64,
    /// Cycles per second: numerator.
    pub cps_num: i64,
    /// Cycles per second: denominator (> 0).
    pub cps_den: i64,
    /// Beats per cycle.
    pub beats_per_cycle: u32,
    /// 1 while running, 0 when stopped.
    pub running: u8,
    /// Padding, zero.
    pub _pad: [u8; 3],
    /// Hushes of everything so far (a follower that sees it change silences what it holds:
    /// the router sends all-notes-off).
    pub hushes: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// End of the tempo ramp that starts at the anchor, cycle: numerator.
    pub ramp_end_num: i64,
    /// End of the ramp: denominator (0: no ramp).
    pub ramp_end_den: i64,
    /// Cycles per second at the ramp's end: numerator.
    pub ramp_cps_num: i64,
    /// Cycles per second at the ramp's end: denominator (0: no ramp).
    pub ramp_cps_den: i64,
}

/// Seconds from a ramp's start to `x` into it, when the rate moves linearly in position from
/// `rate0` to `rate1` over `span` (cycles and cycles per second, or beats and beats per
/// second): t = ∫ dx / rate(x) = ln(1 + kx / rate0) / k, with k = (rate1 − rate0) / span.
/// Past the span, the rate stays `rate1`.
pub fn ramp_seconds(rate0: f64, rate1: f64, span: f64, x: f64) -> f64 {
    let inside = x.min(span);
    let k = (rate1 - rate0) / span;
    let t = if k.abs() < 1e-12 {
        inside / rate0
    } else {
        (k * inside / rate0).ln_1p() / k
    };
    t + (x - inside).max(0.0) / rate1
}

/// The position `t` seconds after a ramp's start: the inverse of [`ramp_seconds`].
pub fn ramp_position(rate0: f64, rate1: f64, span: f64, t: f64) -> f64 {
    let k = (rate1 - rate0) / span;
    let whole = ramp_seconds(rate0, rate1, span, span);
    let inside = t.min(whole);
    let x = if k.abs() < 1e-12 {
        inside * rate0
    } else {
        rate0 * (k * inside).exp_m1() / k
    };
    x.min(span) + (t - inside).max(0.0) * rate1
}

/// The rate `x` into a ramp.
pub fn ramp_rate(rate0: f64, rate1: f64, span: f64, x: f64) -> f64 {
    rate0 + (rate1 - rate0) * (x / span).clamp(0.0, 1.0)
}

impl TransportState {
    /// Whether `other` describes the same clock and hush count (ignoring when it was
    /// reported): if not, followers need to hear about it now.
    pub fn same_clock(&self, other: &TransportState) -> bool {
        (
            self.anchor_ns,
            self.anchor_cycle_num,
            self.anchor_cycle_den,
            self.cps_num,
            self.cps_den,
            self.beats_per_cycle,
            self.running,
            self.hushes,
            self.ramp_end_num,
            self.ramp_end_den,
            self.ramp_cps_num,
            self.ramp_cps_den,
        ) == (
            other.anchor_ns,
            other.anchor_cycle_num,
            other.anchor_cycle_den,
            other.cps_num,
            other.cps_den,
            other.beats_per_cycle,
            other.running,
            other.hushes,
            other.ramp_end_num,
            other.ramp_end_den,
            other.ramp_cps_num,
            other.ramp_cps_den,
        )
    }

    /// Beats per minute.
    pub fn bpm(&self) -> f64 {
        if self.cps_den == 0 {
            return 0.0;
        }
        self.cps_num as f64 / self.cps_den as f64 * 60.0 * self.beats_per_cycle as f64
    }

    /// The tempo ramp that starts at the anchor: (its length in cycles, cycles per second
    /// at its end).
    pub fn ramp(&self) -> Option<(f64, f64)> {
        if self.ramp_end_den <= 0 || self.ramp_cps_den <= 0 || self.anchor_cycle_den <= 0 {
            return None;
        }
        let span = self.ramp_end_num as f64 / self.ramp_end_den as f64
            - self.anchor_cycle_num as f64 / self.anchor_cycle_den as f64;
        let cps = self.ramp_cps_num as f64 / self.ramp_cps_den as f64;
        (span > 0.0 && cps > 0.0).then_some((span, cps))
    }

    fn cps(&self) -> f64 {
        self.cps_num as f64 / self.cps_den as f64
    }

    /// Beats per minute at cycle position `c` (the anchor's tempo before it).
    pub fn bpm_at(&self, c: f64) -> f64 {
        if self.anchor_cycle_den == 0 || self.cps_den == 0 {
            return 0.0;
        }
        let x = c - self.anchor_cycle_num as f64 / self.anchor_cycle_den as f64;
        let cps = match self.ramp() {
            Some((span, to)) => ramp_rate(self.cps(), to, span, x),
            None => self.cps(),
        };
        cps * 60.0 * self.beats_per_cycle as f64
    }

    /// The monotonic time cycle position `c` sounds at, ns (a float: for followers that need
    /// no exactness; the composer's transport is exact).
    pub fn ns_at(&self, c: f64) -> f64 {
        if self.anchor_cycle_den == 0 || self.cps_den == 0 || self.cps_num <= 0 {
            return self.anchor_ns as f64;
        }
        let x = c - self.anchor_cycle_num as f64 / self.anchor_cycle_den as f64;
        let seconds = match self.ramp() {
            Some((span, to)) if x > 0.0 => ramp_seconds(self.cps(), to, span, x),
            _ => x / self.cps(),
        };
        self.anchor_ns as f64 + seconds * 1e9
    }

    /// The cycle position at monotonic time `t_ns` (as a float, for display and followers
    /// that do not need exactness).
    pub fn cycle_at(&self, t_ns: u64) -> f64 {
        if self.anchor_cycle_den == 0 || self.cps_den == 0 {
            return 0.0;
        }
        let base = self.anchor_cycle_num as f64 / self.anchor_cycle_den as f64;
        if self.running == 0 {
            return base;
        }
        let dt = (t_ns as f64 - self.anchor_ns as f64) * 1e-9;
        match self.ramp() {
            Some((span, to)) if dt > 0.0 => base + ramp_position(self.cps(), to, span, dt),
            _ => base + dt * self.cps(),
        }
    }
}

// Rare; history 1 gives a late follower the current state at once.
topic!(TransportState, "khorus/transport", buffer: 16, history: 1, publishers: 4, subscribers: 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpm_and_cycle_position_follow_the_map() {
        let t = TransportState {
            seq: 0,
            t_ns: 0,
            anchor_ns: 1_000_000_000,
            anchor_cycle_num: 3,
            anchor_cycle_den: 2,
            cps_num: 137,
            cps_den: 240,
            beats_per_cycle: 4,
            running: 1,
            ..TransportState::default()
        };
        assert!((t.bpm() - 137.0).abs() < 1e-9);
        assert!((t.cycle_at(3_000_000_000) - (1.5 + 2.0 * 137.0 / 240.0)).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_is_linear_in_position_and_its_time_map_inverts() {
        // 120 -> 140 bpm over 8 cycles of 4 beats.
        let (r0, r1, span) = (0.5, 140.0 / 240.0, 8.0);
        for i in 0..=40 {
            let x = i as f64 * 0.25;
            let t = ramp_seconds(r0, r1, span, x);
            assert!((ramp_position(r0, r1, span, t) - x).abs() < 1e-9, "at {x}");
            // The slope of the time map is 1/rate: a small step checks the integral.
            let h = 1e-6;
            let slope = (ramp_seconds(r0, r1, span, x + h) - t) / h;
            assert!(
                (slope - 1.0 / ramp_rate(r0, r1, span, x)).abs() < 1e-4,
                "at {x}"
            );
        }
        // Faster and faster: 8 cycles take less than at 120 and more than at 140.
        let whole = ramp_seconds(r0, r1, span, span);
        assert!(whole < 16.0 && whole > 8.0 / r1, "{whole}");
        // Past the end, the end's rate; a flat ramp is the constant rate.
        let past = ramp_seconds(r0, r1, span, 10.0) - whole;
        assert!((past - 2.0 / r1).abs() < 1e-9);
        assert!((ramp_seconds(0.5, 0.5, 8.0, 3.0) - 6.0).abs() < 1e-12);
        let t = TransportState {
            anchor_cycle_den: 1,
            cps_num: 1,
            cps_den: 2,
            beats_per_cycle: 4,
            running: 1,
            ramp_end_num: 8,
            ramp_end_den: 1,
            ramp_cps_num: 7,
            ramp_cps_den: 12,
            ..TransportState::default()
        };
        assert!((t.bpm_at(4.0) - 130.0).abs() < 1e-9);
        assert!((t.bpm_at(20.0) - 140.0).abs() < 1e-9);
        let ns = (whole * 1e9) as u64;
        assert!((t.cycle_at(ns) - 8.0).abs() < 1e-6);
        assert!((t.ns_at(8.0) - whole * 1e9).abs() < 1.0);
        assert!((t.ns_at(t.cycle_at(3_000_000_000)) - 3e9).abs() < 1.0);
    }
}
