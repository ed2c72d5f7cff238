//! `khorus up`: the control process. It starts the stages (or adopts those a previous control
//! left running), waits for each to answer, replays the session to any stage that (re)starts,
//! applies batches from every surface, and publishes the id table and its own heartbeat.
//!
//! One thread, sleeping in the bus's wait set on: its command service, the transport, and
//! one pidfd per stage (so an exit is seen at once, child or not). A 1 s tick reads the
//! stages' status reports, checks for hung stages and for PipeWire coming back; nothing else
//! wakes it, but a stage that is starting: it is asked every few milliseconds whether it
//! answers, and between the asks control serves commands (a `khorus status` or `khorus down`
//! is not kept waiting by a stage slow to start). Stages start one at a time, in order, each
//! once the one before answers: the synth listens before the composer makes its first notes.
//!
//! This module supervises; how the session reaches the stages (batches, replays, the id
//! table) is [`apply`]'s.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use khorus_bus::command::CommonReply;
use khorus_bus::commands;
use khorus_bus::commands::control::{ControlCommand, ControlReply, StageState};
use khorus_bus::services::ids::IdTable;
use khorus_bus::wait::{self, Exit, Period, Wake};
use khorus_bus::{
    Bus, BusConfig, Common, Counter, NoteEvent, Publisher, Reply, ReplyError, StageKind,
    StageRunner, StageStatus, TransportState,
};

use crate::session::Session;
use crate::session::plan::Plan;
use crate::session::state;
use clients::Clients;
use config::{ControlConfig, STAGES};
use supervise::Supervised;

mod apply;
pub mod clients;
pub mod config;
pub mod procinfo;
pub mod supervise;

/// How long a stage may take to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one command to a stage may take.
const STAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a synth's hand-over waits for the composer's sounding notes (it answers between
/// ticks that take ~0.1 ms): a composer that does not answer within this is hung or far
/// behind, and the synth plays on from the next onsets rather than keep control waiting.
const HAND_OVER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stage may take to exit when asked, before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a starting stage holds back the start of the next: one that has not answered
/// by then (stuck, or slow: a collector replaying a FIFO nobody writes) lets the others
/// start, and may still answer until [`READY_TIMEOUT`].
const START_GRACE: Duration = Duration::from_secs(2);
/// How often a starting stage is asked whether it answers: every 5 ms at first, then every
/// tenth of the time it has taken so far…
const POLL_STARTING: Duration = Duration::from_millis(5);
/// …but at least every 100 ms…
const POLL_STARTING_MAX: Duration = Duration::from_millis(100);
/// …and how long each ask waits for the answer.
const PING_WAIT: Duration = Duration::from_millis(20);

/// How `khorus up` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bus.
    pub bus: BusConfig,
    /// `[control]` settings.
    pub config: ControlConfig,
    /// The configuration file given with `--config`, passed on to the stages that read one.
    pub config_path: Option<PathBuf>,
}

/// What woke control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Commands,
    Transport,
    Exit(usize),
}

/// The control process's state.
struct Control {
    opts: Options,
    session: Session,
    plan: Plan,
    version: u64,
    stages: Vec<Supervised>,
    clients: Clients,
    transport: Option<TransportState>,
    ids: Publisher<IdTable>,
    notes: Publisher<NoteEvent>,
    down: bool,
    leave: bool,
    pipewire: bool,
    /// Commands that reached a stage and failed (refused, timed out).
    forward_failed: u64,
    /// The transport when a ready composer exited: what its successor follows.
    clock_at_exit: Option<TransportState>,
}

/// Runs `khorus up` until `khorus down`, SIGINT or SIGTERM (which stop the stages too), or a
/// `Shutdown` command (which leaves them running for the next control to adopt).
pub fn run(opts: Options) -> Result<()> {
    opts.config.validate().map_err(|e| anyhow::anyhow!(e))?;
    {
        // Before serving: is another control already here?
        let probe = Bus::open("control-probe", &opts.bus).context("failed to join the bus")?;
        let mut other = probe.command_client::<commands::Control>()?;
        let ping = ControlCommand::Common(Common::Ping { nonce: 1 });
        if let Ok(ControlReply::Common(CommonReply::Pong { pid, .. })) =
            other.call(&ping, Duration::from_millis(300))
        {
            bail!("khorus up is already running (pid {pid}); `khorus status` shows it");
        }
    }
    let mut stage =
        StageRunner::<commands::Control>::open(&opts.bus).context("failed to join the bus")?;
    let cleaned = stage.bus().cleanup_dead_nodes();
    if cleaned.cleaned > 0 {
        tracing::info!(
            "removed what {} dead processes left on the bus",
            cleaned.cleaned
        );
    }
    let mut status_sub = stage.bus().subscriber::<StageStatus>()?;
    let mut transport_sub = stage.bus().subscriber::<TransportState>()?;

    let session = match state::load_session(&opts.bus)? {
        Some(s) => {
            tracing::info!("session from {}", state::session_path(&opts.bus).display());
            s
        }
        None => Session::default_session(),
    };
    let plan = Plan::of(&session).with_context(|| {
        format!(
            "the saved session {} cannot be played (fix or remove it)",
            state::session_path(&opts.bus).display()
        )
    })?;
    state::save_session(&opts.bus, &session)?;
    let stages = STAGES
        .iter()
        .map(|&k| Supervised::new(k, opts.config.enabled(k)))
        .collect();
    let mut c = Control {
        session,
        plan,
        version: 1,
        stages,
        clients: Clients::open(stage.bus())?,
        transport: None,
        ids: stage.bus().publisher::<IdTable>()?,
        notes: stage.bus().publisher::<NoteEvent>()?,
        down: false,
        leave: false,
        pipewire: supervise::pipewire_running(),
        forward_failed: 0,
        clock_at_exit: None,
        opts,
    };
    c.publish_ids();
    if !c.pipewire {
        eprintln!(
            "khorus: no audio: PipeWire is not running ({} is missing); start it \
             (systemctl --user start pipewire wireplumber) and the synth connects by itself",
            supervise::pipewire_socket().display()
        );
    }
    c.adopt_running();
    c.forget_ramps_of_an_old_clock()?;
    stage.announce_ready();
    c.start_due();

    let commands = stage.server().waker();
    loop {
        // Stage reports are not a reason to wake (four a second): they are read on the 1 s
        // tick, which checks for hangs, and before a command, which may show them.
        let mut sources = vec![
            (Src::Commands, commands.clone()),
            (Src::Transport, transport_sub.waker()?),
        ];
        for (i, s) in c.stages.iter().enumerate() {
            if let Some(w) = s.waker() {
                sources.push((Src::Exit(i), w));
            }
        }
        let deadline = c.next_wake();
        let mut exited = Vec::new();
        let mut failure = None;
        let every_second = Some(Period::every(Duration::from_secs(1)));
        let exit = wait::run(&sources, every_second, deadline, |wake| {
            let mut reports = || {
                let now = khorus_bus::clock::now_ns();
                status_sub.drain(|s| {
                    if let Some(st) = c.stages.iter_mut().find(|x| x.kind == s.stage()) {
                        st.on_status(s, now);
                    }
                })
            };
            let result = match wake {
                Wake::Ready(Src::Commands) => reports()
                    .and_then(|_| stage.server().serve(|cmd| c.handle(cmd)))
                    .map(drop),
                Wake::Ready(Src::Transport) => {
                    transport_sub.drain(|t| c.transport = Some(t)).map(drop)
                }
                Wake::Ready(Src::Exit(i)) => {
                    exited.push(i);
                    return ControlFlow::Break(());
                }
                Wake::Tick => reports().and_then(|_| {
                    c.tick();
                    stage.heartbeat(false, || c.status()).map(drop)
                }),
            };
            if let Err(e) = result {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            if c.down || c.leave || c.next_wake().is_some_and(|t| t <= Instant::now()) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if let Some(e) = failure {
            return Err(e.into());
        }
        let exit = exit?;
        for i in exited {
            c.on_exit(i, stage.bus());
        }
        if exit == Exit::Terminated || c.down {
            c.shut_down();
            drop(status_sub);
            drop(transport_sub);
            drop(c);
            stage.bus().cleanup_dead_nodes();
            let config = stage.bus().config().clone();
            drop(stage);
            // Nobody left on this bus (a signal stopped us, no client waits): remove what
            // iceoryx2 keeps for it. After `khorus down`, the client does this once we are gone.
            if khorus_bus::nodes::list(&config).is_ok_and(|n| n.is_empty()) {
                config.remove_all_resources();
            }
            eprintln!("khorus: down");
            return Ok(());
        }
        if c.leave {
            eprintln!("khorus: control leaves; the stages keep playing");
            return Ok(());
        }
        c.check_starting();
        c.start_due();
    }
}

fn invalid(message: impl ToString) -> ReplyError {
    ReplyError::invalid(message.to_string())
}

impl Control {
    /// Adopts stages a previous control left running: they serve their command service, so
    /// they are not started again (no second copy, no gap in the music). A busy stage may be
    /// slow to answer: it gets the same time as a starting one.
    /// With no composer to adopt, the one about to start runs a new clock, on which the
    /// saved ramps' cycles mean nothing: their numbers go where they were going.
    fn forget_ramps_of_an_old_clock(&mut self) -> anyhow::Result<()> {
        let composer_adopted = self
            .stages
            .iter()
            .any(|s| s.kind == StageKind::Composer && s.running());
        if composer_adopted || self.session.ramps.is_empty() {
            return Ok(());
        }
        tracing::info!(
            "{} ramps of the last run end at their values (a new clock)",
            self.session.ramps.len()
        );
        self.session.ramps.clear();
        self.plan = Plan::of(&self.session)?;
        state::save_session(&self.opts.bus, &self.session)
    }

    fn adopt_running(&mut self) {
        for i in 0..self.stages.len() {
            let kind = self.stages[i].kind;
            if self.stages[i].state == StageState::Disabled || !self.clients.has_server(kind) {
                continue;
            }
            let deadline = Instant::now() + READY_TIMEOUT;
            let mut answer = None;
            while answer.is_none() && Instant::now() < deadline {
                answer = self.clients.ping(kind, Duration::from_millis(200));
            }
            if answer.is_none() {
                tracing::warn!(
                    "a {} serves its commands but did not answer within {READY_TIMEOUT:?}; \
                     starting another",
                    kind.name()
                );
            }
            if let Some(pid) = answer {
                match self.stages[i].adopt(pid) {
                    Ok(()) => eprintln!("khorus: adopted the running {} (pid {pid})", kind.name()),
                    Err(e) => tracing::warn!("could not adopt {} pid {pid}: {e:#}", kind.name()),
                }
            }
        }
    }

    /// Starts the stages whose start is due, one at a time: the one due first (at `khorus up`,
    /// in order), and the next when it answers or after [`START_GRACE`]. A stage that cannot
    /// start now (waiting for PipeWire, failing to spawn) does not hold up the next; one
    /// crashing at start does not either, as its next start is due later than the others'.
    fn start_due(&mut self) {
        let now = Instant::now();
        while self.starts_held_until().is_none_or(|t| t <= now) {
            let next = self
                .stages
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.running())
                .filter_map(|(i, s)| s.next_start.filter(|t| *t <= now).map(|t| (t, i)))
                .min();
            let Some((_, i)) = next else {
                return;
            };
            self.start(i);
        }
    }

    /// Until when the stages starting now hold back the next start (`None`: none starts).
    fn starts_held_until(&self) -> Option<Instant> {
        self.stages
            .iter()
            .filter_map(|s| s.starting_since())
            .map(|t| t + START_GRACE)
            .max()
    }

    /// When the loop must wake next without a source firing: to ask a starting stage again,
    /// or to start the next stage due (once no starting stage holds it back).
    fn next_wake(&self) -> Option<Instant> {
        let asks = self
            .stages
            .iter()
            .filter(|s| s.starting_since().is_some())
            .filter_map(|s| s.ask_at);
        let held = self.starts_held_until();
        let starts = self
            .stages
            .iter()
            .filter(|s| !s.running())
            .filter_map(|s| s.next_start)
            .map(|t| held.map_or(t, |h| t.max(h)));
        asks.chain(starts).min()
    }

    fn args(&self, kind: StageKind, without_pipewire: bool) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = &self.opts.config_path
            && matches!(kind, StageKind::Collector | StageKind::Router)
        {
            args.push("--config".into());
            args.push(p.display().to_string());
        }
        if kind == StageKind::Router && without_pipewire {
            args.push("--no-midi".into());
        }
        args.extend(self.opts.config.args(kind).iter().cloned());
        args
    }

    /// Starts stage `i`; [`Control::check_starting`] waits for its answer.
    fn start(&mut self, i: usize) {
        let kind = self.stages[i].kind;
        self.pipewire = supervise::pipewire_running();
        if supervise::needs_pipewire(kind) && !self.pipewire {
            let s = &mut self.stages[i];
            if s.state != StageState::WaitingForPipewire {
                tracing::warn!("{} waits for PipeWire", kind.name());
            }
            s.state = StageState::WaitingForPipewire;
            s.next_start = None;
            s.detail = vec![format!(
                "no PipeWire at {}: start it (systemctl --user start pipewire wireplumber)",
                supervise::pipewire_socket().display()
            )];
            return;
        }
        let without_pipewire = kind == StageKind::Router && !self.pipewire;
        let args = self.args(kind, without_pipewire);
        let log = state::log_path(&self.opts.bus, kind.name());
        let program = supervise::stage_program(kind);
        let max = self.backoff_max();
        let s = &mut self.stages[i];
        s.without_pipewire = without_pipewire;
        if let Err(e) = s.spawn(&program, &args, &log) {
            s.on_exit(&log, max);
            // Why it did not start, not how its last run ended.
            s.detail = vec![format!("{e:#}")];
            tracing::warn!("{}", s.detail[0]);
            return;
        }
        s.ask_at = Some(Instant::now());
    }

    /// Asks each starting stage that is due whether it answers: ready, the session is replayed
    /// to it; gone, or silent for [`READY_TIMEOUT`], an exit like any other (killed if need
    /// be); else it is asked again later (see [`POLL_STARTING`]).
    fn check_starting(&mut self) {
        let now = Instant::now();
        for i in 0..self.stages.len() {
            let s = &self.stages[i];
            if let Some(since) = s.starting_since()
                && s.ask_at.is_none_or(|t| t <= now)
            {
                self.ask_starting(i, since);
            }
        }
    }

    fn ask_starting(&mut self, i: usize, since: Instant) {
        let kind = self.stages[i].kind;
        let pid = self.stages[i].pid.unwrap_or(0);
        if self.clients.ping(kind, PING_WAIT) != Some(pid) {
            let max = self.backoff_max();
            let s = &mut self.stages[i];
            let age = since.elapsed();
            if s.wait_exit(Duration::ZERO) || age >= READY_TIMEOUT {
                // Exited before answering, or never answered: an exit like any other.
                s.kill();
                s.wait_exit(EXIT_TIMEOUT);
                let log = state::log_path(&self.opts.bus, kind.name());
                s.on_exit(&log, max);
                s.ask_at = None;
            } else {
                s.ask_at =
                    Some(Instant::now() + (age / 10).clamp(POLL_STARTING, POLL_STARTING_MAX));
            }
            return;
        }
        self.stages[i].ask_at = None;
        self.stages[i].mark_ready();
        self.replay(i);
        let s = &self.stages[i];
        match s.last_restart_ms {
            Some(ms) if s.restarts > 0 => {
                tracing::info!(
                    "{} is back (pid {pid}, {ms} ms after it exited)",
                    kind.name()
                )
            }
            _ => tracing::info!("{} is ready (pid {pid})", kind.name()),
        }
    }

    fn backoff_max(&self) -> Duration {
        Duration::from_secs_f64(self.opts.config.backoff_max_s)
    }

    /// A stage's process exited.
    fn on_exit(&mut self, i: usize, bus: &Bus) {
        if self.stages[i].kind == StageKind::Composer && self.stages[i].state == StageState::Ready {
            // The clock its successor continues: a restarted composer publishes a fresh one as
            // it starts, which control may read before the replay.
            self.clock_at_exit = self.transport;
        }
        let log = state::log_path(&self.opts.bus, self.stages[i].kind.name());
        let max = self.backoff_max();
        self.stages[i].on_exit(&log, max);
        if supervise::needs_pipewire(self.stages[i].kind) && !supervise::pipewire_running() {
            // Restarts while the daemon is down (or not yet back) would only fail and push the
            // next try out on the crash-loop back-off, past the moment PipeWire returns.
            tracing::warn!(
                "{} lost PipeWire; waiting for it",
                self.stages[i].kind.name()
            );
            self.stages[i].lost_pipewire();
            self.pipewire = false;
        }
        // Its iceoryx2 node is dead now: remove what it left so the restart starts clean.
        bus.cleanup_dead_nodes();
    }

    /// The 1 s checks: hung stages, PipeWire coming and going.
    fn tick(&mut self) {
        let hang = Duration::from_secs_f64(self.opts.config.hang_timeout_s);
        for s in &mut self.stages {
            if s.hung(hang) {
                tracing::warn!(
                    "{} sent no status for {} s: killing it (hung)",
                    s.kind.name(),
                    hang.as_secs()
                );
                s.hangs += 1;
                s.kill();
            }
        }
        let pipewire = supervise::pipewire_running();
        if pipewire && !self.pipewire {
            tracing::info!("PipeWire is back");
        }
        if pipewire {
            // By state, not only on the change: another stage's start may have seen PipeWire
            // back first (and set `self.pipewire`), and a waiting synth must not miss it.
            for s in &mut self.stages {
                if s.state == StageState::WaitingForPipewire && s.next_start.is_none() {
                    s.next_start = Some(Instant::now());
                }
                if s.without_pipewire && s.running() {
                    // The router runs OSC only: restart it with its MIDI port.
                    s.kill();
                }
            }
        }
        self.pipewire = pipewire;
    }

    /// Control's own heartbeat.
    fn status(&self) -> StageStatus {
        let mut s = StageStatus::new(StageKind::Control);
        s.set(
            Counter::Restarts,
            self.stages.iter().map(|s| s.restarts).sum(),
        )
        .set(Counter::Hangs, self.stages.iter().map(|s| s.hangs).sum())
        .set(Counter::ForwardFailed, self.forward_failed);
        s
    }

    fn handle(&mut self, cmd: ControlCommand) -> Reply<ControlReply> {
        match cmd {
            ControlCommand::Common(Common::Ping { nonce }) => {
                Ok(ControlReply::Common(CommonReply::Pong {
                    nonce,
                    pid: std::process::id(),
                }))
            }
            ControlCommand::Common(Common::Status) => Ok(ControlReply::Common(
                CommonReply::Status(Box::new(self.status())),
            )),
            ControlCommand::Common(Common::Shutdown) => {
                self.leave = true;
                Ok(ControlReply::Common(CommonReply::Ack))
            }
            ControlCommand::Batch(changes) => self.apply(&changes),
            ControlCommand::Session => {
                // Ramps that have ended are not shown (the next batch drops them).
                let now = self
                    .transport
                    .map(|t| t.cycle_at(khorus_bus::clock::now_ns()));
                let json = match now {
                    Some(c) if self.session.ramps.iter().any(|r| r.done_by(c)) => {
                        let mut shown = self.session.clone();
                        shown.ramps.retain(|r| !r.done_by(c));
                        state::session_json(&shown)
                    }
                    _ => state::session_json(&self.session),
                };
                Ok(ControlReply::Session { json })
            }
            ControlCommand::LoadSession { json, over } => {
                let mut next: Session = serde_json::from_str(&json)
                    .map_err(|e| invalid(format!("session JSON: {e}")))?;
                // Every node of the new session must be a valid change, as if added anew.
                Session::empty()
                    .apply(&next.to_changes())
                    .map_err(invalid)?;
                let over = crate::session::ramps::check_bars(over.unwrap_or(0))
                    .map_err(|e| invalid(format!("--over: {e}")))?;
                next.settle_ramps(&self.session, over);
                self.commit(next, over)
            }
            ControlCommand::Stages => Ok(ControlReply::Stages(
                self.stages.iter_mut().map(|s| s.report()).collect(),
            )),
            ControlCommand::Down => {
                self.down = true;
                Ok(ControlReply::Ack)
            }
            ControlCommand::Note {
                node,
                note,
                velocity,
                dur_ms,
            } => self.audition(&node, note, velocity, dur_ms),
        }
    }

    /// `khorus down`: the composer stops making notes, the router sends all-notes-off, the
    /// synth fades out, everything exits; what will not exit is killed.
    fn shut_down(&mut self) {
        for kind in [
            StageKind::Composer,
            StageKind::Router,
            StageKind::Synth,
            StageKind::Collector,
        ] {
            let Some(i) = self.stages.iter().position(|s| s.kind == kind) else {
                continue;
            };
            if !self.stages[i].running() {
                continue;
            }
            if self
                .clients
                .common(kind, Common::Shutdown, Duration::from_secs(1))
                .is_err()
            {
                tracing::warn!("{} did not answer Shutdown; killing it", kind.name());
                self.stages[i].kill();
            }
            if !self.stages[i].wait_exit(EXIT_TIMEOUT) {
                tracing::warn!(
                    "{} did not exit within {EXIT_TIMEOUT:?}; killing it",
                    kind.name()
                );
                self.stages[i].kill();
                self.stages[i].wait_exit(EXIT_TIMEOUT);
            }
        }
    }
}
