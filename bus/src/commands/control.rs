//! Control's commands: every surface (the CLI, later scripts, HTTP and OSC in) turns what the
//! user asked into one [`ControlCommand`], most often a [`Batch`](ControlCommand::Batch) of
//! [`Change`]s that control validates as a whole against the stages, then applies, undoing what
//! was applied if a stage refuses midway. Nodes and parameters are named here; control assigns
//! their numeric ids and publishes the table (`khorus/ids`).

use serde::{Deserialize, Serialize};

use crate::command::{Common, CommonReply};
use crate::commands::composer::{Arg, ControlValue, Source, Transform};
use crate::{Counter, Role, StageKind};

/// A request to control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Ping, status, shutdown (Shutdown is [`ControlCommand::Down`] without stopping stages).
    Common(Common),
    /// Applies every change or none.
    Batch(Vec<Change>),
    /// The session as JSON.
    Session,
    /// Replaces the session with this JSON (as `Session` returns it), applied as the batch of
    /// differences.
    LoadSession {
        /// The session.
        json: String,
        /// Bars over which the numbers that differ move to the loaded values (`None` or 0:
        /// at once), as [`Change::Over`].
        over: Option<u32>,
    },
    /// One report per stage.
    Stages,
    /// Silences the music (MIDI all-notes-off, the synth fades out) and stops every stage and
    /// control itself.
    Down,
    /// Plays one note on a node now (an audition; not part of the session).
    Note {
        /// The node.
        node: String,
        /// MIDI note number.
        note: f32,
        /// Velocity 0..=1.
        velocity: f32,
        /// Length, ms.
        dur_ms: u32,
    },
}

/// One change to the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Adds a node, or replaces the node of that name.
    AddNode {
        /// Its name (1..=23 bytes of `[A-Za-z0-9_-]`).
        name: String,
        /// What it is.
        node: NodeSpec,
    },
    /// Removes a node, its routes and its patterns.
    RemoveNode {
        /// Its name.
        name: String,
    },
    /// Sets `param` of `node`: `gain`, `pan`, `mute`, or a control of its definition.
    Set {
        /// The node.
        node: String,
        /// The parameter.
        param: String,
        /// A number, or a signal expression the composer turns into a curve.
        value: Value,
    },
    /// Routes `from` into the effect `to` at `level` (replacing an existing route's level).
    Route {
        /// The source node.
        from: String,
        /// The effect node it feeds.
        to: String,
        /// Send level 0..=1.
        level: f32,
    },
    /// Removes the route from `from` to `to`.
    Unroute {
        /// The source node.
        from: String,
        /// The effect node.
        to: String,
    },
    /// Plays a pattern on a node's notes, or as a curve on one of its parameters (or hushes
    /// either with `None`). The change lands on the next cycle boundary (or its quantum's).
    Play {
        /// The node.
        node: String,
        /// `None`: the node's notes; a parameter name: a curve on that parameter.
        param: Option<String>,
        /// What plays; `None` hushes it.
        pattern: Option<PatternSpec>,
    },
    /// Sets the tempo.
    Tempo {
        /// Beats per minute, 1..=999.
        bpm: f64,
        /// Beats per cycle, 1..=64 (unset: unchanged).
        beats_per_cycle: Option<u32>,
    },
    /// Plays a kernel score (`none` stops it).
    Score {
        /// `ambient`, `percussive`, `arp`, `drone` or `none`.
        name: String,
        /// `key`, `scale`, `bpm`, `density` as text.
        params: Vec<(String, String)>,
    },
    /// Silences every node's pattern and the score.
    HushAll,
    /// The numbers this batch changes — gain, pan and number controls of instruments, and
    /// the tempo — move to their new values over `bars` bars (cycles), in a straight line in
    /// bars from the next cycle boundary, instead of jumping: krach's transition. Anywhere in
    /// the batch; 0 jumps.
    Over {
        /// Bars (cycles), 0..=1024.
        bars: u32,
    },
    /// A ramp in progress, as the session records it (`khorus session --json`; a session file
    /// restores it): `what` (`tempo` or `node.param`) moves from `from` to `to` over `bars`
    /// bars from cycle `start`. Made by [`Change::Over`]; written by hand, it must name a
    /// number the session holds, and `to` must be its value.
    Ramp {
        /// `tempo`, or `node.param`.
        what: String,
        /// The value at its start.
        from: f64,
        /// The value it reaches (the session's).
        to: f64,
        /// Bars (cycles), 1..=1024.
        bars: u32,
        /// The cycle it starts at, exact (`n/d`); unset until the composer has placed it.
        start: Option<String>,
    },
}

/// What a node's slot plays: the composer's whole slot language
/// ([`SlotSpec`](crate::commands::composer::SlotSpec): source, transforms, controls, quantum)
/// without its target, with parameters named as the session names them. Control fills in the
/// target (the node's notes, or a curve on one of its parameters) and the ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    /// Where the values come from: mini-notation, or a signal expression sampled `per_cycle`
    /// times a cycle.
    pub source: Source,
    /// Transforms, applied in order.
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// Controls combined into every event (Tidal's `#`).
    #[serde(default)]
    pub controls: Vec<PatternControl>,
    /// Cycles to align the change to (`"4"`: the next 4-cycle bar); `None` is 1.
    #[serde(default)]
    pub quantum: Option<Arg>,
}

impl PatternSpec {
    /// Mini-notation, untransformed.
    pub fn mini(text: impl Into<String>, quantum: Option<Arg>) -> Self {
        PatternSpec {
            source: Source::Mini(text.into()),
            transforms: Vec::new(),
            controls: Vec::new(),
            quantum,
        }
    }
}

/// One control of a pattern's events, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternControl {
    /// `velocity`, `legato`, or a parameter of the node.
    pub param: String,
    /// Its values.
    pub value: ControlValue,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// A built-in instrument (`pad`, `lead`, `bass`, …) or effect (`delay`, `reverb`).
    #[serde(default)]
    pub builtin: Option<String>,
    /// A synth definition (the synth's definition JSON, as text), for user instruments.
    #[serde(default)]
    pub def: Option<String>,
    /// The node's musical role: its default MIDI channel and which score part it plays.
    #[serde(default = "default_role")]
    pub role: Role,
    /// Voices (instruments; default 32).
    #[serde(default)]
    pub polyphony: Option<u32>,
}

fn default_role() -> Role {
    Role::Other
}

/// A control value: a number, or a signal expression (`range(io, 200, 4000)`) sampled by the
/// composer and sent as a curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A constant.
    Number(f64),
    /// A signal expression.
    Expr(String),
}

impl Value {
    /// A number if `text` is one, else an expression.
    pub fn parse(text: &str) -> Self {
        match text.trim().parse::<f64>() {
            Ok(v) => Self::Number(v),
            Err(_) => Self::Expr(text.trim().to_string()),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(v) => write!(f, "{v}"),
            Self::Expr(e) => f.write_str(e),
        }
    }
}

/// Control's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlReply {
    /// Answer to a `Common` command.
    Common(CommonReply),
    /// The batch was applied; the session is now at this version.
    Applied {
        /// Session version (counts applied batches).
        version: u64,
    },
    /// The session as JSON.
    Session {
        /// The JSON.
        json: String,
    },
    /// One report per supervised stage.
    Stages(Vec<StageReport>),
    /// Done.
    Ack,
}

/// What control knows of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Which stage.
    pub stage: StageKind,
    /// Its process, when it has one.
    pub pid: Option<u32>,
    /// Its state.
    pub state: StageState,
    /// Restarts so far.
    pub restarts: u64,
    /// Time from the last exit to ready again, ms.
    pub last_restart_ms: Option<u64>,
    /// Seconds since it became ready.
    pub uptime_s: Option<u64>,
    /// CPU over the last status period, % of one core.
    pub cpu_percent: Option<f64>,
    /// Wake-ups a second over the last status period, all its threads together (what a
    /// periodic path costs on a machine that runs it all day, whatever it does when awake).
    pub wakes_per_s: Option<f64>,
    /// Proportional set size, KiB.
    pub pss_kib: Option<u64>,
    /// Its latest status counters.
    pub counters: Vec<(Counter, u64)>,
    /// Why it is not ready, and its last stderr lines when it crashed.
    pub detail: Vec<String>,
}

/// A supervised stage's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Started, not answering yet.
    Starting,
    /// Answering commands.
    Ready,
    /// Exited; being started again.
    Restarting,
    /// Exited again and again: waiting (exponential back-off) before the next start.
    CrashLooping,
    /// Needs PipeWire, which is not running.
    WaitingForPipewire,
    /// Not started (left out by the configuration).
    Disabled,
}

impl StageState {
    /// Lower-case name, as `khorus status` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Restarting => "restarting",
            Self::CrashLooping => "crash-looping",
            Self::WaitingForPipewire => "waiting-for-pipewire",
            Self::Disabled => "disabled",
        }
    }
}
