//! The lookahead scheduler: queries every slot a lookahead ahead of the clock and turns
//! onsets into `NoteEvent`s and `CurvePoint`s stamped with the exact instant they sound.
//!
//! Each call to [`Scheduler::advance`] queries `[horizon, target)` where `target` is the cycle
//! position one lookahead past now; consecutive calls tile time, so every onset is emitted
//! exactly once. Slot changes are queued at the next quantum boundary at or after the horizon,
//! so a change never restarts the bar or replays what was already sent. Times come from
//! [`Transport::ns_at`] on exact cycle positions, never from accumulated floats.

use std::collections::BTreeMap;

use khorus_bus::commands::composer::Target;
use khorus_bus::{CurvePoint, CurveShape, NoteEvent};

use crate::controls::{Controls, DEFAULT_VELOCITY};
use crate::levels::Signals;
use crate::pattern::{Context, Pattern};
use crate::ramps::{Ramp, Ramps};
use crate::time::{Q, TimeError};
use crate::transport::Transport;

/// Query boundaries are floored to this grid (1/65536 cycle, ≈ 27 µs at 137 bpm) so their
/// denominators stay small; onsets themselves are never rounded.
const GRID: i64 = 1 << 16;

/// What a slot plays and where it goes.
#[derive(Debug, Clone)]
pub struct Voice {
    /// The events.
    pub pattern: Pattern<Controls>,
    /// Notes or a curve.
    pub target: Target,
}

#[derive(Debug, Clone)]
struct Slot {
    /// What it plays from when, in increasing order.
    versions: Vec<Version>,
}

/// A slot's voice from a cycle on (`None` is silence), crossfading for `fade` cycles with the
/// version before it: the notes of the old fade out while those of the new fade in (their
/// velocities scaled along a straight line in cycles). A curve does not crossfade: it
/// changes at `from`.
#[derive(Debug, Clone)]
struct Version {
    from: Q,
    voice: Option<Voice>,
    fade: Q,
}

/// One advance's output.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Notes, in time order.
    pub notes: Vec<NoteEvent>,
    /// Curve points, in time order.
    pub curves: Vec<CurvePoint>,
    /// Events whose time had already passed when they were made (still published).
    pub late: u64,
    /// Slots whose query failed this time (they are skipped, the rest play on).
    pub errors: Vec<(String, TimeError)>,
}

/// The scheduler: transport, slots and the horizon.
#[derive(Debug, Clone)]
pub struct Scheduler {
    transport: Transport,
    slots: BTreeMap<String, Slot>,
    ramps: Ramps,
    horizon: Q,
    lookahead_ns: u64,
}

impl Scheduler {
    /// A scheduler starting at the transport's anchor cycle.
    pub fn new(transport: Transport, lookahead_ns: u64) -> Self {
        let horizon = transport.anchor().1;
        Scheduler {
            transport,
            slots: BTreeMap::new(),
            ramps: Ramps::default(),
            horizon,
            lookahead_ns,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Cycle position up to which events have been made.
    pub fn horizon(&self) -> Q {
        self.horizon
    }

    /// Nothing to make: the transport is stopped, or no slot plays anything now or later and
    /// nothing ramps.
    pub fn idle(&self) -> bool {
        !self.transport.running()
            || (self.slots.is_empty() && self.ramps.is_empty() && self.transport.ramp().is_none())
    }

    /// Names of the slots that play something now or later.
    pub fn active_slots(&self) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|(_, s)| s.versions.iter().any(|v| v.voice.is_some()))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The first multiple of `quantum` at or after the horizon.
    pub fn next_boundary(&self, quantum: Q) -> Result<Q, TimeError> {
        let k = (self.horizon / quantum)?.ceil();
        Q::int(k) * quantum
    }

    /// Plays `voice` (or silence) in `slot` from the next `quantum` boundary; returns it.
    pub fn set_slot(
        &mut self,
        slot: &str,
        voice: Option<Voice>,
        quantum: Q,
    ) -> Result<Q, TimeError> {
        self.set_slot_fading(slot, voice, quantum, Q::ZERO)
    }

    /// [`Scheduler::set_slot`], the notes crossfading with what the slot played over `fade`
    /// cycles from there.
    pub fn set_slot_fading(
        &mut self,
        slot: &str,
        voice: Option<Voice>,
        quantum: Q,
        fade: Q,
    ) -> Result<Q, TimeError> {
        let at = self.next_boundary(quantum)?;
        let s = self.slots.entry(slot.to_string()).or_insert_with(|| Slot {
            versions: Vec::new(),
        });
        s.versions.retain(|v| v.from < at);
        s.versions.push(Version {
            from: at,
            voice,
            fade: fade.max(Q::ZERO),
        });
        Ok(at)
    }

    /// Silences every slot from the next cycle.
    pub fn hush_all(&mut self) -> Result<Q, TimeError> {
        let names: Vec<String> = self.slots.keys().cloned().collect();
        let mut at = self.next_boundary(Q::ONE)?;
        for n in names {
            at = self.set_slot(&n, None, Q::ONE)?;
        }
        Ok(at)
    }

    /// Starts `ramp` (replacing one on the same parameter).
    pub fn start_ramp(&mut self, ramp: Ramp) {
        self.ramps.start(ramp, self.horizon);
    }

    /// Ends the ramp on `node`'s `param`, if one runs.
    pub fn stop_ramp(&mut self, node: u32, param: u32) {
        self.ramps.stop(node, param);
    }

    /// The number ramps in progress.
    pub fn ramps(&self) -> &[Ramp] {
        self.ramps.all()
    }

    /// Changes tempo at the horizon (what was already published keeps its times).
    pub fn set_cps(&mut self, cps: Q) -> Result<Q, TimeError> {
        self.transport.set_cps(self.horizon, cps)?;
        Ok(self.horizon)
    }

    /// Ramps the tempo to `cps` over `cycles`, from the next cycle boundary (or from the
    /// horizon, when a ramp is running: one ramp at a time, the new one from where the old
    /// has got to); returns where it starts.
    pub fn ramp_cps(&mut self, cps: Q, cycles: Q) -> Result<Q, TimeError> {
        let at = match self.transport.ramp() {
            Some(_) => self.horizon,
            None => self.next_boundary(Q::ONE)?,
        };
        self.transport.ramp_to(at, cycles, cps)?;
        Ok(at)
    }

    /// Sets beats per cycle.
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// Stops making events (those already published stand).
    pub fn stop(&mut self) {
        self.transport.stop();
    }

    /// Takes over `transport` (another composer's clock, after a restart): events are made
    /// from one lookahead after `now_ns` on (the previous composer made those before), on
    /// the same grid.
    pub fn follow(&mut self, transport: Transport, now_ns: u64) -> Result<(), TimeError> {
        let from = if transport.running() {
            let ahead = transport.cycle_at(now_ns.saturating_add(self.lookahead_ns))?;
            Q::new((ahead * Q::int(GRID))?.ceil(), GRID)?
        } else {
            transport.anchor().1
        };
        self.transport = transport;
        self.horizon = from;
        Ok(())
    }

    /// Resumes: the horizon sounds one lookahead after `now_ns`.
    pub fn start(&mut self, now_ns: u64) {
        if !self.transport.running() {
            self.transport
                .start(self.horizon, now_ns.saturating_add(self.lookahead_ns));
        }
    }

    /// Makes every event that starts before `now + lookahead` and was not made yet.
    pub fn advance(&mut self, now_ns: u64, signals: &Signals) -> Result<Batch, TimeError> {
        let mut batch = Batch::default();
        if !self.transport.running() {
            return Ok(batch);
        }
        let ahead = self
            .transport
            .cycle_at(now_ns.saturating_add(self.lookahead_ns))?;
        let target = Q::new((ahead * Q::int(GRID))?.floor(), GRID)?;
        if target <= self.horizon {
            return Ok(batch);
        }
        let from = self.horizon;
        for (name, slot) in &mut self.slots {
            let ctx = Context {
                signals: signals.clone(),
                work: Default::default(),
            };
            if let Err(e) = emit_slot(
                &self.transport,
                slot,
                from,
                target,
                now_ns,
                &ctx,
                &mut batch,
            ) {
                batch.errors.push((name.clone(), e));
            }
            // Versions wholly before the target are done; keep the one in force (and the
            // one before it while they crossfade).
            let mut keep_from = slot
                .versions
                .iter()
                .rposition(|v| v.from <= target)
                .unwrap_or(0);
            if keep_from > 0
                && (slot.versions[keep_from].from + slot.versions[keep_from].fade)? > target
            {
                keep_from -= 1;
            }
            slot.versions.drain(..keep_from);
        }
        self.slots
            .retain(|_, s| s.versions.iter().any(|v| v.voice.is_some()));
        self.ramps
            .emit(&self.transport, from, target, &mut batch.curves)?;
        batch.notes.sort_by_key(|n| n.t_ns);
        batch.curves.sort_by_key(|c| c.t_ns);
        self.horizon = target;
        self.transport.settle(target)?;
        Ok(batch)
    }
}

fn emit_slot(
    transport: &Transport,
    slot: &Slot,
    from: Q,
    to: Q,
    now_ns: u64,
    ctx: &Context,
    batch: &mut Batch,
) -> Result<(), TimeError> {
    for (i, version) in slot.versions.iter().enumerate() {
        let Some(voice) = &version.voice else {
            continue;
        };
        let notes = matches!(voice.target, Target::Notes { .. });
        let next = slot.versions.get(i + 1);
        // Notes play on through the next version's crossfade; a curve stops where it starts.
        let end = match next {
            Some(n) if notes => (n.from + n.fade)?.min(to),
            Some(n) => n.from.min(to),
            None => to,
        };
        let begin = version.from.max(from);
        if begin >= end {
            continue;
        }
        for hap in voice.pattern.onsets(begin, end, ctx)? {
            let Some(whole) = hap.whole else { continue };
            let weight = match notes {
                true => fade_in(version, whole.begin)? * fade_out(next, whole.begin)?,
                false => 1.0,
            };
            if weight <= 0.0 {
                continue;
            }
            let t_ns = transport.ns_at(whole.begin)?;
            let end_ns = transport.ns_at(whole.end)?;
            if t_ns < now_ns {
                batch.late += 1;
            }
            emit(
                voice.target,
                &hap.value,
                t_ns,
                end_ns.saturating_sub(t_ns),
                weight,
                batch,
            );
        }
    }
    Ok(())
}

/// How far into its crossfade a version is at `c`: 0 at its start, 1 once it is over.
fn fade_in(v: &Version, c: Q) -> Result<f64, TimeError> {
    if v.fade <= Q::ZERO || c >= (v.from + v.fade)? {
        return Ok(1.0);
    }
    Ok(((c - v.from)? / v.fade)?.to_f64().clamp(0.0, 1.0))
}

/// How much of a version is left at `c` while `next` fades in over it.
fn fade_out(next: Option<&Version>, c: Q) -> Result<f64, TimeError> {
    match next {
        Some(n) if c >= n.from => Ok(1.0 - fade_in(n, c)?),
        _ => Ok(1.0),
    }
}

fn emit(target: Target, c: &Controls, t_ns: u64, span_ns: u64, weight: f64, batch: &mut Batch) {
    match target {
        Target::Notes {
            node,
            role,
            channel,
        } => {
            let legato = c.legato.unwrap_or(1.0).clamp(0.0, 16.0);
            batch.notes.push(NoteEvent {
                seq: 0,
                t_ns,
                dur_ns: (span_ns as f64 * legato).round() as u64,
                node,
                note: c.note.unwrap_or(60.0).clamp(0.0, 127.0) as f32,
                velocity: (c.velocity.unwrap_or(DEFAULT_VELOCITY).clamp(0.0, 1.0) * weight) as f32,
                channel: channel.unwrap_or(role.default_channel()).clamp(1, 16),
                role: role as u8,
                _pad: [0; 2],
            });
            for (param, value) in &c.params {
                batch
                    .curves
                    .push(point(t_ns, node, *param, *value, CurveShape::Step));
            }
        }
        Target::Curve { node, param, shape } => {
            batch
                .curves
                .push(point(t_ns, node, param, c.note.unwrap_or(0.0), shape));
        }
    }
}

fn point(t_ns: u64, node: u32, param: u32, value: f64, shape: CurveShape) -> CurvePoint {
    CurvePoint {
        seq: 0,
        t_ns,
        node,
        param,
        value: if value.is_finite() { value as f32 } else { 0.0 },
        shape: shape as u8,
        _pad: [0; 3],
    }
}
