//! Signal sources. Counter sources (BPF, procfs) read cumulative counters on each tick and a
//! [`Differencer`] turns two readings into a [`Sample`] using the real elapsed time; replay and
//! synthetic sources produce samples directly.

pub mod bpf;
pub mod procfs;
pub mod psi;
pub mod replay;
pub mod synthetic;

use khorus_bus::signals::{SIGNAL_COUNT, SignalId};

use crate::sample::{Sample, SourceKind, delta};

/// Cumulative counters per signal at one instant; `None` = not measurable now.
pub type Reading = [Option<u64>; SIGNAL_COUNT];

/// Why a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A counter file or map could not be read.
    #[error("failed to read {what}: {detail}")]
    Read {
        /// What was being read.
        what: String,
        /// Why not.
        detail: String,
    },
    /// The replayed trace is invalid.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
}

/// What a source gives on a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// A measured interval.
    Sample(Sample),
    /// The first reading of a counter source: nothing to difference yet.
    Primed,
    /// A replayed trace has no more samples.
    End,
}

/// Something that yields a [`Tick`] when asked.
pub trait Source {
    /// Which kind of source this is.
    fn kind(&self) -> SourceKind;
    /// Reads at monotonic time `now_ns`. `read_errors` counts counters that failed to read
    /// this time (they are marked unavailable in the sample, not fatal).
    fn tick(&mut self, now_ns: u64, read_errors: &mut u64) -> Result<Tick, SourceError>;
    /// BPF programs attached (0 for other sources).
    fn programs_attached(&self) -> u64 {
        0
    }
}

/// Reads cumulative counters.
pub trait Counters {
    /// Which source this is.
    fn kind(&self) -> SourceKind;
    /// Reads every counter at `now_ns` (the tick's time).
    fn read(&mut self, now_ns: u64, read_errors: &mut u64) -> Reading;
}

/// Turns successive cumulative readings into samples.
#[derive(Debug)]
pub struct Differencer<C> {
    counters: C,
    previous: Option<(u64, Reading)>,
}

impl<C: Counters> Differencer<C> {
    /// Wraps a counter reader.
    pub fn new(counters: C) -> Self {
        Self {
            counters,
            previous: None,
        }
    }

    /// The wrapped reader.
    pub fn counters(&self) -> &C {
        &self.counters
    }
}

impl<C: Counters> Source for Differencer<C> {
    fn kind(&self) -> SourceKind {
        self.counters.kind()
    }

    fn tick(&mut self, now_ns: u64, read_errors: &mut u64) -> Result<Tick, SourceError> {
        let reading = self.counters.read(now_ns, read_errors);
        let Some((then, previous)) = self.previous.replace((now_ns, reading)) else {
            return Ok(Tick::Primed);
        };
        let mut sample = Sample::new(now_ns, now_ns.saturating_sub(then), self.counters.kind());
        for i in 0..SIGNAL_COUNT {
            if let (Some(a), Some(b)) = (previous[i], reading[i]) {
                sample.set(SignalId(i as u8), delta(a, b));
            }
        }
        Ok(Tick::Sample(sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<Reading>);

    impl Counters for Fake {
        fn kind(&self) -> SourceKind {
            SourceKind::Procfs
        }
        fn read(&mut self, _: u64, _: &mut u64) -> Reading {
            self.0.remove(0)
        }
    }

    #[test]
    fn differences_use_real_elapsed_time_and_availability() {
        let mut r0 = [None; SIGNAL_COUNT];
        let mut r1 = [None; SIGNAL_COUNT];
        r0[SignalId::CSW.index()] = Some(100);
        r1[SignalId::CSW.index()] = Some(160);
        r1[SignalId::EXEC.index()] = Some(5); // appeared: no previous value, not available
        let mut d = Differencer::new(Fake(vec![r0, r1]));
        let mut errors = 0;
        assert_eq!(d.tick(1_000, &mut errors).unwrap(), Tick::Primed);
        let Tick::Sample(s) = d.tick(21_001_000, &mut errors).unwrap() else {
            panic!()
        };
        assert_eq!(s.dt_ns, 21_000_000);
        assert_eq!(s.get(SignalId::CSW), Some(60));
        assert_eq!(s.get(SignalId::EXEC), None);
    }
}
