//! The CLI's side of control: each command becomes one [`ControlCommand`] sent to the running
//! `khorus up`, and its answer is printed. Refusals exit 2 and name the element at fault;
//! no control answering exits 1 and says how to start one.

use std::io::Write;
use std::time::Duration;

use khorus_bus::commands::composer::Source;
use khorus_bus::commands::control::{
    Change, ControlCommand, ControlReply, NodeSpec, PatternSpec, StageReport, Value,
};
use khorus_bus::commands::{self};
use khorus_bus::{Bus, BusConfig, BusError, Counter, StageKind};

/// How long a command may take (a batch waits for the synth to build its graph).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Control refused it; nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// No control answered.
    #[error("no answer from khorus up on this bus (is it running? start it with `khorus up`)")]
    NotRunning,
    /// The bus failed.
    #[error(transparent)]
    Bus(BusError),
    /// The input was not usable.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The exit code: 2 for a refusal or bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_) | Self::Usage(_) => 2,
            Self::NotRunning | Self::Bus(_) => 1,
        }
    }
}

/// Sends `cmd` to control and returns its answer.
pub fn call(bus: &BusConfig, cmd: &ControlCommand) -> Result<ControlReply, ClientError> {
    Client::open(bus)?.call(cmd)
}

/// A connection to control for more than one command (`khorus status --watch`): the bus is
/// joined once, not for every command (a join and a leave cost control ~10× what answering
/// a status does).
#[derive(Debug)]
pub struct Client {
    port: khorus_bus::CommandClient<ControlCommand, ControlReply>,
    _bus: Bus,
}

impl Client {
    /// Joins the bus. With no control process on it, the first command says so at once; one
    /// that is starting (its probe or its node is there, not yet serving) is waited for.
    pub fn open(bus: &BusConfig) -> Result<Self, ClientError> {
        let bus = Bus::open(&tool_name(), bus).map_err(ClientError::Bus)?;
        let starting = bus.stage_present(StageKind::Control, &["control-probe"]);
        let port = bus
            .command_client::<commands::Control>()
            .map_err(ClientError::Bus)?
            .wait_for_server(if starting { TIMEOUT } else { Duration::ZERO });
        Ok(Self { port, _bus: bus })
    }

    /// Sends `cmd` to control and returns its answer.
    pub fn call(&mut self, cmd: &ControlCommand) -> Result<ControlReply, ClientError> {
        self.port.call(cmd, TIMEOUT).map_err(|e| match e {
            BusError::Refused { error, .. } => ClientError::Refused(error.message),
            BusError::Timeout { .. } | BusError::NoServer { .. } => ClientError::NotRunning,
            e => ClientError::Bus(e),
        })
    }
}

fn tool_name() -> String {
    format!("khorus-cli-{}", std::process::id())
}

/// `khorus down`: asks control to stop everything, waits until it has exited, and — when
/// nobody is left on the bus — removes what iceoryx2 keeps for it, so nothing of khorus
/// stays in `/dev/shm` or the bus root.
pub fn down(config: &BusConfig) -> Result<(), ClientError> {
    use khorus_bus::Common;
    use khorus_bus::command::CommonReply;
    let pid = match call(config, &ControlCommand::Common(Common::Ping { nonce: 7 }))? {
        ControlReply::Common(CommonReply::Pong { pid, .. }) => pid,
        other => return Err(ClientError::Usage(format!("unexpected answer {other:?}"))),
    };
    let watch = crate::up::supervise::pidfd_open(pid).ok();
    call(config, &ControlCommand::Down)?;
    if let Some(fd) = watch {
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, 30_000) } <= 0 {
            return Err(ClientError::Usage(format!(
                "control (pid {pid}) did not exit within 30 s"
            )));
        }
    }
    if khorus_bus::nodes::list(config).is_ok_and(|n| n.is_empty()) {
        config.remove_all_resources();
    }
    Ok(())
}

/// `NODE.PARAM` split in two.
pub fn node_param(text: &str) -> Result<(String, String), ClientError> {
    match text.split_once('.') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.into(), p.into())),
        _ => Err(ClientError::Usage(format!(
            "{text:?}: write NODE.PARAM, e.g. pad.cutoff"
        ))),
    }
}

/// A `play` change: mini-notation on a node's notes (`bass`), or on a parameter (`pad.cutoff`)
/// as a curve of its numbers; with `per_cycle`, the text is a signal expression sampled that
/// many times a cycle (a parameter only).
pub fn play(
    target: &str,
    text: &str,
    quantum: Option<String>,
    per_cycle: Option<u32>,
) -> Result<Change, ClientError> {
    let (node, param) = match target.split_once('.') {
        Some(_) => {
            let (n, p) = node_param(target)?;
            (n, Some(p))
        }
        None => (target.to_string(), None),
    };
    let source = match (per_cycle, &param) {
        (None, _) => Source::Mini(text.into()),
        (Some(per_cycle), Some(_)) => Source::Expr {
            expr: text.into(),
            per_cycle,
        },
        (Some(_), None) => {
            return Err(ClientError::Usage(format!(
                "--per-cycle samples a curve: play it on a parameter ({target}.PARAM)"
            )));
        }
    };
    Ok(Change::Play {
        node,
        param,
        pattern: Some(PatternSpec {
            source,
            transforms: Vec::new(),
            controls: Vec::new(),
            quantum,
        }),
    })
}

/// A `hush` change: a node's notes (`bass`) or the curve on a parameter (`pad.cutoff`).
pub fn hush(target: &str) -> Result<Change, ClientError> {
    Ok(match target.split_once('.') {
        Some(_) => {
            let (node, param) = node_param(target)?;
            Change::Play {
                node,
                param: Some(param),
                pattern: None,
            }
        }
        None => Change::Play {
            node: target.to_string(),
            param: None,
            pattern: None,
        },
    })
}

/// A `set` change: a number, or a signal expression.
pub fn set(target: &str, value: &str) -> Result<Change, ClientError> {
    let (node, param) = node_param(target)?;
    Ok(Change::Set {
        node,
        param,
        value: Value::parse(value),
    })
}

/// A node to add: a built-in or a definition file.
pub fn node_spec(
    builtin: Option<String>,
    def_file: Option<&std::path::Path>,
    role: khorus_bus::Role,
) -> Result<NodeSpec, ClientError> {
    let def = match def_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| ClientError::Usage(format!("failed to read {}: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(NodeSpec {
        builtin,
        def,
        role,
        polyphony: None,
    })
}

/// Prints stage reports as a table.
pub fn print_status(out: &mut impl Write, reports: &[StageReport]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {:>7}  {:<21} {:>8} {:>9} {:>8} {:>6} {:>7} {:>9}  counters",
        "stage", "pid", "state", "restarts", "restart", "uptime", "cpu%", "wakes/s", "pss"
    )?;
    for r in reports {
        let dash = || "-".to_string();
        writeln!(
            out,
            "{:<10} {:>7}  {:<21} {:>8} {:>9} {:>8} {:>6} {:>7} {:>9}  {}",
            r.stage.name(),
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.state.name(),
            r.restarts,
            r.last_restart_ms.map_or_else(dash, |ms| format!("{ms} ms")),
            r.uptime_s.map_or_else(dash, duration),
            r.cpu_percent.map_or_else(dash, |c| format!("{c:.2}")),
            r.wakes_per_s.map_or_else(dash, |w| format!("{w:.1}")),
            r.pss_kib
                .map_or_else(dash, |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            counters(&r.counters),
        )?;
        for line in &r.detail {
            writeln!(out, "           | {line}")?;
        }
    }
    Ok(())
}

fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Counters worth a glance, by name; the source gauge as its name, a tick of 0 (the synth's
/// stream, paused while nothing sounds) as `paused`.
fn counters(list: &[(Counter, u64)]) -> String {
    list.iter()
        .filter(|(c, v)| {
            *v > 0
                || matches!(
                    c,
                    Counter::Dropped
                        | Counter::Late
                        | Counter::Xruns
                        | Counter::Missed
                        | Counter::Source
                        | Counter::TickMs
                )
        })
        .filter(|(c, _)| !matches!(c, Counter::Restarts | Counter::Hangs))
        .map(|(c, v)| match c {
            Counter::Source => format!(
                "source={}",
                khorus_bus::SignalSource::from_u8(*v as u8).name()
            ),
            Counter::TickMs if *v == 0 => "paused".to_string(),
            _ => format!("{}={v}", c.name()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_synth_reads_paused_and_a_tick_shows_its_length() {
        assert_eq!(counters(&[(Counter::TickMs, 0)]), "paused");
        assert_eq!(
            counters(&[
                (Counter::Ticks, 5),
                (Counter::TickMs, 100),
                (Counter::Resumed, 0)
            ]),
            "ticks=5 tick_ms=100"
        );
    }

    #[test]
    fn set_reads_numbers_and_expressions() {
        assert_eq!(
            set("pad.cutoff", "900").unwrap(),
            Change::Set {
                node: "pad".into(),
                param: "cutoff".into(),
                value: Value::Number(900.0)
            }
        );
        assert!(matches!(
            set("pad.cutoff", "range(io, 1, 2)").unwrap(),
            Change::Set {
                value: Value::Expr(_),
                ..
            }
        ));
        assert_eq!(set("pad", "1").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn status_names_the_source_and_states() {
        let mut out = Vec::new();
        print_status(
            &mut out,
            &[StageReport {
                stage: khorus_bus::StageKind::Collector,
                pid: Some(42),
                state: khorus_bus::commands::control::StageState::CrashLooping,
                restarts: 3,
                last_restart_ms: Some(120),
                uptime_s: None,
                cpu_percent: None,
                wakes_per_s: Some(23.4),
                pss_kib: Some(2048),
                counters: vec![(Counter::Source, 1), (Counter::Dropped, 0)],
                detail: vec!["collector exited with status 2".into()],
            }],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("crash-looping"), "{text}");
        assert!(text.contains("source=procfs"), "{text}");
        assert!(text.contains("2.0 MiB"), "{text}");
        assert!(text.contains(" 23.4 "), "wakes/s: {text}");
        assert!(text.contains("| collector exited with status 2"), "{text}");
    }
}
