//! Replaying a recorded trace: the same samples, so the same frames, bit for bit.

use std::path::Path;

use super::{Source, SourceError, Tick};
use crate::sample::SourceKind;
use crate::trace::TraceReader;

/// Plays back a trace; sample times are shifted so the first lands at the first tick.
#[derive(Debug)]
pub struct Replay {
    reader: TraceReader,
    shift: Option<i128>,
}

impl Replay {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        Ok(Self {
            reader: TraceReader::open(path)?,
            shift: None,
        })
    }

    /// The recorded nominal tick, ns.
    pub fn tick_ns(&self) -> u64 {
        self.reader.header().tick_ns
    }
}

impl Source for Replay {
    fn kind(&self) -> SourceKind {
        SourceKind::Replay
    }

    fn tick(&mut self, now_ns: u64, _read_errors: &mut u64) -> Result<Tick, SourceError> {
        let Some(mut sample) = self.reader.next_sample()? else {
            return Ok(Tick::End);
        };
        let shift = *self
            .shift
            .get_or_insert(now_ns as i128 - sample.t_ns as i128);
        sample.t_ns = (sample.t_ns as i128 + shift).max(0) as u64;
        sample.source = SourceKind::Replay;
        Ok(Tick::Sample(sample))
    }
}
