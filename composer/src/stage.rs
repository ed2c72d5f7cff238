//! The composer stage: applies commands, follows signals, advances the scheduler on a tick
//! and publishes notes, curve points and a status heartbeat on the bus.
//!
//! [`Composer`] holds all state and answers commands without touching the bus, so tests
//! drive it directly; [`run`] wires it to iceoryx2 and sleeps in `wait::run` between ticks.

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Duration;

use khorus_bus::command::CommonReply;
use khorus_bus::commands::composer::{
    ComposerCommand, ComposerReply, ParamRamp, SOUNDING_MAX, ScoreParams, ScoreRoutes, TempoChange,
    TransportAction, TransportInfo,
};
use khorus_bus::wait::{self, Period, Wake};
use khorus_bus::{
    BusConfig, BusError, Common, Counter, CurvePoint, NoteEvent, Publisher, Reply, ReplyError,
    SignalFrame, StageKind, StageRunner, StageStatus, Subscriber, TransportState, clock,
};

use crate::ir;
use crate::levels::Signals;
use crate::ramps::Ramp;
use crate::scheduler::{Batch, Scheduler};
use crate::score::Score;
use crate::time::{Q, TimeError};
use crate::transport::{self, Transport, cps_from_bpm};
use crate::watch::{self, SignalWatch};

/// How long after the clock grid's multiples the composer ticks: the collector publishes
/// its frames on the grid and takes well under a millisecond to, so a tick this much later
/// reads a frame a few milliseconds old, where an unaligned tick read one up to a period old.
const AFTER_THE_FRAMES: Duration = Duration::from_millis(3);

/// The longest crossfade of a slot's change, cycles.
pub const MAX_FADE: u32 = 1024;

/// The tick while the composer has nothing to make (hushed, or its transport stopped): often
/// enough for the once-a-second status (and a newcomer's transport), and no more. A command wakes it at
/// once, and a command that gives it something to make brings back the tick of half the
/// lookahead.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// How the stage runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// How far ahead notes are made, ns.
    pub lookahead_ns: u64,
    /// Initial tempo.
    pub bpm: Q,
    /// Beats per cycle.
    pub beats_per_cycle: u32,
    /// A score to start with.
    pub score: Option<(Score, ScoreParams)>,
    /// Print each note as it is scheduled.
    pub print: bool,
}

impl Default for Options {
    /// The CLI's defaults: 200 ms lookahead, 120 bpm, 4 beats a cycle, no score.
    fn default() -> Self {
        Self {
            lookahead_ns: 200_000_000,
            bpm: Q::int(120),
            beats_per_cycle: crate::transport::DEFAULT_BEATS_PER_CYCLE,
            score: None,
            print: false,
        }
    }
}

/// Why the stage stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Time arithmetic failed in the transport.
    #[error("transport: {0}")]
    Time(#[from] TimeError),
    /// Invalid options.
    #[error("{0}")]
    Options(String),
}

/// Counters for the heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events published late (their time had passed).
    pub late: u64,
    /// Scheduler ticks.
    pub ticks: u64,
    /// Slot query failures.
    pub errors: u64,
}

/// The composer's state.
#[derive(Debug)]
pub struct Composer {
    sched: Scheduler,
    signals: Signals,
    score: Option<Score>,
    /// Counters.
    pub stats: Stats,
    shutdown: bool,
    /// Hushes of everything so far (published with the transport).
    hushes: u32,
    /// Where the score's parts go.
    routes: ScoreRoutes,
    /// When signal frames last arrived.
    watch: SignalWatch,
    /// The notes made that have not ended (at most [`SOUNDING_MAX`]), in time order: what a
    /// synth that starts now missed ([`ComposerCommand::Sounding`]).
    sounding: Vec<NoteEvent>,
    /// The stage's tick now, ms (a gauge in the status; set by [`run`]).
    tick_ms: u64,
    /// Slots whose query failed at the last tick: logged when they start failing and when
    /// they play again, counted (`read_errors`) at every tick in between — a slot failing
    /// for a day is one warning, not 864 000.
    failing: Vec<String>,
}

/// Of this tick's failed slots, those that played at the last tick (with their errors); of
/// the last tick's failed slots, those that play again.
fn failing_changes<'a>(
    before: &'a [String],
    now: &'a [(String, TimeError)],
) -> (Vec<(&'a str, &'a TimeError)>, Vec<&'a str>) {
    let started = now
        .iter()
        .filter(|(s, _)| !before.contains(s))
        .map(|(s, e)| (s.as_str(), e))
        .collect();
    let recovered = before
        .iter()
        .filter(|b| !now.iter().any(|(s, _)| s == *b))
        .map(String::as_str)
        .collect();
    (started, recovered)
}

/// When a note ends (its release begins), ns.
fn note_end(n: &NoteEvent) -> u64 {
    n.t_ns.saturating_add(n.dur_ns)
}

fn refuse(e: impl ToString) -> ReplyError {
    ReplyError::invalid(e.to_string())
}

fn applied(at: Q) -> ComposerReply {
    ComposerReply::Applied {
        at_cycle: at.to_string(),
    }
}

impl Composer {
    /// A composer whose cycle 0 sounds one lookahead after `now_ns`.
    pub fn new(opts: &Options, now_ns: u64) -> Result<Self, StageError> {
        let transport = Transport::new(opts.bpm, opts.beats_per_cycle, now_ns + opts.lookahead_ns)
            .map_err(|e| StageError::Options(e.to_string()))?;
        let mut c = Composer {
            sched: Scheduler::new(transport, opts.lookahead_ns),
            signals: Signals::default(),
            score: None,
            tick_ms: 0,
            stats: Stats::default(),
            shutdown: false,
            hushes: 0,
            routes: ScoreRoutes::default(),
            watch: SignalWatch::new(now_ns),
            sounding: Vec::new(),
            failing: Vec::new(),
        };
        if let Some((score, params)) = &opts.score {
            c.select_score(score.name(), params)
                .map_err(|e| StageError::Options(e.message))?;
        }
        Ok(c)
    }

    /// The scheduler (for inspection).
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// Whether a Shutdown was received.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// Takes a signal frame that arrived at `now_ns`.
    pub fn on_signals(&mut self, frame: &SignalFrame, now_ns: u64) {
        self.signals.update(frame);
        self.watch.frame(now_ns);
    }

    /// Advances the scheduler to `now_ns`.
    pub fn tick(&mut self, now_ns: u64) -> Result<Batch, TimeError> {
        match self.watch.check(now_ns, self.score.is_some()) {
            Some(watch::Change::Stale) => tracing::warn!("{}", watch::STALE_WARNING),
            Some(watch::Change::Resumed) => tracing::info!("signal frames are arriving again"),
            None => {}
        }
        let mut batch = self.sched.advance(now_ns, &self.signals)?;
        self.route(&mut batch);
        self.remember(&batch.notes, now_ns);
        self.stats.ticks += 1;
        self.stats.late += batch.late;
        self.stats.errors += batch.errors.len() as u64;
        if !(batch.errors.is_empty() && self.failing.is_empty()) {
            let (started, recovered) = failing_changes(&self.failing, &batch.errors);
            for (slot, e) in started {
                tracing::warn!(
                    "slot {slot} skipped: {e} (and at every tick until it plays again: counted \
                     as read_errors in the status, not logged)"
                );
            }
            for slot in recovered {
                tracing::info!("slot {slot} plays again");
            }
            self.failing = batch.errors.iter().map(|(s, _)| s.clone()).collect();
        }
        Ok(batch)
    }

    /// Nothing to make: hushed, or the transport stopped (the stage then ticks slowly).
    pub fn idle(&self) -> bool {
        self.sched.idle()
    }

    /// While idle, moves the scheduler's horizon to one lookahead past `now_ns`, as a tick
    /// would have (nothing is made: there is nothing to make). A command that starts a
    /// pattern then places it from the next boundary after that, never in the past.
    pub fn catch_up(&mut self, now_ns: u64) -> Result<(), TimeError> {
        if self.sched.idle() {
            let batch = self.sched.advance(now_ns, &self.signals)?;
            debug_assert!(batch.notes.is_empty() && batch.curves.is_empty());
        }
        Ok(())
    }

    /// Keeps the notes just made with those that have not ended by `now_ns`; past
    /// [`SOUNDING_MAX`], those that end last (the longest a restarted synth would be silent
    /// for). No allocation once the list has grown to its usual size.
    fn remember(&mut self, made: &[NoteEvent], now_ns: u64) {
        self.sounding.retain(|n| note_end(n) > now_ns);
        self.sounding
            .extend(made.iter().filter(|n| note_end(n) > now_ns));
        if self.sounding.len() > SOUNDING_MAX {
            self.sounding
                .sort_unstable_by_key(|n| std::cmp::Reverse(note_end(n)));
            self.sounding.truncate(SOUNDING_MAX);
            self.sounding.sort_unstable_by_key(|n| n.t_ns);
        }
    }

    /// The notes made that have not ended by `now_ns`, in time order (the answer to
    /// [`ComposerCommand::Sounding`]).
    pub fn sounding(&self, now_ns: u64) -> Vec<NoteEvent> {
        self.sounding
            .iter()
            .filter(|n| note_end(n) > now_ns)
            .copied()
            .collect()
    }

    /// Gives the score's notes and curves (made for node 0) their nodes.
    fn route(&self, batch: &mut Batch) {
        for n in batch.notes.iter_mut().filter(|n| n.node == 0) {
            n.node = self.routes.node_for(n.role(), n.note);
        }
        if batch.curves.iter().any(|c| c.node == 0) {
            let cutoff = &self.routes.cutoff;
            let mut routed = Vec::with_capacity(batch.curves.len());
            for c in batch.curves.drain(..) {
                if c.node != 0 {
                    routed.push(c);
                    continue;
                }
                // The score's only curve is its filter cutoff (param PARAM_CUTOFF).
                for &(node, param) in cutoff {
                    routed.push(CurvePoint { node, param, ..c });
                }
            }
            batch.curves = routed;
        }
    }

    /// Continues the transport `info` describes (see [`ComposerCommand::Follow`]).
    pub fn follow(&mut self, info: &TransportInfo, now_ns: u64) -> Reply<ComposerReply> {
        let cycle = |text: &str, field: &str| {
            text.parse::<Q>()
                .map_err(|e| refuse(format!("{field}: {text:?}: {e}")))
        };
        let anchor_cycle = cycle(&info.anchor_cycle, "anchor_cycle")?;
        let cps = cycle(&info.cps, "cps")?;
        if cps <= Q::ZERO {
            return Err(refuse(format!("cps {cps} must be positive")));
        }
        let ramp = match &info.ramp {
            Some((end, to)) => {
                let end = cycle(end, "ramp end")?;
                let to = cycle(to, "ramp cps")?;
                if to <= Q::ZERO {
                    return Err(refuse(format!("ramp cps {to} must be positive")));
                }
                Some(transport::Ramp { end, cps: to })
            }
            None => None,
        };
        let mut transport = Transport::new(Q::int(120), info.beats_per_cycle, 0).map_err(refuse)?;
        transport.start(anchor_cycle, info.anchor_ns);
        transport.set_cps(anchor_cycle, cps).map_err(refuse)?;
        if let Some(r) = ramp {
            transport.resume_ramp(r);
        }
        if !info.running {
            transport.stop();
        }
        self.sched.follow(transport, now_ns).map_err(refuse)?;
        Ok(ComposerReply::Transport(self.transport_info()))
    }

    /// The transport as published on the bus (`khorus/transport`) for followers.
    pub fn transport_state(&self, now_ns: u64) -> TransportState {
        let t = self.sched.transport();
        let (anchor_ns, anchor_cycle) = t.anchor();
        TransportState {
            seq: 0,
            t_ns: now_ns,
            anchor_ns,
            anchor_cycle_num: anchor_cycle.numer(),
            anchor_cycle_den: anchor_cycle.denom(),
            cps_num: t.cps().numer(),
            cps_den: t.cps().denom(),
            beats_per_cycle: t.beats_per_cycle(),
            running: t.running() as u8,
            hushes: self.hushes,
            ramp_end_num: t.ramp().map_or(0, |r| r.end.numer()),
            ramp_end_den: t.ramp().map_or(0, |r| r.end.denom()),
            ramp_cps_num: t.ramp().map_or(0, |r| r.cps.numer()),
            ramp_cps_den: t.ramp().map_or(0, |r| r.cps.denom()),
            ..TransportState::default()
        }
    }

    /// Transport state for followers (the `Transport(Query)` command's answer).
    pub fn transport_info(&self) -> TransportInfo {
        let t = self.sched.transport();
        let (anchor_ns, anchor_cycle) = t.anchor();
        TransportInfo {
            running: t.running(),
            cps: t.cps().to_string(),
            bpm: t.bpm(),
            beats_per_cycle: t.beats_per_cycle(),
            anchor_ns,
            anchor_cycle: anchor_cycle.to_string(),
            ramp: t.ramp().map(|r| (r.end.to_string(), r.cps.to_string())),
        }
    }

    fn select_score(&mut self, name: &str, params: &ScoreParams) -> Reply<ComposerReply> {
        if name == "none" {
            let at = self.hush_score()?;
            self.score = None;
            return Ok(applied(at));
        }
        let score = Score::from_name(name).ok_or_else(|| {
            refuse(format!(
                "unknown score {name:?} (ambient, percussive, arp, drone, none)"
            ))
        })?;
        let p = score.params(params).map_err(refuse)?;
        let voices = score.voices(&p).map_err(refuse)?;
        let cps = cps_from_bpm(p.bpm, self.sched.transport().beats_per_cycle()).map_err(refuse)?;
        // Everything validated: now change state.
        if let Some(routes) = &params.routes {
            self.routes = routes.clone();
        }
        self.hush_score()?;
        let mut at = Q::ZERO;
        for (slot, voice) in voices {
            at = self
                .sched
                .set_slot(&slot, Some(voice), Q::ONE)
                .map_err(refuse)?;
        }
        self.sched.set_cps(cps).map_err(refuse)?;
        self.score = Some(score);
        Ok(applied(at))
    }

    fn hush_score(&mut self) -> Result<Q, ReplyError> {
        let names: Vec<String> = self
            .sched
            .active_slots()
            .into_iter()
            .filter(|n| n.starts_with("score/"))
            .map(str::to_string)
            .collect();
        let mut at = self.sched.next_boundary(Q::ONE).map_err(refuse)?;
        for n in names {
            at = self.sched.set_slot(&n, None, Q::ONE).map_err(refuse)?;
        }
        Ok(at)
    }

    fn tempo(&mut self, t: &TempoChange) -> Reply<ComposerReply> {
        let beats = t
            .beats_per_cycle
            .unwrap_or(self.sched.transport().beats_per_cycle());
        let cps = match (t.bpm, t.cps) {
            (Some(_), Some(_)) => return Err(refuse("give bpm or cps, not both")),
            (Some(bpm), None) => {
                cps_from_bpm(Q::from_f64(bpm).map_err(refuse)?, beats).map_err(refuse)?
            }
            (None, Some(cps)) => {
                if !(cps > 0.0 && cps <= 16.0) {
                    return Err(refuse(format!("cps {cps} is outside (0, 16]")));
                }
                Q::from_f64(cps).map_err(refuse)?
            }
            (None, None) => self.sched.transport().cps(),
        };
        let now = self.sched.transport();
        let over = t.over.unwrap_or(0);
        if over > 0 {
            if beats != now.beats_per_cycle() {
                return Err(refuse(
                    "a tempo ramp keeps the beats per cycle (change them before or after)",
                ));
            }
            let at = self
                .sched
                .ramp_cps(cps, Q::int(over as i64))
                .map_err(refuse)?;
            return Ok(applied(at));
        }
        // The tempo it runs at, or ramps to: a ramp already heading there goes on.
        let target = now.ramp().map_or(now.cps(), |r| r.cps);
        if cps == target && beats == now.beats_per_cycle() {
            // The clock runs at it already: nothing is re-anchored (control asks for the
            // session's tempo again after a restarted composer follows the old clock).
            return Ok(applied(self.sched.horizon()));
        }
        self.sched
            .transport_mut()
            .set_beats_per_cycle(beats)
            .map_err(refuse)?;
        let at = self.sched.set_cps(cps).map_err(refuse)?;
        Ok(applied(at))
    }

    fn ramps(&mut self, ramps: &[ParamRamp]) -> Reply<ComposerReply> {
        let next = self.sched.next_boundary(Q::ONE).map_err(refuse)?;
        let mut checked = Vec::with_capacity(ramps.len());
        for (i, r) in ramps.iter().enumerate() {
            let at = |e: String| {
                refuse(format!(
                    "ramp {} (node {} param {}): {e}",
                    i + 1,
                    r.node,
                    r.param
                ))
            };
            if !(r.from.is_finite() && r.to.is_finite()) {
                return Err(at(format!("{} -> {} is not a number", r.from, r.to)));
            }
            let start = match &r.start {
                Some(text) => text
                    .parse::<Q>()
                    .map_err(|e| at(format!("start {text:?}: {e}")))?,
                None => next,
            };
            let end = (start + Q::int(r.cycles as i64)).map_err(|e| at(e.to_string()))?;
            checked.push((r, start, end));
        }
        let mut last = next;
        for (r, start, end) in checked {
            if r.cycles == 0 {
                self.sched.stop_ramp(r.node, r.param);
                continue;
            }
            self.sched.start_ramp(Ramp::new(
                r.node,
                r.param,
                r.from.into(),
                r.to.into(),
                start,
                end,
            ));
            last = start;
        }
        Ok(applied(last))
    }

    /// Answers one command. A refused command changes nothing.
    pub fn handle(&mut self, cmd: ComposerCommand, now_ns: u64) -> Reply<ComposerReply> {
        match cmd {
            ComposerCommand::Common(Common::Ping { nonce }) => {
                Ok(ComposerReply::Common(CommonReply::Pong {
                    nonce,
                    pid: std::process::id(),
                }))
            }
            ComposerCommand::Common(Common::Status) => Ok(ComposerReply::Common(
                CommonReply::Status(Box::new(self.status(PortCounts::default()))),
            )),
            ComposerCommand::Common(Common::Shutdown) => {
                self.shutdown = true;
                Ok(ComposerReply::Common(CommonReply::Ack))
            }
            ComposerCommand::SetSlot { slot, spec, fade } => {
                if slot.is_empty() || slot.len() > 64 || slot.starts_with("score/") {
                    return Err(refuse(
                        "slot: 1..=64 characters, not starting with \"score/\"",
                    ));
                }
                if fade > MAX_FADE {
                    return Err(refuse(format!(
                        "fade: {fade} cycles is more than {MAX_FADE}"
                    )));
                }
                let (voice, quantum) = ir::compile(&spec).map_err(refuse)?;
                let at = self
                    .sched
                    .set_slot_fading(&slot, Some(voice), quantum, Q::int(fade as i64))
                    .map_err(refuse)?;
                Ok(applied(at))
            }
            ComposerCommand::Hush { slot: Some(slot) } => {
                if !self.sched.active_slots().contains(&slot.as_str()) {
                    return Err(refuse(format!("no slot named {slot:?}")));
                }
                Ok(applied(
                    self.sched.set_slot(&slot, None, Q::ONE).map_err(refuse)?,
                ))
            }
            ComposerCommand::Hush { slot: None } => {
                self.score = None;
                self.hushes = self.hushes.wrapping_add(1);
                Ok(applied(self.sched.hush_all().map_err(refuse)?))
            }
            ComposerCommand::Tempo(t) => self.tempo(&t),
            ComposerCommand::Transport(a) => {
                match a {
                    TransportAction::Start => self.sched.start(now_ns),
                    TransportAction::Stop => self.sched.stop(),
                    TransportAction::Query => {}
                }
                Ok(ComposerReply::Transport(self.transport_info()))
            }
            ComposerCommand::SelectScore { name, params } => self.select_score(&name, &params),
            ComposerCommand::Follow(info) => self.follow(&info, now_ns),
            ComposerCommand::Ramps(ramps) => self.ramps(&ramps),
            ComposerCommand::Sounding => Ok(ComposerReply::Notes(self.sounding(now_ns))),
        }
    }

    /// The heartbeat with the bus counters filled in.
    pub fn status(&self, ports: PortCounts) -> StageStatus {
        let PortCounts {
            published,
            dropped,
            received,
            missed,
            ok,
            rejected,
        } = ports;
        let mut s = StageStatus::new(StageKind::Composer);
        s.set(Counter::Published, published)
            .set(Counter::Dropped, dropped)
            .set(Counter::Received, received)
            .set(Counter::Missed, missed)
            .set(Counter::Late, self.stats.late)
            .set(Counter::Ticks, self.stats.ticks)
            .set(Counter::ReadErrors, self.stats.errors)
            .set(Counter::CommandsOk, ok)
            .set(Counter::CommandsRejected, rejected)
            .set(Counter::SignalsStale, self.watch.age_s())
            .set(Counter::TickMs, self.tick_ms);
        s
    }
}

/// Compiles `spec` and queries its first four cycles as a running composer would, without a
/// bus: what control asks before a batch with this slot reaches the composer. The error is
/// the composer's own refusal (field, line:column).
pub fn check_slot(spec: &khorus_bus::commands::composer::SlotSpec) -> Result<(), String> {
    let opts = Options {
        lookahead_ns: 100_000_000,
        ..Options::default()
    };
    let mut c = Composer::new(&opts, 0).map_err(|e| e.to_string())?;
    c.handle(
        ComposerCommand::SetSlot {
            slot: "check".into(),
            spec: spec.clone(),
            fade: 0,
        },
        0,
    )
    .map_err(|e| e.message)?;
    // Four cycles at 120 bpm, 4 beats a cycle: 8 s.
    let batch = c.tick(8_000_000_000).map_err(|e| e.to_string())?;
    match batch.errors.into_iter().next() {
        Some((_, e)) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// The bus ports' counters, which only the stage loop holds, for the status report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounts {
    /// Notes and curve points published.
    pub published: u64,
    /// Deliveries refused by full subscribers.
    pub dropped: u64,
    /// Signal frames received.
    pub received: u64,
    /// Signal frames missing from the collector's sequence.
    pub missed: u64,
    /// Commands answered.
    pub ok: u64,
    /// Commands refused.
    pub rejected: u64,
}

fn port_counts(
    notes: &Publisher<NoteEvent>,
    curves: &Publisher<CurvePoint>,
    signals: &Subscriber<SignalFrame>,
    (ok, rejected): (u64, u64),
) -> PortCounts {
    PortCounts {
        published: notes.published() + curves.published(),
        dropped: notes.dropped() + curves.dropped(),
        received: signals.received(),
        missed: signals.missed(),
        ok,
        rejected,
    }
}

/// What woke the stage (besides its tick).
#[derive(Debug, Clone, Copy)]
enum Src {
    Commands,
}

/// Runs the stage until Shutdown, SIGINT or SIGTERM.
pub fn run(config: &BusConfig, opts: &Options, out: &mut impl Write) -> Result<(), StageError> {
    let mut stage = StageRunner::<khorus_bus::commands::Composer>::open(config)?;
    let bus = stage.bus();
    let mut signals = bus.subscriber::<SignalFrame>()?;
    let mut notes = bus.publisher::<NoteEvent>()?;
    let mut curves = bus.publisher::<CurvePoint>()?;
    let mut transport = bus.publisher::<TransportState>()?;
    let mut last_transport: Option<TransportState> = None;
    let commands = stage.server().waker();
    let mut composer = Composer::new(opts, clock::now_ns())?;
    // Half the lookahead (10 ticks a second at the default 200 ms): every event is made at
    // least half a lookahead — two of the synth's PipeWire quanta of 2048 frames — before it
    // sounds, and the composer wakes half as often as at a quarter.
    // On the clock's grid, just after the collector's frames (which fall on the grid of its
    // period, 20 or 100 ms): each tick reads a frame made a few milliseconds before.
    let busy = Period::every(Duration::from_nanos(
        (opts.lookahead_ns / 2).clamp(1_000_000, 250_000_000),
    ))
    .after(AFTER_THE_FRAMES);
    let idle = Period::every(IDLE_TICK).after(AFTER_THE_FRAMES);
    let mut failure: Option<StageError> = None;
    tracing::info!(
        "composer on the bus, {} bpm",
        composer.sched.transport().bpm()
    );
    stage.announce_ready();
    // The transport, when it changed (tempo, start/stop, a hush: at once, from the command
    // that changed it), and again when a follower joined (checked at the tick): a newcomer —
    // a restarted stage, a tap — has it within a tick, and the others are not woken once a
    // second for a clock they already know (three wake-ups a second across control, synth and
    // router, before).
    let mut publish_transport = |composer: &Composer, now: u64, at_tick: bool| {
        let state = composer.transport_state(now);
        let changed = !last_transport.is_some_and(|l| l.same_clock(&state));
        let joined = at_tick && transport.subscribers_changed();
        if changed || joined {
            transport.publish(state)?;
            last_transport = Some(state);
        }
        Ok::<(), StageError>(())
    };
    let period_for = |composer: &Composer| if composer.idle() { idle } else { busy };
    let tick = std::cell::Cell::new(Some(period_for(&composer)));
    composer.tick_ms = period_for(&composer).duration().as_millis() as u64;
    // Signal frames are not a reason to wake: the tick reads the ones that came meanwhile
    // (the subscriber holds 256), which is all a tick's queries see anyway.
    wait::run_changing(&[(Src::Commands, commands)], &tick, None, |wake| {
        let mut step = || -> Result<(), StageError> {
            match wake {
                Wake::Ready(Src::Commands) => {
                    let now = clock::now_ns();
                    composer.catch_up(now)?;
                    let counts = port_counts(&notes, &curves, &signals, stage.commands());
                    stage.server().serve(|cmd| match cmd {
                        // Status needs the ports' counters, which only this loop has.
                        ComposerCommand::Common(Common::Status) => {
                            let s = composer.status(counts);
                            Ok(ComposerReply::Common(CommonReply::Status(Box::new(s))))
                        }
                        cmd => composer.handle(cmd, now),
                    })?;
                    publish_transport(&composer, now, false)?;
                }
                Wake::Tick => {
                    let now = clock::now_ns();
                    signals.drain(|f| composer.on_signals(&f, now))?;
                    let batch = composer.tick(now)?;
                    if opts.print {
                        for n in &batch.notes {
                            // A closed stdout is not a reason to stop making music.
                            writeln!(out, "{}", n.line(now)).ok();
                        }
                    }
                    notes.publish_all(batch.notes)?;
                    curves.publish_all(batch.curves)?;
                    publish_transport(&composer, now, true)?;
                    let counts = port_counts(&notes, &curves, &signals, stage.commands());
                    stage.heartbeat(false, || composer.status(counts))?;
                }
            }
            Ok(())
        };
        if let Err(e) = step() {
            failure = Some(e);
            return ControlFlow::Break(());
        }
        if composer.shutdown_requested() {
            return ControlFlow::Break(());
        }
        let period = period_for(&composer);
        composer.tick_ms = period.duration().as_millis() as u64;
        if tick.get() != Some(period) {
            tracing::debug!("ticking every {:?}", period.duration());
            tick.set(Some(period));
            // Said at once: the collector makes frames at the pace the composer reads them.
            let counts = port_counts(&notes, &curves, &signals, stage.commands());
            if let Err(e) = stage.heartbeat(true, || composer.status(counts)) {
                failure = Some(e.into());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
