//! A [`Sample`]: raw counter deltas over one tick, what every source produces and what a trace
//! records. Rates and levels are derived from it, so replaying samples reproduces frames
//! exactly.

use khorus_bus::SignalSource;
use khorus_bus::signals::{SIGNAL_COUNT, SignalId};
use serde::{Deserialize, Serialize};

/// Raw deltas of every signal over one interval. A plain value (no allocation): sources make
/// one every tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Monotonic time at the end of the interval, ns.
    pub t_ns: u64,
    /// Length of the interval, ns (measured, not nominal).
    pub dt_ns: u64,
    /// Who measured it.
    pub source: SourceKind,
    /// Bit `i`: signal `i` was measured.
    pub available: u32,
    /// Raw delta per signal, in its raw unit (see [`raw_unit`]), indexed by [`SignalId`].
    /// Written to a trace as a sequence with its length (a trace of an older, shorter signal
    /// table reads back padded; [`crate::trace::TraceReader`]).
    #[serde(serialize_with = "as_sequence")]
    pub deltas: [u64; SIGNAL_COUNT],
}

fn as_sequence<S: serde::Serializer>(
    deltas: &[u64; SIGNAL_COUNT],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(deltas)
}

/// Serialisable mirror of [`SignalSource`] (the bus type is `#[repr(u8)]` wire format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// BPF counters.
    Bpf,
    /// procfs counters.
    Procfs,
    /// A replayed trace.
    Replay,
    /// The seeded generator.
    Synthetic,
}

impl From<SourceKind> for SignalSource {
    fn from(k: SourceKind) -> Self {
        match k {
            SourceKind::Bpf => SignalSource::Bpf,
            SourceKind::Procfs => SignalSource::Procfs,
            SourceKind::Replay => SignalSource::Replay,
            SourceKind::Synthetic => SignalSource::Synthetic,
        }
    }
}

impl Sample {
    /// An empty sample (nothing available).
    pub fn new(t_ns: u64, dt_ns: u64, source: SourceKind) -> Self {
        Self {
            t_ns,
            dt_ns,
            source,
            available: 0,
            deltas: [0; SIGNAL_COUNT],
        }
    }

    /// Sets a signal's delta and marks it available.
    pub fn set(&mut self, id: SignalId, delta: u64) {
        if let Some(slot) = self.deltas.get_mut(id.index()) {
            *slot = delta;
            self.available |= 1 << id.index();
        }
    }

    /// A signal's delta, if measured.
    pub fn get(&self, id: SignalId) -> Option<u64> {
        (self.available & (1 << id.index()) != 0)
            .then(|| self.deltas.get(id.index()).copied())
            .flatten()
    }

    /// The signal's rate in its published unit (per second), if measured.
    pub fn rate(&self, id: SignalId) -> Option<f64> {
        let delta = self.get(id)?;
        if self.dt_ns == 0 {
            return Some(0.0);
        }
        let dt_s = self.dt_ns as f64 * 1e-9;
        Some(delta as f64 * raw_unit(id).per_raw / dt_s)
    }
}

/// What a raw delta counts and how it converts to the published unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawUnit {
    /// What one raw count is.
    pub name: &'static str,
    /// Published unit per raw count (per second of interval).
    pub per_raw: f64,
}

/// The raw unit of each signal.
pub fn raw_unit(id: SignalId) -> RawUnit {
    match id {
        SignalId::RX | SignalId::TX | SignalId::IO_READ | SignalId::IO_WRITE => RawUnit {
            name: "byte",
            per_raw: 1.0 / 1024.0,
        },
        // PSI totals are stall microseconds; per second of interval that is 1e-6 of the time,
        // i.e. 1e-4 percent.
        SignalId::MEM_PRESSURE | SignalId::CPU_PRESSURE | SignalId::IO_PRESSURE => RawUnit {
            name: "stall µs",
            per_raw: 1e-4,
        },
        _ => RawUnit {
            name: "event",
            per_raw: 1.0,
        },
    }
}

/// Differences two cumulative counter readings; a counter that went backwards (wrapped or
/// reset, e.g. a network device removed) contributes 0 rather than a huge spike.
pub fn delta(previous: u64, current: u64) -> u64 {
    current.saturating_sub(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_the_measured_interval_and_units() {
        let mut s = Sample::new(0, 20_000_000, SourceKind::Bpf);
        s.set(SignalId::EXEC, 5);
        s.set(SignalId::RX, 1024 * 100);
        s.set(SignalId::MEM_PRESSURE, 10_000); // 10 ms stalled of 20 ms
        assert_eq!(s.rate(SignalId::EXEC), Some(250.0));
        assert_eq!(s.rate(SignalId::RX), Some(5000.0));
        assert!((s.rate(SignalId::MEM_PRESSURE).unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(s.rate(SignalId::CSW), None);
    }

    #[test]
    fn counters_going_backwards_are_not_spikes() {
        assert_eq!(delta(10, 4), 0);
        assert_eq!(delta(4, 10), 6);
    }
}
