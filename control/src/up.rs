//! `khorus up`: the control process. It starts the stages (or adopts those a previous control
//! left running), waits for each to answer, replays the session to any stage that (re)starts,
//! applies batches from every surface, and publishes the id table and its own heartbeat.
//!
//! One thread, sleeping in the bus's wait set on: its command service, the transport, and
//! one pidfd per stage (so an exit is seen at once, child or not). A 1 s tick reads the
//! stages' status reports, checks for hung stages and for PipeWire coming back; nothing else
//! wakes it.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use khorus_bus::command::CommonReply;
use khorus_bus::commands;
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TransportInfo};
use khorus_bus::commands::control::{Change, ControlCommand, ControlReply, StageState};
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::services::ids::{IdTable, NodeEntry};
use khorus_bus::wait::{self, Exit, Period, Wake};
use khorus_bus::{
    Bus, BusConfig, Common, Counter, NoteEvent, Publisher, Reply, ReplyError, StageKind,
    StageRunner, StageStatus, TransportState, clock,
};

use crate::clients::Clients;
use crate::config::{ControlConfig, STAGES};
use crate::plan::Plan;
use crate::session::{Kind, Session};
use crate::state;
use crate::supervise::{self, Supervised};

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
        let deadline = c.stages.iter().filter_map(|s| s.next_start).min();
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
            if c.down
                || c.leave
                || c.stages
                    .iter()
                    .any(|s| s.next_start.is_some_and(|t| t <= Instant::now()))
            {
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

    /// Starts every stage whose start is due.
    fn start_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.stages.len() {
            let due = self.stages[i].next_start.is_some_and(|t| t <= now);
            if due && !self.stages[i].running() {
                self.start(i);
            }
        }
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

    /// Starts stage `i`, waits until it answers, and replays the session to it.
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
        let pid = s.pid.unwrap_or(0);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.clients.ping(kind, Duration::from_millis(20)) == Some(pid) {
                break;
            }
            let s = &mut self.stages[i];
            if s.wait_exit(Duration::ZERO) || Instant::now() >= deadline {
                // Exited before answering, or never answered: an exit like any other.
                s.kill();
                s.wait_exit(EXIT_TIMEOUT);
                s.on_exit(&log, max);
                return;
            }
        }
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

    /// Plays the session to a stage that just started.
    fn replay(&mut self, i: usize) {
        let kind = self.stages[i].kind;
        let result = match kind {
            StageKind::Synth => self
                .send_synth(&[self.plan.synth_replay()])
                .and_then(|()| self.hand_over()),
            StageKind::Composer => {
                let mut cmds = self.plan.composer_replay();
                if let Some(t) = &self.transport {
                    cmds.push(ComposerCommand::Follow(transport_info(t)));
                }
                self.send_composer(&cmds)
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.forward_failed += 1;
            tracing::error!("replaying the session to the {} failed: {e}", kind.name());
        }
    }

    /// Hands a synth that just started the notes the composer made that have not ended, so
    /// what was sounding when a synth died (a drone, a long chord) sounds again at once
    /// rather than at its next onset. Nothing to do while the composer is not running.
    fn hand_over(&mut self) -> Result<(), String> {
        if !self.ready(StageKind::Composer) {
            return Ok(());
        }
        let notes = match self
            .clients
            .composer
            .call(&ComposerCommand::Sounding, HAND_OVER_TIMEOUT)
        {
            Ok(ComposerReply::Notes(notes)) => notes,
            Ok(other) => return Err(format!("composer: unexpected answer {other:?}")),
            Err(e) => return Err(format!("composer: {e}")),
        };
        if notes.is_empty() {
            return Ok(());
        }
        tracing::info!("handing {} sounding notes to the synth", notes.len());
        self.send_synth(&[SynthCommand::Resume { notes }])
    }

    fn ready(&self, kind: StageKind) -> bool {
        self.stages
            .iter()
            .any(|s| s.kind == kind && s.state == StageState::Ready)
    }

    fn send_synth(&mut self, cmds: &[SynthCommand]) -> Result<(), String> {
        for cmd in cmds {
            self.clients
                .synth
                .call(cmd, STAGE_TIMEOUT)
                .map_err(|e| format!("synth: {e}"))?;
        }
        Ok(())
    }

    fn send_composer(&mut self, cmds: &[ComposerCommand]) -> Result<(), String> {
        for cmd in cmds {
            self.clients
                .composer
                .call(cmd, STAGE_TIMEOUT)
                .map_err(|e| format!("composer: {e}"))?;
        }
        Ok(())
    }

    /// A stage's process exited.
    fn on_exit(&mut self, i: usize, bus: &Bus) {
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
            ControlCommand::Session => Ok(ControlReply::Session {
                json: state::session_json(&self.session),
            }),
            ControlCommand::LoadSession { json } => {
                let next: Session = serde_json::from_str(&json)
                    .map_err(|e| invalid(format!("session JSON: {e}")))?;
                // Every node of the new session must be a valid change, as if added anew.
                Session::empty()
                    .apply(&crate::client::changes_of(&next))
                    .map_err(invalid)?;
                self.commit(next)
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

    /// Applies a batch: the new session is made and checked whole (names, loops, the
    /// synth's graph build, the composer's compile and test query), then sent to the stages.
    fn apply(&mut self, changes: &[Change]) -> Reply<ControlReply> {
        let next = self.session.apply(changes).map_err(invalid)?;
        self.commit(next)
    }

    /// Plays `next` through the stages; if one refuses, what was sent is undone and the
    /// session stays as it was.
    fn commit(&mut self, next: Session) -> Reply<ControlReply> {
        let plan = Plan::of(&next).map_err(invalid)?;
        let synth_cmds = plan.synth_changes(&self.plan);
        let composer_cmds = plan.composer_changes(&self.plan);
        let synth_up = self.ready(StageKind::Synth);
        let composer_up = self.ready(StageKind::Composer);
        if synth_up && let Err(e) = self.send_synth(&synth_cmds) {
            self.forward_failed += 1;
            let undo = self.plan.synth_replay();
            if self.send_synth(&[undo]).is_err() {
                tracing::error!("could not undo a refused change in the synth");
            }
            return Err(invalid(e));
        }
        if composer_up && let Err(e) = self.send_composer(&composer_cmds) {
            self.forward_failed += 1;
            let undo = self.plan.composer_changes(&plan);
            if self.send_composer(&undo).is_err() {
                tracing::error!("could not undo a refused change in the composer");
            }
            if synth_up {
                let undo = self.plan.synth_changes(&plan);
                if self.send_synth(&undo).is_err() {
                    tracing::error!("could not undo a change in the synth");
                }
            }
            return Err(invalid(e));
        }
        let nodes_changed = ids_of(&self.session) != ids_of(&next);
        self.session = next;
        self.plan = plan;
        self.version += 1;
        if let Err(e) = state::save_session(&self.opts.bus, &self.session) {
            tracing::error!("could not save the session: {e:#}");
        }
        if nodes_changed {
            self.publish_ids();
        }
        Ok(ControlReply::Applied {
            version: self.version,
        })
    }

    fn publish_ids(&mut self) {
        let entries = ids_of(&self.session);
        let (table, left_out) = IdTable::new(self.version, &entries);
        if left_out > 0 {
            tracing::warn!("{left_out} ids did not fit in the published table");
        }
        if let Err(e) = self.ids.publish(table) {
            tracing::warn!("could not publish the id table: {e}");
        }
    }

    /// Plays one note on a node now.
    fn audition(
        &mut self,
        node: &str,
        note: f32,
        velocity: f32,
        dur_ms: u32,
    ) -> Reply<ControlReply> {
        let n = self.session.nodes.get(node).ok_or_else(|| {
            invalid(format!(
                "no node named {node:?} (nodes: {})",
                self.session
                    .nodes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if n.kind() == Kind::Effect {
            return Err(invalid(format!("{node:?} is an effect: it plays no notes")));
        }
        if !(0.0..=127.0).contains(&note) || !(0.0..=1.0).contains(&velocity) {
            return Err(invalid("note 0..=127, velocity 0..=1"));
        }
        let event = NoteEvent {
            t_ns: clock::now_ns() + 30_000_000,
            dur_ns: dur_ms.clamp(1, 60_000) as u64 * 1_000_000,
            node: n.id,
            note,
            velocity,
            channel: n.role.default_channel(),
            role: n.role as u8,
            ..NoteEvent::default()
        };
        self.notes.publish(event).map_err(invalid)?;
        Ok(ControlReply::Ack)
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

/// The id table's entries for a session.
fn ids_of(session: &Session) -> Vec<NodeEntry> {
    let mut v: Vec<NodeEntry> = session
        .nodes
        .iter()
        .map(|(name, n)| {
            let mut params: Vec<(String, u32)> =
                n.params.iter().map(|(k, v)| (k.clone(), *v)).collect();
            params.sort_by_key(|(_, id)| *id);
            NodeEntry {
                id: n.id,
                name: name.clone(),
                role: n.role,
                effect: n.kind() == Kind::Effect,
                params,
            }
        })
        .collect();
    v.sort_by_key(|e| e.id);
    v
}

/// The bus's transport as the composer's `Follow` takes it.
fn transport_info(t: &TransportState) -> TransportInfo {
    let q = |n: i64, d: i64| {
        if d == 1 {
            n.to_string()
        } else {
            format!("{n}/{d}")
        }
    };
    TransportInfo {
        running: t.running != 0,
        cps: q(t.cps_num, t.cps_den),
        bpm: t.bpm(),
        beats_per_cycle: t.beats_per_cycle,
        anchor_ns: t.anchor_ns,
        anchor_cycle: q(t.anchor_cycle_num, t.anchor_cycle_den),
    }
}
