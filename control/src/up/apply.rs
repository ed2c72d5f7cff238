//! The session played to the stages: a batch checked whole and sent (undone if a stage
//! refuses), the session replayed to a stage that (re)starts, a restarted synth handed what
//! was sounding, the id table, an auditioned note. Supervision — starting, watching and
//! restarting the processes — is the parent module's.

use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TransportInfo};
use khorus_bus::commands::control::{Change, ControlReply, StageState};
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::services::ids::{IdTable, NodeEntry};
use khorus_bus::{CommandClient, NoteEvent, Reply, StageKind, TransportState, clock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Control, HAND_OVER_TIMEOUT, STAGE_TIMEOUT, invalid};
use crate::session::plan::Plan;
use crate::session::state;
use crate::session::{Kind, Ramp, Session};

impl Control {
    /// Plays the session to a stage that just started.
    pub(super) fn replay(&mut self, i: usize) {
        let kind = self.stages[i].kind;
        let result = match kind {
            StageKind::Synth => send(&mut self.clients.synth, &[self.plan.synth_replay()])
                .and_then(|_| self.hand_over())
                .and_then(|()| self.resume_ramps()),
            StageKind::Composer => {
                let cmds = match &self.clock_at_exit.take().or(self.transport) {
                    Some(t) => self.plan.composer_replay_following(transport_info(t)),
                    None => self.plan.composer_replay(),
                };
                send(&mut self.clients.composer, &cmds).map(drop)
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
        send(&mut self.clients.synth, &[SynthCommand::Resume { notes }]).map(drop)
    }

    /// A restarted synth holds each ramping number where the graph has it: the composer steps
    /// it to where its ramp has got to, then goes on; a send level goes on from there to its
    /// end in the time left.
    fn resume_ramps(&mut self) -> Result<(), String> {
        let now = clock::now_ns();
        let sends: Vec<SynthCommand> = self
            .session
            .ramps
            .iter()
            .filter_map(|r| self.send_ramp(r, &self.session, now))
            .collect();
        send(&mut self.clients.synth, &sends)?;
        match self.plan.ramps_resumed() {
            Some(cmd) if self.ready(StageKind::Composer) => {
                send(&mut self.clients.composer, &[cmd]).map(drop)
            }
            _ => Ok(()),
        }
    }

    /// The synth command that moves the send of route ramp `r` (`from->to`) along its line
    /// from where it is at `now_ns` (0: from its start) to its end, in time on the transport.
    fn send_ramp(&self, r: &Ramp, session: &Session, now_ns: u64) -> Option<SynthCommand> {
        let (from, to) = r.route()?;
        let start = r.start_cycle()?;
        let (at, end) = match &self.transport {
            Some(t) => (t.ns_at(start), t.ns_at(start + r.bars as f64)),
            None => {
                let bpm = session.bpm().unwrap_or(120.0);
                let beats = session.tempo.map_or(4, |t| t.beats_per_cycle);
                let span = r.bars as f64 * beats as f64 * 60.0 / bpm * 1e9;
                (0.0, span)
            }
        };
        let at = at.max(now_ns as f64);
        (end > at).then(|| SynthCommand::Send {
            from: from.into(),
            to: to.into(),
            level: r.to as f32,
            at_ns: at as u64,
            over_ns: (end - at) as u64,
        })
    }

    fn ready(&self, kind: StageKind) -> bool {
        self.stages
            .iter()
            .any(|s| s.kind == kind && s.state == StageState::Ready)
    }

    /// Applies a batch: the new session is made and checked whole (names, loops, the
    /// synth's graph build, the composer's compile and test query), then sent to the stages.
    pub(super) fn apply(&mut self, changes: &[Change]) -> Reply<ControlReply> {
        let next = self.session.apply(changes).map_err(invalid)?;
        let over = changes.iter().rev().find_map(|c| match c {
            Change::Over { bars } => Some(*bars),
            _ => None,
        });
        self.commit(next, over.unwrap_or(0))
    }

    /// Plays `next` through the stages (patterns that change crossfading over `over` bars);
    /// if one refuses, what was sent is undone and the session stays as it was.
    pub(super) fn commit(&mut self, mut next: Session, over: u32) -> Reply<ControlReply> {
        // Ramps that have ended are done with (the graph then holds their values).
        if let Some(t) = &self.transport {
            let now = t.cycle_at(clock::now_ns());
            next.ramps.retain(|r| !r.done_by(now));
        }
        let synth_up = self.ready(StageKind::Synth);
        let composer_up = self.ready(StageKind::Composer);
        if !composer_up {
            // No composer to place new ramps on its cycles: their numbers jump.
            next.ramps.retain(|r| r.start.is_some());
        }
        let mut plan = Plan::after(&next, &self.plan).map_err(invalid)?;
        let synth_cmds = plan.synth_changes(&self.plan);
        let composer_cmds = plan.composer_changes(&self.plan, over);
        if synth_up && let Err(e) = send(&mut self.clients.synth, &synth_cmds) {
            self.forward_failed += 1;
            let undo = self.plan.synth_replay();
            if send(&mut self.clients.synth, &[undo]).is_err() {
                tracing::error!("could not undo a refused change in the synth");
            }
            return Err(invalid(e));
        }
        let replies = match composer_up {
            true => send(&mut self.clients.composer, &composer_cmds),
            false => Ok(Vec::new()),
        };
        if let Err(e) = replies {
            self.forward_failed += 1;
            let undo = self.plan.composer_changes(&plan, 0);
            if send(&mut self.clients.composer, &undo).is_err() {
                tracing::error!("could not undo a refused change in the composer");
            }
            if synth_up {
                let undo = self.plan.synth_changes(&plan);
                if send(&mut self.clients.synth, &undo).is_err() {
                    tracing::error!("could not undo a change in the synth");
                }
            }
            return Err(invalid(e));
        }
        if let Ok(replies) = replies {
            let placed = place_ramps(&mut next, &self.session, &composer_cmds, &replies);
            plan.refresh_ramps(&next);
            // The synth moves send levels itself: from the cycle's instant, over the span's.
            let sends: Vec<SynthCommand> = placed
                .iter()
                .filter_map(|r| self.send_ramp(r, &next, 0))
                .collect();
            if synth_up && let Err(e) = send(&mut self.clients.synth, &sends) {
                self.forward_failed += 1;
                tracing::error!("a send level's ramp did not reach the synth: {e}");
            }
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

    pub(super) fn publish_ids(&mut self) {
        let entries = ids_of(&self.session);
        let version = self.version;
        let mut left_out = 0;
        let published = self.ids.publish_in_place(|table: &mut IdTable| {
            left_out = table.fill(version, &entries);
            table.t_ns = khorus_bus::clock::now_ns();
        });
        if left_out > 0 {
            tracing::warn!("{left_out} ids did not fit in the published table");
        }
        if let Err(e) = published {
            tracing::warn!("could not publish the id table: {e}");
        }
    }

    /// Plays one note on a node now.
    pub(super) fn audition(
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
        ramp: t.ramp().map(|_| {
            (
                q(t.ramp_end_num, t.ramp_end_den),
                q(t.ramp_cps_num, t.ramp_cps_den),
            )
        }),
    }
}

/// Records where the composer started the ramps a batch began (its answers to `Tempo` with
/// `over` and to `Ramps`); a ramp that replaced one in progress starts where that one had
/// got to, as in the composer.
fn place_ramps(
    next: &mut Session,
    old: &Session,
    cmds: &[ComposerCommand],
    replies: &[ComposerReply],
) -> Vec<Ramp> {
    let mut tempo_at = None;
    let mut params_at = None;
    for (cmd, reply) in cmds.iter().zip(replies) {
        let ComposerReply::Applied { at_cycle } = reply else {
            continue;
        };
        match cmd {
            ComposerCommand::Tempo(t) if t.over.is_some_and(|b| b > 0) => {
                tempo_at = Some(at_cycle.clone())
            }
            ComposerCommand::Ramps(_) => params_at = Some(at_cycle.clone()),
            _ => {}
        }
    }
    let mut placed = Vec::new();
    for r in next.ramps.iter_mut().filter(|r| r.start.is_none()) {
        r.start = match r.what.as_str() {
            "tempo" => tempo_at.clone(),
            _ => params_at.clone(),
        };
        let start = r.start_cycle();
        if let (Some(c), Some(before)) = (start, old.ramp_of(&r.what))
            && before.start.is_some()
        {
            r.from = before.value_at(c);
        }
        if r.start.is_some() {
            placed.push(r.clone());
        }
    }
    placed
}

/// Sends `cmds` to a stage in order, stopping at the first it refuses or does not answer;
/// the answers, in order.
fn send<Req: Serialize, Resp: DeserializeOwned>(
    client: &mut CommandClient<Req, Resp>,
    cmds: &[Req],
) -> Result<Vec<Resp>, String> {
    cmds.iter()
        .map(|cmd| {
            client
                .call(cmd, STAGE_TIMEOUT)
                .map_err(|e| format!("{}: {e}", client.stage().name()))
        })
        .collect()
}
