//! The audio engine: instruments, the effect buses (delay, reverb), the master limiter, and
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
use crate::voice::Instrument;

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
    /// Events dropped because the queue was full or named no instrument.
    pub dropped: u64,
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
    /// Instrument index (0 = choose by role).
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
    delay: [Delay; 2],
    /// Delay feedback and damping Hz.
    pub delay_params: (f32, f32),
    /// Delay time in beats of the transport (0.75: a dotted eighth).
    pub delay_beats: f32,
    delay_time: Smoother,
    reverb: Reverb,
    /// Reverb room, damping, return level.
    pub reverb_params: (f32, f32, f32),
    limiter: Limiter,
    mono: Block,
    sends: [[Block; 2]; 2],
    stats: EngineStats,
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
    pub fn with_builtins(rate: f32, polyphony: usize) -> Self {
        let instruments = builtin::names()
            .map(|n| {
                let program = builtin::def(n)
                    .expect("built-in")
                    .compile()
                    .expect("built-ins compile");
                let mut inst = Instrument::new(program, polyphony, rate);
                inst.sends = match n {
                    "pad" | "chords" => [0.15, 0.45],
                    "lead" => [0.25, 0.25],
                    "glitch" | "click" => [0.3, 0.2],
                    _ => [0.0, 0.08],
                };
                inst.pan.jump(match n {
                    "hat" => 0.35,
                    "click" => -0.3,
                    "lead" => 0.15,
                    _ => 0.0,
                });
                inst
            })
            .collect();
        Self::new(rate, instruments)
    }

    /// An engine playing `instruments`.
    pub fn new(rate: f32, instruments: Vec<Instrument>) -> Self {
        Self {
            rate,
            frame: 0,
            instruments,
            queue: Vec::with_capacity(QUEUE_CAPACITY),
            next_id: 1,
            delay: [Delay::new(4.0, rate), Delay::new(4.0, rate)],
            delay_params: (0.35, 4000.0),
            delay_beats: DELAY_BEATS,
            delay_time: Smoother::new(
                synced_delay_s(DEFAULT_BPM, DELAY_BEATS),
                DELAY_GLIDE_S,
                rate,
            ),
            reverb: Reverb::new(rate),
            reverb_params: (0.7, 0.5, 0.9),
            limiter: Limiter::new(CEILING, LIMITER_RELEASE_S, rate),
            mono: [0.0; BLOCK],
            sends: [[[0.0; BLOCK]; 2]; 2],
            stats: EngineStats::default(),
        }
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
            let i = note.node as usize - 1;
            return (i < self.instruments.len()).then_some(i);
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
            self.stats.dropped += 1;
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
    pub fn schedule_set(&mut self, frame: u64, inst: usize, param: usize, value: f32) {
        if inst >= self.instruments.len() {
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
        if bpm.is_finite() && bpm > 0.0 {
            self.delay_time
                .set(synced_delay_s(bpm, self.delay_beats).min(MAX_DELAY_S));
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
                Action::Set { inst, param, value } => {
                    self.instruments[inst].automate(param, value, None)
                }
            }
        }
        left.iter_mut().for_each(|x| *x = 0.0);
        right.iter_mut().for_each(|x| *x = 0.0);
        for bus in &mut self.sends {
            for ch in bus.iter_mut() {
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
                for (bus, level) in self.sends.iter_mut().zip(inst.sends) {
                    bus[0][i] += l * level;
                    bus[1][i] += r * level;
                }
            }
            stolen += inst.stolen;
            active += inst.active_voices() as u64;
        }
        let (feedback, damp) = self.delay_params;
        let (room, rdamp, ret) = self.reverb_params;
        for i in 0..n {
            let time = self.delay_time.tick();
            let dl = self.delay[0].tick(self.sends[0][0][i], time, feedback, damp);
            let dr = self.delay[1].tick(self.sends[0][1][i], time * 1.05, feedback, damp);
            let (rl, rr) = self
                .reverb
                .tick(self.sends[1][0][i], self.sends[1][1][i], room, rdamp);
            let (l, r) = self
                .limiter
                .tick(left[i] + dl + rl * ret, right[i] + dr + rr * ret);
            left[i] = l;
            right[i] = r;
        }
        self.stats.stolen = stolen;
        self.stats.active_voices = active;
        self.frame = end;
    }
}
