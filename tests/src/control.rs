//! `khorus up` for tests and benchmarks: a control process of the test's own (bus, state
//! directory, PipeWire environment) with the CLI pointed at it, and the checks that go with it
//! (zombies, liveness).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use khorus_bus::StageKind;
use khorus_bus::commands::control::{StageReport, StageState};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Child, TestBus, bin, wait_for};

/// A `khorus up` of the test's own (bus, state directory, PipeWire), with the CLI pointed at
/// it. Dropping it runs `khorus down` and kills whatever stage is left.
#[derive(Debug)]
pub struct Up {
    /// The control process.
    pub control: Option<Child>,
    /// Its bus.
    pub bus: TestBus,
    state: tempfile::TempDir,
    env: Vec<(&'static str, PathBuf)>,
    pids: Vec<u32>,
    /// Control's binary, when not the build's ([`Up::start_copied`]).
    control_bin: Option<PathBuf>,
}

impl Up {
    /// Starts `khorus up` with `stack_env` (a PipeWire stack's), a bus tagged `tag`, and the
    /// configuration text `config`.
    pub fn start(stack_env: Vec<(&'static str, PathBuf)>, tag: &str, config: Option<&str>) -> Self {
        let mut up = Self::new(stack_env, tag, config);
        up.spawn_control();
        up
    }

    /// [`Up::start`] with control run from a copy of its binary in `dir` (the collector's
    /// beside it, where control looks for it), so that a test can replace the file under a
    /// running control, as an upgrade does.
    pub fn start_copied(stack_env: Vec<(&'static str, PathBuf)>, tag: &str, dir: &Path) -> Self {
        let mut up = Self::new(stack_env, tag, None);
        for name in ["khorus", "khorus-collector"] {
            std::fs::copy(bin(name), dir.join(name)).unwrap();
        }
        up.control_bin = Some(dir.join("khorus"));
        up.spawn_control();
        up
    }

    fn new(stack_env: Vec<(&'static str, PathBuf)>, tag: &str, config: Option<&str>) -> Self {
        // Stages outlive a killed control: they are re-parented to this process, which reaps
        // them (see Drop) instead of leaving zombies to init.
        // SAFETY: prctl with an integer argument only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let up = Self {
            control: None,
            bus: TestBus::new(tag),
            state: tempfile::tempdir().unwrap(),
            env: stack_env,
            pids: Vec::new(),
            control_bin: None,
        };
        if let Some(text) = config {
            std::fs::write(up.state.path().join("khorus.toml"), text).unwrap();
        }
        up
    }

    /// Starts (another) control on the same bus and state.
    pub fn spawn_control(&mut self) {
        let mut cmd = match &self.control_bin {
            Some(path) => self.command_at(path),
            None => self.command("khorus"),
        };
        cmd.arg("up");
        let config = self.state.path().join("khorus.toml");
        if config.exists() {
            cmd.arg("--config").arg(config);
        }
        let child = Child::spawn(cmd);
        child.wait_line(true, Duration::from_secs(30), |l| l == "control: ready");
        self.control = Some(child);
    }

    /// A khorus binary with this instance's environment.
    pub fn command(&self, program: &str) -> Command {
        self.command_at(&bin(program))
    }

    /// [`Up::command`] for the program at `path`.
    pub fn command_at(&self, path: &Path) -> Command {
        let mut cmd = Command::new(path);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v)))
            .envs(self.bus.config.env())
            .env("XDG_STATE_HOME", self.state.path())
            .env("XDG_CONFIG_HOME", self.state.path().join("no-config"))
            .env_remove("PIPEWIRE_REMOTE");
        cmd
    }

    /// Runs the CLI; the output.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command("khorus").args(args).output().unwrap()
    }

    /// Runs the CLI and expects success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "khorus {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every stage's report (remembering their pids for cleanup); empty if control does not
    /// answer.
    pub fn status(&mut self) -> Vec<StageReport> {
        let out = self.cli(&["status", "--json"]);
        if !out.status.success() {
            return Vec::new();
        }
        let reports: Vec<StageReport> = serde_json::from_slice(&out.stdout).unwrap();
        for r in &reports {
            if let Some(p) = r.pid
                && !self.pids.contains(&p)
            {
                self.pids.push(p);
            }
        }
        reports
    }

    /// Waits until every stage in `stages` is ready; their reports.
    pub fn wait_ready(&mut self, stages: &[StageKind]) -> Vec<StageReport> {
        wait_for(Duration::from_secs(60), "the stages to be ready", || {
            let r = self.status();
            stages
                .iter()
                .all(|k| {
                    r.iter()
                        .any(|x| x.stage == *k && x.state == StageState::Ready)
                })
                .then_some(r)
        })
    }

    /// The pid of `stage` once it is ready.
    pub fn pid_of(&mut self, stage: StageKind) -> u32 {
        self.wait_ready(&[stage])
            .iter()
            .find(|r| r.stage == stage)
            .and_then(|r| r.pid)
            .unwrap()
    }

    /// The session JSON.
    pub fn session(&self) -> String {
        self.ok(&["session", "--json"])
    }

    /// A node's id.
    pub fn node_id(&self, node: &str) -> u32 {
        let s: serde_json::Value = serde_json::from_str(&self.session()).unwrap();
        s["nodes"][node]["id"].as_u64().unwrap() as u32
    }

    /// Control's pid.
    pub fn control_pid(&self) -> u32 {
        self.control.as_ref().unwrap().pid()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.status();
        let down = self.command("khorus").arg("down").output();
        if let Some(mut c) = self.control.take()
            && down.is_ok_and(|o| o.status.success())
        {
            c.wait_exit(Duration::from_secs(20));
        }
        for &pid in &self.pids {
            kill(Pid::from_raw(pid as i32), Signal::SIGKILL).ok();
            // Ours to reap when re-parented here; anyone else's reaps it itself.
            nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None).ok();
        }
    }
}

/// Children of `parent` that are zombies.
pub fn zombies_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    // A zombie is not alive: read the state, not just the existence.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|i| !s[i + 2..].starts_with('Z')))
}

/// The four supervised stages.
pub const ALL: [StageKind; 4] = [
    StageKind::Collector,
    StageKind::Composer,
    StageKind::Synth,
    StageKind::Router,
];

/// Kills `pid` with SIGKILL.
pub fn kill9(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

/// Waits until `stage` is in `state`; its report.
pub fn wait_state(up: &mut Up, stage: StageKind, state: StageState) -> StageReport {
    wait_for(Duration::from_secs(30), state.name(), || {
        up.status()
            .into_iter()
            .find(|x| x.stage == stage && x.state == state)
    })
}

/// Waits until `stage` is ready again in a process other than `old`; its report.
pub fn wait_back(up: &mut Up, stage: StageKind, old: u32) -> StageReport {
    wait_for(Duration::from_secs(60), "the stage back", || {
        up.status()
            .into_iter()
            .find(|x| x.stage == stage && x.state == StageState::Ready && x.pid != Some(old))
    })
}
