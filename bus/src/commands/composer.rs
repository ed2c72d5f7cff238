//! The composer's commands: set a slot's pattern, hush, tempo and transport, scores.
//!
//! Patterns travel as a small flat IR: mini-notation text, a list of transforms applied in
//! order, and control parameters. Numeric arguments are strings holding a number (`"2"`,
//! `"1.5"`) or a signal expression (`"1 + 3*csw"`, `"retx > 0.08"`), so every argument may
//! follow the kernel. The IR is deliberately flat (no recursive boxes) so decoding a hostile
//! request cannot nest deeply. The composer validates everything before changing anything;
//! a refusal names the field and, for text, the line:column with a caret.

use serde::{Deserialize, Serialize};

use crate::command::{Common, CommonReply};
use crate::{CurveShape, Role};

/// A numeric argument: a number or a signal expression, as text.
pub type Arg = String;

/// A request to the composer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ComposerCommand {
    /// Ping, status, shutdown.
    Common(Common),
    /// Plays `spec` in `slot` from the next cycle boundary (or `spec.quantum`), replacing
    /// what the slot played; the bar is not restarted.
    SetSlot {
        /// The slot's name (any text; also seeds its random choices).
        slot: String,
        /// What to play.
        spec: SlotSpec,
        /// Cycles (bars) over which its notes crossfade with what the slot played (the old
        /// ones fading out as the new fade in, velocities along a straight line); 0 switches
        /// at once. A curve switches at once either way.
        #[serde(default)]
        fade: u32,
    },
    /// Silences one slot (`Some`) or every slot and the score (`None`) at the next boundary.
    Hush {
        /// The slot, or all.
        slot: Option<String>,
    },
    /// Changes the tempo, phase-continuously.
    Tempo(TempoChange),
    /// Starts, stops or reports the transport.
    Transport(TransportAction),
    /// Continues a transport another composer ran (after a restart): the beat grid goes on
    /// from its anchor instead of starting at cycle 0, and notes before one lookahead from
    /// now are not made again.
    Follow(TransportInfo),
    /// Plays a kernel-driven score (`ambient`, `percussive`, `arp`, `drone`; `none` stops it).
    SelectScore {
        /// The score's name.
        name: String,
        /// Its parameters (unset ones keep their defaults).
        params: ScoreParams,
    },
    /// Moves parameters along straight lines (linear in cycles) over spans of cycles:
    /// krach's transition. A ramp replaces the one on the same parameter; one of 0 cycles
    /// ends it where it is. The reply names where the last one starts.
    Ramps(Vec<ParamRamp>),
    /// Asks for the notes it published that have not ended yet (sounding now, or still ahead),
    /// at most [`SOUNDING_MAX`]: what a synth that has just (re)started missed, so that control
    /// can hand them over ([`crate::commands::synth::SynthCommand::Resume`]) and a drone does
    /// not wait a whole cycle to sound again.
    Sounding,
}

/// The most notes a [`ComposerCommand::Sounding`] reply carries (those that end last): 256
/// notes encode in about 10 KiB, inside a command's limit.
pub const SOUNDING_MAX: usize = 256;

/// What a slot plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotSpec {
    /// Where the values come from.
    pub source: Source,
    /// Transforms, applied in order.
    pub transforms: Vec<Transform>,
    /// Control parameters combined into every event (Tidal's `#`).
    pub controls: Vec<ControlSpec>,
    /// Notes or a parameter curve.
    pub target: Target,
    /// Cycles to align the change to (`"1"` = next cycle, `"4"` = next 4-cycle bar);
    /// `None` is 1.
    pub quantum: Option<Arg>,
}

/// A slot's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// Mini-notation: note names, numbers (MIDI notes, or degrees with `Transform::Scale`),
    /// drum words.
    Mini(String),
    /// A continuous signal expression, sampled `per_cycle` times a cycle.
    Expr {
        /// The expression.
        expr: String,
        /// Samples per cycle.
        per_cycle: u32,
    },
}

/// A pattern transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Speed up.
    Fast(Arg),
    /// Slow down.
    Slow(Arg),
    /// Shift earlier, cycles.
    Early(Arg),
    /// Shift later, cycles.
    Late(Arg),
    /// Reverse each cycle.
    Rev,
    /// Alternate forwards and reversed cycles.
    Palindrome,
    /// Repeat each event n times in its span.
    Ply(Arg),
    /// Drop events with this probability (seeded).
    DegradeBy(Arg),
    /// Apply `then` every `n`th cycle.
    Every {
        /// Period in cycles.
        n: i64,
        /// The transform.
        then: Simple,
    },
    /// Apply `then` to each event with probability `prob`.
    SometimesBy {
        /// Probability.
        prob: Arg,
        /// The transform.
        then: Simple,
    },
    /// Euclidean structure.
    Euclid {
        /// Onsets.
        pulses: Arg,
        /// Steps.
        steps: Arg,
        /// Left rotation in steps.
        rotation: Arg,
    },
    /// Tidal's `swingBy amount per_cycle`.
    Swing {
        /// Delay of the off-beats, in parts of a subdivision.
        amount: Arg,
        /// Subdivisions per cycle.
        per_cycle: Arg,
    },
    /// Keep events where this boolean mini-notation is true.
    Mask(String),
    /// Take the structure from this boolean mini-notation.
    Struct(String),
    /// Keep events only while this signal expression is non-zero (e.g. `"retx > 0.08"`).
    Gate(String),
    /// Sample n times per cycle.
    Segment(Arg),
    /// Map 0..1 values onto lo..hi.
    Range {
        /// Low end.
        lo: Arg,
        /// High end.
        hi: Arg,
    },
    /// Read numbers as degrees of a scale in a key.
    Scale {
        /// Key, a note name (`a`, `c#3`).
        key: String,
        /// Scale name (`minor`, `pentatonic_minor`, `dorian`, …).
        scale: String,
    },
    /// Add to every note (transpose, semitones).
    Add(Arg),
    /// Stretch over n cycles.
    Over(Arg),
    /// n copies in sequence in one cycle.
    Repeat(u32),
}

/// A transform usable inside `Every` and `SometimesBy` (not nested further).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Simple {
    /// Speed up.
    Fast(Arg),
    /// Slow down.
    Slow(Arg),
    /// Shift earlier.
    Early(Arg),
    /// Shift later.
    Late(Arg),
    /// Reverse.
    Rev,
    /// Repeat each event.
    Ply(Arg),
    /// Transpose.
    Add(Arg),
    /// Drop events.
    DegradeBy(Arg),
}

/// One control parameter of a slot's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlSpec {
    /// Which parameter.
    pub param: ControlParam,
    /// Its values.
    pub value: ControlValue,
}

/// A control parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlParam {
    /// Note velocity, 0..1.
    Velocity,
    /// Note length as a fraction of its event.
    Legato,
    /// A parameter of the target node (id from control's table), sent as curve points.
    Param(u32),
}

/// Where a control's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlValue {
    /// Mini-notation of numbers.
    Mini(String),
    /// A signal expression, sampled at each event's onset.
    Expr(String),
}

/// Where a slot's events go.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// Notes for an instrument.
    Notes {
        /// Node id (0 = the role's default).
        node: u32,
        /// Role.
        role: Role,
        /// MIDI channel; `None` is the role's default.
        channel: Option<u8>,
    },
    /// Breakpoints of one node parameter (values are the pattern's numbers).
    Curve {
        /// Node id.
        node: u32,
        /// Parameter id.
        param: u32,
        /// Interpolation towards each point.
        shape: CurveShape,
    },
}

/// A tempo change; unset fields stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TempoChange {
    /// Beats per minute.
    pub bpm: Option<f64>,
    /// Cycles per second (alternative to `bpm`).
    pub cps: Option<f64>,
    /// Beats per cycle.
    pub beats_per_cycle: Option<u32>,
    /// Ramp to the new tempo over this many cycles (bars), linear in cycles, from the next
    /// cycle boundary (from the horizon when a ramp is already running); unset or 0 jumps.
    #[serde(default)]
    pub over: Option<u32>,
}

/// A parameter moving from one value to another over a span of cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamRamp {
    /// The node (id assigned by control).
    pub node: u32,
    /// Its parameter (id assigned by control).
    pub param: u32,
    /// The value at the start.
    pub from: f32,
    /// The value at the end (and after).
    pub to: f32,
    /// Where it starts: a cycle, exact (`n/d`: a ramp resumed after a restart), or `None`
    /// for the next cycle boundary.
    pub start: Option<String>,
    /// Its length in cycles (bars); 0 ends a ramp on this parameter.
    pub cycles: u32,
}

/// Transport actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransportAction {
    /// Start (or resume) at the current phase.
    Start,
    /// Stop after what is already scheduled.
    Stop,
    /// Report the transport state.
    Query,
}

/// Score parameters; `None` keeps the current or default value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScoreParams {
    /// Key (note name).
    pub key: Option<String>,
    /// Scale name.
    pub scale: Option<String>,
    /// Tempo.
    pub bpm: Option<f64>,
    /// Note density, 0..1.
    pub density: Option<f64>,
    /// Which nodes the score's parts play (control's ids); `None` keeps the current routes
    /// (none at start: notes carry node 0, the synth's role default, and the cutoff curve is
    /// not made).
    pub routes: Option<ScoreRoutes>,
}

/// Where a score's notes and its cutoff curve go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScoreRoutes {
    /// Note routes, first match wins; notes nothing matches keep node 0.
    pub notes: Vec<NoteRoute>,
    /// The node and parameter ids that the score's filter-cutoff curve drives.
    pub cutoff: Vec<(u32, u32)>,
}

/// Notes of `role` with MIDI numbers in `lo..=hi` go to `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRoute {
    /// The notes' role.
    pub role: Role,
    /// Lowest MIDI note.
    pub lo: u8,
    /// Highest MIDI note.
    pub hi: u8,
    /// Node id.
    pub node: u32,
}

impl ScoreRoutes {
    /// The node a note of `role` and number `note` goes to (0: none).
    pub fn node_for(&self, role: Role, note: f32) -> u32 {
        let n = note.round();
        self.notes
            .iter()
            .find(|r| r.role == role && n >= r.lo as f32 && n <= r.hi as f32)
            .map_or(0, |r| r.node)
    }
}

/// The composer's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ComposerReply {
    /// Answer to a `Common` command.
    Common(CommonReply),
    /// The change was accepted and takes effect at this cycle (exact, as `n/d`).
    Applied {
        /// Cycle at which it takes effect.
        at_cycle: String,
    },
    /// The transport state.
    Transport(TransportInfo),
    /// The notes asked for by [`ComposerCommand::Sounding`], in the order they were made.
    Notes(Vec<crate::NoteEvent>),
}

/// Where the transport is; enough for a follower to compute any cycle's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportInfo {
    /// Whether it is running.
    pub running: bool,
    /// Cycles per second, exact (`n/d`).
    pub cps: String,
    /// Beats per minute.
    pub bpm: f64,
    /// Beats per cycle.
    pub beats_per_cycle: u32,
    /// Monotonic time of the anchor, ns.
    pub anchor_ns: u64,
    /// Cycle at the anchor, exact (`n/d`).
    pub anchor_cycle: String,
    /// The tempo ramp that starts at the anchor: where it ends (cycle, exact `n/d`) and the
    /// cycles per second it reaches there (exact `n/d`).
    #[serde(default)]
    pub ramp: Option<(String, String)>,
}
