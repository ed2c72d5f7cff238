//! A private headless PipeWire daemon per test (scripts/pipewire-stack.sh): its own
//! `XDG_RUNTIME_DIR`, PipeWire, WirePlumber, D-Bus session and the null sink
//! `khorus-null-sink`. Tests talk to it through [`PipeWireStack::command`].
//!
//! If the stack cannot start, the test fails when `KHORUS_REQUIRE_PIPEWIRE=1` (as in CI);
//! otherwise it reports why and returns `None`, so a developer without PipeWire can still run
//! the rest of the suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::process::{Child, wait_for};

/// Name of the stack's null sink.
pub const NULL_SINK: &str = "khorus-null-sink";

/// A running private PipeWire session; stopped (SIGTERM, then reaped) on drop.
#[derive(Debug)]
pub struct PipeWireStack {
    session: Option<Child>,
    dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn required() -> bool {
    std::env::var("KHORUS_REQUIRE_PIPEWIRE").is_ok_and(|v| v == "1")
}

fn missing_tools() -> Vec<&'static str> {
    [
        "pipewire",
        "wireplumber",
        "dbus-run-session",
        "pw-cli",
        "pw-link",
        "pw-record",
    ]
    .into_iter()
    .filter(|t| which(t).is_none())
    .collect()
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

impl PipeWireStack {
    /// Starts a stack and waits until its null sink exists.
    pub fn start() -> Option<Self> {
        let mut stack = Self::prepare()?;
        stack.start_daemons();
        Some(stack)
    }

    /// A stack's directories without its daemons (clients started now find no PipeWire);
    /// [`PipeWireStack::start_daemons`] starts them.
    pub fn prepare() -> Option<Self> {
        let missing = missing_tools();
        if !missing.is_empty() {
            let msg = format!(
                "PipeWire test stack unavailable: missing {} (run scripts/deps.sh)",
                missing.join(", ")
            );
            assert!(!required(), "{msg} and KHORUS_REQUIRE_PIPEWIRE=1");
            eprintln!("NOT RUN: {msg}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("khorus-pw-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("runtime")).expect("runtime dir");
        Some(Self { session: None, dir })
    }

    /// Starts (or, after [`PipeWireStack::stop`], restarts) the daemons in this stack's
    /// directories and waits until the null sink exists.
    pub fn start_daemons(&mut self) {
        assert!(self.session.is_none(), "the daemons already run");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/pipewire-stack.sh"))
            .arg(self.dir.path());
        // Its own process group, so stopping it reaches dbus-daemon and both daemons.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.session = Some(Child::spawn(cmd));
        // Ready when the sink's monitor ports exist: WirePlumber configures them after the
        // node appears.
        let monitor = format!("{NULL_SINK}:monitor_");
        wait_for(Duration::from_secs(30), "the PipeWire null sink", || {
            let ports = self.output_ports();
            ports.iter().any(|p| p.starts_with(&monitor)).then_some(())
        });
    }

    /// The session's `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("runtime")
    }

    /// Environment that points a PipeWire client at this stack.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime_dir()),
            ("PIPEWIRE_RUNTIME_DIR", self.runtime_dir()),
        ]
    }

    /// A command with this stack's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env()).env_remove("PIPEWIRE_REMOTE");
        cmd
    }

    /// A query tool (`pw-cli`, `pw-link`) with this stack's environment, bounded to 5 s: a
    /// client that hangs (seen: `pw-link -l` under load) must not hang the test, only fail
    /// this one poll.
    pub fn tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "1", "5", tool])
            .envs(self.env())
            .env_remove("PIPEWIRE_REMOTE");
        cmd
    }

    /// Starts `pw-record` on the null sink's monitor (48 kHz stereo f32) into `out` and waits
    /// until it is linked. Stop it with SIGINT; the file is complete once it exits.
    pub fn record_monitor(&self, out: &Path) -> Child {
        let mut rec = self.command("pw-record");
        rec.args([
            "--target",
            NULL_SINK,
            "-P",
            "{ stream.capture.sink = true }",
        ])
        .args(["--rate", "48000", "--channels", "2", "--format", "f32"])
        .arg(out);
        let recorder = Child::spawn(rec);
        let monitor = format!("{NULL_SINK}:monitor_");
        wait_for(
            Duration::from_secs(10),
            "the recorder to link to the sink",
            || {
                self.links()
                    .iter()
                    .any(|l| l.contains(&monitor))
                    .then_some(())
            },
        );
        recorder
    }

    /// Whether a node with `node.name` == `name` exists.
    pub fn node_exists(&self, name: &str) -> bool {
        self.tool("pw-cli")
            .args(["ls", "Node"])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!("node.name = \"{name}\""))
            })
    }

    /// Output ports (`pw-link -o`), one per line.
    pub fn output_ports(&self) -> Vec<String> {
        self.lines_of(&["-o"])
    }

    /// Input ports (`pw-link -i`), one per line.
    pub fn input_ports(&self) -> Vec<String> {
        self.lines_of(&["-i"])
    }

    /// Waits (up to 20 s) until output port `from` and input port `to` exist, then links them.
    pub fn link(&self, from: &str, to: &str) {
        wait_for(
            Duration::from_secs(20),
            &format!("ports {from} and {to}"),
            || {
                (self.output_ports().iter().any(|p| p == from)
                    && self.input_ports().iter().any(|p| p == to))
                .then_some(())
            },
        );
        let status = self.tool("pw-link").args([from, to]).status().unwrap();
        assert!(status.success(), "pw-link {from} {to}");
    }

    /// Links (`pw-link -l`), as printed.
    pub fn links(&self) -> Vec<String> {
        self.lines_of(&["-l"])
    }

    fn lines_of(&self, args: &[&str]) -> Vec<String> {
        self.tool("pw-link")
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops the session: SIGTERM to its process group, reaped.
    pub fn stop(&mut self) {
        if let Some(mut session) = self.session.take() {
            let pgid = nix::unistd::Pid::from_raw(session.pid() as i32);
            nix::sys::signal::killpg(pgid, Signal::SIGTERM).ok();
            let (status, _, stderr) = session.wait_exit(Duration::from_secs(15));
            // Anything left in the group (a stuck daemon) goes too.
            nix::sys::signal::killpg(pgid, Signal::SIGKILL).ok();
            // Killed by our SIGTERM is the normal way out; anything else is worth a look.
            if !status.success()
                && std::os::unix::process::ExitStatusExt::signal(&status) != Some(15)
            {
                eprintln!(
                    "pipewire stack exited with {status}:\n{}",
                    stderr.join("\n")
                );
            }
        }
    }
}

impl Drop for PipeWireStack {
    fn drop(&mut self) {
        self.stop();
    }
}
