//! Real child processes for tests: located in the build's target directory, killed and reaped
//! on drop, with their output captured line by line for readiness checks.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Path of a workspace binary (`khorus`, `khorus-bus-peer`, …) next to the running test.
///
/// `cargo test --workspace` builds every binary before running tests; a missing one is a
/// build problem, reported as such.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// Polls `cond` until it returns `Some` or `timeout` passes. For readiness of external
/// processes only; in-process waits use the bus's events.
pub fn wait_for<T>(timeout: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Default)]
struct Output {
    stdout: Vec<String>,
    stderr: Vec<String>,
    closed: usize,
}

/// A running child process. Dropping it kills it (SIGKILL) and reaps it, so no test leaves a
/// zombie that keeps its iceoryx2 node "alive".
pub struct Child {
    child: std::process::Child,
    output: Arc<(Mutex<Output>, Condvar)>,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Child {
    /// Spawns `cmd` with piped stdout/stderr (stdin as the command sets it, default null).
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {cmd:?}: {e}"));
        let output = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (is_err, pipe) in [
            (false, Box::new(stdout) as Box<dyn std::io::Read + Send>),
            (true, Box::new(stderr)),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let (lock, cv) = &*output;
                    let mut out = lock.lock().unwrap();
                    if is_err {
                        out.stderr.push(line);
                    } else {
                        out.stdout.push(line);
                    }
                    cv.notify_all();
                }
                let (lock, cv) = &*output;
                lock.lock().unwrap().closed += 1;
                cv.notify_all();
            });
        }
        Self {
            child,
            output,
            status: None,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the child's stdin (if the command piped it).
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits (woken by the reader threads, not by polling) until `found` returns something
    /// for the lines of stdout (or stderr) so far, up to `timeout` or until the process closes
    /// its output. `Err` carries everything it printed, for the failure message.
    fn wait_for_lines<T>(
        &self,
        stderr: bool,
        timeout: Duration,
        mut found: impl FnMut(&[String]) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().unwrap();
        loop {
            if let Some(t) = found(if stderr { &out.stderr } else { &out.stdout }) {
                return Ok(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || out.closed >= 2 {
                return Err(format!(
                    "pid {} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.child.id(),
                    out.stdout.join("\n"),
                    out.stderr.join("\n")
                ));
            }
            out = cv.wait_timeout(out, left).unwrap().0;
        }
    }

    /// Blocks until a line of stdout (or stderr with `stderr`) satisfies `pred`, returning it.
    pub fn wait_line(
        &self,
        stderr: bool,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_for_lines(stderr, timeout, |lines| {
            lines.iter().find(|l| pred(l)).cloned()
        })
        .unwrap_or_else(|e| panic!("no matching line from {e}"))
    }

    /// Like [`Child::wait_line`], but `None` when no line matched in time (or the process
    /// closed its output) instead of failing.
    pub fn try_wait_line(
        &self,
        stderr: bool,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.wait_for_lines(stderr, timeout, |lines| {
            lines.iter().find(|l| pred(l)).cloned()
        })
        .ok()
    }

    /// Blocks until at least `n` lines of stdout (or stderr) satisfy `pred`, returning all
    /// matching lines so far in order.
    pub fn wait_lines(
        &self,
        stderr: bool,
        timeout: Duration,
        n: usize,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        self.wait_for_lines(stderr, timeout, |lines| {
            let hits: Vec<String> = lines.iter().filter(|l| pred(l)).cloned().collect();
            (hits.len() >= n).then_some(hits)
        })
        .unwrap_or_else(|e| panic!("fewer than {n} matching lines from {e}"))
    }

    /// Waits for the process to exit (up to `timeout`, then kills it and fails) and returns
    /// its status with everything it printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("pid {} did not exit within {timeout:?}", self.child.id());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(status);
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().unwrap();
        while out.closed < 2 {
            out = cv.wait_timeout(out, Duration::from_secs(5)).unwrap().0;
        }
        (status, out.stdout.clone(), out.stderr.clone())
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).ok();
    }

    /// SIGKILLs and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        self.signal(Signal::SIGKILL);
        let s = self.child.wait().expect("reap");
        self.status = Some(s);
        s
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
