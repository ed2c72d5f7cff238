//! What the audio callback does, as a plain function: take the notes and curve points that
//! arrived (lock-free ring from the bus thread), place them at frames with the stream's clock,
//! render, and interleave. It never allocates, locks, logs or blocks — the allocation-detector
//! test runs exactly this code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use khorus_bus::{CurvePoint, CurveShape, NoteEvent};

use crate::dsp::Shape;

use crate::engine::{Engine, Note};

/// What the bus thread hands to the audio thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incoming {
    /// A note to schedule.
    Note(NoteEvent),
    /// An automation breakpoint.
    Curve(CurvePoint),
}

/// Counters written by the audio thread (relaxed atomics) and read by the status reporter.
#[derive(Debug, Default)]
pub struct RtStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Notes that arrived after their time (played at once).
    pub late: AtomicU64,
    /// Events dropped by the engine (queue full, no such instrument).
    pub dropped: AtomicU64,
    /// Voices stolen.
    pub stolen: AtomicU64,
    /// Voices sounding.
    pub active_voices: AtomicU64,
    /// Notes started.
    pub notes: AtomicU64,
    /// Mean callback time, ns (exponential average).
    pub avg_ns: AtomicU64,
    /// Longest callback time, ns.
    pub max_ns: AtomicU64,
    /// The period's budget, ns.
    pub budget_ns: AtomicU64,
    /// Callbacks without a buffer to fill (the graph ran without us: an underrun).
    pub xruns: AtomicU64,
}

/// Where the buffer being filled sits on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Monotonic time at which the first frame of this buffer will be heard, ns.
    pub buffer_start_ns: i64,
}

/// The audio thread's state.
#[derive(Debug)]
pub struct Renderer {
    engine: Engine,
    rx: rtrb::Consumer<Incoming>,
    left: Vec<f32>,
    right: Vec<f32>,
    interleaved: Vec<f32>,
    stats: Arc<RtStats>,
}

impl Renderer {
    /// A renderer for blocks of at most `max_frames`.
    pub fn new(
        engine: Engine,
        rx: rtrb::Consumer<Incoming>,
        stats: Arc<RtStats>,
        max_frames: usize,
    ) -> Self {
        Self {
            engine,
            rx,
            left: vec![0.0; max_frames],
            right: vec![0.0; max_frames],
            interleaved: vec![0.0; max_frames * 2],
            stats,
        }
    }

    /// Largest block this renderer can fill.
    pub fn max_frames(&self) -> usize {
        self.left.len()
    }

    /// Frame of `t_ns` given that the next block (starting at the engine's frame) is heard at
    /// `clock.buffer_start_ns`.
    fn frame_of(&self, t_ns: u64, clock: Clock) -> u64 {
        let rate = self.engine.rate() as i128;
        let dt = t_ns as i128 - clock.buffer_start_ns as i128;
        // Round to the nearest frame.
        let offset = (dt * rate + dt.signum() * 500_000_000) / 1_000_000_000;
        (self.engine.frame() as i128 + offset).max(0) as u64
    }

    /// Renders `frames` frames and returns them interleaved (L, R, L, R …).
    pub fn fill(&mut self, clock: Clock, frames: usize) -> &[f32] {
        let n = frames.min(self.left.len());
        while let Ok(item) = self.rx.pop() {
            match item {
                Incoming::Note(ev) => {
                    let rate = self.engine.rate() as u128;
                    let note = Note {
                        frame: self.frame_of(ev.t_ns, clock),
                        dur_frames: ((ev.dur_ns as u128 * rate + 500_000_000) / 1_000_000_000)
                            as u64,
                        node: ev.node,
                        note: ev.note,
                        velocity: ev.velocity,
                        role: ev.role(),
                    };
                    self.engine.schedule(note);
                }
                Incoming::Curve(c) => {
                    let frame = self.frame_of(c.t_ns, clock);
                    let shape = match c.shape() {
                        CurveShape::Step => None,
                        CurveShape::Linear => Some(Shape::Linear),
                        CurveShape::Exponential => Some(Shape::Exponential),
                        CurveShape::Smooth => Some(Shape::Smooth),
                    };
                    self.engine.schedule_curve(
                        frame,
                        (c.node as usize).saturating_sub(1),
                        c.param as usize,
                        c.value,
                        shape,
                    );
                }
            }
        }
        self.engine
            .render(&mut self.left[..n], &mut self.right[..n]);
        for (i, (l, r)) in self.left[..n].iter().zip(&self.right[..n]).enumerate() {
            self.interleaved[2 * i] = *l;
            self.interleaved[2 * i + 1] = *r;
        }
        let s = self.engine.stats();
        self.stats.callbacks.fetch_add(1, Relaxed);
        self.stats.late.store(s.late, Relaxed);
        self.stats.dropped.store(s.dropped, Relaxed);
        self.stats.stolen.store(s.stolen, Relaxed);
        self.stats.active_voices.store(s.active_voices, Relaxed);
        self.stats.notes.store(s.notes, Relaxed);
        &self.interleaved[..2 * n]
    }

    /// Counts a callback that had no buffer to fill.
    pub fn count_xrun(&self) {
        self.stats.xruns.fetch_add(1, Relaxed);
    }

    /// Records how long a callback took against its budget.
    pub fn account(&self, took_ns: u64, budget_ns: u64) {
        let avg = self.stats.avg_ns.load(Relaxed);
        let avg = if avg == 0 {
            took_ns
        } else {
            (avg * 63 + took_ns) / 64
        };
        self.stats.avg_ns.store(avg, Relaxed);
        self.stats.max_ns.fetch_max(took_ns, Relaxed);
        self.stats.budget_ns.store(budget_ns, Relaxed);
    }
}
