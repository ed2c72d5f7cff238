//! `khorus/transport`: the composer's clock, so the synth (tempo-synced delays) and the router
//! (MIDI clock, start/stop) can follow it.
//!
//! The map from cycles to monotonic time is exact: at `anchor_ns` the transport was at cycle
//! `anchor_cycle_num / anchor_cycle_den`, advancing `cps_num / cps_den` cycles per second while
//! running. Published whenever it changes, and again when a subscriber joins (so that a
//! newcomer has it at once; `history: 1` alone reaches a newcomer only at the next send).

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// The transport's state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ZeroCopySend, Serialize, Deserialize)]
#[type_name("khorus::TransportState/v2")]
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
        ) == (
            other.anchor_ns,
            other.anchor_cycle_num,
            other.anchor_cycle_den,
            other.cps_num,
            other.cps_den,
            other.beats_per_cycle,
            other.running,
            other.hushes,
        )
    }

    /// Beats per minute.
    pub fn bpm(&self) -> f64 {
        if self.cps_den == 0 {
            return 0.0;
        }
        self.cps_num as f64 / self.cps_den as f64 * 60.0 * self.beats_per_cycle as f64
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
        base + dt * self.cps_num as f64 / self.cps_den as f64
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
}
