//! Pressure stall information: `/proc/pressure/{memory,cpu,io}`.
//!
//! The `some … total=` field is the cumulative time (µs) in which at least one task stalled;
//! its delta over a tick reacts at once, where `avg10` lags by seconds. A missing file (kernel
//! without PSI, or a container hiding it) marks that signal unavailable; it is not an error.

use std::path::{Path, PathBuf};

use khorus_bus::signals::SignalId;

use super::Reading;

/// The PSI files and the signals they feed.
#[derive(Debug, Clone)]
pub struct Psi {
    files: Vec<(SignalId, PathBuf)>,
}

impl Default for Psi {
    fn default() -> Self {
        Self::at(Path::new("/proc/pressure"))
    }
}

impl Psi {
    /// PSI files under `dir` (tests point this at fixtures).
    pub fn at(dir: &Path) -> Self {
        Self {
            files: vec![
                (SignalId::MEM_PRESSURE, dir.join("memory")),
                (SignalId::CPU_PRESSURE, dir.join("cpu")),
                (SignalId::IO_PRESSURE, dir.join("io")),
            ],
        }
    }

    /// Adds the `some` totals to `reading`; files that do not exist stay `None`, files that
    /// exist but cannot be parsed count as read errors.
    pub fn read_into(&self, reading: &mut Reading, read_errors: &mut u64) {
        for (id, path) in &self.files {
            match std::fs::read_to_string(path) {
                Ok(text) => match parse_some_total(&text) {
                    Some(total) => reading[id.index()] = Some(total),
                    None => *read_errors += 1,
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => *read_errors += 1,
            }
        }
    }
}

/// The `total=` of the `some` line.
pub fn parse_some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_some_total() {
        let text = "some avg10=1.50 avg60=0.20 avg300=0.05 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=99\n";
        assert_eq!(parse_some_total(text), Some(123456));
        assert_eq!(parse_some_total("full total=1\n"), None);
        assert_eq!(parse_some_total("some avg10=x total=abc\n"), None);
    }

    #[test]
    fn missing_files_are_unavailable_not_errors() {
        let psi = Psi::at(Path::new("/nonexistent/pressure"));
        let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
        let mut errors = 0;
        psi.read_into(&mut reading, &mut errors);
        assert_eq!(errors, 0);
        assert!(reading.iter().all(Option::is_none));
    }
}
