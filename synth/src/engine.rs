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

use crate::builtin;
use crate::dsp::fx::{Delay, Limiter, Reverb, pan_gains, synced_delay_s};
use crate::dsp::{BLOCK, Block, Shape, Smoother};
use crate::ids::NodeIds;
use crate::voice::Instrument;

/// Sample rates the engine runs at, Hz. The filters' coefficient tables and the effects'
/// delay lines are sized for this range; [`crate::render::GraphSpec::build`] refuses others.
pub const RATE_HZ: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Events the queue holds at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 16_384;

/// The master limiter's ceiling (linear): no output sample is louder.
pub const CEILING: f32 = 0.89;
/// The master limiter's release time, s.
pub const LIMITER_RELEASE_S: f32 = 0.08;

/// Tempo assumed until the transport says otherwise, bpm.
pub const DEFAULT_BPM: f32 = 120.0;
/// Default delay time, beats.
const DELAY_BEATS: f32 = 0.75;
/// Longest delay time, s (the lines hold 4 s; the right one runs 5 % longer).
const MAX_DELAY_S: f32 = 3.8;
/// How fast the delay time follows a tempo change (a glide, not a jump of the read point).
const DELAY_GLIDE_S: f32 = 0.05;

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
    mono: Block,
    stats: EngineStats,
    ids: NodeIds,
}

/// Effects a graph may hold (an instrument's send levels are a fixed array of this size).
pub const MAX_EFFECTS: usize = 8;

/// What an effect node does.
#[derive(Debug)]
pub enum EffectKind {
    /// Stereo delay (the right line runs 5 % longer), its time in beats of the transport.
    Delay {
        /// The two lines.
        lines: [Delay; 2],
        /// Delay time, beats (0.75: a dotted eighth).
        beats: f32,
        /// Delay time now, s (glides to a new tempo).
        time: Smoother,
        /// Feedback 0..<1.
        feedback: f32,
        /// Damping low-pass in the loop, Hz.
        damp_hz: f32,
    },
    /// Freeverb.
    Reverb {
        /// The reverb.
        reverb: Reverb,
        /// Room size 0..1.
        room: f32,
        /// Damping 0..1.
        damp: f32,
    },
}

/// An effect node: fed by instruments' sends (post-fader) and by effects before it, returning
/// into the master at `ret` and sending on to later effects.
#[derive(Debug)]
pub struct Effect {
    /// Its name in the graph.
    pub name: String,
    /// What it does.
    pub kind: EffectKind,
    /// Level into the master (smoothed).
    pub ret: Smoother,
    /// Sends to later effects: (effect index, level); always to a higher index, so the routes
    /// cannot loop.
    pub routes: Vec<(usize, f32)>,
    input: [Block; 2],
    /// Frames in a row its input and output stayed below [`SILENCE`].
    quiet: u32,
    /// Frames a sound can stay inside it (its longest delay path): once input and output have
    /// been silent this long, everything inside it is silent too.
    tail: u32,
}

/// Level below which an effect's input and output count as silence (-120 dBFS).
pub const SILENCE: f32 = 1e-6;

impl Effect {
    /// A tempo-synced stereo delay.
    pub fn delay(name: &str, rate: f32, beats: f32, feedback: f32, damp_hz: f32, ret: f32) -> Self {
        Self::with(
            name,
            EffectKind::Delay {
                lines: [Delay::new(4.0, rate), Delay::new(4.0, rate)],
                beats,
                time: Smoother::new(
                    synced_delay_s(DEFAULT_BPM, beats).min(MAX_DELAY_S),
                    DELAY_GLIDE_S,
                    rate,
                ),
                feedback,
                damp_hz,
            },
            ret,
            rate,
        )
    }

    /// A Freeverb.
    pub fn reverb(name: &str, rate: f32, room: f32, damp: f32, ret: f32) -> Self {
        Self::with(
            name,
            EffectKind::Reverb {
                reverb: Reverb::new(rate),
                room,
                damp,
            },
            ret,
            rate,
        )
    }

    fn with(name: &str, kind: EffectKind, ret: f32, rate: f32) -> Self {
        let tail_s = match kind {
            // The right line runs 5 % longer than the left.
            EffectKind::Delay { .. } => MAX_DELAY_S * 1.05,
            // Freeverb's longest comb plus its all-passes are well under 0.1 s.
            EffectKind::Reverb { .. } => 0.25,
        };
        Self {
            name: name.to_string(),
            kind,
            ret: Smoother::new(ret, 0.02, rate),
            routes: Vec::new(),
            input: [[0.0; BLOCK]; 2],
            quiet: 0,
            tail: (tail_s * rate) as u32 + BLOCK as u32,
        }
    }

    /// Whether it sleeps: its input has been silent, and so has its output for longer than a
    /// sound can stay inside it, so the engine skips it (no CPU for a reverb nobody feeds).
    pub fn asleep(&self) -> bool {
        self.quiet >= self.tail
    }

    /// Its settable parameters, as `Set` names them, with their ranges; index = parameter
    /// number for [`Effect::set`].
    pub fn params(&self) -> &'static [(&'static str, f32, f32)] {
        match self.kind {
            EffectKind::Delay { .. } => &[
                ("return", 0.0, 4.0),
                ("feedback", 0.0, 0.95),
                ("damp_hz", 100.0, 20_000.0),
                ("beats", 1.0 / 64.0, 16.0),
            ],
            EffectKind::Reverb { .. } => {
                &[("return", 0.0, 4.0), ("room", 0.0, 1.0), ("damp", 0.0, 1.0)]
            }
        }
    }

    /// Sets parameter `param` (see [`Effect::params`]), clamped; the return level is
    /// smoothed, a delay's time glides; `bpm` is the tempo a new `beats` is timed at.
    pub fn set(&mut self, param: usize, value: f32, bpm: f32) {
        let Some(&(_, lo, hi)) = self.params().get(param) else {
            return;
        };
        if !value.is_finite() {
            return;
        }
        let v = value.clamp(lo, hi);
        match (&mut self.kind, param) {
            (_, 0) => self.ret.set(v),
            (EffectKind::Delay { feedback, .. }, 1) => *feedback = v,
            (EffectKind::Delay { damp_hz, .. }, 2) => *damp_hz = v,
            (EffectKind::Delay { beats, time, .. }, 3) => {
                *beats = v;
                time.set(synced_delay_s(bpm, v).min(MAX_DELAY_S));
            }
            (EffectKind::Reverb { room, .. }, 1) => *room = v,
            (EffectKind::Reverb { damp, .. }, 2) => *damp = v,
            _ => {}
        }
    }

    /// Processes its input in place (the input block becomes its output).
    fn process(&mut self, n: usize) {
        let [l, r] = &mut self.input;
        match &mut self.kind {
            EffectKind::Delay {
                lines,
                time,
                feedback,
                damp_hz,
                ..
            } => {
                for i in 0..n {
                    let t = time.tick();
                    l[i] = lines[0].tick(l[i], t, *feedback, *damp_hz);
                    r[i] = lines[1].tick(r[i], t * 1.05, *feedback, *damp_hz);
                }
            }
            EffectKind::Reverb { reverb, room, damp } => {
                for i in 0..n {
                    (l[i], r[i]) = reverb.tick(l[i], r[i], *room, *damp);
                }
            }
        }
    }
}

/// The default effects: `delay` (0.75 beat, feedback 0.35, damped at 4 kHz) and `reverb`
/// (room 0.7, damping 0.5, return 0.9) — what the built-in patch and `sends: [d, r]` use.
pub fn default_effects(rate: f32) -> Vec<Effect> {
    vec![
        Effect::delay("delay", rate, DELAY_BEATS, 0.35, 4000.0, 1.0),
        Effect::reverb("reverb", rate, 0.7, 0.5, 0.9),
    ]
}

/// Parameter numbers of an instrument, as automation and `Set` address them.
pub mod param {
    /// Output gain, 0..=4.
    pub const GAIN: usize = 0;
    /// Pan, -1..=1.
    pub const PAN: usize = 1;
    /// The definition's first control; control `i` is `FIRST_CONTROL + i`.
    pub const FIRST_CONTROL: usize = 2;
}

/// Instrument indices of the built-in set (the default patch).
pub mod patch {
    /// Pad (melody).
    pub const PAD: usize = 0;
    /// Lead.
    pub const LEAD: usize = 1;
    /// Bass.
    pub const BASS: usize = 2;
    /// Chords.
    pub const CHORDS: usize = 3;
    /// Kick.
    pub const KICK: usize = 4;
    /// Click.
    pub const CLICK: usize = 5;
    /// Hi-hat.
    pub const HAT: usize = 6;
    /// Glitch.
    pub const GLITCH: usize = 7;
}

impl Engine {
    /// An engine with the built-in instruments (the default patch), `polyphony` voices each.
    /// `rate` must be within [`RATE_HZ`] ([`crate::render::GraphSpec::build`] checks it).
    pub fn with_builtins(rate: f32, polyphony: usize) -> Self {
        let instruments = builtin::names()
            .map(|n| {
                let program = builtin::def(n)
                    .expect("built-in")
                    .compile()
                    .expect("built-ins compile");
                let mut inst = Instrument::new(program, polyphony, rate);
                let (d, r) = match n {
                    "pad" | "chords" => (0.15, 0.45),
                    "lead" => (0.25, 0.25),
                    "glitch" | "click" => (0.3, 0.2),
                    _ => (0.0, 0.08),
                };
                inst.sends[0] = d;
                inst.sends[1] = r;
                inst.pan.jump(match n {
                    "hat" => 0.35,
                    "click" => -0.3,
                    "lead" => 0.15,
                    _ => 0.0,
                });
                inst
            })
            .collect();
        Self::new(rate, instruments, default_effects(rate))
    }

    /// An engine playing `instruments` through `effects` (at most [`MAX_EFFECTS`]; routes
    /// between effects must go to a later one — [`crate::render::GraphSpec`] checks both, and
    /// that `rate` is within [`RATE_HZ`]).
    pub fn new(rate: f32, instruments: Vec<Instrument>, mut effects: Vec<Effect>) -> Self {
        effects.truncate(MAX_EFFECTS);
        for (i, e) in effects.iter_mut().enumerate() {
            e.routes.retain(|&(t, _)| t > i);
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
            mono: [0.0; BLOCK],
            stats: EngineStats::default(),
            ids: NodeIds::default(),
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
        use patch::*;
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

    /// Automation breakpoint: instrument `inst`'s `param` reaches `value` at `frame`. A step
    /// jumps there at that frame; other shapes ramp there from the value it has now, per
    /// sample.
    pub fn schedule_curve(
        &mut self,
        frame: u64,
        inst: usize,
        param: usize,
        value: f32,
        shape: Option<Shape>,
    ) {
        match shape {
            None => self.schedule_set(frame, inst, param, value),
            Some(shape) => {
                if inst >= self.instruments.len() {
                    self.stats.dropped += 1;
                    return;
                }
                let now = self.frame;
                let end = frame.max(now);
                self.push(Event {
                    frame: now,
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

    /// Follows the transport: the delay time becomes `delay_beats` at `bpm` (gliding there).
    /// Non-finite or non-positive tempos are ignored.
    pub fn follow_tempo(&mut self, bpm: f32) {
        if !(bpm.is_finite() && bpm > 0.0) {
            return;
        }
        self.bpm = bpm;
        for e in &mut self.effects {
            if let EffectKind::Delay { beats, time, .. } = &mut e.kind {
                time.set(synced_delay_s(bpm, *beats).min(MAX_DELAY_S));
            }
        }
    }

    /// Renders the next `left.len()` frames (left and right must be the same length).
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
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
                    self.instruments[inst].automate(param, value, Some((frames, shape)));
                }
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
            for ch in e.input.iter_mut() {
                ch[..n].iter_mut().for_each(|x| *x = 0.0);
            }
        }
        let mut stolen = 0;
        let mut active = 0;
        for inst in &mut self.instruments {
            inst.render(n, &mut self.mono);
            // Pan gains are recomputed only while the pan is moving.
            let mut pan = inst.pan.value();
            let (mut gl, mut gr) = pan_gains(pan);
            for i in 0..n {
                let p = inst.pan.tick();
                if p != pan {
                    pan = p;
                    (gl, gr) = pan_gains(p);
                }
                let (l, r) = (self.mono[i] * gl, self.mono[i] * gr);
                left[i] += l;
                right[i] += r;
                for (e, &level) in self.effects.iter_mut().zip(&inst.sends) {
                    if level != 0.0 {
                        e.input[0][i] += l * level;
                        e.input[1][i] += r * level;
                    }
                }
            }
            stolen += inst.stolen;
            active += inst.active_voices() as u64;
        }
        // Effects in order: each returns into the master and feeds the later ones it routes to.
        for k in 0..self.effects.len() {
            let (done, later) = self.effects.split_at_mut(k + 1);
            let e = &mut done[k];
            let silent_in = e
                .input
                .iter()
                .all(|ch| ch[..n].iter().all(|x| x.abs() < SILENCE));
            if silent_in && e.asleep() {
                // Nothing goes in and nothing is left inside: it would return and route silence.
                for _ in 0..n {
                    e.ret.tick();
                }
                continue;
            }
            e.process(n);
            let silent_out = e
                .input
                .iter()
                .all(|ch| ch[..n].iter().all(|x| x.abs() < SILENCE));
            e.quiet = if silent_in && silent_out {
                e.quiet.saturating_add(n as u32)
            } else {
                0
            };
            for i in 0..n {
                let ret = e.ret.tick();
                left[i] += e.input[0][i] * ret;
                right[i] += e.input[1][i] * ret;
            }
            for &(t, level) in &e.routes {
                let target = &mut later[t - k - 1];
                for ch in 0..2 {
                    for i in 0..n {
                        target.input[ch][i] += e.input[ch][i] * level;
                    }
                }
            }
        }
        for i in 0..n {
            (left[i], right[i]) = self.limiter.tick(left[i], right[i]);
        }
        self.stats.stolen = stolen;
        self.stats.active_voices = active;
        self.frame = end;
    }
}
