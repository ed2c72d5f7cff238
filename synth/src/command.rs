//! The synth's commands, answered on the bus thread: `Set` is resolved by name and checked
//! against the running graph's table, `LoadGraph` is parsed, validated and built here, and
//! only then is anything handed to the audio thread. A refused command changes nothing.
//!
//! [`Controller`] holds this state without touching the bus, so tests drive it directly
//! together with the [`Renderer`] it feeds.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use khorus_bus::commands::composer::SOUNDING_MAX;
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{NoteEvent, Reply, ReplyError, StageStatus, TransportState};

use crate::edit::{Carry, Outline};
use crate::engine::Engine;
use crate::graph::GraphSpec;
use crate::params::ParamTable;
use crate::rt::{self, Feeder, Incoming, Renderer, RtStats};
use crate::stems::{MAX_STEMS, StemSlots};

/// Gives `engine`'s nodes their stem slots.
fn assign_stems(slots: &mut StemSlots, engine: &mut Engine) {
    let (map, without) = slots.assign(
        engine.instruments().iter().map(|i| i.name()),
        engine.effects().iter().map(|e| e.name.as_str()),
    );
    if !without.is_empty() {
        tracing::warn!(
            "no stem for {} (a synth offers at most {MAX_STEMS})",
            without.join(", ")
        );
    }
    engine.set_stems(map);
}

/// How long past its crossfade a graph change waits for the previous one to come back.
const SWAP_MARGIN: Duration = Duration::from_millis(250);

/// Shortest and longest graph crossfade, ms.
pub const FADE_MS: std::ops::RangeInclusive<u32> = 1..=2000;

/// Notes from the bus remembered so that a hand-over skips them: far more than come between a
/// synth subscribing and control handing it the composer's sounding notes.
const RECENT: usize = 1024;

/// What tells two deliveries of one note apart from two notes: its time, length, node and
/// pitch.
type NoteKey = (u64, u64, u32, u32);

fn key(n: &NoteEvent) -> NoteKey {
    (n.t_ns, n.dur_ns, n.node, n.note.to_bits())
}

/// The bus thread's side of the synth: the rings to the audio thread and the names of the
/// graph it plays.
#[derive(Debug)]
pub struct Controller {
    feeder: Feeder,
    table: ParamTable,
    /// The nodes of the graph last handed to the audio thread (what a new graph can carry).
    outline: Outline,
    /// The stem slots of its nodes, and the list for the PipeWire thread when it changed.
    stems: StemSlots,
    stems_changed: Option<Vec<(usize, String)>>,
    rate: f32,
    /// The transport's tempo, once known (a new graph starts following it).
    bpm: Option<f32>,
    /// The graph playing, with the `Set`s since it was loaded (None: the starting graph).
    graph: Option<GraphSpec>,
    /// The graph the starting engine was built from, with the `Set`s since.
    start: GraphSpec,
    /// When the last swap was handed over and how long its crossfade runs.
    last_swap: Option<(Instant, Duration)>,
    shutdown: bool,
    /// The last [`RECENT`] notes that came on the bus (a ring; `recent_next` is the slot the
    /// next one takes).
    recent: Box<[NoteKey]>,
    recent_next: usize,
    stats: Arc<RtStats>,
}

impl Controller {
    /// A controller for `engine` and the renderer that plays it (blocks of at most
    /// `max_frames`), linked by lock-free rings.
    pub fn new(mut engine: Engine, stats: Arc<RtStats>, max_frames: usize) -> (Self, Renderer) {
        let mut stems = StemSlots::default();
        assign_stems(&mut stems, &mut engine);
        let stems_changed = Some(stems.in_use());
        let table = ParamTable::of(&engine);
        let outline = engine.outline();
        let rate = engine.rate();
        let (feeder, renderer) = rt::link(engine, Arc::clone(&stats), max_frames);
        let controller = Self {
            feeder,
            table,
            outline,
            stems,
            stems_changed,
            rate,
            bpm: None,
            graph: None,
            start: GraphSpec::default().spelled_out(),
            last_swap: None,
            shutdown: false,
            recent: vec![(0, 0, 0, 0); RECENT].into_boxed_slice(),
            recent_next: 0,
            stats,
        };
        (controller, renderer)
    }

    /// Queues a note or curve point for the audio thread (a full ring drops and counts it).
    pub fn push(&mut self, item: Incoming) {
        if let Incoming::Note(n) = &item {
            self.recent[self.recent_next] = key(n);
            self.recent_next = (self.recent_next + 1) % RECENT;
        }
        self.feeder.push(item);
    }

    /// Takes over notes published before this synth listened ([`SynthCommand::Resume`]),
    /// skipping those that came on the bus; returns how many were queued.
    fn resume(&mut self, notes: &[NoteEvent]) -> Result<u64, ReplyError> {
        if notes.len() > SOUNDING_MAX {
            return Err(ReplyError::invalid(format!(
                "notes: {} notes, at most {SOUNDING_MAX}",
                notes.len()
            )));
        }
        let mut queued = 0;
        for n in notes {
            // A note already received (zero keys are empty slots: no note has length 0 and
            // time 0 at once from a composer, and one that did would only be skipped).
            if self.recent.contains(&key(n)) {
                continue;
            }
            if self.feeder.push(Incoming::Resume(*n)) {
                queued += 1;
            }
        }
        self.stats.resumed.fetch_add(queued, Relaxed);
        Ok(queued)
    }

    /// Follows the composer's transport: tempo-synced effects take its tempo.
    pub fn follow_transport(&mut self, t: &TransportState) -> bool {
        let bpm = t.bpm() as f32;
        if bpm.is_finite() && bpm > 0.0 && self.bpm != Some(bpm) {
            self.bpm = Some(bpm);
            self.feeder.push(Incoming::Tempo { bpm });
            return true;
        }
        false
    }

    /// Events dropped because the ring to the audio thread was full.
    pub fn dropped(&self) -> u64 {
        self.feeder.dropped()
    }

    /// Frees engines the audio thread has finished crossfading out of.
    pub fn collect_retired(&mut self) {
        self.feeder.collect_retired();
    }

    /// Whether a graph swap is still under way (its old engine has not come back yet).
    pub fn swap_pending(&mut self) -> bool {
        self.feeder.swap_pending()
    }

    /// Fades everything out over `fade_ms` (a swap to an empty graph): how the synth stops
    /// without a click. Wait for [`Controller::swap_pending`] to clear before stopping.
    pub fn fade_out(&mut self, fade_ms: u32) {
        let silent = Engine::new(self.rate, Vec::new(), Vec::new());
        if let Err(e) = self.swap(silent, fade_ms) {
            tracing::warn!("could not fade out: {e}");
        }
    }

    /// Hands `engine` to the audio thread with a crossfade of `fade_ms`. A change that comes
    /// while the previous crossfade still runs (live coding re-applies quickly) waits for it
    /// to finish — at most its length and a margin — instead of being refused.
    /// Nodes it shares with the graph playing keep their sound ([`crate::edit`]).
    fn swap(&mut self, mut engine: Engine, fade_ms: u32) -> Result<usize, rt::SwapError> {
        if let Some((at, fade)) = self.last_swap {
            let deadline = at + fade + SWAP_MARGIN;
            while self.feeder.swap_pending() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let fade_frames = (fade_ms as f32 * self.rate / 1000.0).round().max(1.0) as u32;
        let outline = engine.outline();
        let carry = Carry::between(&self.outline, &outline);
        let carried = carry.carried();
        engine.set_carry(carry);
        let mut stems = self.stems.clone();
        assign_stems(&mut stems, &mut engine);
        self.feeder.swap(Box::new(engine), fade_frames)?;
        self.outline = outline;
        if stems.in_use() != self.stems.in_use() {
            self.stems_changed = Some(stems.in_use());
        }
        self.stems = stems;
        self.last_swap = Some((Instant::now(), Duration::from_millis(fade_ms as u64)));
        Ok(carried)
    }

    /// The stems to offer, (slot, node name), when they changed since the last call (the
    /// first call gives the starting graph's).
    pub fn take_stems_changed(&mut self) -> Option<Vec<(usize, String)>> {
        self.stems_changed.take()
    }

    /// Says which graph the starting engine was built from (what the first node-by-node edit
    /// starts from and `Describe` tells; the built-in patch unless told).
    pub fn started_from(&mut self, spec: GraphSpec) {
        self.start = spec.spelled_out();
    }

    /// Builds `spec` and hands it over: the nodes it shares with the graph playing carry on,
    /// the rest crossfade over `fade_ms`. Refused (nothing changed) when it does not build.
    fn load(&mut self, spec: GraphSpec, fade_ms: u32) -> Reply<SynthReply> {
        let mut engine = spec
            .build(self.rate)
            .map_err(|e| ReplyError::invalid(e.to_string()))?;
        if let Some(bpm) = self.bpm {
            engine.follow_tempo(bpm);
        }
        let table = ParamTable::of(&engine);
        let nodes = engine.instruments().len() + engine.effects().len();
        let fade_ms = fade_ms.clamp(*FADE_MS.start(), *FADE_MS.end());
        let carried = self
            .swap(engine, fade_ms)
            .map_err(|e| ReplyError::invalid(e.to_string()))?;
        tracing::info!(
            "new graph ({}): {carried} of {nodes} nodes carried on, the rest crossfading over \
             {fade_ms} ms",
            table.names().collect::<Vec<_>>().join(", ")
        );
        self.table = table;
        self.graph = Some(spec);
        Ok(SynthReply::Applied)
    }

    /// Whether a Shutdown was received.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// Answers one command; `status` makes the report for `Common(Status)`.
    pub fn handle(
        &mut self,
        cmd: SynthCommand,
        status: impl FnOnce() -> StageStatus,
    ) -> Reply<SynthReply> {
        match cmd {
            SynthCommand::Common(c) => Ok(SynthReply::Common(c.answer(status, &mut self.shutdown))),
            SynthCommand::Set { node, param, value } => {
                let r = self
                    .table
                    .resolve(&node, &param, value)
                    .map_err(|e| ReplyError::invalid(e.to_string()))?;
                let item = Incoming::Set {
                    inst: r.inst as u32,
                    param: r.param as u32,
                    value: r.value,
                };
                if !self.feeder.push(item) {
                    return Err(ReplyError::invalid(format!(
                        "{node}.{param}: {}",
                        rt::SwapError::RingFull
                    )));
                }
                match &mut self.graph {
                    Some(g) => g.record_set(&node, &param, r.value),
                    None => self.start.record_set(&node, &param, r.value),
                }
                Ok(SynthReply::Applied)
            }
            SynthCommand::Send {
                from,
                to,
                level,
                at_ns,
                over_ns,
            } => {
                if !(level.is_finite() && level > 0.0) {
                    return Err(ReplyError::invalid(format!(
                        "send {from} -> {to}: level {level} (more than 0; remove a route with a \
                         graph edit)"
                    )));
                }
                let level = crate::schema::table::SEND.clamp(level);
                let graph = match &mut self.graph {
                    Some(g) => g,
                    None => &mut self.start,
                };
                let instruments = graph.instruments.len();
                let Some(recorded) = graph.send_mut(&from, &to) else {
                    return Err(ReplyError::invalid(format!(
                        "no route from {from:?} into {to:?} (add one with a graph edit)"
                    )));
                };
                let node = |name: &str| {
                    self.table
                        .node(name)
                        .map_err(|e| ReplyError::invalid(e.to_string()))
                };
                let inst = node(&from)?;
                let effect = node(&to)?
                    .checked_sub(instruments)
                    .ok_or_else(|| ReplyError::invalid(format!("{to:?} is not an effect")))?;
                let item = Incoming::Send {
                    inst: inst as u32,
                    to: effect as u32,
                    level,
                    at_ns,
                    over_ns,
                };
                if !self.feeder.push(item) {
                    return Err(ReplyError::invalid(format!(
                        "send {from} -> {to}: {}",
                        rt::SwapError::RingFull
                    )));
                }
                *recorded = level;
                Ok(SynthReply::Applied)
            }
            SynthCommand::Describe => Ok(SynthReply::Graph {
                json: serde_json::to_string(self.graph.as_ref().unwrap_or(&self.start)).ok(),
            }),
            SynthCommand::LoadGraph { json, fade_ms } => {
                let spec =
                    GraphSpec::from_json(&json).map_err(|e| ReplyError::invalid(e.to_string()))?;
                self.load(spec, fade_ms)
            }
            SynthCommand::Edit { edit, fade_ms } => {
                let base = self.graph.as_ref().unwrap_or(&self.start);
                let spec = base
                    .edited(&edit)
                    .map_err(|e| ReplyError::invalid(e.to_string()))?;
                self.load(spec, fade_ms)
            }
            SynthCommand::Resume { notes } => {
                let queued = self.resume(&notes)?;
                tracing::info!("took over {queued} of {} sounding notes", notes.len());
                Ok(SynthReply::Applied)
            }
        }
    }
}
