//! `khorus/status`: every stage's heartbeat with its counters.
//!
//! Counters are indexed by [`Counter`], a fixed, append-only table like the signal table, so
//! `khorus status` can name every drop, late event, xrun and restart without strings on the bus.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// Slots for counters in a [`StageStatus`].
pub const COUNTER_CAPACITY: usize = 32;

/// Which process a status (or a command service) belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum StageKind {
    /// Kernel signals.
    Collector = 0,
    /// Patterns and scores.
    Composer = 1,
    /// Audio.
    Synth = 2,
    /// MIDI and OSC.
    Router = 3,
    /// The supervisor.
    Control = 4,
    /// A bus tool (`khorus tap`, `khorus inject`) or a test peer.
    Tool = 5,
}

impl StageKind {
    /// All stages, in wire order.
    pub const ALL: [Self; 6] = [
        Self::Collector,
        Self::Composer,
        Self::Synth,
        Self::Router,
        Self::Control,
        Self::Tool,
    ];

    /// Decodes the wire byte; unknown values read as `Tool`.
    pub fn from_u8(v: u8) -> Self {
        Self::ALL.get(v as usize).copied().unwrap_or(Self::Tool)
    }

    /// Lower-case name, as in service paths and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Self::Collector => "collector",
            Self::Composer => "composer",
            Self::Synth => "synth",
            Self::Router => "router",
            Self::Control => "control",
            Self::Tool => "tool",
        }
    }
}

/// The named counters a stage may report. Append-only: indices are wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Counter {
    /// Samples published.
    Published = 0,
    /// Samples a full subscriber buffer refused (publisher side).
    Dropped = 1,
    /// Samples received.
    Received = 2,
    /// Samples missing from a publisher's sequence (subscriber side).
    Missed = 3,
    /// Events that arrived or were produced after their time.
    Late = 4,
    /// Audio or MIDI buffer under/overruns.
    Xruns = 5,
    /// Times a stage was restarted (reported by control).
    Restarts = 6,
    /// Ticks of the stage's own clock.
    Ticks = 7,
    /// Ticks that started later than one period after the previous one.
    LateTicks = 8,
    /// Failed reads of a source (BPF map, procfs file).
    ReadErrors = 9,
    /// Commands answered successfully.
    CommandsOk = 10,
    /// Commands rejected (malformed, oversized, invalid).
    CommandsRejected = 11,
    /// Voices sounding now (gauge).
    ActiveVoices = 12,
    /// Mean audio callback time, ns (gauge).
    CallbackAvgNs = 13,
    /// Longest audio callback time, ns (gauge).
    CallbackMaxNs = 14,
    /// The period's time budget, ns (gauge).
    CallbackBudgetNs = 15,
    /// BPF programs attached (gauge).
    ProgramsAttached = 16,
    /// MIDI messages written.
    MidiOut = 17,
    /// OSC packets sent.
    OscOut = 18,
    /// OSC packets received and accepted.
    OscIn = 19,
    /// OSC packets rejected.
    OscRejected = 20,
    /// Gauge: the collector's source, as the `SignalSource` byte (0 bpf, 1 procfs, 2 replay,
    /// 3 synthetic).
    Source = 21,
    /// MIDI note-ons written.
    NotesOut = 22,
    /// MIDI control changes written.
    ControlChanges = 23,
    /// Commands forwarded to another stage that failed (no such stage, refused, timed out).
    ForwardFailed = 24,
    /// Notes and curve points addressed to a node (or parameter) id the stage does not have.
    Unrouted = 25,
    /// Times the stage was found hung (status stopped arriving) and killed (reported by
    /// control).
    Hangs = 26,
    /// Gauge: seconds since the last signal frame arrived (the composer, while a kernel score
    /// plays).
    SignalsStale = 27,
    /// Notes not written because no MIDI peer is linked (the router).
    Unlinked = 28,
    /// Samples read without waking for them, because nothing consumed them (the router: signal
    /// frames with no MIDI peer linked and no OSC signal bundles; notes and curve points with
    /// no MIDI peer linked, no OSC target and no `--print`).
    Unconsumed = 29,
    /// Notes a (re)started synth took over from the composer: they had started, or were
    /// published, before it was listening (see `SynthCommand::Resume`).
    Resumed = 30,
    /// Gauge: the stage's tick now, ms. The collector's `tick_ms` while something waits for
    /// every frame as it comes, its `idle_tick_ms` while every reader takes them at its own
    /// pace; the composer's half lookahead while it makes something, 1000 while it is hushed
    /// or stopped.
    TickMs = 31,
}

impl Counter {
    /// Every counter in wire order.
    pub const ALL: [Self; 32] = [
        Self::Published,
        Self::Dropped,
        Self::Received,
        Self::Missed,
        Self::Late,
        Self::Xruns,
        Self::Restarts,
        Self::Ticks,
        Self::LateTicks,
        Self::ReadErrors,
        Self::CommandsOk,
        Self::CommandsRejected,
        Self::ActiveVoices,
        Self::CallbackAvgNs,
        Self::CallbackMaxNs,
        Self::CallbackBudgetNs,
        Self::ProgramsAttached,
        Self::MidiOut,
        Self::OscOut,
        Self::OscIn,
        Self::OscRejected,
        Self::Source,
        Self::NotesOut,
        Self::ControlChanges,
        Self::ForwardFailed,
        Self::Unrouted,
        Self::Hangs,
        Self::SignalsStale,
        Self::Unlinked,
        Self::Unconsumed,
        Self::Resumed,
        Self::TickMs,
    ];

    /// The counter's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Dropped => "dropped",
            Self::Received => "received",
            Self::Missed => "missed",
            Self::Late => "late",
            Self::Xruns => "xruns",
            Self::Restarts => "restarts",
            Self::Ticks => "ticks",
            Self::LateTicks => "late_ticks",
            Self::ReadErrors => "read_errors",
            Self::CommandsOk => "commands_ok",
            Self::CommandsRejected => "commands_rejected",
            Self::ActiveVoices => "active_voices",
            Self::CallbackAvgNs => "callback_avg_ns",
            Self::CallbackMaxNs => "callback_max_ns",
            Self::CallbackBudgetNs => "callback_budget_ns",
            Self::ProgramsAttached => "programs_attached",
            Self::MidiOut => "midi_out",
            Self::OscOut => "osc_out",
            Self::OscIn => "osc_in",
            Self::OscRejected => "osc_rejected",
            Self::Source => "source",
            Self::NotesOut => "notes_out",
            Self::ControlChanges => "control_changes",
            Self::ForwardFailed => "forward_failed",
            Self::Unrouted => "unrouted",
            Self::Hangs => "hangs",
            Self::SignalsStale => "signals_stale",
            Self::Unlinked => "unlinked",
            Self::Unconsumed => "unconsumed",
            Self::Resumed => "resumed",
            Self::TickMs => "tick_ms",
        }
    }
}

const _: () = assert!(Counter::ALL.len() <= COUNTER_CAPACITY);

/// A stage's heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, ZeroCopySend, Serialize, Deserialize)]
#[serde(into = "StatusJson", try_from = "StatusJson")]
#[type_name("khorus::StageStatus/v1")]
#[repr(C)]
pub struct StageStatus {
    /// Per-publisher sequence number, set by [`Publisher::publish`](crate::Publisher::publish).
    pub seq: u64,
    /// Monotonic time of the report, ns.
    pub t_ns: u64,
    /// Counter values by [`Counter`] index; only those whose bit is set in `present` mean
    /// anything.
    pub counters: [u64; COUNTER_CAPACITY],
    /// Bit `i` set: counter `i` is reported by this stage.
    pub present: u32,
    /// The reporting process's pid.
    pub pid: u32,
    /// [`StageKind`] as a byte.
    pub stage: u8,
    /// Padding, zero.
    pub _pad: [u8; 7],
}

impl StageStatus {
    /// An empty report from `stage` (this process's pid, stamped now).
    pub fn new(stage: StageKind) -> Self {
        Self {
            seq: 0,
            t_ns: crate::clock::now_ns(),
            counters: [0; COUNTER_CAPACITY],
            present: 0,
            pid: std::process::id(),
            stage: stage as u8,
            _pad: [0; 7],
        }
    }

    /// Sets a counter and marks it present.
    pub fn set(&mut self, counter: Counter, value: u64) -> &mut Self {
        self.counters[counter as usize] = value;
        self.present |= 1 << counter as u32;
        self
    }

    /// A counter's value, if the stage reports it.
    pub fn get(&self, counter: Counter) -> Option<u64> {
        (self.present & (1 << counter as u32) != 0).then(|| self.counters[counter as usize])
    }

    /// The reporting stage.
    pub fn stage(&self) -> StageKind {
        StageKind::from_u8(self.stage)
    }

    /// The reported counters as (counter, value) pairs, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .iter()
            .filter_map(|&c| self.get(c).map(|v| (c, v)))
    }
}

// One report per stage per second or so; history lets `khorus status` see every stage's
// latest report at once.
topic!(StageStatus, "khorus/status", buffer: 64, history: 8, publishers: 8, subscribers: 16);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusJson {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t_ns: u64,
    stage: StageKind,
    #[serde(default)]
    pid: u32,
    #[serde(default, with = "super::pairs_as_map")]
    counters: Vec<(Counter, u64)>,
}

impl From<StageStatus> for StatusJson {
    fn from(s: StageStatus) -> Self {
        Self {
            seq: s.seq,
            t_ns: s.t_ns,
            stage: s.stage(),
            pid: s.pid,
            counters: s.iter().collect(),
        }
    }
}

impl TryFrom<StatusJson> for StageStatus {
    type Error = String;
    fn try_from(j: StatusJson) -> Result<Self, String> {
        let mut s = StageStatus::new(j.stage);
        s.seq = j.seq;
        s.t_ns = j.t_ns;
        s.pid = j.pid;
        for (c, v) in j.counters {
            s.set(c, v);
        }
        Ok(s)
    }
}
