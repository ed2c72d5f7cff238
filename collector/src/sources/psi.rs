//! Pressure stall information: `/proc/pressure/{memory,cpu,io}`.
//!
//! The `some … total=` field is the cumulative time (µs) in which at least one task stalled;
//! its delta over a tick reacts at once, where `avg10` lags by seconds. A missing file (kernel
//! without PSI, or a container hiding it) marks that signal unavailable; it is not an error.
//!
//! The files stay open and are read from offset 0 into a fixed buffer each tick: one `pread`
//! per file, no path lookup, no open or close, no allocation (50 times a second, all day).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use khorus_bus::signals::SignalId;

use super::Reading;

/// The PSI files and the signals they feed.
#[derive(Debug)]
pub struct Psi {
    files: Vec<PsiFile>,
    buf: [u8; 512],
}

/// One PSI file: its signal, its path, and the file once opened.
#[derive(Debug)]
struct PsiFile {
    id: SignalId,
    path: PathBuf,
    file: Option<File>,
}

impl Default for Psi {
    fn default() -> Self {
        Self::at(Path::new("/proc/pressure"))
    }
}

impl Psi {
    /// PSI files under `dir` (tests point this at fixtures).
    pub fn at(dir: &Path) -> Self {
        let file = |id, name| PsiFile {
            id,
            path: dir.join(name),
            file: None,
        };
        Self {
            files: vec![
                file(SignalId::MEM_PRESSURE, "memory"),
                file(SignalId::CPU_PRESSURE, "cpu"),
                file(SignalId::IO_PRESSURE, "io"),
            ],
            buf: [0; 512],
        }
    }

    /// Adds the `some` totals to `reading`; files that do not exist stay `None`, files that
    /// exist but cannot be read or parsed count as read errors (and are opened again next
    /// time).
    pub fn read_into(&mut self, reading: &mut Reading, read_errors: &mut u64) {
        for f in &mut self.files {
            if f.file.is_none() {
                match File::open(&f.path) {
                    Ok(file) => f.file = Some(file),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(_) => {
                        *read_errors += 1;
                        continue;
                    }
                }
            }
            let Some(file) = &f.file else { continue };
            let total = file
                .read_at(&mut self.buf, 0)
                .ok()
                .and_then(|n| std::str::from_utf8(&self.buf[..n]).ok())
                .and_then(parse_some_total);
            match total {
                Some(total) => reading[f.id.index()] = Some(total),
                None => {
                    *read_errors += 1;
                    f.file = None;
                }
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
    fn open_files_are_read_again_from_the_start_and_follow_changes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |total: u64| {
            for name in ["memory", "cpu", "io"] {
                std::fs::write(
                    dir.path().join(name),
                    format!("some avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n"),
                )
                .unwrap();
            }
        };
        write(5);
        let mut psi = Psi::at(dir.path());
        let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
        let mut errors = 0;
        psi.read_into(&mut reading, &mut errors);
        assert_eq!(reading[SignalId::CPU_PRESSURE.index()], Some(5));
        // The same open file, rewritten in place: the next read sees the new total.
        write(1234567);
        psi.read_into(&mut reading, &mut errors);
        assert_eq!(reading[SignalId::IO_PRESSURE.index()], Some(1234567));
        assert_eq!(errors, 0);
    }

    #[test]
    fn the_real_files_parse_when_the_kernel_has_them() {
        let mut psi = Psi::default();
        let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
        let mut errors = 0;
        for _ in 0..3 {
            psi.read_into(&mut reading, &mut errors);
        }
        assert_eq!(errors, 0);
        if Path::new("/proc/pressure/cpu").exists() {
            assert!(reading[SignalId::CPU_PRESSURE.index()].is_some());
        }
    }

    #[test]
    fn parses_the_some_total() {
        let text = "some avg10=1.50 avg60=0.20 avg300=0.05 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=99\n";
        assert_eq!(parse_some_total(text), Some(123456));
        assert_eq!(parse_some_total("full total=1\n"), None);
        assert_eq!(parse_some_total("some avg10=x total=abc\n"), None);
    }

    #[test]
    fn missing_files_are_unavailable_not_errors() {
        let mut psi = Psi::at(Path::new("/nonexistent/pressure"));
        let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
        let mut errors = 0;
        psi.read_into(&mut reading, &mut errors);
        assert_eq!(errors, 0);
        assert!(reading.iter().all(Option::is_none));
    }
}
