//! Instruments: a compiled [`Program`] run per voice, polyphony with stealing of
//! the quietest (then oldest) voice through a short fade, note-offs matched to note instances,
//! and smoothed instrument controls. All memory is allocated when an instrument is built.
//!
//! Voices run in packs of [`LANES`] (the `pack` module): a pack's buffers hold one lane per
//! voice ([`crate::dsp::LaneBlock`]), and the program runs step by step over the whole pack —
//! element-wise steps, filters and the oscillators' arithmetic as vector operations across the
//! voices, envelopes lane by lane (or as a fill when they all hold a level). A pack with one
//! voice playing runs it in time order instead (the solo layout). A voice keeps its own step
//! states, so stealing moves a voice between packs by moving its states; a pack's buffers are
//! refilled every block.

use crate::dsp::{BLOCK, Block, LANES, Smoother, midi_to_hz, sanitize};
use crate::ir::{ControlDef, Program, Step};
use crate::pack::Pack;
use crate::schema::{FIRST_CONTROL, GAIN, MAX_EFFECTS, PAN, POLYPHONY, table};
use crate::voice::{GateChange, STEAL_FADE, Voice};

/// Time constant of a definition's control smoothing, s: a set value is 63 % there after
/// 10 ms (no zipper noise). Gates and triggers are not controls (they come with the notes),
/// so nothing smooths them.
pub const CONTROL_SMOOTHING_S: f32 = 0.01;

/// A control's smoother: [`CONTROL_SMOOTHING_S`], or none for a gate or trigger (named
/// `trigger`, `trig`, or ending in `_gate`, `_trig`, `_trigger`).
fn control_smoother(c: &ControlDef, rate: f32) -> Smoother {
    let n = c.name.as_str();
    let trigger = n == "trigger"
        || n == "trig"
        || ["_gate", "_trig", "_trigger"]
            .iter()
            .any(|s| n.ends_with(s));
    if trigger {
        Smoother::instant(c.default)
    } else {
        Smoother::new(c.default, CONTROL_SMOOTHING_S, rate)
    }
}

/// A definition's controls: their smoothers, and each block's values (steady when settled).
#[derive(Debug, Clone)]
struct Controls {
    smoothers: Vec<Smoother>,
    blocks: Vec<Block>,
    steady: Vec<bool>,
}

impl Controls {
    fn new(program: &Program, rate: f32) -> Self {
        let n = program.controls.len();
        Self {
            smoothers: program
                .controls
                .iter()
                .map(|c| control_smoother(c, rate))
                .collect(),
            blocks: vec![[0.0; BLOCK]; n],
            steady: vec![false; n],
        }
    }

    /// Moves every control on `n` values without using them.
    fn advance(&mut self, n: usize) {
        for s in &mut self.smoothers {
            s.advance(n);
        }
    }

    /// The next `n` values of every control.
    fn fill(&mut self, n: usize) {
        for ((s, b), steady) in self
            .smoothers
            .iter_mut()
            .zip(&mut self.blocks)
            .zip(&mut self.steady)
        {
            *steady = s.fill(&mut b[..n]);
        }
    }
}

/// A polyphonic instrument.
#[derive(Debug, Clone)]
pub struct Instrument {
    program: Program,
    voices: Vec<Voice>,
    changes: Vec<Option<GateChange>>,
    /// Buffers for the voices, [`LANES`] voices to a pack.
    packs: Vec<Pack>,
    /// Stolen voices fading out (one pack).
    fading: Vec<Voice>,
    fading_pack: Pack,
    /// Gate changes of the fading voices (never any).
    no_changes: [Option<GateChange>; LANES],
    controls: Controls,
    name: String,
    /// Output gain, 0..=4 (smoothed).
    pub gain: Smoother,
    /// Pan, -1..=1 (smoothed).
    pub pan: Smoother,
    /// Send levels to the graph's effects, by effect index (post-fader).
    pub sends: [f32; MAX_EFFECTS],
    /// The send levels now (gliding to `sends`, so a change never steps).
    pub(crate) send_now: [f32; MAX_EFFECTS],
    /// How far each send moves a frame while it ramps (0: the engine's glide).
    pub(crate) send_rate: [f32; MAX_EFFECTS],
    /// What it is, for carrying it across a graph edit: instruments of the same name and key
    /// run the same definition with the same polyphony.
    pub key: u64,
    /// The values the graph set (gain, pan, controls, by parameter number): on a graph edit
    /// that keeps this node, only parameters whose set value changed move; automation of the
    /// others goes on.
    preset: Vec<f32>,
    /// The frame of each parameter's last automation breakpoint (by parameter number): a
    /// linear or curved point moves from there, not from when it arrived.
    curve_end: Vec<u64>,
    /// Its output after gain and pan, last block (its stem).
    pub(crate) out: [Block; 2],
    /// Whether `out` holds only zeros (it was idle).
    out_silent: bool,
    /// Whether it was found idle and no note has started since: then it still is, and the
    /// audio thread need not look at every voice again (cold memory, each block).
    asleep: bool,
    mono: bool,
    clock: u64,
    /// Voices stolen so far.
    pub stolen: u64,
}

impl Instrument {
    /// Builds an instrument with `polyphony` voices (1 = mono, legato).
    pub fn new(program: Program, polyphony: usize, rate: f32) -> Self {
        let polyphony = polyphony.clamp(*POLYPHONY.start(), *POLYPHONY.end());
        let voices = (0..polyphony)
            .map(|i| Voice::new(&program, rate, 1 + i as u32))
            .collect();
        let fading = (0..LANES)
            .map(|i| Voice::new(&program, rate, 10_000 + i as u32))
            .collect();
        let packs = (0..polyphony.div_ceil(LANES))
            .map(|_| Pack::new(&program))
            .collect();
        let controls = Controls::new(&program, rate);
        let preset = [table::GAIN.default, table::PAN.default]
            .into_iter()
            .chain(program.controls.iter().map(|c| c.default))
            .collect::<Vec<f32>>();
        Self {
            curve_end: vec![0; preset.len()],
            name: program.name.clone(),
            changes: vec![None; polyphony],
            fading_pack: Pack::new(&program),
            program,
            voices,
            packs,
            fading,
            no_changes: [None; LANES],
            controls,
            gain: Smoother::new(table::GAIN.default, 0.02, rate),
            pan: Smoother::new(table::PAN.default, 0.02, rate),
            sends: [0.0; MAX_EFFECTS],
            send_now: [0.0; MAX_EFFECTS],
            send_rate: [0.0; MAX_EFFECTS],
            key: 0,
            preset,
            out: [[0.0; BLOCK]; 2],
            out_silent: true,
            asleep: false,
            mono: polyphony == 1,
            clock: 0,
            stolen: 0,
        }
    }

    /// Its name in the graph (the definition's name unless the graph renames it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it (a graph may hold two instruments of the same definition).
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Starts parameter `param` ([`crate::engine::param`]) at `value` (clamped to its
    /// range), without smoothing: for a node being built, before it sounds.
    pub fn start(&mut self, param: usize, value: f32) {
        if !value.is_finite() || param >= self.preset.len() {
            return;
        }
        self.automate(param, value, Some((0, crate::dsp::Shape::Linear)));
        self.preset[param] = match param {
            GAIN => self.gain.target(),
            PAN => self.pan.target(),
            p => self.controls.smoothers[p - FIRST_CONTROL].target(),
        };
    }

    /// Continues `old`'s sound with this instrument's settings: on a graph edit the bus thread
    /// builds `self` fresh from the new graph, and the audio thread swaps the two so the
    /// running voices, envelopes, filters and smoothers move here. Then the new send levels
    /// apply (gliding; `effects` maps the old graph's effect indices to the new one's) and
    /// every parameter whose set value changed moves to it, smoothed. Never allocates.
    pub(crate) fn carry_from(&mut self, old: &mut Instrument, effects: &[Option<usize>]) {
        debug_assert_eq!(self.key, old.key, "only the same instrument is carried");
        std::mem::swap(self, old);
        // `self` runs with the old state; `old` holds the fresh settings.
        std::mem::swap(&mut self.sends, &mut old.sends);
        let before = self.send_now;
        self.send_now = [0.0; MAX_EFFECTS];
        // Effects may sit at other indices now: a ramp in progress ends in the usual glide.
        self.send_rate = [0.0; MAX_EFFECTS];
        for (k, &level) in before.iter().enumerate() {
            if let Some(&Some(to)) = effects.get(k)
                && let Some(now) = self.send_now.get_mut(to)
            {
                *now = level;
            }
        }
        for p in 0..self.preset.len().min(old.preset.len()) {
            if old.preset[p] != self.preset[p] {
                self.automate(p, old.preset[p], None);
            }
        }
        std::mem::swap(&mut self.preset, &mut old.preset);
    }

    /// Follows the transport's tempo (the `bpm` input of its definition).
    pub fn follow_tempo(&mut self, bpm: f32) {
        for pack in self
            .packs
            .iter_mut()
            .chain(std::iter::once(&mut self.fading_pack))
        {
            pack.follow_tempo(bpm);
        }
    }

    /// Fades in from silence to its gain over `frames` (the rising half of an equal-power
    /// crossfade): a node new to the graph.
    pub(crate) fn fade_in(&mut self, frames: u32) {
        let gain = self.gain.target();
        self.gain.jump(0.0);
        self.gain.ramp(gain, frames, crate::dsp::Shape::Rise);
    }

    /// Starts its send levels where they are set (a node built before it sounds).
    pub(crate) fn settle_sends(&mut self) {
        self.send_now = self.sends;
    }

    /// Its definition's controls, in index order.
    pub fn controls(&self) -> &[ControlDef] {
        &self.program.controls
    }

    /// Voices sounding.
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
            + self.fading.iter().filter(|v| v.active).count()
    }

    /// Index of a named control.
    pub fn control_index(&self, name: &str) -> Option<usize> {
        self.program.controls.iter().position(|c| c.name == name)
    }

    /// Moves parameter `param` ([`crate::engine::param`]) to `value`: smoothed, or along a
    /// ramp of `(frames, shape)`. Values are clamped to the parameter's range; non-finite
    /// values and unknown parameters are ignored.
    pub fn automate(&mut self, param: usize, value: f32, ramp: Option<(u32, crate::dsp::Shape)>) {
        if !value.is_finite() {
            return;
        }
        let (smoother, value) = match param {
            GAIN => (&mut self.gain, table::GAIN.clamp(value)),
            PAN => (&mut self.pan, table::PAN.clamp(value)),
            p => {
                let i = p - FIRST_CONTROL;
                match (
                    self.controls.smoothers.get_mut(i),
                    self.program.controls.get(i),
                ) {
                    (Some(s), Some(def)) => (s, value.clamp(def.min, def.max)),
                    _ => return,
                }
            }
        };
        match ramp {
            None => smoother.set(value),
            Some((frames, shape)) => smoother.ramp(value, frames, shape),
        }
    }

    /// Its send into effect `to` now (gliding or ramping to the level set).
    pub fn send_level(&self, to: usize) -> f32 {
        self.send_now.get(to).copied().unwrap_or(0.0)
    }

    /// Sets its send into effect `to` to `level`, moving there over `frames` (0: the
    /// engine's glide).
    pub fn send(&mut self, to: usize, level: f32, frames: u32) {
        if let (Some(target), Some(now), Some(rate)) = (
            self.sends.get_mut(to),
            self.send_now.get(to),
            self.send_rate.get_mut(to),
        ) {
            *target = level;
            *rate = crate::dsp::send_rate(*now, level, frames);
        }
    }

    /// A breakpoint of `param`'s automation at `frame`: returns the frame of the one before
    /// (0 if none), where a segment ending at `frame` begins.
    pub(crate) fn breakpoint(&mut self, param: usize, frame: u64) -> u64 {
        self.curve_end
            .get_mut(param)
            .map_or(0, |prev| std::mem::replace(prev, frame))
    }

    /// Starts note instance `id` at frame offset `at` of the next block.
    pub fn note_on(&mut self, id: u64, note: f32, vel: f32, at: usize) {
        let freq = midi_to_hz(sanitize(note, 200.0));
        let vel = sanitize(vel, 1.0).max(0.0);
        self.start_note(id, freq, vel, at);
    }

    /// Plays the notes `old` holds (gate on) from the start of the next block, with the same
    /// instance ids, so their note-offs end them here too: a replaced definition takes over
    /// the held notes while the old one fades out.
    pub(crate) fn continue_notes(&mut self, old: &Instrument) {
        for v in old
            .voices
            .iter()
            .filter(|v| v.active && v.gate > 0.5 && v.fade == 0)
        {
            self.start_note(v.id, v.freq, v.vel, 0);
        }
    }

    fn start_note(&mut self, id: u64, freq: f32, vel: f32, at: usize) {
        self.clock += 1;
        self.asleep = false;
        if self.mono && self.voices[0].active && self.voices[0].gate > 0.5 {
            // Legato: same envelope, new pitch.
            let v = &mut self.voices[0];
            v.id = id;
            v.freq = freq;
            v.vel = vel;
            return;
        }
        let slot = match self.voices.iter().position(|v| !v.active) {
            Some(i) => i,
            None => self.steal(),
        };
        let v = &mut self.voices[slot];
        v.reset();
        v.id = id;
        v.freq = freq;
        v.vel = vel;
        v.age = self.clock;
        v.active = true;
        v.gate = 0.0;
        self.changes[slot] = Some(GateChange { at, value: 1.0 });
    }

    /// Moves the quietest (then oldest) voice to the fade pool; returns its freed slot.
    fn steal(&mut self) -> usize {
        self.stolen += 1;
        let victim = (0..self.voices.len())
            .min_by(|&a, &b| {
                let (va, vb) = (&self.voices[a], &self.voices[b]);
                va.level.total_cmp(&vb.level).then(va.age.cmp(&vb.age))
            })
            .unwrap_or(0);
        let spare = self
            .fading
            .iter()
            .position(|v| !v.active)
            .unwrap_or_else(|| {
                (0..self.fading.len())
                    .min_by_key(|&i| self.fading[i].fade)
                    .unwrap_or(0)
            });
        std::mem::swap(&mut self.voices[victim], &mut self.fading[spare]);
        self.fading[spare].fade = STEAL_FADE;
        self.changes[victim] = None;
        victim
    }

    /// Releases note instance `id` at frame offset `at` (no-op if it was stolen or ended).
    pub fn note_off(&mut self, id: u64, at: usize) {
        if let Some(i) = self.voices.iter().position(|v| v.active && v.id == id) {
            self.changes[i] = Some(GateChange { at, value: 0.0 });
        }
    }

    /// Whether it has nothing to render: no voice sounding, fading or about to start.
    /// Only a note starting wakes it (a voice becomes active, a fade begins or a gate change
    /// is queued only there), so once found idle it is not looked at again until then.
    pub(crate) fn idle(&mut self) -> bool {
        if !self.asleep {
            self.asleep = self.changes.iter().all(Option::is_none)
                && !self.voices.iter().any(|v| v.active)
                && !self.fading.iter().any(|v| v.active);
        }
        self.asleep
    }

    /// Whether it was found [`idle`](Self::idle) at its last block (and has not been woken
    /// since).
    pub(crate) fn asleep(&self) -> bool {
        self.asleep
    }

    /// A block of `n` frames in which it is [`idle`](Self::idle): its output is silence (as
    /// rendering would give) and its smoothers move on as if it had rendered, so skipping
    /// changes no sample.
    pub(crate) fn skip(&mut self, n: usize) {
        self.controls.advance(n);
        self.gain.advance(n);
        self.pan.advance(n);
        if !self.out_silent {
            self.out = [[0.0; BLOCK]; 2];
            self.out_silent = true;
        }
    }

    /// Whether its definition outputs two channels.
    pub fn stereo(&self) -> bool {
        self.program.stereo
    }

    /// Renders `n` frames of this instrument (after gain) into `out` (overwritten): a mono
    /// definition into the left channel only, a stereo one into both.
    pub fn render(&mut self, n: usize, out: [&mut [f32]; 2]) {
        self.out_silent = false;
        let [left, right] = out;
        let stereo = self.program.stereo;
        left[..n].fill(0.0);
        if stereo {
            right[..n].fill(0.0);
        }
        self.controls.fill(n);
        let packs = self
            .voices
            .chunks_mut(LANES)
            .zip(self.changes.chunks_mut(LANES))
            .zip(&mut self.packs)
            .chain(
                // The fade pool, when a stolen voice is fading in it.
                (self.fading.iter().filter(|v| v.active).count() > 0).then_some((
                    (&mut self.fading[..], &mut self.no_changes[..]),
                    &mut self.fading_pack,
                )),
            );
        for ((voices, changes), pack) in packs {
            pack.render(
                &self.program,
                &self.controls.blocks,
                &self.controls.steady,
                voices,
                changes,
                n,
                [&mut *left, &mut *right],
            );
        }
        if stereo {
            self.gain.apply_stereo(&mut left[..n], &mut right[..n]);
        } else {
            self.gain.apply(&mut left[..n]);
        }
    }
}

/// An effect definition (one that reads `"input"`) on the stereo bus. A mono definition runs
/// once per channel: the left and right inputs as two voices side by side in one pack, each
/// with its own state, its controls shared. A stereo one (its output is stereo: it pans or
/// makes a pair) runs once on both channels. Controls are smoothed like an instrument's.
#[derive(Debug, Clone)]
pub struct EffectDef {
    program: Program,
    voices: Vec<Voice>,
    pack: Pack,
    controls: Controls,
}

impl EffectDef {
    /// Built off the audio thread (its delay lines allocated here).
    pub fn new(program: Program, rate: f32) -> Self {
        let voices = (0..if program.stereo { 1 } else { 2 })
            .map(|i| {
                let mut v = Voice::new(&program, rate, 20_000 + i);
                v.active = true;
                v.gate = 1.0;
                v.freq = 0.0;
                v.vel = 1.0;
                v
            })
            .collect();
        let controls = Controls::new(&program, rate);
        Self {
            pack: Pack::new(&program),
            voices,
            controls,
            program,
        }
    }

    /// Its definition's controls.
    pub fn controls(&self) -> &[ControlDef] {
        &self.program.controls
    }

    /// Follows the transport's tempo (the `bpm` input of its definition).
    pub fn follow_tempo(&mut self, bpm: f32) {
        self.pack.follow_tempo(bpm);
    }

    /// The value control `i` is set to.
    pub fn control(&self, i: usize) -> f32 {
        self.controls.smoothers.get(i).map_or(0.0, |s| s.target())
    }

    /// Moves control `i` to `value` (clamped to its range), smoothed — or at once when
    /// `now`.
    pub fn set_control(&mut self, i: usize, value: f32, now: bool) {
        if let (Some(s), Some(def)) = (
            self.controls.smoothers.get_mut(i),
            self.program.controls.get(i),
        ) && value.is_finite()
        {
            let v = value.clamp(def.min, def.max);
            if now { s.jump(v) } else { s.set(v) }
        }
    }

    /// Processes `n` frames of `io` in place: each channel's input becomes its output.
    pub fn process(&mut self, io: &mut [Block; 2], n: usize) {
        self.controls.fill(n);
        let [l, r] = io;
        let (mut out_l, mut out_r) = ([0.0; BLOCK], [0.0; BLOCK]);
        self.pack.render_effect(
            &self.program,
            &self.controls.blocks,
            &self.controls.steady,
            &mut self.voices,
            [&l[..n], &r[..n]],
            n,
            [&mut out_l[..n], &mut out_r[..n]],
        );
        l[..n].copy_from_slice(&out_l[..n]);
        r[..n].copy_from_slice(&out_r[..n]);
    }

    /// How long a sound can stay inside it, s: its delay lines, a block per feedback edge,
    /// and half a second for reverbs and filters to ring out.
    pub fn tail_s(&self, rate: f32) -> f32 {
        let mut tail = 0.5;
        for step in &self.program.steps {
            match step {
                Step::Kernel { max_s, .. } => tail += max_s,
                Step::FeedbackRead { .. } => tail += BLOCK as f32 / rate,
                _ => {}
            }
        }
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Step, SynthDef};

    fn program() -> Program {
        // Saw and pulse (lanes and the per-lane path; the saw at a detuned pitch, a steady
        // step output), a filter swept by the envelope (per lane) and one at a fixed setting
        // (lanes), an envelope with an edge mid-block.
        let def = r#"{"name":"t","nodes":[
            {"id":"dt","type":"mul","inputs":[{"control":"freq"},1.006]},
            {"id":"o","type":"osc","wave":"saw","freq":{"node":"dt"}},
            {"id":"p","type":"osc","wave":"pulse","freq":{"control":"freq"},"width":0.3},
            {"id":"e","type":"adsr","gate":{"control":"gate"},"attack":0.002,"decay":0.05,"sustain":0.5,"release":0.03},
            {"id":"c","type":"mul","inputs":[{"node":"e"},3000]},
            {"id":"m","type":"add","inputs":[{"node":"o"},{"node":"p"}]},
            {"id":"f","type":"filter","mode":"lowpass","input":{"node":"m"},"cutoff":{"node":"c"},"resonance":0.2},
            {"id":"g","type":"filter","mode":"highpass","input":{"node":"f"},"cutoff":120,"resonance":0.1},
            {"id":"out","type":"mul","inputs":[{"node":"g"},{"node":"e"},{"control":"vel"}]}],
            "output":{"node":"out"}}"#;
        serde_json::from_str::<SynthDef>(def)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn controls_are_smoothed_but_triggers_and_gates_follow_at_once() {
        let def = |name: &str| ControlDef {
            name: name.into(),
            default: 0.0,
            min: 0.0,
            max: 1.0,
        };
        for (name, instant) in [
            ("cutoff", false),
            ("trigger", true),
            ("trig", true),
            ("hit_gate", true),
            ("snare_trig", true),
            ("gatekeeper", false),
        ] {
            let mut s = control_smoother(&def(name), 48_000.0);
            s.set(1.0);
            let first = s.tick();
            assert_eq!(first == 1.0, instant, "{name}: {first}");
            if !instant {
                // 63 % after the stated time constant.
                let n = (CONTROL_SMOOTHING_S * 48_000.0) as usize;
                let v = (1..n).map(|_| s.tick()).last().unwrap();
                assert!((v - 0.632).abs() < 0.01, "{name}: {v}");
            }
        }
    }

    #[test]
    fn voices_in_lanes_sound_as_they_do_alone() {
        let notes: Vec<(f32, usize, usize)> = (0..11)
            .map(|k| (36.0 + 5.0 * k as f32, (k * 7) % BLOCK, 40 + k * 9))
            .collect();
        let blocks = 200;
        let mut together = Instrument::new(program(), 16, 48_000.0);
        let mut alone: Vec<Instrument> = notes
            .iter()
            .map(|_| Instrument::new(program(), 4, 48_000.0))
            .collect();
        let mut sum_together = Vec::new();
        let mut sum_alone = Vec::new();
        for b in 0..blocks {
            for (k, &(note, at, off_block)) in notes.iter().enumerate() {
                if b == k {
                    together.note_on(k as u64 + 1, note, 0.8, at);
                    alone[k].note_on(1, note, 0.8, at);
                }
                if b == off_block {
                    together.note_off(k as u64 + 1, at);
                    alone[k].note_off(1, at);
                }
            }
            let (mut out, mut right) = ([0.0; BLOCK], [0.0; BLOCK]);
            together.render(BLOCK, [&mut out, &mut right]);
            sum_together.extend_from_slice(&out);
            let mut mix = [0.0f32; BLOCK];
            for inst in &mut alone {
                let (mut one, mut right) = ([0.0; BLOCK], [0.0; BLOCK]);
                inst.render(BLOCK, [&mut one, &mut right]);
                for (m, x) in mix.iter_mut().zip(one) {
                    *m += x;
                }
            }
            sum_alone.extend_from_slice(&mix);
        }
        let peak = sum_alone.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.1, "audible: {peak}");
        for (i, (a, b)) in sum_together.iter().zip(&sum_alone).enumerate() {
            // Only rounding differs: the order of summing the voices, and a lone voice runs
            // its filters four samples per step.
            assert!(
                (a - b).abs() <= 1e-5 * peak.max(1.0),
                "sample {i}: {a} vs {b}"
            );
        }
        assert_eq!(together.active_voices(), 0, "all released and freed");
    }

    #[test]
    fn an_idle_instrument_sleeps_until_a_note_starts() {
        let mut inst = Instrument::new(program(), 4, 48_000.0);
        let block = |inst: &mut Instrument| {
            let (mut l, mut r) = ([0.0; BLOCK], [0.0; BLOCK]);
            inst.render(BLOCK, [&mut l, &mut r]);
            l.iter().fold(0.0f32, |m, x| m.max(x.abs()))
        };
        assert!(inst.idle() && inst.asleep);
        // A note wakes it, and it stays awake while the note and its release last.
        inst.note_on(1, 60.0, 0.8, 5);
        assert!(!inst.idle());
        assert!(block(&mut inst) > 0.01);
        inst.note_off(1, 0);
        let mut blocks = 0;
        while !inst.idle() {
            block(&mut inst);
            blocks += 1;
            assert!(blocks < 1000, "the release ends");
        }
        assert!(blocks >= 10, "awake for the release: {blocks} blocks");
        // A note-off for a note that ended changes nothing; a new note wakes it again.
        inst.note_off(1, 0);
        assert!(inst.idle());
        inst.note_on(2, 64.0, 0.8, 0);
        assert!(!inst.idle());
        assert!(block(&mut inst) > 0.01, "the new note sounds");
    }

    #[test]
    fn stateless_steps_of_steady_inputs_are_steady_in_both_layouts() {
        // A detuned oscillator (its pitch a product of steady inputs) into an envelope.
        let def = r#"{"name":"t","nodes":[
            {"id":"d","type":"mul","inputs":[{"control":"freq"},1.006]},
            {"id":"o","type":"osc","wave":"saw","freq":{"node":"d"}},
            {"id":"e","type":"adsr","gate":{"control":"gate"},"attack":0.01,"decay":0.1,"sustain":0.5,"release":0.1},
            {"id":"m","type":"mul","inputs":[{"node":"o"},{"node":"e"}]}],
            "output":{"node":"m"}}"#;
        let program = serde_json::from_str::<SynthDef>(def)
            .unwrap()
            .compile()
            .unwrap();
        let find = |pick: fn(&Step) -> Option<usize>| program.steps.iter().find_map(pick).unwrap();
        let d = find(|s| match s {
            Step::Mul { inputs, out } if inputs.contains(&crate::ir::FREQ) => Some(*out),
            _ => None,
        });
        let o = find(|s| match s {
            Step::Osc { out, .. } => Some(*out),
            _ => None,
        });
        let m = program.output[0];
        let mut inst = Instrument::new(program.clone(), 4, 48_000.0);
        let block = |inst: &mut Instrument| {
            let (mut l, mut r) = ([0.0; BLOCK], [0.0; BLOCK]);
            inst.render(BLOCK, [&mut l, &mut r]);
        };
        // One voice (the solo layout), then two (lanes).
        inst.note_on(1, 60.0, 0.8, 0);
        block(&mut inst);
        assert!(
            inst.packs[0].is_steady(d),
            "solo: the pitch product is steady"
        );
        assert!(!inst.packs[0].is_steady(o) && !inst.packs[0].is_steady(m));
        inst.note_on(2, 67.0, 0.8, 0);
        block(&mut inst);
        assert!(
            inst.packs[0].is_steady(d),
            "lanes: the pitch product is steady"
        );
        assert!(!inst.packs[0].is_steady(o) && !inst.packs[0].is_steady(m));
    }
}
