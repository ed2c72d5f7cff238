//! Pressure stall information: `/proc/pressure/{memory,cpu,io}`.
//!
//! The `some … total=` field is the cumulative time (µs) in which at least one task stalled;
//! its delta over a window reacts at once, where `avg10` lags by seconds. A missing file
//! (kernel without PSI, or a container hiding it) marks that signal unavailable; it is not an
//! error.
//!
//! The files are read every [`READ_INTERVAL_NS`], not every tick: reading one costs the
//! kernel a formatted text (three `pread`s were a quarter of the collector's time at 50 ticks
//! a second, and still an eighth at 10), and the pressure signals rise over half a second and
//! more (their attack: 500 ms for CPU and I/O, 1.5 s for memory) anyway. In
//! between, each reports a total that grows at the rate the last read measured, so every
//! tick's difference is that pressure and nothing downstream knows the files were not read.
//! The files stay open and are read from offset 0 into a fixed buffer: one `pread` per file,
//! no path lookup, no open or close, no allocation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use khorus_bus::signals::SignalId;

use super::Reading;

/// How often the PSI files are read, ns (every tick when ticks are longer): at the collector's
/// usual 100 ms tick, every third one.
pub const READ_INTERVAL_NS: u64 = 250_000_000;

/// A read comes due this much before [`READ_INTERVAL_NS`] has passed: ticks fall on the
/// clock's grid give or take a millisecond, and a tick 249.3 ms after the last read must not
/// wait for the next one. Shorter than the shortest tick (20 ms), so a read never comes a
/// whole tick early.
const READ_SLACK_NS: u64 = 10_000_000;

/// The PSI files and the signals they feed.
#[derive(Debug)]
pub struct Psi {
    files: Vec<PsiFile>,
    buf: [u8; 512],
    /// When the files were last read, ns.
    read_at: Option<u64>,
    /// Reads so far (up to 2): the first two are a tick apart, so the first pressure is known
    /// at the second tick (as `--once` prints it), not one interval later.
    reads: u8,
    /// When the totals were last reported, ns.
    reported_at: u64,
}

/// One PSI file: its signal, its path, the file once opened, and what it reports.
#[derive(Debug)]
struct PsiFile {
    id: SignalId,
    path: PathBuf,
    file: Option<File>,
    /// The total at the last read, µs, and when it was read (None: unavailable).
    last: Option<(u64, u64)>,
    /// Stall µs per ns between the last two reads.
    rate: f64,
    /// The total reported, µs: it grows at `rate` between reads.
    reported: f64,
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
            last: None,
            rate: 0.0,
            reported: 0.0,
        };
        Self {
            files: vec![
                file(SignalId::MEM_PRESSURE, "memory"),
                file(SignalId::CPU_PRESSURE, "cpu"),
                file(SignalId::IO_PRESSURE, "io"),
            ],
            buf: [0; 512],
            read_at: None,
            reads: 0,
            reported_at: 0,
        }
    }

    /// Adds the `some` totals at `now_ns` to `reading`, reading the files if
    /// [`READ_INTERVAL_NS`] has passed since they were last read. Files that do not exist stay
    /// `None`; files that exist but cannot be read or parsed count as read errors, stay `None`
    /// until read again, and are opened again then.
    pub fn read_into(&mut self, now_ns: u64, reading: &mut Reading, read_errors: &mut u64) {
        let due = self.reads < 2
            || self
                .read_at
                .is_none_or(|t| now_ns.saturating_sub(t) + READ_SLACK_NS >= READ_INTERVAL_NS);
        let since = now_ns.saturating_sub(self.reported_at) as f64;
        for f in &mut self.files {
            if due {
                match f.read_total(&mut self.buf, read_errors) {
                    Some(total) => {
                        match f.last {
                            Some((then, before)) if now_ns > then => {
                                f.rate =
                                    total.saturating_sub(before) as f64 / (now_ns - then) as f64;
                            }
                            Some(_) => {}
                            // Available again (or for the first time): the real total.
                            None => (f.rate, f.reported) = (0.0, total as f64),
                        }
                        f.last = Some((now_ns, total));
                    }
                    None => f.last = None,
                }
            }
            if f.last.is_some() {
                f.reported += f.rate * since;
                reading[f.id.index()] = Some(f.reported as u64);
            }
        }
        if due {
            self.read_at = Some(now_ns);
            self.reads = self.reads.saturating_add(1);
        }
        self.reported_at = now_ns;
    }
}

impl PsiFile {
    /// Reads one file's total (opening it if needed).
    fn read_total(&mut self, buf: &mut [u8], read_errors: &mut u64) -> Option<u64> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(_) => {
                    *read_errors += 1;
                    return None;
                }
            }
        }
        let file = self.file.as_ref()?;
        let total = file
            .read_at(buf, 0)
            .ok()
            .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
            .and_then(parse_some_total);
        if total.is_none() {
            *read_errors += 1;
            self.file = None;
        }
        total
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
        psi.read_into(0, &mut reading, &mut errors);
        assert_eq!(reading[SignalId::CPU_PRESSURE.index()], Some(5));
        // The same open file, rewritten in place: the next read sees the new total.
        write(1234567);
        psi.read_into(READ_INTERVAL_NS, &mut reading, &mut errors);
        assert_eq!(reading[SignalId::IO_PRESSURE.index()], Some(1234567));
        assert_eq!(errors, 0);
    }

    /// The per-tick differences of what `psi` reports for CPU pressure at `ticks` (ns), with
    /// the file's total set by `total(t)` before each tick.
    fn deltas(dir: &Path, ticks: &[u64], total: impl Fn(u64) -> u64) -> Vec<Option<u64>> {
        let mut psi = Psi::at(dir);
        let mut errors = 0;
        let mut before = None;
        let out = ticks
            .iter()
            .map(|&t| {
                std::fs::write(dir.join("cpu"), format!("some total={}\n", total(t))).unwrap();
                let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
                psi.read_into(t, &mut reading, &mut errors);
                let now = reading[SignalId::CPU_PRESSURE.index()];
                let d = before.zip(now).map(|(a, b): (u64, u64)| b - a);
                before = now;
                d
            })
            .collect();
        assert_eq!(errors, 0);
        out
    }

    #[test]
    fn files_are_read_at_their_own_rate_and_each_tick_carries_the_last_pressure_read() {
        let dir = tempfile::tempdir().unwrap();
        let ms = 1_000_000;
        // 20 ms ticks; the stall grows 5 ms per 10 ms (50 %) until 100 ms, then 2 ms per 10 ms.
        let total = |t: u64| {
            let t = t / 10_000; // 10 µs units → µs of stall at 50 %: t * 5
            if t <= 10_000 {
                t * 5
            } else {
                50_000 + (t - 10_000) * 2
            }
        };
        assert_eq!(
            READ_INTERVAL_NS,
            250 * ms,
            "the reads below are at 0, 20, 260 and 500 ms"
        );
        let ticks: Vec<u64> = (0..=30).map(|k| k * 20 * ms).collect();
        let d = deltas(dir.path(), &ticks, total);
        let near = |got: &[Option<u64>], want: u64| {
            got.iter().all(|x| x.is_some_and(|x| x.abs_diff(want) <= 1))
        };
        assert_eq!(d[0], None);
        // Read at 0 and 20 ms (the first pressure is known at once): 50 % of each 20 ms tick
        // until the next read, at 260 ms (250 ms after the last, on the 20 ms grid)…
        assert!(near(&d[1..=12], 10_000), "{d:?}");
        // …which measured 30 % over 20–260 ms (the change at 100 ms was not seen before it)…
        assert!(near(&d[13..=24], 6_000), "{d:?}");
        // …and the one at 500 ms, 20 %.
        assert!(near(&d[25..], 4_000), "{d:?}");
    }

    #[test]
    fn ticks_of_the_interval_read_every_time_though_they_come_a_little_early() {
        let dir = tempfile::tempdir().unwrap();
        let us = 1_000;
        // Ticks of the interval as the grid gives them: 250, 249.3, 250.6, 249.1 ms apart; 10 %
        // stall between the first two ticks, then 30 %, then 50 %, then 20 %.
        assert_eq!(READ_INTERVAL_NS, 250_000 * us);
        let ticks = [0, 250_000 * us, 499_300 * us, 749_900 * us, 999_000 * us];
        let stall = [0, 25_000, 99_790, 225_090, 274_910];
        let d = deltas(dir.path(), &ticks, |t| {
            stall[ticks.iter().position(|&x| x == t).unwrap()]
        });
        // Each tick's own stall: every tick read the file.
        assert_eq!(
            d,
            vec![
                None,
                Some(25_000),
                Some(74_790),
                Some(125_300),
                Some(49_820)
            ]
        );
    }

    #[test]
    fn ticks_longer_than_the_interval_read_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = 1_000_000_000;
        let d = deltas(dir.path(), &[0, s, 2 * s, 3 * s], |t| {
            (t / s) * (t / s) * 1_000
        });
        // Totals 0, 1000, 4000, 9000 µs: each tick's own stall, measured at that tick.
        assert_eq!(d, vec![None, Some(1_000), Some(3_000), Some(5_000)]);
    }

    #[test]
    fn the_real_files_parse_when_the_kernel_has_them() {
        let mut psi = Psi::default();
        let mut reading = [None; khorus_bus::signals::SIGNAL_COUNT];
        let mut errors = 0;
        for k in 0..3 {
            psi.read_into(k * READ_INTERVAL_NS, &mut reading, &mut errors);
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
        psi.read_into(0, &mut reading, &mut errors);
        assert_eq!(errors, 0);
        assert!(reading.iter().all(Option::is_none));
    }
}
