//! What `/proc` says about a stage: CPU time and proportional memory (PSS), read only when
//! someone asks for status.

use std::time::Instant;

/// CPU time (user + system) of `pid` so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second.
pub fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Proportional set size of `pid`, KiB.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU use between two readings.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    ticks: u64,
    at: Instant,
}

impl CpuSample {
    /// Reads `pid` now.
    pub fn now(pid: u32) -> Option<Self> {
        Some(Self {
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
        })
    }

    /// % of one core used since `earlier`.
    pub fn percent_since(&self, earlier: &CpuSample) -> Option<f64> {
        let dt = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        (dt > 0.05)
            .then(|| self.ticks.saturating_sub(earlier.ticks) as f64 / ticks_per_s() / dt * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(pss_kib(me).unwrap() > 0);
        assert!(cpu_ticks(u32::MAX).is_none());
    }
}
