//! What the audio callback does, as a plain function: take the notes, curve points, parameter
//! changes and graph swaps that arrived (lock-free rings from the bus thread), place them at
//! frames with the stream's clock, render, crossfade, and interleave. It never allocates,
//! frees, locks, logs or blocks — the allocation-detector test runs exactly this code.
//!
//! A new graph is built by the bus thread and handed over boxed through its own ring; an
//! [`Incoming::Swap`] marker in the event ring says where, so every note and `Set` before it
//! goes to the old engine and every one after it to the new. At the marker the nodes both
//! graphs share move into the new engine with their state ([`crate::edit`]); the old engine,
//! left with the replaced and removed nodes, keeps rendering under a quarter-cosine fade while
//! the new nodes rise along a quarter sine (equal power), and is then sent back through a
//! third ring to be freed by the bus thread (fundsp's frontend/backend, Helvum's one-owner
//! rule).

use std::f32::consts::FRAC_PI_2;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use khorus_bus::{CurvePoint, CurveShape, NoteEvent};

use crate::dsp::fx::Limiter;
use crate::dsp::{BLOCK, Shape};
use crate::engine::{CEILING, Engine, EngineStats, LIMITER_RELEASE_S, Note};
use crate::stems::{MAX_STEMS, StemSwitches};

/// Capacity of the event ring (notes, curve points, sets, swap markers).
pub const RING: usize = 8192;

/// What the bus thread hands to the audio thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incoming {
    /// A note to schedule.
    Note(NoteEvent),
    /// An automation breakpoint.
    Curve(CurvePoint),
    /// A parameter change resolved by name on the bus thread: instrument `inst`'s parameter
    /// `param` ([`crate::engine::param`]) moves to `value` from the next block, smoothed.
    Set {
        /// Instrument index.
        inst: u32,
        /// Parameter number.
        param: u32,
        /// The value, already clamped to the parameter's range.
        value: f32,
    },
    /// A send's level moves (resolved on the bus thread): node `inst`'s send into effect
    /// `to` reaches `level` over `over_ns` from `at_ns` (0: now).
    Send {
        /// Node index (instruments, then effects).
        inst: u32,
        /// Effect index.
        to: u32,
        /// The level, already clamped.
        level: f32,
        /// When it starts, ns (0: now).
        at_ns: u64,
        /// How long it takes, ns (0: the usual glide).
        over_ns: u64,
    },
    /// The transport's tempo changed (tempo-synced effects follow it).
    Tempo {
        /// Beats per minute.
        bpm: f32,
    },
    /// A note taken over from before this synth was listening
    /// ([`khorus_bus::commands::synth::SynthCommand::Resume`]): sounds from its time, or from
    /// the next block if that has passed, to its own end; never counted late.
    Resume(NoteEvent),
    /// Switch to the engine waiting in the engine ring, crossfading over `fade_frames`.
    Swap {
        /// Crossfade length, frames (at least 1).
        fade_frames: u32,
    },
}

/// Counters written by the audio thread (relaxed atomics) and read by the status reporter.
#[derive(Debug, Default)]
pub struct RtStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Notes that arrived after their time (played at once).
    pub late: AtomicU64,
    /// Events dropped by the engine (queue full).
    pub dropped: AtomicU64,
    /// Notes and curve points for a node or parameter id the graph does not have.
    pub unrouted: AtomicU64,
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
    /// Graph swaps started.
    pub swaps: AtomicU64,
    /// Notes taken over from the composer when the synth started (counted by the bus thread).
    pub resumed: AtomicU64,
    /// After the last callback, nothing sounds and nothing is queued or fading: silence
    /// until the bus thread sends something (which may then pause the stream).
    pub asleep: AtomicBool,
}

/// Where the buffer being filled sits on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Monotonic time at which the first frame of this buffer will be heard, ns.
    pub buffer_start_ns: i64,
}

/// The bus thread's end of the rings: feeds events and engines, takes retired engines back.
#[derive(Debug)]
pub struct Feeder {
    tx: rtrb::Producer<Incoming>,
    engines: rtrb::Producer<Box<Engine>>,
    retired: rtrb::Consumer<Box<Engine>>,
    in_flight: usize,
    dropped: u64,
}

/// Why a graph could not be handed to the audio thread (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SwapError {
    /// The previous swap has not finished: its crossfade runs in the audio callback, and the
    /// old engine has not come back yet.
    #[error(
        "the previous graph change has not finished its crossfade yet (it runs while the \
         node plays); try again"
    )]
    Busy,
    /// The event ring is full (the audio callback is not running or far behind).
    #[error("the audio thread's queue is full; try again")]
    RingFull,
}

impl Feeder {
    /// Queues an event; a full ring drops it and counts it (and returns false).
    pub fn push(&mut self, item: Incoming) -> bool {
        let pushed = self.tx.push(item).is_ok();
        if !pushed {
            self.dropped += 1;
        }
        pushed
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Hands `engine` to the audio thread, to take over after every event queued so far,
    /// crossfading over `fade_frames`. One swap at a time: the next is refused until the old
    /// engine of this one has come back.
    pub fn swap(&mut self, engine: Box<Engine>, fade_frames: u32) -> Result<(), SwapError> {
        self.collect_retired();
        if self.in_flight > 0 {
            return Err(SwapError::Busy);
        }
        // One producer: the free slots seen here can only grow, so the marker will fit.
        if self.tx.slots() == 0 {
            return Err(SwapError::RingFull);
        }
        if self.engines.push(engine).is_err() {
            return Err(SwapError::Busy);
        }
        self.in_flight += 1;
        let marker = Incoming::Swap {
            fade_frames: fade_frames.max(1),
        };
        let pushed = self.tx.push(marker).is_ok();
        debug_assert!(pushed, "a free slot was checked for the swap marker");
        Ok(())
    }

    /// Frees the engines the audio thread has finished with (here, off the audio thread).
    /// Returns how many.
    pub fn collect_retired(&mut self) -> usize {
        let mut n = 0;
        while let Ok(engine) = self.retired.pop() {
            drop(engine);
            n += 1;
        }
        if n > 0 {
            // An engine's voices and lines are megabytes (2 MB stayed after the default
            // session's first edits); the audio thread never allocates, so never waits on the
            // allocator's locks this takes.
            khorus_bus::memory::release_freed_heap();
        }
        self.in_flight = self.in_flight.saturating_sub(n);
        n
    }

    /// Whether a swap is still under way (sent, and its old engine not yet back).
    pub fn swap_pending(&mut self) -> bool {
        self.collect_retired();
        self.in_flight > 0
    }
}

/// The audio thread's state.
#[derive(Debug)]
pub struct Renderer {
    engine: Box<Engine>,
    /// The engine fading out, with its fade position and length in frames; once the fade is
    /// over it is not rendered, only waits to be handed back.
    outgoing: Option<(Box<Engine>, u32, u32)>,
    rx: rtrb::Consumer<Incoming>,
    engines: rtrb::Consumer<Box<Engine>>,
    retired: rtrb::Producer<Box<Engine>>,
    left: Vec<f32>,
    right: Vec<f32>,
    old_left: Vec<f32>,
    old_right: Vec<f32>,
    interleaved: Vec<f32>,
    /// Each stem slot's output of the last callback, interleaved, `max_frames` × 2 per slot.
    stems: Vec<f32>,
    /// Slots some engine wrote in the last callback (the others hold silence).
    stems_written: [bool; MAX_STEMS],
    /// Which slots anyone listens to (the PipeWire thread clears those with no link): the
    /// others are not copied.
    stems_wanted: Arc<StemSwitches>,
    /// After the crossfade sum (two limited engines can add up past the ceiling);
    /// transparent otherwise.
    limiter: Limiter,
    /// Counters of the engines already retired.
    base: EngineStats,
    stats: Arc<RtStats>,
}

/// The rings between the bus thread and the audio thread, around `engine`: the feeder for the
/// bus thread, the renderer for the callback (blocks of at most `max_frames`).
pub fn link(engine: Engine, stats: Arc<RtStats>, max_frames: usize) -> (Feeder, Renderer) {
    let (tx, rx) = rtrb::RingBuffer::new(RING);
    let (engines_tx, engines_rx) = rtrb::RingBuffer::new(1);
    let (retired_tx, retired_rx) = rtrb::RingBuffer::new(2);
    let rate = engine.rate();
    let feeder = Feeder {
        tx,
        engines: engines_tx,
        retired: retired_rx,
        in_flight: 0,
        dropped: 0,
    };
    let renderer = Renderer {
        engine: Box::new(engine),
        outgoing: None,
        rx,
        engines: engines_rx,
        retired: retired_tx,
        left: vec![0.0; max_frames],
        right: vec![0.0; max_frames],
        old_left: vec![0.0; max_frames],
        old_right: vec![0.0; max_frames],
        interleaved: vec![0.0; max_frames * 2],
        stems: vec![0.0; MAX_STEMS * max_frames * 2],
        stems_written: [false; MAX_STEMS],
        stems_wanted: Arc::new(StemSwitches::all_on()),
        limiter: Limiter::new(CEILING, LIMITER_RELEASE_S, rate),
        base: EngineStats::default(),
        stats,
    };
    (feeder, renderer)
}

/// Copies the stems of `engine`'s last block of `b` frames to frame `at` of each slot's
/// buffer (`width` samples per slot): written when `fade` is None (the engine playing), added
/// times the fade's gains otherwise (the old graph, fading out).
#[allow(clippy::too_many_arguments)]
fn copy_stems(
    engine: &Engine,
    stems: &mut [f32],
    written: &mut [bool; MAX_STEMS],
    wanted: &StemSwitches,
    width: usize,
    at: usize,
    b: usize,
    fade: Option<&[f32]>,
) {
    for &(slot, source) in engine.stems() {
        if !wanted.is_on(slot) {
            continue;
        }
        let (Some([l, r]), Some(buf)) = (
            engine.node_output(source, b),
            stems.get_mut(slot * width + 2 * at..slot * width + 2 * (at + b)),
        ) else {
            continue;
        };
        written[slot] = true;
        match fade {
            None => {
                for (i, frame) in buf.chunks_exact_mut(2).enumerate() {
                    frame[0] = l[i];
                    frame[1] = r[i];
                }
            }
            Some(g) => {
                for (i, frame) in buf.chunks_exact_mut(2).enumerate() {
                    frame[0] += l[i] * g[i];
                    frame[1] += r[i] * g[i];
                }
            }
        }
    }
}

fn add(a: EngineStats, b: EngineStats) -> EngineStats {
    EngineStats {
        late: a.late + b.late,
        dropped: a.dropped + b.dropped,
        unrouted: a.unrouted + b.unrouted,
        stolen: a.stolen + b.stolen,
        active_voices: a.active_voices + b.active_voices,
        notes: a.notes + b.notes,
    }
}

/// An engine's cumulative counters (its voices no longer sound).
fn retired_stats(engine: &Engine) -> EngineStats {
    EngineStats {
        active_voices: 0,
        ..engine.stats()
    }
}

impl Renderer {
    /// Largest block this renderer can fill.
    pub fn max_frames(&self) -> usize {
        self.left.len()
    }

    /// Frame of `t_ns` given that the next block (starting at the engine's frame) is heard at
    /// `clock.buffer_start_ns`.
    fn frame_of(&self, t_ns: u64, clock: Clock) -> u64 {
        let offset = khorus_pw::frame_offset(
            t_ns as i128,
            clock.buffer_start_ns,
            self.engine.rate() as u32,
        );
        (self.engine.frame() as i128 + offset as i128).max(0) as u64
    }

    fn accept(&mut self, item: Incoming, clock: Clock) {
        match item {
            Incoming::Note(ev) => {
                let rate = self.engine.rate() as u128;
                let note = Note {
                    frame: self.frame_of(ev.t_ns, clock),
                    dur_frames: ((ev.dur_ns as u128 * rate + 500_000_000) / 1_000_000_000) as u64,
                    node: ev.node,
                    note: ev.note,
                    velocity: ev.velocity,
                    role: ev.role(),
                };
                self.engine.schedule(note);
            }
            Incoming::Resume(ev) => {
                let from = self.frame_of(ev.t_ns, clock).max(self.engine.frame());
                let end = self.frame_of(ev.t_ns.saturating_add(ev.dur_ns), clock);
                if end > from {
                    self.engine.schedule(Note {
                        frame: from,
                        dur_frames: end - from,
                        node: ev.node,
                        note: ev.note,
                        velocity: ev.velocity,
                        role: ev.role(),
                    });
                }
            }
            Incoming::Curve(c) => {
                let frame = self.frame_of(c.t_ns, clock);
                let shape = match c.shape() {
                    CurveShape::Step => None,
                    CurveShape::Linear => Some(Shape::Linear),
                    CurveShape::Exponential => Some(Shape::Exponential),
                    CurveShape::Smooth => Some(Shape::Smooth),
                };
                self.engine
                    .schedule_curve_by_id(frame, c.node, c.param, c.value, shape);
            }
            Incoming::Set { inst, param, value } => {
                let now = self.engine.frame();
                self.engine
                    .schedule_set(now, inst as usize, param as usize, value);
            }
            Incoming::Send {
                inst,
                to,
                level,
                at_ns,
                over_ns,
            } => {
                let now = self.engine.frame();
                let frame = match at_ns {
                    0 => now,
                    t => self.frame_of(t, clock).max(now),
                };
                let frames = (over_ns as f64 * f64::from(self.engine.rate()) / 1e9).round();
                self.engine.schedule_send(
                    frame,
                    inst as usize,
                    to as usize,
                    level,
                    frames.min(f64::from(u32::MAX)) as u32,
                );
            }
            Incoming::Tempo { bpm } => self.engine.follow_tempo(bpm),
            Incoming::Swap { fade_frames } => {
                // The feeder pushes the engine before the marker, so it is there.
                let Ok(next) = self.engines.pop() else { return };
                let mut old = std::mem::replace(&mut self.engine, next);
                // The nodes both graphs share continue here; the new ones fade in.
                self.engine.transplant(&mut old, fade_frames.max(1));
                // One swap at a time (the feeder waits for the old engine to come back), so
                // `outgoing` is free; if it were not, the older engine would be cut.
                if let Some((older, _, _)) = self.outgoing.take() {
                    self.base = add(self.base, retired_stats(&older));
                    if let Err(rtrb::PushError::Full(older)) = self.retired.push(older) {
                        // Never freed here: leaked rather than freed on the audio thread.
                        std::mem::forget(older);
                    }
                }
                self.outgoing = Some((old, 0, fade_frames.max(1)));
                self.stats.swaps.fetch_add(1, Relaxed);
            }
        }
    }

    /// Renders `frames` frames and returns them interleaved (L, R, L, R …); each node's stem
    /// is then in [`Renderer::stem`].
    pub fn fill(&mut self, clock: Clock, frames: usize) -> &[f32] {
        let n = frames.min(self.left.len());
        while let Ok(item) = self.rx.pop() {
            self.accept(item, clock);
        }
        // An engine limits its own output: only two of them summed in a crossfade can pass
        // the ceiling again, so only then does this limiter run (on a limited signal it would
        // pass every sample as it is).
        let crossfading = self.outgoing.is_some();
        let width = 2 * self.left.len();
        for (slot, written) in self.stems_written.iter_mut().enumerate() {
            if std::mem::take(written) {
                self.stems[slot * width..slot * width + 2 * n].fill(0.0);
            }
        }
        // Block by block, so each node's output (which an engine keeps for its last block)
        // can be copied to its stem as it is made.
        let mut done = 0;
        while done < n {
            let b = (n - done).min(BLOCK);
            let (l, r) = (
                &mut self.left[done..done + b],
                &mut self.right[done..done + b],
            );
            self.engine.render(l, r);
            copy_stems(
                &self.engine,
                &mut self.stems,
                &mut self.stems_written,
                &self.stems_wanted,
                width,
                done,
                b,
                None,
            );
            if let Some((old, pos, len)) = &mut self.outgoing
                && *pos < *len
            {
                // The old graph holds only the replaced and removed nodes now; it fades out
                // along a quarter cosine while the new nodes fade in along a quarter sine.
                let (ol, or) = (&mut self.old_left[..b], &mut self.old_right[..b]);
                old.render(ol, or);
                let inv = FRAC_PI_2 / *len as f32;
                let mut gains = [0.0f32; BLOCK];
                for (i, g) in gains[..b].iter_mut().enumerate() {
                    let k = (*pos as usize + done + i + 1).min(*len as usize);
                    *g = (k as f32 * inv).cos();
                }
                for i in 0..b {
                    l[i] += ol[i] * gains[i];
                    r[i] += or[i] * gains[i];
                }
                let fade = Some(&gains[..b]);
                copy_stems(
                    old,
                    &mut self.stems,
                    &mut self.stems_written,
                    &self.stems_wanted,
                    width,
                    done,
                    b,
                    fade,
                );
            }
            done += b;
        }
        if let Some((_, pos, len)) = &mut self.outgoing {
            *pos = (*pos as usize + n).min(*len as usize) as u32;
        }
        if self.outgoing.as_ref().is_some_and(|(_, p, l)| p >= l) {
            self.retire();
        }
        let frames = self.left[..n].iter().zip(&self.right[..n]);
        let out = self.interleaved[..2 * n].as_chunks_mut::<2>().0;
        if crossfading {
            for ((l, r), o) in frames.zip(out) {
                let (l, r) = self.limiter.tick(*l, *r);
                *o = [l, r];
            }
        } else {
            for ((l, r), o) in frames.zip(out) {
                *o = [*l, *r];
            }
        }
        let mut s = add(self.base, self.engine.stats());
        if let Some((old, _, _)) = &self.outgoing {
            s = add(s, old.stats());
        }
        self.stats.callbacks.fetch_add(1, Relaxed);
        self.stats.late.store(s.late, Relaxed);
        self.stats.dropped.store(s.dropped, Relaxed);
        self.stats.unrouted.store(s.unrouted, Relaxed);
        self.stats.stolen.store(s.stolen, Relaxed);
        self.stats.active_voices.store(s.active_voices, Relaxed);
        self.stats.notes.store(s.notes, Relaxed);
        self.stats.asleep.store(
            self.outgoing.is_none() && self.rx.is_empty() && self.engine.asleep(),
            Relaxed,
        );
        &self.interleaved[..2 * n]
    }

    /// Hands the faded-out engine back to the bus thread; if its ring is full it stays here
    /// (silent) and is tried again next callback.
    fn retire(&mut self) {
        let Some((old, pos, len)) = self.outgoing.take() else {
            return;
        };
        let stats = retired_stats(&old);
        match self.retired.push(old) {
            Ok(()) => self.base = add(self.base, stats),
            Err(rtrb::PushError::Full(old)) => self.outgoing = Some((old, pos, len)),
        }
    }

    /// The switches that say which stems anyone listens to (all on until the PipeWire thread
    /// says otherwise): shared with the thread that knows the links.
    pub fn stem_switches(&self) -> Arc<StemSwitches> {
        Arc::clone(&self.stems_wanted)
    }

    /// The master mix of the last callback, its first `frames` frames, interleaved.
    pub fn master(&self, frames: usize) -> &[f32] {
        &self.interleaved[..2 * frames.min(self.left.len())]
    }

    /// Stem slot `slot`'s last `frames` frames, interleaved (silence for a slot no node has).
    pub fn stem(&self, slot: usize, frames: usize) -> &[f32] {
        let width = 2 * self.left.len();
        let n = frames.min(self.left.len());
        match self.stems.get(slot * width..slot * width + 2 * n) {
            Some(s) if slot < MAX_STEMS => s,
            _ => &[],
        }
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
