//! What `/proc` says about a stage: CPU time, wake-ups and proportional memory (PSS), read
//! only when someone asks for status.

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

/// What a process's threads have used so far: CPU time (from each thread's `schedstat`, in
/// ns, not the clock ticks of `/proc/PID/stat`, which are 10 ms: a stage at 0.01 % of a core
/// uses one tick in 100 s) and wake-ups (voluntary context switches: each a sleep that
/// ended). A thread that exits between two readings takes its share with it.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    cpu_ns: u64,
    wakes: u64,
    at: Instant,
}

/// One thread's CPU time (ns) and voluntary context switches so far, from its `/proc`
/// directory.
fn thread_usage(dir: &std::path::Path) -> Option<(u64, u64)> {
    let ns = std::fs::read_to_string(dir.join("schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let switches = std::fs::read_to_string(dir.join("status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()?;
    Some((ns, switches))
}

/// Use between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// % of one core.
    pub cpu_percent: f64,
    /// Wake-ups a second, all threads together.
    pub wakes_per_s: f64,
}

impl Usage {
    /// Reads `pid` now; `None` when it is gone.
    pub fn now(pid: u32) -> Option<Self> {
        let (mut cpu_ns, mut wakes, mut threads) = (0u64, 0u64, 0usize);
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            if let Some((ns, switches)) = thread_usage(&task.path()) {
                cpu_ns += ns;
                wakes += switches;
                threads += 1;
            }
        }
        if threads == 0 {
            // No schedstat (a kernel without CONFIG_SCHED_INFO): the process's clock ticks.
            let ticks = cpu_ticks(pid)?;
            cpu_ns = (ticks as f64 / ticks_per_s() * 1e9) as u64;
        }
        Some(Self {
            cpu_ns,
            wakes,
            at: Instant::now(),
        })
    }

    /// Use since `earlier` (at least 50 ms before).
    pub fn since(&self, earlier: &Usage) -> Option<Rates> {
        let dt = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        (dt > 0.05).then(|| Rates {
            cpu_percent: self.cpu_ns.saturating_sub(earlier.cpu_ns) as f64 / 1e9 / dt * 100.0,
            wakes_per_s: self.wakes.saturating_sub(earlier.wakes) as f64 / dt,
        })
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
        assert!(Usage::now(u32::MAX).is_none());
    }

    #[test]
    fn usage_counts_this_threads_wake_ups_and_cpu_time() {
        // This thread alone: the other tests' threads come and go, and a thread that exits
        // takes its counts out of the process's sums.
        let me = std::path::Path::new("/proc/thread-self");
        let (ns0, wakes0) = thread_usage(me).unwrap();
        // Twenty sleeps (each ends in a wake-up: the thing measured, not a synchronisation),
        // then some work.
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 20 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (ns1, wakes1) = thread_usage(me).unwrap();
        assert!(wakes1 >= wakes0 + 20, "{wakes0} → {wakes1}");
        // At least most of the 20 ms of work (the thread may be preempted a little).
        assert!(ns1 >= ns0 + 10_000_000, "{ns0} → {ns1}");
        // The process's sums, and rates between two readings.
        let pid = std::process::id();
        let before = Usage::now(pid).unwrap();
        let later = Usage {
            cpu_ns: before.cpu_ns + 5_000_000,
            wakes: before.wakes + 10,
            at: before.at + std::time::Duration::from_millis(100),
        };
        let r = later.since(&before).unwrap();
        assert!((r.cpu_percent - 5.0).abs() < 1e-9, "{r:?}");
        assert!((r.wakes_per_s - 100.0).abs() < 1e-9, "{r:?}");
        // Too close together to say anything.
        assert_eq!(before.since(&before), None);
    }
}
