//! The audio engine: instruments, effect nodes (delays, reverbs) fed by post-fader sends and
//! routed to later effects, the master limiter, and
//! the event queue that starts and stops notes at exact frames.
//!
//! Time is counted in frames since the engine started. Whoever feeds the engine (the PipeWire
//! callback, the offline renderer) converts a note's monotonic time to a frame; the engine
//! starts the voice at exactly that frame, or at the start of the current block if the frame
//! has passed (a late note, counted). `render` never allocates: the queue and every buffer are
//! sized when the engine is built.

use khorus_bus::Role;

use crate::dsp::fx::{Limiter, balance_gains, pan_gains};
use crate::dsp::{BLOCK, Block, Shape};
use crate::edit::{Carry, Outline};
use crate::effect::Effect;
use crate::ids::NodeIds;
use crate::instrument::Instrument;
use crate::schema::{DEFAULT_BPM, MAX_EFFECTS};
use crate::stems::StemSource;

/// Sample rates the engine runs at, Hz. The filters' coefficient tables and the effects'
/// delay lines are sized for this range; [`crate::graph::GraphSpec::build`] refuses others.
pub const RATE_HZ: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Events the queue holds at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 16_384;

/// The master limiter's ceiling (linear): no output sample is louder.
pub const CEILING: f32 = 0.89;
/// The master limiter's release time, s.
pub const LIMITER_RELEASE_S: f32 = 0.08;

/// What happens at a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    On {
        inst: usize,
        id: u64,
        note: f32,
        vel: f32,
    },
    Off {
        inst: usize,
        id: u64,
    },
    Set {
        inst: usize,
        param: usize,
        value: f32,
    },
    Ramp {
        inst: usize,
        param: usize,
        value: f32,
        end: u64,
        shape: Shape,
    },
    Send {
        inst: usize,
        to: usize,
        level: f32,
        frames: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    frame: u64,
    action: Action,
}

/// Counters the engine keeps (read by the status reporter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Notes whose frame had passed when they were rendered.
    pub late: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Notes and curve points for a node id (or parameter id) this graph does not have.
    pub unrouted: u64,
    /// Voices stolen.
    pub stolen: u64,
    /// Voices sounding after the last block.
    pub active_voices: u64,
    /// Notes started.
    pub notes: u64,
}

/// A note to schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    /// Frame at which it starts.
    pub frame: u64,
    /// Frames it is held.
    pub dur_frames: u64,
    /// Node id as control assigned it (0: no node, the role's default instrument).
    pub node: u32,
    /// MIDI note number.
    pub note: f32,
    /// Velocity 0..1.
    pub velocity: f32,
    /// Role, for the default instrument.
    pub role: Role,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    rate: f32,
    frame: u64,
    instruments: Vec<Instrument>,
    queue: Vec<Event>,
    next_id: u64,
    effects: Vec<Effect>,
    bpm: f32,
    limiter: Limiter,
    /// An instrument's output before pan (the left alone when its definition is mono).
    dry: [Block; 2],
    stats: EngineStats,
    ids: NodeIds,
    /// The most a send or route level moves per frame.
    glide: f32,
    /// Which nodes of the engine it takes over from it continues (set before a swap).
    carry: Carry,
    /// The stem slot of each node that has one ([`crate::stems`]).
    stems: Vec<(usize, StemSource)>,
}

/// Time a send or route level takes to glide across its whole range (0 to 1), s.
pub const ROUTE_GLIDE_S: f32 = 0.02;

pub use crate::schema::param;

impl Engine {
    /// An engine playing `instruments` through `effects` (at most [`MAX_EFFECTS`]; routes
    /// between effects must go to a later one — [`crate::graph::GraphSpec`] checks both, and
    /// that `rate` is within [`RATE_HZ`]).
    pub fn new(rate: f32, instruments: Vec<Instrument>, effects: Vec<Effect>) -> Self {
        crate::dsp::osc::prepare_tables();
        Self::unprepared(rate, instruments, effects)
    }

    /// [`Engine::new`] without the oscillator tables: for an engine that is checked and
    /// dropped, never rendered.
    pub(crate) fn unprepared(
        rate: f32,
        mut instruments: Vec<Instrument>,
        mut effects: Vec<Effect>,
    ) -> Self {
        effects.truncate(MAX_EFFECTS);
        for (i, e) in effects.iter_mut().enumerate() {
            e.routes.retain(|r| r.to > i);
        }
        for inst in &mut instruments {
            inst.settle_sends();
        }
        Self {
            rate,
            frame: 0,
            instruments,
            queue: Vec::with_capacity(QUEUE_CAPACITY),
            next_id: 1,
            effects,
            bpm: DEFAULT_BPM,
            limiter: Limiter::new(CEILING, LIMITER_RELEASE_S, rate),
            dry: [[0.0; BLOCK]; 2],
            stats: EngineStats::default(),
            ids: NodeIds::default(),
            glide: 1.0 / (ROUTE_GLIDE_S * rate),
            carry: Carry::default(),
            stems: Vec::new(),
        }
        .with_positional_ids()
    }

    fn with_positional_ids(mut self) -> Self {
        let instruments = self.instruments.len();
        let counts: Vec<usize> = self
            .instruments
            .iter()
            .map(|i| param::FIRST_CONTROL + i.controls().len())
            .chain(self.effects.iter().map(|e| e.params().len()))
            .collect();
        self.ids = NodeIds::positional(instruments + self.effects.len(), |i| counts[i]);
        self
    }

    /// Gives the nodes the ids control assigned (see [`NodeIds`]).
    pub fn set_ids(&mut self, ids: NodeIds) {
        self.ids = ids;
    }

    /// The id table.
    pub fn ids(&self) -> &NodeIds {
        &self.ids
    }

    /// The effect nodes, in processing order.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// The sample rate.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// The frame the next block starts at.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// The counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The instruments, in node order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// An instrument, by index.
    pub fn instrument_mut(&mut self, index: usize) -> Option<&mut Instrument> {
        self.instruments.get_mut(index)
    }

    /// Which instrument plays a note.
    fn instrument_for(&self, note: &Note) -> Option<usize> {
        if note.node > 0 {
            return self
                .ids
                .node(note.node)
                .filter(|&i| i < self.instruments.len());
        }
        use crate::builtin::patch::*;
        let i = match note.role {
            Role::Melody | Role::Other => PAD,
            Role::Bass => BASS,
            Role::Chords => CHORDS,
            Role::Percussion => match note.note.round() as i32 {
                35 | 36 => KICK,
                37..=40 => CLICK,
                42 | 44 | 46 => HAT,
                _ => GLITCH,
            },
        };
        (i < self.instruments.len()).then_some(i)
    }

    fn push(&mut self, event: Event) -> bool {
        if self.queue.len() >= QUEUE_CAPACITY {
            self.stats.dropped += 1;
            return false;
        }
        // Sorted by frame; events at the same frame keep their arrival order.
        let at = self.queue.partition_point(|e| e.frame <= event.frame);
        self.queue.insert(at, event);
        true
    }

    /// Schedules a note (and its release).
    pub fn schedule(&mut self, note: Note) {
        let Some(inst) = self.instrument_for(&note) else {
            self.stats.unrouted += 1;
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        if self.push(Event {
            frame: note.frame,
            action: Action::On {
                inst,
                id,
                note: note.note,
                vel: note.velocity,
            },
        }) {
            self.push(Event {
                frame: note.frame + note.dur_frames.max(1),
                action: Action::Off { inst, id },
            });
        }
    }

    /// Automation breakpoint addressed by ids (a bus curve point): node `node`'s parameter
    /// `param` reaches `value` at `frame`. Unknown ids are counted as unrouted.
    pub fn schedule_curve_by_id(
        &mut self,
        frame: u64,
        node: u32,
        param: u32,
        value: f32,
        shape: Option<Shape>,
    ) {
        let target = self
            .ids
            .node(node)
            .and_then(|n| Some((n, self.ids.param(n, param)?)));
        match target {
            Some((n, p)) => self.schedule_curve(frame, n, p, value, shape),
            None => self.stats.unrouted += 1,
        }
    }

    /// Automation breakpoint: node `inst`'s `param` (instruments first, then effects) reaches
    /// `value` at `frame`. A step jumps there at that frame; other shapes ramp there from the
    /// parameter's previous breakpoint (or from now, if that has passed or there was none), so
    /// a curve whose points arrive a lookahead early still moves from point to point: an
    /// instrument's per sample along the shape, an effect's setting linearly, block by block.
    pub fn schedule_curve(
        &mut self,
        frame: u64,
        inst: usize,
        param: usize,
        value: f32,
        shape: Option<Shape>,
    ) {
        let count = self.instruments.len();
        let previous = match self.instruments.get_mut(inst) {
            Some(i) => Some(i.breakpoint(param, frame)),
            None => self
                .effects
                .get_mut(inst - count)
                .map(|e| e.breakpoint(param, frame)),
        };
        match shape {
            None => self.schedule_set(frame, inst, param, value),
            Some(shape) => {
                let Some(previous) = previous else {
                    self.stats.dropped += 1;
                    return;
                };
                let now = self.frame;
                let end = frame.max(now);
                self.push(Event {
                    frame: previous.clamp(now, end),
                    action: Action::Ramp {
                        inst,
                        param,
                        value,
                        end,
                        shape,
                    },
                });
            }
        }
    }

    /// Sets instrument `inst`'s control `param` at `frame`.
    /// `inst` counts instruments first, then effects (instrument count + effect index), as
    /// [`crate::params::ParamTable`] resolves names.
    pub fn schedule_set(&mut self, frame: u64, inst: usize, param: usize, value: f32) {
        if inst >= self.instruments.len() + self.effects.len() {
            self.stats.dropped += 1;
            return;
        }
        self.push(Event {
            frame,
            action: Action::Set { inst, param, value },
        });
    }

    /// From `frame`, node `inst`'s (instruments first, then effects) send into effect `to`
    /// moves to `level` along a line over `frames` (0: the usual glide).
    pub fn schedule_send(&mut self, frame: u64, inst: usize, to: usize, level: f32, frames: u32) {
        if inst >= self.instruments.len() + self.effects.len() || to >= self.effects.len() {
            self.stats.dropped += 1;
            return;
        }
        self.push(Event {
            frame,
            action: Action::Send {
                inst,
                to,
                level,
                frames,
            },
        });
    }

    /// Follows the transport: the delay time becomes `delay_beats` at `bpm` (gliding there).
    /// Non-finite or non-positive tempos are ignored.
    pub fn follow_tempo(&mut self, bpm: f32) {
        if !(bpm.is_finite() && bpm > 0.0) {
            return;
        }
        self.bpm = bpm;
        for inst in &mut self.instruments {
            inst.follow_tempo(bpm);
        }
        for e in &mut self.effects {
            e.follow_tempo(bpm);
        }
    }

    /// What its nodes are, for planning a graph edit ([`Carry::between`]).
    pub fn outline(&self) -> Outline {
        Outline {
            instruments: self
                .instruments
                .iter()
                .map(|i| (i.name().to_string(), i.key))
                .collect(),
            effects: self
                .effects
                .iter()
                .map(|e| (e.name.clone(), e.key))
                .collect(),
        }
    }

    /// Says which nodes of the engine it will take over from it continues (the bus thread,
    /// before handing it over; see [`crate::edit`]).
    pub fn set_carry(&mut self, carry: Carry) {
        self.carry = carry;
    }

    /// Takes over from `old` (on the audio thread, at the swap; never allocates): the frame,
    /// note ids, tempo and master limiter continue; every node the carry plan continues moves
    /// here with its whole state and takes this graph's settings; every other node fades in
    /// over `fade_frames` (a replaced instrument playing the notes the old one holds). Events queued for carried nodes move here; for a replaced
    /// instrument, its note-ons and the note-offs move here (note-offs are also left in `old`,
    /// for the notes it holds); everything else stays in `old`, which then holds only the
    /// replaced and removed nodes' sound (the carried places hold silent fresh copies) and is
    /// faded out by the caller.
    pub fn transplant(&mut self, old: &mut Engine, fade_frames: u32) {
        self.frame = old.frame;
        self.next_id = self.next_id.max(old.next_id);
        std::mem::swap(&mut self.limiter, &mut old.limiter);
        // Borrowed, not taken: its vectors are freed with the engine, off this thread.
        let carry = &self.carry;
        for (j, inst) in self.instruments.iter_mut().enumerate() {
            match carry.instruments.get(j).copied().flatten() {
                Some(i) if i < old.instruments.len() => {
                    inst.carry_from(&mut old.instruments[i], &carry.effect_successors);
                }
                _ => inst.fade_in(fade_frames),
            }
        }
        for (i, next) in carry.successors.iter().enumerate() {
            if let (Some((j, false)), Some(inst)) = (next, old.instruments.get(i))
                && let Some(new) = self.instruments.get_mut(*j)
            {
                new.continue_notes(inst);
            }
        }
        for (j, e) in self.effects.iter_mut().enumerate() {
            if let Some(i) = carry.effects.get(j).copied().flatten()
                && i < old.effects.len()
            {
                e.carry_from(&mut old.effects[i], &carry.effect_successors, self.bpm);
            }
        }
        let (old_instruments, new_instruments) = (old.instruments.len(), self.instruments.len());
        let to_new = |inst: usize| -> Option<(usize, bool)> {
            if inst < old_instruments {
                carry.successors.get(inst).copied().flatten()
            } else {
                let k = carry
                    .effect_successors
                    .get(inst - old_instruments)
                    .copied()
                    .flatten()?;
                Some((new_instruments + k, true))
            }
        };
        let queue = &mut self.queue;
        let mut dropped = 0;
        let mut take = |e: Event| {
            if queue.len() < queue.capacity() {
                queue.push(e);
            } else {
                dropped += 1;
            }
        };
        // Both queues are in frame order, and this one is empty until the swap (events for the
        // new graph come after the swap marker): pushing in order keeps it sorted.
        old.queue.retain(|e| {
            let inst = match e.action {
                Action::On { inst, .. }
                | Action::Off { inst, .. }
                | Action::Set { inst, .. }
                | Action::Ramp { inst, .. }
                | Action::Send { inst, .. } => inst,
            };
            let Some((j, carried)) = to_new(inst) else {
                return true;
            };
            let mut moved = *e;
            match &mut moved.action {
                Action::On { inst, .. }
                | Action::Off { inst, .. }
                | Action::Set { inst, .. }
                | Action::Ramp { inst, .. }
                | Action::Send { inst, .. } => *inst = j,
            }
            match (carried, e.action) {
                (true, _) | (false, Action::On { .. }) => {
                    take(moved);
                    false
                }
                (false, Action::Off { .. }) => {
                    take(moved);
                    true
                }
                // A replaced definition's controls need not match the old one's.
                (false, _) => true,
            }
        });
        self.stats.dropped += dropped;
    }

    /// Instrument `index`'s output after gain and pan in the last block of `n` frames: its
    /// stem.
    pub fn instrument_output(&self, index: usize, n: usize) -> Option<[&[f32]; 2]> {
        let inst = self.instruments.get(index)?;
        Some([&inst.out[0][..n], &inst.out[1][..n]])
    }

    /// A node's output in the last block of `n` frames (an effect's after its return level).
    pub fn node_output(&self, node: StemSource, n: usize) -> Option<[&[f32]; 2]> {
        match node {
            StemSource::Instrument(i) => self.instrument_output(i, n),
            StemSource::Effect(k) => self.effects.get(k).map(|e| e.output(n)),
        }
    }

    /// Gives the nodes their stem slots (the bus thread, before handing the engine over).
    pub fn set_stems(&mut self, stems: Vec<(usize, StemSource)>) {
        self.stems = stems;
    }

    /// The stem slots of its nodes.
    pub fn stems(&self) -> &[(usize, StemSource)] {
        &self.stems
    }

    /// Whether it makes nothing but silence until a note arrives: no note queued, every
    /// instrument idle and every effect's tail died away (as of the last block rendered).
    /// Automation queued alone (a control following a signal) makes no sound.
    pub fn asleep(&self) -> bool {
        self.queue.iter().all(|e| {
            matches!(
                e.action,
                Action::Set { .. } | Action::Ramp { .. } | Action::Send { .. }
            )
        }) && self.instruments.iter().all(Instrument::asleep)
            && self.effects.iter().all(Effect::asleep)
    }

    /// Renders the next `left.len()` frames (left and right must be the same length), on a
    /// thread that flushes denormals ([`crate::dsp::flush_denormals`]: a register read once
    /// it is set, so every call makes sure rather than trusting the caller's thread).
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        crate::dsp::flush_denormals();
        let total = left.len().min(right.len());
        let mut done = 0;
        while done < total {
            let n = (total - done).min(BLOCK);
            self.block(&mut left[done..done + n], &mut right[done..done + n]);
            done += n;
        }
    }

    fn block(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len();
        let start = self.frame;
        let end = start + n as u64;
        // Apply every event due in this block at its frame offset.
        let due = self.queue.partition_point(|e| e.frame < end);
        for e in self.queue.drain(..due) {
            let offset = if e.frame < start {
                if matches!(e.action, Action::On { .. }) {
                    self.stats.late += 1;
                }
                0
            } else {
                (e.frame - start) as usize
            };
            match e.action {
                Action::On {
                    inst,
                    id,
                    note,
                    vel,
                } => {
                    self.stats.notes += 1;
                    self.instruments[inst].note_on(id, note, vel, offset);
                }
                Action::Off { inst, id } => self.instruments[inst].note_off(id, offset),
                Action::Ramp {
                    inst,
                    param,
                    value,
                    end,
                    shape,
                } => {
                    let from = start + offset as u64;
                    let frames = end.saturating_sub(from).min(u32::MAX as u64) as u32;
                    match self.instruments.get_mut(inst) {
                        Some(i) => i.automate(param, value, Some((frames, shape))),
                        // An effect's settings move along a line, block by block.
                        None => {
                            let k = inst - self.instruments.len();
                            if let Some(e) = self.effects.get_mut(k) {
                                e.automate(param, value, frames, self.bpm);
                            }
                        }
                    }
                }
                Action::Send {
                    inst,
                    to,
                    level,
                    frames,
                } => match self.instruments.get_mut(inst) {
                    Some(i) => i.send(to, level, frames),
                    None => {
                        let k = inst - self.instruments.len();
                        if let Some(e) = self.effects.get_mut(k) {
                            e.send(to, level, frames);
                        }
                    }
                },
                Action::Set { inst, param, value } => match self.instruments.get_mut(inst) {
                    Some(i) => i.automate(param, value, None),
                    None => {
                        let k = inst - self.instruments.len();
                        if let Some(e) = self.effects.get_mut(k) {
                            e.set(param, value, self.bpm);
                        }
                    }
                },
            }
        }
        left.iter_mut().for_each(|x| *x = 0.0);
        right.iter_mut().for_each(|x| *x = 0.0);
        for e in &mut self.effects {
            e.glide(n, self.bpm);
            e.clear_input(n);
        }
        let mut stolen = 0;
        let mut active = 0;
        for inst in &mut self.instruments {
            stolen += inst.stolen;
            if inst.idle() {
                // Nothing sounds: no render, no pan, nothing into the effects (the same
                // samples as rendering silence; its smoothers and sends move on).
                inst.skip(n);
                for k in 0..MAX_EFFECTS {
                    crate::dsp::move_send(
                        &mut inst.send_now[k],
                        inst.sends[k],
                        &mut inst.send_rate[k],
                        self.glide,
                        n,
                    );
                }
                continue;
            }
            let [dry_l, dry_r] = &mut self.dry;
            inst.render(n, [dry_l, dry_r]);
            // A mono definition is placed by the pan, a stereo one balanced by it.
            type Law = fn(f32) -> (f32, f32);
            let (dry_r, gains): (&Block, Law) = if inst.stereo() {
                (dry_r, balance_gains)
            } else {
                (dry_l, pan_gains)
            };
            let [out_l, out_r] = &mut inst.out;
            let frames = out_l[..n]
                .iter_mut()
                .zip(&mut out_r[..n])
                .zip(dry_l[..n].iter().zip(&dry_r[..n]))
                .zip(left.iter_mut().zip(right.iter_mut()));
            if inst.pan.settled() {
                let (gl, gr) = gains(inst.pan.value());
                for (((ol, or), (dl, dr)), (ml, mr)) in frames {
                    (*ol, *or) = (dl * gl, dr * gr);
                    *ml += *ol;
                    *mr += *or;
                }
            } else {
                // Pan gains are recomputed only while the pan is moving.
                let mut pan = inst.pan.value();
                let (mut gl, mut gr) = gains(pan);
                for (((ol, or), (dl, dr)), (ml, mr)) in frames {
                    let p = inst.pan.tick();
                    if p != pan {
                        pan = p;
                        (gl, gr) = gains(p);
                    }
                    (*ol, *or) = (dl * gl, dr * gr);
                    *ml += *ol;
                    *mr += *or;
                }
            }
            for (k, e) in self.effects.iter_mut().enumerate() {
                let (from, to) = crate::dsp::move_send(
                    &mut inst.send_now[k],
                    inst.sends[k],
                    &mut inst.send_rate[k],
                    self.glide,
                    n,
                );
                if from == 0.0 && to == 0.0 {
                    continue;
                }
                e.feed(&out_l[..n], &out_r[..n], from, to);
            }
            active += inst.active_voices() as u64;
        }
        // Effects in order: each returns into the master and feeds the later ones it routes to.
        for k in 0..self.effects.len() {
            let (done, later) = self.effects.split_at_mut(k + 1);
            done[k].render(k, left, right, later, self.glide);
        }
        self.limiter.process(left, right);
        self.stats.stolen = stolen;
        self.stats.active_voices = active;
        self.frame = end;
    }
}
