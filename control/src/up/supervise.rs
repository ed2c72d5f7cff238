//! One supervised stage: its process (started here, or adopted from a control that died), the
//! pidfd the control loop waits on, its state, restarts with exponential back-off, and the
//! last lines of its log when it crashed.
//!
//! Stages run in their own process group with their output in a log file, so they outlive
//! control: Ctrl-C in control's terminal does not reach them, and no pipe to a dead control
//! can break their writes.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use khorus_bus::commands::control::{StageReport, StageState};
use khorus_bus::wait::Waker;
use khorus_bus::{Counter, StageKind, StageStatus};

use crate::up::procinfo::Sampler;

/// Lines of a crashed stage's log shown in status.
const TAIL_LINES: usize = 6;
/// A stage that answered and then ran at least this long before it exited by itself is not
/// crash-looping.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Exits in a row (each sooner than [`STABLE_AFTER`]) from which a stage is crash-looping.
const LOOPING_AFTER: u32 = 3;
/// First back-off delay once a stage crash-loops.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A stage under supervision.
#[derive(Debug)]
pub struct Supervised {
    /// Which stage.
    pub kind: StageKind,
    /// Its state.
    pub state: StageState,
    /// Its process.
    pub pid: Option<u32>,
    /// Our child (None when adopted: its parent was a control that died).
    child: Option<Child>,
    /// Readable when the process exits.
    waker: Option<Waker>,
    /// A dup of the pidfd, for bounded waits on exit.
    pidfd: Option<OwnedFd>,
    /// Restarts so far.
    pub restarts: u64,
    /// Times it was found hung and killed.
    pub hangs: u64,
    /// Exits in a row, each soon after starting.
    failures: u32,
    /// When to start it next (set while it is down).
    pub next_start: Option<Instant>,
    /// When it was spawned.
    pub spawned_at: Option<Instant>,
    /// When it answered.
    pub ready_at: Option<Instant>,
    /// While it starts: when to ask it next whether it answers.
    pub ask_at: Option<Instant>,
    /// When it last exited (restart latency runs from here to ready).
    exited_at: Option<Instant>,
    /// Exit → ready of the last restart, ms.
    pub last_restart_ms: Option<u64>,
    /// Why it is not ready: the exit and its last log lines.
    pub detail: Vec<String>,
    /// Its latest status report, and when it arrived.
    pub last_status: Option<(StageStatus, Instant)>,
    /// Its `/proc` figures for status, measured from when it became ready.
    sampler: Option<Sampler>,
    /// Started without PipeWire (the router, OSC only): restart when PipeWire appears.
    pub without_pipewire: bool,
    /// How the child exited (and whether it was killed), when a bounded wait reaped it.
    reaped: Option<(String, bool)>,
}

impl Supervised {
    /// A stage not started yet.
    pub fn new(kind: StageKind, enabled: bool) -> Self {
        Self {
            kind,
            state: if enabled {
                StageState::Starting
            } else {
                StageState::Disabled
            },
            pid: None,
            child: None,
            waker: None,
            pidfd: None,
            restarts: 0,
            hangs: 0,
            failures: 0,
            next_start: enabled.then(Instant::now),
            spawned_at: None,
            ready_at: None,
            ask_at: None,
            exited_at: None,
            last_restart_ms: None,
            detail: Vec::new(),
            last_status: None,
            sampler: None,
            without_pipewire: false,
            reaped: None,
        }
    }

    /// Whether it has a live process.
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    /// When its process was started, while it has not answered yet (`None` once ready, and
    /// for an adopted or stopped stage).
    pub fn starting_since(&self) -> Option<Instant> {
        self.spawned_at
            .filter(|_| self.pid.is_some() && self.ready_at.is_none())
    }

    /// The handle to wait on for its exit.
    pub fn waker(&self) -> Option<Waker> {
        self.waker.clone()
    }

    /// Starts `program args…` with its output appended to `log`.
    pub fn spawn(&mut self, program: &StageProgram, args: &[String], log: &Path) -> Result<()> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        rotate(log);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("failed to open {}", log.display()))?;
        let err = out.try_clone().context("failed to share the log file")?;
        let child = Command::new(&program.program)
            .arg0(&program.arg0)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a terminal's Ctrl-C (or a dying control) leaves it alone.
            .process_group(0)
            .spawn()
            .with_context(|| format!("failed to start {}", program.arg0.display()))?;
        let pid = child.id();
        self.child = Some(child);
        self.watch(pid)?;
        self.spawned_at = Some(Instant::now());
        self.ready_at = None;
        self.next_start = None;
        self.state = if self.exited_at.is_some() {
            StageState::Restarting
        } else {
            StageState::Starting
        };
        Ok(())
    }

    /// Takes over a running stage process that a previous control started.
    pub fn adopt(&mut self, pid: u32) -> Result<()> {
        self.child = None;
        self.watch(pid)?;
        let now = Instant::now();
        self.spawned_at = Some(now);
        self.next_start = None;
        self.mark_ready();
        Ok(())
    }

    fn watch(&mut self, pid: u32) -> Result<()> {
        let fd = pidfd_open(pid).with_context(|| format!("failed to watch process {pid}"))?;
        self.pidfd = Some(fd.try_clone().context("failed to duplicate a pidfd")?);
        self.waker = Some(Waker::fd(fd));
        self.pid = Some(pid);
        Ok(())
    }

    /// It answered: ready. Records the restart latency when it was a restart.
    pub fn mark_ready(&mut self) {
        let now = Instant::now();
        if let Some(exited) = self.exited_at.take() {
            self.last_restart_ms = Some(now.duration_since(exited).as_millis() as u64);
        }
        self.state = StageState::Ready;
        self.ready_at = Some(now);
        self.detail.clear();
        self.last_status = None;
        self.sampler = self.pid.map(Sampler::new);
    }

    /// Its process exited (the pidfd fired): reaps it if it is our child, records why, and
    /// schedules the next start (at once, or after a back-off when it keeps crashing).
    pub fn on_exit(&mut self, log: &Path, backoff_max: Duration) {
        let now = Instant::now();
        let (status, killed) = match self.child.take() {
            Some(mut c) => {
                let s = match c.try_wait() {
                    Ok(Some(s)) => Ok(s),
                    // The pidfd said it exited; wait() returns at once.
                    _ => c.wait(),
                };
                match s {
                    Ok(s) => (describe_exit(s), killed_from_outside(s)),
                    Err(e) => (e.to_string(), false),
                }
            }
            None => match self.reaped.take() {
                Some((text, killed)) => (text, killed),
                // Adopted: no exit status to read.
                None => ("exited".to_string(), true),
            },
        };
        let ran = self.spawned_at.map_or(Duration::ZERO, |s| now - s);
        let ready_for = self.ready_at.map_or(Duration::ZERO, |r| now - r);
        // A crash loop is a stage failing by itself: at start, or soon after. A ready stage
        // killed from outside (SIGKILL, SIGTERM) comes back at once, however often.
        if self.ready_at.is_some() && (killed || ready_for >= STABLE_AFTER) {
            self.failures = 1;
        } else {
            self.failures += 1;
        }
        self.pid = None;
        self.waker = None;
        self.pidfd = None;
        self.ready_at = None;
        self.last_status = None;
        self.exited_at = Some(now);
        self.restarts += 1;
        let mut detail = vec![format!(
            "{} {status} after {:.1} s",
            self.kind.name(),
            ran.as_secs_f64()
        )];
        detail.extend(crate::session::state::tail(log, TAIL_LINES));
        self.detail = detail;
        let delay = backoff(self.failures, backoff_max);
        self.next_start = Some(now + delay);
        self.state = if self.failures >= LOOPING_AFTER {
            StageState::CrashLooping
        } else {
            StageState::Restarting
        };
        tracing::warn!(
            "{} {status}; starting it again in {} ms",
            self.kind.name(),
            delay.as_millis()
        );
    }

    /// It exited because its PipeWire daemon went away ([`Supervised::on_exit`] first): not a
    /// crash of its own, so it does not count towards a crash loop and is not restarted on a
    /// back-off; it starts again when PipeWire is back.
    pub fn lost_pipewire(&mut self) {
        self.failures = 0;
        self.next_start = None;
        self.state = StageState::WaitingForPipewire;
        self.detail.insert(
            0,
            "PipeWire went away: starting again when it is back".into(),
        );
    }

    /// Kills it (SIGKILL); its exit arrives on the pidfd like any other.
    pub fn kill(&self) {
        if let Some(pid) = self.pid {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            )
            .ok();
        }
    }

    /// Waits up to `timeout` for it to exit; reaps it if it is ours. True when it is gone.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let Some(fd) = &self.pidfd else {
            return true;
        };
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(fd),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return false;
        }
        if let Some(mut c) = self.child.take() {
            self.reaped = c
                .wait()
                .ok()
                .map(|s| (describe_exit(s), killed_from_outside(s)));
        }
        self.pid = None;
        self.waker = None;
        self.pidfd = None;
        true
    }

    /// Records a status report from its process, read at `now_ns` (monotonic). Its age comes
    /// from its own stamp, so a report read a while after it came counts from when it was sent.
    pub fn on_status(&mut self, s: StageStatus, now_ns: u64) {
        if Some(s.pid) == self.pid {
            let age = Duration::from_nanos(now_ns.saturating_sub(s.t_ns));
            let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
            self.last_status = Some((s, at));
        }
    }

    /// Whether it is ready but silent for longer than `timeout` (hung).
    pub fn hung(&self, timeout: Duration) -> bool {
        if self.state != StageState::Ready {
            return false;
        }
        let since = match &self.last_status {
            Some((_, at)) => *at,
            None => match self.ready_at {
                Some(r) => r,
                None => return false,
            },
        };
        since.elapsed() > timeout
    }

    /// The report `khorus status` shows.
    pub fn report(&mut self) -> StageReport {
        let (rates, pss_kib) = match &mut self.sampler {
            Some(s) if self.pid.is_some() => s.sample(Instant::now()),
            _ => (None, None),
        };
        let mut counters: Vec<(Counter, u64)> = self
            .last_status
            .as_ref()
            .map(|(s, _)| s.iter().collect())
            .unwrap_or_default();
        counters.push((Counter::Restarts, self.restarts));
        counters.push((Counter::Hangs, self.hangs));
        StageReport {
            stage: self.kind,
            pid: self.pid,
            state: self.state,
            restarts: self.restarts,
            last_restart_ms: self.last_restart_ms,
            uptime_s: self.ready_at.map(|r| r.elapsed().as_secs()),
            cpu_percent: rates.map(|r| r.cpu_percent),
            wakes_per_s: rates.map(|r| r.wakes_per_s),
            pss_kib,
            counters,
            detail: self.detail.clone(),
        }
    }
}

/// The delay before the next start after `failures` quick exits in a row: none for the first,
/// then 250 ms doubling up to `max`.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let shift = (failures - 2).min(20);
    (FIRST_BACKOFF * (1u32 << shift)).min(max)
}

/// Killed by SIGKILL or SIGTERM: someone stopped it; it did not fail by itself.
fn killed_from_outside(s: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(s.signal(), Some(libc::SIGKILL | libc::SIGTERM))
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".into(),
    }
}

/// A log that grew past 1 MiB starts again (the previous one kept as `.old`).
fn rotate(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > 1 << 20) {
        let mut old = log.as_os_str().to_owned();
        old.push(".old");
        std::fs::rename(log, PathBuf::from(old)).ok();
    }
}

/// A file descriptor that becomes readable when process `pid` exits (children and
/// non-children alike).
pub fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What to execute for a stage, and the name it runs under (`argv[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgram {
    /// The file executed.
    pub program: PathBuf,
    /// Its `argv[0]`: `…/khorus-<stage>` either way, so `ps` and `pgrep -f` name the stage.
    pub arg0: PathBuf,
}

/// The stages control runs from its own binary ([`run_as_stage`]): one file's code pages,
/// shared by every process that maps it, count once between them in memory (PSS) instead of
/// once per stage binary. The collector keeps its own binary: it is the one file that may
/// carry capabilities (`setcap`), and control's must never.
const SHARED: [StageKind; 3] = [StageKind::Composer, StageKind::Synth, StageKind::Router];

/// This executable as the kernel knows it. Once its file is replaced on disk (an upgrade, a
/// rebuild) under a control that runs for days, `current_exe()` names a path that is gone
/// (it ends in " (deleted)") and no stage could be started again; this still runs the code
/// control runs, so a restarted stage always speaks control's version of the bus.
const THIS_EXE: &str = "/proc/self/exe";

/// How to start `stage`: the collector from its binary beside this executable (a build or an
/// install; else on `PATH`), the others from this executable under the stage's name.
pub fn stage_program(stage: StageKind) -> StageProgram {
    let name = format!("khorus-{}", stage.name());
    let exe = std::env::current_exe().ok();
    let beside = exe
        .as_ref()
        .and_then(|e| e.parent().map(|d| d.join(&name)))
        .unwrap_or_else(|| PathBuf::from(&name));
    match exe {
        Some(_) if SHARED.contains(&stage) => StageProgram {
            program: PathBuf::from(THIS_EXE),
            arg0: beside,
        },
        _ => {
            let program = if beside.exists() {
                beside
            } else {
                PathBuf::from(name)
            };
            StageProgram {
                arg0: program.clone(),
                program,
            }
        }
    }
}

/// When this process was started as a stage ([`stage_program`]: `argv[0]` names it), runs
/// that stage's command line and returns its exit code.
pub fn run_as_stage() -> Option<std::process::ExitCode> {
    let arg0 = std::env::args_os().next()?;
    let name = Path::new(&arg0).file_name()?.to_str()?;
    let main = match name {
        "khorus-composer" => khorus_composer::cli::main,
        "khorus-synth" => khorus_synth::cli::main,
        "khorus-router" => khorus_router::cli::main,
        _ => return None,
    };
    // The process's name (`comm`: top, pgrep) as the stage's own binary would have it.
    if let Ok(comm) = std::ffi::CString::new(&name.as_bytes()[..name.len().min(15)]) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
    }
    Some(main())
}

/// The PipeWire socket this user's clients connect to.
pub fn pipewire_socket() -> PathBuf {
    let dir = std::env::var_os("PIPEWIRE_RUNTIME_DIR")
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            PathBuf::from("/run/user").join(uid.to_string())
        });
    let remote = std::env::var("PIPEWIRE_REMOTE").unwrap_or_else(|_| "pipewire-0".into());
    if remote.starts_with('/') {
        PathBuf::from(remote)
    } else {
        dir.join(remote)
    }
}

/// Whether a PipeWire daemon is listening.
pub fn pipewire_running() -> bool {
    std::os::unix::net::UnixStream::connect(pipewire_socket()).is_ok()
}

/// Whether `stage` needs PipeWire to start.
pub fn needs_pipewire(stage: StageKind) -> bool {
    stage == StageKind::Synth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(1, max), Duration::ZERO);
        assert_eq!(backoff(2, max), Duration::from_millis(250));
        assert_eq!(backoff(3, max), Duration::from_millis(500));
        assert_eq!(backoff(6, max), Duration::from_secs(4));
        assert_eq!(backoff(60, max), max);
    }

    fn sh() -> StageProgram {
        StageProgram {
            program: "/bin/sh".into(),
            arg0: "/bin/sh".into(),
        }
    }

    #[test]
    fn the_composer_synth_and_router_run_from_this_binary_the_collector_from_its_own() {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap();
        for kind in [StageKind::Composer, StageKind::Synth, StageKind::Router] {
            let p = stage_program(kind);
            // This very file, even once replaced on disk.
            assert_eq!(std::fs::canonicalize(&p.program).unwrap(), exe);
            assert_eq!(p.arg0, dir.join(format!("khorus-{}", kind.name())));
        }
        let p = stage_program(StageKind::Collector);
        assert_ne!(
            p.program, exe,
            "the collector's binary may carry capabilities"
        );
        assert_eq!(p.arg0, p.program);
        assert!(p.program.ends_with("khorus-collector"));
    }

    /// Exits of a stage whose PipeWire went away do not add up to a crash loop: without
    /// this a restarted daemon found the synth on a back-off of up to `backoff_max_s`.
    #[test]
    fn an_exit_for_want_of_pipewire_is_not_a_crash() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("x.log");
        let mut s = Supervised::new(StageKind::Tool, true);
        let max = Duration::from_secs(30);
        for _ in 0..LOOPING_AFTER {
            s.spawn(&sh(), &["-c".into(), "exit 1".into()], &log)
                .unwrap();
            while s.running() {
                s.wait_exit(Duration::from_secs(10));
            }
            s.on_exit(&log, max);
        }
        assert_eq!(s.state, StageState::CrashLooping);
        assert!(s.next_start.is_some());
        s.lost_pipewire();
        assert_eq!(s.state, StageState::WaitingForPipewire);
        assert_eq!(s.next_start, None, "no start until PipeWire is back");
        // The next exit is a first failure again: restarted at once, not after a back-off.
        s.spawn(&sh(), &["-c".into(), "exit 1".into()], &log)
            .unwrap();
        while s.running() {
            s.wait_exit(Duration::from_secs(10));
        }
        let before = Instant::now();
        s.on_exit(&log, max);
        assert_eq!(s.state, StageState::Restarting);
        assert!(s.next_start.unwrap() <= before + Duration::from_millis(1));
    }

    #[test]
    fn a_child_is_watched_reaped_and_reported() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("x.log");
        let mut s = Supervised::new(StageKind::Tool, true);
        s.spawn(&sh(), &["-c".into(), "echo boom >&2; exit 3".into()], &log)
            .unwrap();
        assert!(s.wait_exit(Duration::from_secs(10)) || !s.running());
        // wait_exit reaped it; a fresh stage records an exit through on_exit instead.
        let mut t = Supervised::new(StageKind::Tool, true);
        t.spawn(&sh(), &["-c".into(), "echo boom >&2; exit 3".into()], &log)
            .unwrap();
        let fd = t.pidfd.as_ref().unwrap().try_clone().unwrap();
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 10_000) }, 1);
        t.on_exit(&log, Duration::from_secs(1));
        assert!(!t.running());
        assert_eq!(t.restarts, 1);
        assert!(
            t.detail[0].contains("exited with status 3"),
            "{:?}",
            t.detail
        );
        assert!(t.detail.iter().any(|l| l == "boom"), "{:?}", t.detail);
    }

    #[test]
    fn a_report_read_late_counts_from_when_it_was_sent() {
        let mut s = Supervised::new(StageKind::Tool, true);
        s.pid = Some(std::process::id());
        s.mark_ready();
        let mut report = StageStatus::new(StageKind::Tool);
        let sent = report.t_ns;
        // Read 3 s after it was sent (control reads reports on its tick).
        s.on_status(report, sent + 3_000_000_000);
        assert!(s.hung(Duration::from_secs(2)), "3 s old counts as 3 s old");
        assert!(!s.hung(Duration::from_secs(5)));
        // A report from another process (a stale copy) is not this stage's.
        report.pid += 1;
        s.on_status(report, sent);
        assert!(s.hung(Duration::from_secs(2)));
    }
}
