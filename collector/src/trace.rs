//! Recorded traces: the raw samples of a performance, so it can be replayed bit for bit.
//!
//! Layout: the magic `KHORUSTR`, a little-endian `u32` version, then length-prefixed bincode
//! records (`u32` little-endian length, then the record): first a [`TraceHeader`], then one
//! [`Sample`] per tick. A trace is written to `<path>.partial` and renamed into place when
//! finished, so a reader never sees a half-written file under the final name. Reading never
//! panics; every error names the byte offset where the file stops making sense.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use khorus_bus::signals::{SIGNAL_COUNT, SIGNALS};
use serde::{Deserialize, Serialize};

use crate::sample::{Sample, SourceKind};

/// First bytes of every trace.
pub const MAGIC: &[u8; 8] = b"KHORUSTR";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Largest record accepted, bytes.
const MAX_RECORD: usize = 64 * 1024;

fn codec() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// What the trace was recorded with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Nominal tick, ns.
    pub tick_ns: u64,
    /// The source that was recorded.
    pub source: SourceKind,
    /// Signal names by index at recording time (the table is append-only).
    pub signals: Vec<String>,
}

impl TraceHeader {
    /// A header for this build's signal table.
    pub fn new(tick_ns: u64, source: SourceKind) -> Self {
        Self {
            tick_ns,
            source,
            signals: SIGNALS.iter().map(|s| s.name.to_string()).collect(),
        }
    }
}

/// Why a trace could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened, read or written (the message is the path; the I/O
    /// error is the source, which the `{:#}` chain prints after it).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a khorus trace.
    #[error("not a khorus trace (bad magic at byte offset 0)")]
    BadMagic,
    /// Written by an incompatible version.
    #[error("unsupported trace version {version} at byte offset 8 (this build reads {VERSION})")]
    Version {
        /// The file's version.
        version: u32,
    },
    /// The file ends inside a record.
    #[error("trace truncated at byte offset {offset}: {needed} more bytes expected")]
    Truncated {
        /// Where the incomplete part starts.
        offset: usize,
        /// How many bytes are missing.
        needed: usize,
    },
    /// A record does not decode or does not fit the header.
    #[error("corrupt trace record at byte offset {offset}: {detail}")]
    Corrupt {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
}

/// Writes a trace; call [`TraceWriter::finish`] to put it in place.
#[derive(Debug)]
pub struct TraceWriter {
    file: BufWriter<File>,
    partial: PathBuf,
    path: PathBuf,
    records: u64,
}

impl TraceWriter {
    /// Starts `<path>.partial` with `header`.
    pub fn create(path: &Path, header: &TraceHeader) -> Result<Self, TraceError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let io = |source| TraceError::Io {
            path: partial.clone(),
            source,
        };
        let mut file = BufWriter::new(File::create(&partial).map_err(io)?);
        file.write_all(MAGIC).map_err(io)?;
        file.write_all(&VERSION.to_le_bytes()).map_err(io)?;
        let mut w = Self {
            file,
            partial: partial.clone(),
            path: path.to_path_buf(),
            records: 0,
        };
        w.record(header)?;
        Ok(w)
    }

    fn record<T: Serialize>(&mut self, value: &T) -> Result<(), TraceError> {
        let bytes =
            bincode::serde::encode_to_vec(value, codec()).map_err(|e| TraceError::Corrupt {
                offset: 0,
                detail: format!("cannot encode: {e}"),
            })?;
        let io = |source| TraceError::Io {
            path: self.partial.clone(),
            source,
        };
        self.file
            .write_all(&(bytes.len() as u32).to_le_bytes())
            .map_err(io)?;
        self.file.write_all(&bytes).map_err(io)
    }

    /// Appends one sample.
    pub fn write(&mut self, sample: &Sample) -> Result<(), TraceError> {
        self.record(sample)?;
        self.records += 1;
        Ok(())
    }

    /// Flushes, syncs and renames the trace into place; returns the number of samples.
    pub fn finish(self) -> Result<u64, TraceError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TraceError::Io { path, source }
        };
        let file = self
            .file
            .into_inner()
            .map_err(|e| io(&self.partial)(e.into_error()))?;
        file.sync_all().map_err(io(&self.partial))?;
        std::fs::rename(&self.partial, &self.path).map_err(io(&self.path))?;
        Ok(self.records)
    }
}

/// Reads a trace held in memory.
#[derive(Debug)]
pub struct TraceReader {
    bytes: Vec<u8>,
    offset: usize,
    header: TraceHeader,
}

impl TraceReader {
    /// Reads and checks the file's header.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes)
    }

    /// Checks the header of a trace held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TraceError> {
        if bytes.len() < 12 {
            if !MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
                return Err(TraceError::BadMagic);
            }
            return Err(TraceError::Truncated {
                offset: bytes.len(),
                needed: 12 - bytes.len(),
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(TraceError::Version { version });
        }
        let mut reader = Self {
            bytes,
            offset: 12,
            header: TraceHeader::new(0, SourceKind::Replay),
        };
        let start = reader.offset;
        let header: TraceHeader = reader.record()?.ok_or(TraceError::Truncated {
            offset: start,
            needed: 4,
        })?;
        let known = SIGNALS.iter().map(|s| s.name);
        if header.signals.len() > SIGNAL_COUNT
            || !header
                .signals
                .iter()
                .map(String::as_str)
                .zip(known)
                .all(|(a, b)| a == b)
        {
            return Err(TraceError::Corrupt {
                offset: start,
                detail: format!(
                    "signal table {:?} does not match this build's (append-only) table",
                    header.signals
                ),
            });
        }
        if header.tick_ns == 0 {
            return Err(TraceError::Corrupt {
                offset: start,
                detail: "tick of 0 ns".into(),
            });
        }
        reader.header = header;
        Ok(reader)
    }

    /// The trace's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    fn record<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, TraceError> {
        let start = self.offset;
        let rest = &self.bytes[start..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < 4 {
            return Err(TraceError::Truncated {
                offset: start,
                needed: 4 - rest.len(),
            });
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_RECORD {
            return Err(TraceError::Corrupt {
                offset: start,
                detail: format!("record length {len} exceeds {MAX_RECORD}"),
            });
        }
        if rest.len() < 4 + len {
            return Err(TraceError::Truncated {
                offset: start,
                needed: 4 + len - rest.len(),
            });
        }
        let body = &rest[4..4 + len];
        let (value, used) =
            bincode::serde::decode_from_slice::<T, _>(body, codec()).map_err(|e| {
                TraceError::Corrupt {
                    offset: start,
                    detail: e.to_string(),
                }
            })?;
        if used != len {
            return Err(TraceError::Corrupt {
                offset: start,
                detail: format!("{} unused bytes in the record", len - used),
            });
        }
        self.offset = start + 4 + len;
        Ok(Some(value))
    }

    /// The next sample, `None` at the end.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, TraceError> {
        let start = self.offset;
        let Some(r) = self.record::<Recorded>()? else {
            return Ok(None);
        };
        if r.deltas.len() != self.header.signals.len() || r.deltas.len() > SIGNAL_COUNT {
            return Err(TraceError::Corrupt {
                offset: start,
                detail: format!(
                    "{} deltas for {} signals",
                    r.deltas.len(),
                    self.header.signals.len()
                ),
            });
        }
        // Traces from an older (shorter) table: the newer signals are simply unavailable.
        let mut deltas = [0; SIGNAL_COUNT];
        deltas[..r.deltas.len()].copy_from_slice(&r.deltas);
        Ok(Some(Sample {
            t_ns: r.t_ns,
            dt_ns: r.dt_ns,
            source: r.source,
            available: r.available & (1u64 << r.deltas.len()).wrapping_sub(1) as u32,
            deltas,
        }))
    }
}

/// A [`Sample`] as a trace holds it: its fields in order, the deltas as long as the trace's
/// signal table.
#[derive(serde::Deserialize)]
struct Recorded {
    t_ns: u64,
    dt_ns: u64,
    source: SourceKind,
    available: u32,
    deltas: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use khorus_bus::signals::SignalId;
    use proptest::prelude::*;

    fn samples(n: u64) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let mut s = Sample::new(1_000 + i * 20_000_000, 20_000_000, SourceKind::Bpf);
                s.set(SignalId::CSW, i * 37);
                s.set(SignalId::RX, i << 20);
                s
            })
            .collect()
    }

    #[test]
    fn a_sample_is_recorded_with_its_deltas_as_a_sequence_as_before() {
        // The layout traces had when the deltas were a `Vec`: older traces read, newer ones
        // are read by older builds.
        #[derive(serde::Serialize)]
        struct WithVec {
            t_ns: u64,
            dt_ns: u64,
            source: SourceKind,
            available: u32,
            deltas: Vec<u64>,
        }
        for s in samples(3) {
            let old = WithVec {
                t_ns: s.t_ns,
                dt_ns: s.dt_ns,
                source: s.source,
                available: s.available,
                deltas: s.deltas.to_vec(),
            };
            assert_eq!(
                bincode::serde::encode_to_vec(&s, codec()).unwrap(),
                bincode::serde::encode_to_vec(&old, codec()).unwrap()
            );
        }
    }

    fn encoded(n: u64) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.trace");
        let mut w =
            TraceWriter::create(&path, &TraceHeader::new(20_000_000, SourceKind::Bpf)).unwrap();
        for s in samples(n) {
            w.write(&s).unwrap();
        }
        assert!(
            !path.exists(),
            "only the .partial file exists before finish"
        );
        assert_eq!(w.finish().unwrap(), n);
        std::fs::read(&path).unwrap()
    }

    fn read_all(bytes: Vec<u8>) -> Result<Vec<Sample>, TraceError> {
        let mut r = TraceReader::from_bytes(bytes)?;
        let mut out = Vec::new();
        while let Some(s) = r.next_sample()? {
            out.push(s);
        }
        Ok(out)
    }

    #[test]
    fn round_trips() {
        assert_eq!(read_all(encoded(50)).unwrap(), samples(50));
    }

    #[test]
    fn truncation_names_the_offset() {
        let bytes = encoded(3);
        let cut = bytes.len() - 5;
        let err = read_all(bytes[..cut].to_vec()).unwrap_err();
        let TraceError::Truncated { offset, needed } = err else {
            panic!("{err}")
        };
        assert!(offset < cut && needed == 5, "{offset} {needed}");
        assert!(err_string(&bytes[..cut]).contains("byte offset"));
    }

    fn err_string(bytes: &[u8]) -> String {
        read_all(bytes.to_vec()).unwrap_err().to_string()
    }

    #[test]
    fn bad_magic_and_version_are_named() {
        let mut bytes = encoded(1);
        bytes[0] = b'X';
        assert!(matches!(read_all(bytes.clone()), Err(TraceError::BadMagic)));
        bytes[0] = b'K';
        bytes[8] = 9;
        assert!(matches!(
            read_all(bytes),
            Err(TraceError::Version { version: 9 })
        ));
        assert!(matches!(
            read_all(vec![]),
            Err(TraceError::Truncated { offset: 0, .. })
        ));
    }

    proptest! {
        #[test]
        fn corrupt_bytes_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let mut bytes = encoded(4);
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            let n = bytes.len();
            bytes.truncate(cut % (n + 1));
            let _ = read_all(bytes);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&VERSION.to_le_bytes());
            with_magic.extend_from_slice(&bytes);
            let _ = read_all(with_magic);
            let _ = read_all(bytes);
        }
    }
}
