//! Effect nodes: stereo processors fed by instruments' post-fader sends and by earlier
//! effects, returning into the master and routing on to later effects. An effect that nobody
//! feeds sleeps once its tail has died away. When a graph is edited, an effect that stays
//! (same name, same kind) keeps its delay lines and reverb tail ([`Effect::carry_from`]).

use crate::dsp::fx::{Delay, Reverb, synced_delay_s};
use crate::dsp::{BLOCK, Block, Smoother};
use crate::instrument::EffectDef;
use crate::ir::Program;
use crate::schema::{DEFAULT_BPM, Param, table};
/// Longest delay time, s (the lines hold 4 s; the right one runs 5 % longer).
const MAX_DELAY_S: f32 = 3.8;
/// How fast the delay time follows a tempo change (a glide, not a jump of the read point).
const DELAY_GLIDE_S: f32 = 0.05;

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
        reverb: Box<Reverb>,
        /// Room size 0..1.
        room: f32,
        /// Damping 0..1.
        damp: f32,
    },
    /// A definition that reads `"input"`, run once per channel.
    Def(Box<EffectDef>),
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
    /// Sends to later effects, always to a higher index, so the routes cannot loop.
    pub routes: Vec<Route>,
    /// What it is, for carrying it across a graph edit: effects of the same name and key are
    /// the same processor (their settings may differ).
    pub key: u64,
    input: [Block; 2],
    /// Its output after the return level, last block (its stem).
    out: [Block; 2],
    /// Frames in a row its input and output stayed below [`SILENCE`].
    quiet: u32,
    /// Frames a sound can stay inside it (its longest delay path): once input and output have
    /// been silent this long, everything inside it is silent too.
    tail: u32,
    /// Parameters moving along a line (automation), by parameter number; moved on block by
    /// block ([`Effect::glide`]).
    glides: Vec<Glide>,
    /// Whether any glide runs.
    gliding: bool,
    /// The frame of each parameter's last automation breakpoint.
    curve_end: Vec<u64>,
}

/// A parameter moving from `from` to `to` over `len` frames (idle when `len` is 0).
#[derive(Debug, Clone, Copy, Default)]
struct Glide {
    from: f32,
    to: f32,
    pos: u32,
    len: u32,
}

/// A route from an effect to a later one. The level glides to a new value (no step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// The later effect's index.
    pub to: usize,
    /// The level set.
    pub level: f32,
    /// The level now (gliding to `level`).
    pub now: f32,
    /// How far the level moves a frame while it ramps (0: the engine's glide).
    pub rate: f32,
}

impl Route {
    /// A route at `level` from the start.
    pub fn new(to: usize, level: f32) -> Self {
        Self {
            to,
            level,
            now: level,
            rate: 0.0,
        }
    }
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
                reverb: Box::new(Reverb::new(rate)),
                room,
                damp,
            },
            ret,
            rate,
        )
    }

    /// An effect definition (its program reads `"input"`), run once per channel; `key`
    /// identifies the definition across graph edits.
    pub fn def(name: &str, program: Program, rate: f32, ret: f32, key: u64) -> Self {
        let mut e = Self::with(
            name,
            EffectKind::Def(Box::new(EffectDef::new(program, rate))),
            ret,
            rate,
        );
        e.key = key;
        e
    }

    fn with(name: &str, kind: EffectKind, ret: f32, rate: f32) -> Self {
        let key = match kind {
            EffectKind::Delay { .. } => 1,
            EffectKind::Reverb { .. } => 2,
            EffectKind::Def(_) => 3,
        };
        let tail_s = match &kind {
            // The right line runs 5 % longer than the left.
            EffectKind::Delay { .. } => MAX_DELAY_S * 1.05,
            // Freeverb's longest comb plus its all-passes are well under 0.1 s.
            EffectKind::Reverb { .. } => 0.25,
            EffectKind::Def(d) => d.tail_s(rate),
        };
        let mut effect = Self {
            name: name.to_string(),
            kind,
            ret: Smoother::new(ret, 0.02, rate),
            routes: Vec::new(),
            key,
            input: [[0.0; BLOCK]; 2],
            out: [[0.0; BLOCK]; 2],
            quiet: 0,
            tail: (tail_s * rate) as u32 + BLOCK as u32,
            glides: Vec::new(),
            gliding: false,
            curve_end: Vec::new(),
        };
        effect.glides = vec![Glide::default(); effect.param_count()];
        effect.curve_end = vec![0; effect.param_count()];
        effect
    }

    /// A breakpoint of `param`'s automation at `frame`: returns the frame of the one before
    /// (0 if none), where a segment ending at `frame` begins.
    pub(crate) fn breakpoint(&mut self, param: usize, frame: u64) -> u64 {
        self.curve_end
            .get_mut(param)
            .map_or(0, |prev| std::mem::replace(prev, frame))
    }

    /// Moves `param` from where it is to `value` along a line over `frames` frames (at once
    /// if 0), block by block. Never allocates.
    pub fn automate(&mut self, param: usize, value: f32, frames: u32, bpm: f32) {
        let from = self.value(param);
        match self.glides.get_mut(param) {
            Some(g) if frames > 0 && value.is_finite() => {
                *g = Glide {
                    from,
                    to: value,
                    pos: 0,
                    len: frames,
                };
                self.gliding = true;
            }
            _ => self.set(param, value, bpm),
        }
    }

    /// Sets its route into effect `to` to `level`, moving there over `frames` (0: the
    /// engine's glide). No route into `to`: nothing (a route is added by a graph edit).
    pub fn send(&mut self, to: usize, level: f32, frames: u32) {
        if let Some(r) = self.routes.iter_mut().find(|r| r.to == to) {
            r.level = level;
            r.rate = crate::dsp::send_rate(r.now, level, frames);
        }
    }

    /// Moves every gliding parameter on by `n` frames (once a block, asleep or not).
    pub(crate) fn glide(&mut self, n: usize, bpm: f32) {
        if !self.gliding {
            return;
        }
        self.gliding = false;
        for p in 0..self.glides.len() {
            let mut g = self.glides[p];
            if g.len == 0 {
                continue;
            }
            g.pos = (g.pos + n as u32).min(g.len);
            let v = g.from + (g.to - g.from) * (g.pos as f32 / g.len as f32);
            if g.pos == g.len {
                g.len = 0;
            } else {
                self.gliding = true;
            }
            self.glides[p] = g;
            self.set(p, v, bpm);
        }
    }

    /// Whether it sleeps: its input has been silent, and so has its output for longer than a
    /// sound can stay inside it, so the engine skips it (no CPU for a reverb nobody feeds).
    pub fn asleep(&self) -> bool {
        self.quiet >= self.tail
    }

    /// Its settable parameters, as `Set` names them, with their ranges; index = parameter
    /// number for [`Effect::set`]. (For the bus thread: it allocates.)
    pub fn params(&self) -> Vec<(String, f32, f32)> {
        let mut params: Vec<(String, f32, f32)> = self
            .fixed_params()
            .iter()
            .map(|p| (p.name.to_string(), p.min, p.max))
            .collect();
        if let EffectKind::Def(d) = &self.kind {
            params.extend(d.controls().iter().map(|c| (c.name.clone(), c.min, c.max)));
        }
        params
    }

    /// Its parameters from the table, in number order (a definition's controls follow).
    fn fixed_params(&self) -> &'static [Param] {
        match &self.kind {
            EffectKind::Delay { .. } => table::DELAY,
            EffectKind::Reverb { .. } => table::REVERB,
            EffectKind::Def(_) => table::DEF_EFFECT,
        }
    }

    /// How many parameters it has.
    pub fn param_count(&self) -> usize {
        let controls = match &self.kind {
            EffectKind::Def(d) => d.controls().len(),
            _ => 0,
        };
        self.fixed_params().len() + controls
    }

    /// Sets parameter `param` (see [`Effect::params`]), clamped; the return level and a
    /// definition's controls are smoothed, a delay's time glides; `bpm` is the tempo a new
    /// `beats` is timed at. Never allocates.
    pub fn set(&mut self, param: usize, value: f32, bpm: f32) {
        if !value.is_finite() || param >= self.param_count() {
            return;
        }
        // A definition clamps its controls itself.
        let v = self
            .fixed_params()
            .get(param)
            .map_or(value, |p| p.clamp(value));
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
            (EffectKind::Def(d), p) => d.set_control(p - 1, v, false),
            _ => {}
        }
    }

    /// Starts parameter `param` at `value` without smoothing (a node being built).
    pub fn start(&mut self, param: usize, value: f32) {
        self.set(param, value, DEFAULT_BPM);
        match (&mut self.kind, param) {
            (_, 0) => self.ret.jump(self.ret.target()),
            (EffectKind::Def(d), p) => d.set_control(p - 1, value, true),
            _ => {}
        }
    }

    /// The value of parameter `param` (see [`Effect::params`]) as set.
    pub fn value(&self, param: usize) -> f32 {
        match (&self.kind, param) {
            (_, 0) => self.ret.target(),
            (EffectKind::Delay { feedback, .. }, 1) => *feedback,
            (EffectKind::Delay { damp_hz, .. }, 2) => *damp_hz,
            (EffectKind::Delay { beats, .. }, 3) => *beats,
            (EffectKind::Reverb { room, .. }, 1) => *room,
            (EffectKind::Reverb { damp, .. }, 2) => *damp,
            (EffectKind::Def(d), p) => d.control(p - 1),
            _ => 0.0,
        }
    }

    /// Follows the transport: a delay's time becomes its beats at `bpm` (gliding there).
    pub fn follow_tempo(&mut self, bpm: f32) {
        match &mut self.kind {
            EffectKind::Delay { beats, time, .. } => {
                time.set(synced_delay_s(bpm, *beats).min(MAX_DELAY_S));
            }
            EffectKind::Def(d) => d.follow_tempo(bpm),
            EffectKind::Reverb { .. } => {}
        }
    }

    /// Clears its input for the next block of `n` frames.
    pub(crate) fn clear_input(&mut self, n: usize) {
        for ch in &mut self.input {
            ch[..n].fill(0.0);
        }
    }

    /// Adds a block of `l`, `r` to its input at a level gliding linearly from `from` (before
    /// the first frame) to `to` (at the last).
    #[inline]
    pub(crate) fn feed(&mut self, l: &[f32], r: &[f32], from: f32, to: f32) {
        let step = (to - from) / l.len() as f32;
        let [il, ir] = &mut self.input;
        if step == 0.0 {
            for ((il, ir), (l, r)) in il.iter_mut().zip(ir.iter_mut()).zip(l.iter().zip(r)) {
                *il += l * to;
                *ir += r * to;
            }
            return;
        }
        for (i, ((il, ir), (l, r))) in il
            .iter_mut()
            .zip(ir.iter_mut())
            .zip(l.iter().zip(r))
            .enumerate()
        {
            let level = from + step * (i + 1) as f32;
            *il += l * level;
            *ir += r * level;
        }
    }

    /// Its output of the last block (after the return level): its stem.
    pub fn output(&self, n: usize) -> [&[f32]; 2] {
        [&self.out[0][..n], &self.out[1][..n]]
    }

    /// Continues `old`'s sound with this effect's settings and routes: on a graph edit the
    /// bus thread builds `self` fresh, and the audio thread swaps the two so the running
    /// delay lines and reverb move here, then takes the new settings (a changed return glides,
    /// a changed delay time glides). `effects` maps the old graph's effect indices to the
    /// new one's, for the routes' gliding levels. Never allocates.
    pub(crate) fn carry_from(&mut self, old: &mut Effect, effects: &[Option<usize>], bpm: f32) {
        std::mem::swap(self, old);
        // `self` runs with the old state; `old` holds the fresh settings and routes.
        std::mem::swap(&mut self.routes, &mut old.routes);
        for r in &mut self.routes {
            r.now = old
                .routes
                .iter()
                .find(|o| effects.get(o.to).copied().flatten() == Some(r.to))
                .map_or(0.0, |o| o.now);
        }
        for p in 0..self.param_count() {
            let v = old.value(p);
            if v != self.value(p) {
                self.set(p, v, bpm);
            }
        }
    }

    /// Processes this block's input (after the instruments have fed it) and adds its return
    /// to `left`, `right`, and its routes to the `later` effects (`later[0]` is the one after
    /// it, at index `index + 1`). `glide` is the most a route level moves per frame.
    pub(crate) fn render(
        &mut self,
        index: usize,
        left: &mut [f32],
        right: &mut [f32],
        later: &mut [Effect],
        glide: f32,
    ) {
        let n = left.len();
        let silent_in = self
            .input
            .iter()
            .all(|ch| ch[..n].iter().all(|x| x.abs() < SILENCE));
        if silent_in && self.asleep() {
            // Nothing goes in and nothing is left inside: it would return and route silence.
            self.ret.advance(n);
            for ch in &mut self.out {
                ch[..n].fill(0.0);
            }
            for r in &mut self.routes {
                r.now = r.level;
                r.rate = 0.0;
            }
            return;
        }
        self.process(n);
        let silent_out = self
            .input
            .iter()
            .all(|ch| ch[..n].iter().all(|x| x.abs() < SILENCE));
        self.quiet = if silent_in && silent_out {
            self.quiet.saturating_add(n as u32)
        } else {
            0
        };
        let [in_l, in_r] = &self.input;
        let [out_l, out_r] = &mut self.out;
        let frames = out_l[..n]
            .iter_mut()
            .zip(&mut out_r[..n])
            .zip(in_l[..n].iter().zip(&in_r[..n]))
            .zip(left.iter_mut().zip(right.iter_mut()));
        let settled = self.ret.settled().then(|| self.ret.value());
        for (((ol, or), (il, ir)), (ml, mr)) in frames {
            let ret = settled.unwrap_or_else(|| self.ret.tick());
            (*ol, *or) = (il * ret, ir * ret);
            *ml += *ol;
            *mr += *or;
        }
        for route in &mut self.routes {
            let target = &mut later[route.to - index - 1];
            let (from, to) =
                crate::dsp::move_send(&mut route.now, route.level, &mut route.rate, glide, n);
            if from == 0.0 && to == 0.0 {
                continue;
            }
            target.feed(&in_l[..n], &in_r[..n], from, to);
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
                if time.settled() {
                    // The usual case (the time glides only after a tempo change): each line
                    // as a block.
                    let t = time.value();
                    lines[0].process(&mut l[..n], t, *feedback, *damp_hz);
                    lines[1].process(&mut r[..n], t * 1.05, *feedback, *damp_hz);
                } else {
                    for i in 0..n {
                        let t = time.tick();
                        l[i] = lines[0].tick(l[i], t, *feedback, *damp_hz);
                        r[i] = lines[1].tick(r[i], t * 1.05, *feedback, *damp_hz);
                    }
                }
            }
            EffectKind::Reverb { reverb, room, damp } => {
                reverb.process(&mut l[..n], &mut r[..n], *room, *damp);
            }
            EffectKind::Def(d) => d.process(&mut self.input, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_effect_setting_automated_moves_along_a_line_block_by_block() {
        let mut d = Effect::delay("d", 48_000.0, 0.75, 0.2, 4000.0, 1.0);
        d.automate(1, 0.6, 640, 120.0);
        for _ in 0..5 {
            d.glide(64, 120.0);
        }
        assert!((d.value(1) - 0.4).abs() < 1e-6, "half way: {}", d.value(1));
        for _ in 0..6 {
            d.glide(64, 120.0);
        }
        assert_eq!(d.value(1), 0.6);
        assert!(!d.gliding, "done");
        // A step (0 frames) sets at once.
        d.automate(1, 0.1, 0, 120.0);
        assert_eq!(d.value(1), 0.1);
    }
}
