//! What `/proc` says about a stage: CPU time, wake-ups and proportional memory (PSS), read
//! only when someone asks for status, and then at most so often ([`Sampler`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// The time on a CPU (ns): the first field of a thread's `schedstat`.
fn run_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// The `voluntary_ctxt_switches:` of a thread's `status`.
fn voluntary_switches(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

/// One thread's two files, open.
#[derive(Debug)]
struct TaskFiles {
    tid: u32,
    schedstat: File,
    status: File,
}

impl TaskFiles {
    fn open(dir: &Path, tid: u32) -> Option<Self> {
        Some(Self {
            tid,
            schedstat: File::open(dir.join("schedstat")).ok()?,
            status: File::open(dir.join("status")).ok()?,
        })
    }

    /// CPU time (ns) and voluntary context switches now; `None` once the thread is gone.
    fn read(&self, buf: &mut [u8]) -> Option<(u64, u64)> {
        let ns = run_ns(read_text(&self.schedstat, buf)?)?;
        let switches = voluntary_switches(read_text(&self.status, buf)?)?;
        Some((ns, switches))
    }
}

/// An open `/proc` file's text now (read from its start: the kernel makes it anew).
fn read_text<'a>(f: &File, buf: &'a mut [u8]) -> Option<&'a str> {
    let n = f.read_at(buf, 0).ok().filter(|&n| n > 0)?;
    std::str::from_utf8(&buf[..n]).ok()
}

/// A process's per-thread `/proc` files, kept open from one reading to the next: a reading
/// is then one listing of its threads and a `pread` per file, where opening them afresh
/// cost a path lookup, an open and a close each (two files per thread, every second of a
/// `khorus status --watch`). Threads that appear are opened, those gone are dropped.
#[derive(Debug)]
pub struct Tasks {
    pid: u32,
    open: Vec<TaskFiles>,
    buf: Vec<u8>,
}

impl Tasks {
    /// `pid`'s threads (opened at the first reading).
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            open: Vec::new(),
            buf: vec![0; 8192],
        }
    }

    /// What the process's threads have used so far; `None` when it is gone.
    pub fn usage(&mut self) -> Option<Usage> {
        let dir = std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let (mut cpu_ns, mut wakes) = (0u64, 0u64);
        let mut kept = Vec::with_capacity(self.open.len());
        for task in dir.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let known = self
                .open
                .iter()
                .position(|t| t.tid == tid)
                .map(|i| self.open.swap_remove(i));
            // A file kept open reads nothing once its thread is gone; its id may be a new
            // thread's by now, opened afresh.
            let buf = &mut self.buf;
            let read = known.and_then(|t| t.read(buf).map(|u| (t, u))).or_else(|| {
                let t = TaskFiles::open(&task.path(), tid)?;
                t.read(buf).map(|u| (t, u))
            });
            if let Some((t, (ns, switches))) = read {
                cpu_ns += ns;
                wakes += switches;
                kept.push(t);
            }
        }
        self.open = kept;
        if self.open.is_empty() {
            // No schedstat (a kernel without CONFIG_SCHED_INFO): the process's clock ticks.
            let ticks = cpu_ticks(self.pid)?;
            cpu_ns = (ticks as f64 / ticks_per_s() * 1e9) as u64;
        }
        Some(Usage {
            cpu_ns,
            wakes,
            at: Instant::now(),
        })
    }
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
    /// Use since `earlier` (at least 50 ms before).
    pub fn since(&self, earlier: &Usage) -> Option<Rates> {
        let dt = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        (dt > 0.05).then(|| Rates {
            cpu_percent: self.cpu_ns.saturating_sub(earlier.cpu_ns) as f64 / 1e9 / dt * 100.0,
            wakes_per_s: self.wakes.saturating_sub(earlier.wakes) as f64 / dt,
        })
    }
}

/// Status asked for more often than this shares the last CPU and wake-up rates: each reading
/// reads two files per thread of the stage.
pub const RATES_WINDOW: Duration = Duration::from_millis(500);

/// PSS is read again only when older than this. The kernel walks every page table of the
/// process to sum it (`smaps_rollup`): ~60 % of what a status cost control, for a figure that
/// moves by tenths of a MiB in minutes.
pub const PSS_MAX_AGE: Duration = Duration::from_secs(10);

/// A stage's `/proc` figures for status, read lazily: however often status is asked (a
/// `--watch`, later a web page polling), `/proc` is read at most once per [`RATES_WINDOW`]
/// for CPU and wake-ups and once per [`PSS_MAX_AGE`] for PSS.
#[derive(Debug)]
pub struct Sampler {
    pid: u32,
    tasks: Tasks,
    /// The reading the next rates are measured from.
    usage: Option<Usage>,
    /// The rates up to `usage`.
    rates: Option<Rates>,
    pss: Option<(u64, Instant)>,
}

impl Sampler {
    /// Starts measuring `pid` now (rates are measured from this reading).
    pub fn new(pid: u32) -> Self {
        let mut tasks = Tasks::new(pid);
        Self {
            pid,
            usage: tasks.usage(),
            tasks,
            rates: None,
            pss: None,
        }
    }

    /// CPU and wake-up rates (over the last window of at least [`RATES_WINDOW`], or since the
    /// start while there was none) and PSS (KiB) at `now`.
    pub fn sample(&mut self, now: Instant) -> (Option<Rates>, Option<u64>) {
        let recent = |at: Instant| now.saturating_duration_since(at) < RATES_WINDOW;
        if self.rates.is_none() || self.usage.is_none_or(|u| !recent(u.at)) {
            let reading = self.tasks.usage();
            if let Some(r) = reading {
                match self.usage {
                    // Too close to the last reading to measure: keep measuring from it.
                    Some(before) => {
                        if let Some(rates) = r.since(&before) {
                            self.rates = Some(rates);
                            self.usage = Some(r);
                        }
                    }
                    None => self.usage = Some(r),
                }
            }
        }
        if self
            .pss
            .is_none_or(|(_, at)| now.saturating_duration_since(at) >= PSS_MAX_AGE)
        {
            self.pss = pss_kib(self.pid).map(|k| (k, now));
        }
        (self.rates, self.pss.map(|(k, _)| k))
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
        assert!(Tasks::new(u32::MAX).usage().is_none());
    }

    #[test]
    fn usage_counts_this_threads_wake_ups_and_cpu_time() {
        // This thread alone: the other tests' threads come and go, and a thread that exits
        // takes its counts out of the process's sums.
        // Its files opened once and read twice, as a status reading keeps them.
        let me = TaskFiles::open(Path::new("/proc/thread-self"), 0).unwrap();
        let mut buf = [0u8; 8192];
        let (ns0, wakes0) = me.read(&mut buf).unwrap();
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
        let (ns1, wakes1) = me.read(&mut buf).unwrap();
        assert!(wakes1 >= wakes0 + 20, "{wakes0} → {wakes1}");
        // At least most of the 20 ms of work (the thread may be preempted a little).
        assert!(ns1 >= ns0 + 10_000_000, "{ns0} → {ns1}");
        // The process's sums, and rates between two readings.
        let pid = std::process::id();
        let before = Tasks::new(pid).usage().unwrap();
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

    #[test]
    fn threads_files_stay_open_between_readings_and_follow_threads_that_come_and_go() {
        use std::os::fd::AsRawFd;
        let mut tasks = Tasks::new(std::process::id());
        let me = gettid();
        let fd_of = |tasks: &Tasks, tid: u32| {
            tasks
                .open
                .iter()
                .find(|t| t.tid == tid)
                .map(|t| t.schedstat.as_raw_fd())
        };
        let first = tasks.usage().unwrap();
        let fd = fd_of(&tasks, me).expect("this thread is read");
        // A thread that starts is read from the next reading on; this one's files are the
        // same ones, not opened again.
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            stop_rx.recv().ok();
        });
        let tid = rx.recv().unwrap();
        burn(20);
        let second = tasks.usage().unwrap();
        assert!(fd_of(&tasks, tid).is_some(), "the new thread is read");
        assert_eq!(fd_of(&tasks, me), Some(fd), "kept open");
        assert!(second.cpu_ns > first.cpu_ns);
        // One that ends is dropped.
        stop_tx.send(()).unwrap();
        other.join().unwrap();
        tasks.usage().unwrap();
        assert_eq!(fd_of(&tasks, tid), None, "the ended thread is dropped");
        assert_eq!(fd_of(&tasks, me), Some(fd));
        assert!(Tasks::new(u32::MAX).usage().is_none());
    }

    fn gettid() -> u32 {
        // SAFETY: gettid takes nothing and cannot fail.
        unsafe { libc::gettid() as u32 }
    }

    /// Burns `ms` of this thread's CPU time (what is measured, not a wait).
    fn burn(ms: u64) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < ms as u128 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    #[test]
    fn a_sampler_reads_proc_at_most_once_a_window_and_pss_at_most_every_ten_seconds() {
        let mut s = Sampler::new(std::process::id());
        let first = s.usage.unwrap().at;
        burn(60);
        let now = Instant::now();
        let (rates, pss) = s.sample(now);
        let rates = rates.expect("rates once 50 ms have passed");
        assert!(rates.cpu_percent > 0.0, "{rates:?}");
        assert!(pss.unwrap() > 0);
        let (read, pss_at) = (s.usage.unwrap().at, s.pss.unwrap().1);
        assert!(read > first);
        // Within the window: the same figures, /proc not read (the reading did not move),
        // however much CPU was used since.
        burn(60);
        assert_eq!(s.sample(Instant::now()), (Some(rates), pss));
        assert_eq!(s.usage.unwrap().at, read);
        // A window later: read again; PSS is still young enough.
        let (later, _) = s.sample(read + RATES_WINDOW);
        assert_ne!(later, Some(rates));
        assert!(s.usage.unwrap().at > read);
        assert_eq!(s.pss.unwrap().1, pss_at);
        // PSS once it is older than its age.
        let (_, pss) = s.sample(now + PSS_MAX_AGE);
        assert!(pss.unwrap() > 0);
        assert_eq!(s.pss.unwrap().1, now + PSS_MAX_AGE);
        // A process that is gone: nothing to say, and no figure made up.
        let mut gone = Sampler::new(u32::MAX);
        assert_eq!(gone.sample(Instant::now()), (None, None));
    }
}
