//! Synth definitions: a serde IR (an expression DAG of DSP primitives with named controls),
//! validated and compiled off the audio thread into a [`Program`] that voices run block by
//! block.
//!
//! Every voice has the standard inputs `freq` (Hz), `gate` (0/1) and `vel` (0..1); a
//! definition adds its own controls with a default and a range. Invalid definitions — unknown
//! references, cycles, non-finite numbers, out-of-range defaults — are rejected with an error
//! that names the node, before anything reaches the audio thread.

use serde::{Deserialize, Serialize};

use crate::dsp::filter::Mode;
use crate::dsp::kernel::ARGS;
use crate::dsp::osc::Wave;
use crate::prim::{Arg, Chan, Fun, KernelKind, Prim};

/// A synth definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthDef {
    /// Its name.
    pub name: String,
    /// Named controls beyond `freq`, `gate`, `vel`.
    #[serde(default)]
    pub controls: Vec<ControlDef>,
    /// The nodes, in any order (they are sorted by dependency).
    pub nodes: Vec<NodeDef>,
    /// What the voice outputs.
    pub output: Input,
}

impl SynthDef {
    /// Whether it reads `"input"` anywhere: an effect.
    pub fn reads_input(&self) -> bool {
        self.output == Input::Ref(Ref::Input)
            || self
                .nodes
                .iter()
                .any(|n| n.op.inputs().contains(&&Input::Ref(Ref::Input)))
    }
}

/// A named control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlDef {
    /// Name, referenced as `{"control": name}`.
    pub name: String,
    /// Initial value.
    pub default: f32,
    /// Smallest value accepted (larger requests are clamped).
    pub min: f32,
    /// Largest value accepted.
    pub max: f32,
}

/// A node: an id and what it computes, written `{"id": …, "type": …, inputs…}`. The type is a
/// name of the vocabulary ([`crate::prim`], inputs by name, defaults filled in; unknown
/// inputs refused) or one of the operations with their own fields (`osc`, `noise`, `filter`,
/// `adsr`, `mul`, `add`, `tanh`, `midi_to_hz`; serde cannot deny unknown fields through
/// `flatten`, so a misspelt optional field of these is ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawNode", into = "RawNode")]
pub struct NodeDef {
    /// Referenced as `{"node": id}`.
    pub id: String,
    /// The primitive.
    pub op: Op,
}

/// A node as written: its id and the rest of its fields, `type` included.
#[derive(Serialize, Deserialize)]
struct RawNode {
    id: String,
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<RawNode> for NodeDef {
    type Error = String;

    fn try_from(raw: RawNode) -> Result<Self, String> {
        let at = |m: String| format!("node {:?}: {m}", raw.id);
        let Some(kind) = raw.fields.get("type").and_then(|t| t.as_str()) else {
            return Err(at("needs a \"type\"".into()));
        };
        let Some((prim, args)) = crate::prim::lookup(kind) else {
            let op = serde_json::from_value::<Op>(serde_json::Value::Object(raw.fields.clone()))
                .map_err(|e| {
                    at(format!(
                        "{e} (the vocabulary: osc, noise, filter, adsr, mul, add, tanh, \
                         midi_to_hz, {})",
                        crate::prim::names().collect::<Vec<_>>().join(", ")
                    ))
                })?;
            return Ok(Self { id: raw.id, op });
        };
        if let Some(unknown) = raw
            .fields
            .keys()
            .find(|k| *k != "type" && !args.iter().any(|a| a.name == k.as_str()))
        {
            return Err(at(format!(
                "{kind} has no input {unknown:?} (its inputs: {})",
                args.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut inputs = Vec::with_capacity(args.len());
        for a in args {
            let input = match (raw.fields.get(a.name), a.default) {
                (Some(v), _) => serde_json::from_value::<Input>(v.clone())
                    .map_err(|e| at(format!("input {:?}: {e}", a.name)))?,
                (None, Some(d)) => Input::Const(d),
                (None, None) => return Err(at(format!("{kind} needs input {:?}", a.name))),
            };
            inputs.push(input);
        }
        let mut inputs = inputs.into_iter();
        let mut next = || inputs.next().unwrap_or(Input::Const(0.0));
        let op = match prim {
            Prim::Osc(wave, width) => Op::Osc {
                wave,
                freq: next(),
                width: width.map_or_else(&mut next, Input::Const),
            },
            Prim::Noise(pink) => Op::Noise { pink },
            Prim::Filter(mode) => Op::Filter {
                mode,
                input: next(),
                cutoff: next(),
                resonance: next(),
            },
            Prim::Fun(fun) => Op::Fun {
                fun,
                args: (0..args.len()).map(|_| next()).collect(),
            },
            Prim::Kernel(kernel) => Op::Kernel {
                kernel,
                args: (0..args.len()).map(|_| next()).collect(),
            },
            Prim::Feedback => Op::Feedback { input: next() },
            Prim::Chan(chan) => Op::Chan {
                chan,
                args: (0..args.len()).map(|_| next()).collect(),
            },
        };
        Ok(Self { id: raw.id, op })
    }
}

impl From<NodeDef> for RawNode {
    fn from(node: NodeDef) -> Self {
        let named = |name: &str, names: &[Arg], args: &[Input]| {
            let mut fields = serde_json::Map::new();
            fields.insert("type".into(), name.into());
            for (a, v) in names.iter().zip(args) {
                fields.insert(a.name.into(), serde_json::to_value(v).unwrap_or_default());
            }
            fields
        };
        let fields = match &node.op {
            Op::Fun { fun, args } => named(fun.name(), fun.args(), args),
            Op::Kernel { kernel, args } => named(kernel.name(), kernel.args(), args),
            Op::Chan { chan, args } => named(chan.name(), chan.args(), args),
            Op::Feedback { input } => named(
                "feedback",
                &[Arg::required("input")],
                std::slice::from_ref(input),
            ),
            op => match serde_json::to_value(op) {
                Ok(serde_json::Value::Object(fields)) => fields,
                _ => serde_json::Map::new(),
            },
        };
        Self {
            id: node.id,
            fields,
        }
    }
}

/// An input: a constant, another node's output, or a control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// A constant.
    Const(f32),
    /// A reference.
    Ref(Ref),
}

/// A reference to a node or a control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ref {
    /// Another node's output.
    Node(String),
    /// A control (`freq`, `gate`, `vel` or a defined one).
    Control(String),
    /// The audio coming into an effect (`"input"`): the sum of the routes into the node, one
    /// channel at a time. A definition that reads it is an effect.
    Input,
}

fn half() -> Input {
    Input::Const(0.5)
}
fn zero() -> Input {
    Input::Const(0.0)
}

/// The DSP primitives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Oscillator at `freq` Hz.
    Osc {
        /// Waveform.
        wave: Wave,
        /// Frequency, Hz.
        freq: Input,
        /// Pulse width 0..1.
        #[serde(default = "half")]
        width: Input,
    },
    /// White (or pink) noise.
    Noise {
        /// Pink instead of white.
        #[serde(default)]
        pink: bool,
    },
    /// State-variable filter.
    Filter {
        /// Low, high or band.
        mode: Mode,
        /// Signal.
        input: Input,
        /// Cutoff, Hz.
        cutoff: Input,
        /// Resonance 0..1.
        #[serde(default = "zero")]
        resonance: Input,
    },
    /// ADSR envelope (times in seconds).
    Adsr {
        /// Gate.
        gate: Input,
        /// Attack, s.
        attack: Input,
        /// Decay, s.
        decay: Input,
        /// Sustain level 0..1.
        sustain: Input,
        /// Release, s.
        release: Input,
    },
    /// Product.
    Mul {
        /// Factors.
        inputs: Vec<Input>,
    },
    /// Sum.
    Add {
        /// Terms.
        inputs: Vec<Input>,
    },
    /// Soft saturation (tanh) with drive.
    Tanh {
        /// Signal.
        input: Input,
        /// Gain before the curve.
        #[serde(default = "one")]
        drive: Input,
    },
    /// MIDI note number to Hz.
    MidiToHz {
        /// Note number.
        input: Input,
    },
    /// A function of the vocabulary ([`crate::prim`]), its inputs in the table's order.
    #[serde(skip)]
    Fun {
        /// Which.
        fun: Fun,
        /// Its inputs.
        args: Vec<Input>,
    },
    /// A stateful primitive of the vocabulary, its inputs in the table's order.
    #[serde(skip)]
    Kernel {
        /// Which.
        kernel: KernelKind,
        /// Its inputs.
        args: Vec<Input>,
    },
    /// Its input delayed by exactly [`crate::dsp::BLOCK`] samples: the one edge that may close a cycle.
    #[serde(skip)]
    Feedback {
        /// The signal fed back.
        input: Input,
    },
    /// Stereo: `pan`, `stereo`, `left`, `right` ([`Chan`]), inputs in the order of its
    /// arguments.
    #[serde(skip)]
    Chan {
        /// Which.
        chan: Chan,
        /// Its inputs.
        args: Vec<Input>,
    },
}

fn one() -> Input {
    Input::Const(1.0)
}

/// A definition that was rejected, naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("synth {synth:?}, {place}: {message}")]
pub struct DefError {
    /// The definition's name.
    pub synth: String,
    /// `node "x"`, `control "y"` or `output`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

/// A step's input: the index of the buffer holding it (voice inputs first, then controls,
/// then node outputs, then constants, which are filled once when a voice is built).
pub type Operand = usize;

/// A compiled operation writing buffer `out`; its operands mirror the [`Op`] it came from.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Oscillator.
    Osc {
        wave: Wave,
        freq: Operand,
        width: Operand,
        out: usize,
    },
    /// Noise.
    /// `salt` tells a definition's noise steps apart (0 for the first), so two noises — or
    /// the two channels of one — are independent.
    Noise { pink: bool, salt: u32, out: usize },
    /// Filter.
    Filter {
        mode: Mode,
        input: Operand,
        cutoff: Operand,
        resonance: Operand,
        out: usize,
    },
    /// ADSR.
    Adsr {
        gate: Operand,
        a: Operand,
        d: Operand,
        s: Operand,
        r: Operand,
        out: usize,
    },
    /// Product.
    Mul { inputs: Vec<Operand>, out: usize },
    /// Sum.
    Add { inputs: Vec<Operand>, out: usize },
    /// tanh.
    Tanh {
        input: Operand,
        drive: Operand,
        out: usize,
    },
    /// MIDI to Hz.
    MidiToHz { input: Operand, out: usize },
    /// A function; unused inputs read a constant 0.
    Fun {
        fun: Fun,
        args: [Operand; 3],
        out: usize,
    },
    /// A kernel; unused inputs read a constant 0. `max_s`: the longest delay it holds.
    Kernel {
        kernel: KernelKind,
        args: [Operand; ARGS],
        max_s: f32,
        out: usize,
    },
    /// A feedback edge's output: what was written [`crate::dsp::BLOCK`] samples ago. Runs first.
    FeedbackRead { out: usize },
    /// A feedback edge's input, written into the state of step `read` (its `FeedbackRead`).
    /// Runs after every other step.
    FeedbackWrite { input: Operand, read: usize },
}

impl Step {
    /// The buffer it writes (none for a feedback write, which writes its read's state).
    pub fn out(&self) -> Option<usize> {
        match self {
            Step::Osc { out, .. }
            | Step::Noise { out, .. }
            | Step::Filter { out, .. }
            | Step::Adsr { out, .. }
            | Step::Mul { out, .. }
            | Step::Add { out, .. }
            | Step::Tanh { out, .. }
            | Step::MidiToHz { out, .. }
            | Step::Fun { out, .. }
            | Step::Kernel { out, .. }
            | Step::FeedbackRead { out } => Some(*out),
            Step::FeedbackWrite { .. } => None,
        }
    }
}

/// Buffer indices of the standard voice inputs.
pub const FREQ: usize = 0;
/// The gate buffer.
pub const GATE: usize = 1;
/// The velocity buffer.
pub const VEL: usize = 2;
/// The audio input buffer (an effect's; silent in an instrument): a mono effect's channel, or
/// the left channel of a stereo effect's input.
pub const INPUT: usize = 3;
/// The transport's tempo, bpm (`{"control": "bpm"}`): steady, refilled when the tempo changes,
/// so a definition can time things in beats (`mul(beats, div(60, bpm))` seconds).
pub const BPM: usize = 4;
/// The right channel of a stereo effect's input.
pub const INPUT_RIGHT: usize = 5;
/// The buffer of control 0; control `i` is in `FIRST_CONTROL + i`.
pub const FIRST_CONTROL: usize = 6;
/// The inputs every definition may read as controls, with their buffers.
pub(crate) const STANDARD: [(&str, usize); 4] =
    [("freq", FREQ), ("gate", GATE), ("vel", VEL), ("bpm", BPM)];

/// A compiled definition: steps in dependency order over numbered buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The definition's name.
    pub name: String,
    /// Named controls (buffer [`FIRST_CONTROL`] `+ i` holds control `i`).
    pub controls: Vec<ControlDef>,
    /// Whether it reads [`Ref::Input`]: an effect.
    pub reads_input: bool,
    /// Whether its output is stereo (then an effect's input is stereo too: [`INPUT`] and
    /// [`INPUT_RIGHT`]; a mono effect runs once per channel).
    pub stereo: bool,
    /// Steps in evaluation order.
    pub steps: Vec<Step>,
    /// Number of buffers a voice needs.
    pub buffers: usize,
    /// The voice's output, left and right (the same buffer twice when mono).
    pub output: [Operand; 2],
    /// Constant buffers: (index, value), filled when a voice is built and never written.
    pub constants: Vec<(usize, f32)>,
}

impl Op {
    /// Its inputs, in order.
    pub(crate) fn inputs(&self) -> Vec<&Input> {
        match self {
            Op::Osc { freq, width, .. } => vec![freq, width],
            Op::Noise { .. } => vec![],
            Op::Filter {
                input,
                cutoff,
                resonance,
                ..
            } => vec![input, cutoff, resonance],
            Op::Adsr {
                gate,
                attack,
                decay,
                sustain,
                release,
            } => vec![gate, attack, decay, sustain, release],
            Op::Mul { inputs } | Op::Add { inputs } => inputs.iter().collect(),
            Op::Tanh { input, drive } => vec![input, drive],
            Op::MidiToHz { input } | Op::Feedback { input } => vec![input],
            Op::Fun { args, .. } | Op::Kernel { args, .. } | Op::Chan { args, .. } => {
                args.iter().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn acid() -> SynthDef {
        serde_json::from_str(
            r#"{
            "name": "acid",
            "controls": [{"name": "cutoff", "default": 800, "min": 50, "max": 8000}],
            "nodes": [
                {"id": "env", "type": "adsr", "gate": {"control": "gate"}, "attack": 0.005, "decay": 0.15, "sustain": 0.3, "release": 0.08},
                {"id": "amp", "type": "mul", "inputs": [{"node": "flt"}, {"node": "env"}, {"control": "vel"}, 0.5]},
                {"id": "osc", "type": "osc", "wave": "saw", "freq": {"control": "freq"}},
                {"id": "flt", "type": "filter", "mode": "lowpass", "input": {"node": "osc"}, "cutoff": {"control": "cutoff"}, "resonance": 0.6}
            ],
            "output": {"node": "amp"}
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn compiles_in_dependency_order() {
        let p = acid().compile().unwrap();
        let outs: Vec<usize> = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Osc { out, .. }
                | Step::Filter { out, .. }
                | Step::Adsr { out, .. }
                | Step::Mul { out, .. } => *out,
                _ => unreachable!(),
            })
            .collect();
        // After freq, gate, vel, input, bpm and the cutoff control: env(6), osc(8) before
        // flt(9) before amp(7).
        // One control, then the nodes in the order written: env, amp, osc, flt.
        let [env, amp, osc, flt] = std::array::from_fn(|i| FIRST_CONTROL + 1 + i);
        let pos = |b| outs.iter().position(|&o| o == b).unwrap();
        assert!(pos(osc) < pos(flt) && pos(flt) < pos(amp) && pos(env) < pos(amp));
        assert_eq!(p.buffers, flt + 1 + p.constants.len());
        assert!(!p.constants.is_empty());
        for (i, (k, _)) in p.constants.iter().enumerate() {
            assert_eq!(*k, flt + 1 + i, "constants follow the node outputs");
        }
        assert!(!p.stereo);
        assert_eq!(p.output, [amp, amp]);
    }

    fn compiled(json: &str) -> Program {
        serde_json::from_str::<SynthDef>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn everything_after_a_pan_runs_once_per_channel() {
        let p = compiled(
            r#"{"name":"x","nodes":[
            {"id":"o","type":"saw","freq":{"control":"freq"}},
            {"id":"p","type":"pan","input":{"node":"o"},"pos":0.5},
            {"id":"f","type":"lowpass","input":{"node":"p"},"cutoff":900},
            {"id":"n1","type":"white_noise"},{"id":"n2","type":"white_noise"}],
            "output":{"node":"f"}}"#,
        );
        assert!(p.stereo && !p.reads_input);
        let kinds: Vec<&str> = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Osc { .. } => "osc",
                Step::Fun {
                    fun: Fun::PanLeft, ..
                } => "pan_l",
                Step::Fun {
                    fun: Fun::PanRight, ..
                } => "pan_r",
                Step::Filter { .. } => "filter",
                Step::Noise { .. } => "noise",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "osc", "pan_l", "pan_r", "filter", "filter", "noise", "noise"
            ]
        );
        let (
            Step::Filter {
                input: il, out: ol, ..
            },
            Step::Filter {
                input: ir, out: or, ..
            },
        ) = (&p.steps[3], &p.steps[4])
        else {
            unreachable!()
        };
        assert_eq!(
            [*il, *ir],
            [p.steps[1].out().unwrap(), p.steps[2].out().unwrap()]
        );
        assert_eq!(p.output, [*ol, *or]);
        let salts: Vec<u32> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Noise { salt, .. } => Some(*salt),
                _ => None,
            })
            .collect();
        assert_eq!(salts, [0, 1], "two noises draw different numbers");
        let outs: Vec<usize> = p.steps.iter().filter_map(Step::out).collect();
        let mut unique = outs.clone();
        unique.dedup();
        assert_eq!(outs, unique, "every step its own buffer");
    }

    #[test]
    fn left_right_and_stereo_pick_buffers_and_a_stereo_effect_reads_both_inputs() {
        // A swap with a feedback loop on each channel: no step for the picks, two feedback
        // reads first and their two writes last.
        let p = compiled(
            r#"{"name":"x","nodes":[
            {"id":"l","type":"left","input":"input"},
            {"id":"r","type":"right","input":"input"},
            {"id":"s","type":"stereo","left":{"node":"r"},"right":{"node":"l"}},
            {"id":"fb","type":"feedback","input":{"node":"m"}},
            {"id":"m","type":"add","inputs":[{"node":"s"},{"node":"fb"}]}],
            "output":{"node":"m"}}"#,
        );
        assert!(p.stereo && p.reads_input);
        assert!(matches!(p.steps[0], Step::FeedbackRead { .. }));
        assert!(matches!(p.steps[1], Step::FeedbackRead { .. }));
        let Step::Add { inputs, .. } = &p.steps[2] else {
            unreachable!()
        };
        assert_eq!(
            inputs[0], INPUT_RIGHT,
            "the left of the swap is the right input"
        );
        let Step::Add { inputs, .. } = &p.steps[3] else {
            unreachable!()
        };
        assert_eq!(inputs[0], INPUT);
        assert!(matches!(p.steps[4], Step::FeedbackWrite { read: 0, .. }));
        assert!(matches!(p.steps[5], Step::FeedbackWrite { read: 1, .. }));
        assert_eq!(p.steps.len(), 6);
        // The same picks in a mono effect: it runs per channel, `right` of a mono input is
        // the input itself.
        let p = compiled(
            r#"{"name":"x","nodes":[{"id":"r","type":"right","input":"input"}],
            "output":{"node":"r"}}"#,
        );
        assert!(!p.stereo && p.steps.is_empty());
        assert_eq!(p.output, [INPUT, INPUT]);
    }

    fn error_of(json: &str) -> DefError {
        serde_json::from_str::<SynthDef>(json)
            .unwrap()
            .compile()
            .unwrap_err()
    }

    #[test]
    fn errors_name_the_node() {
        let e = error_of(
            r#"{"name":"x","nodes":[{"id":"a","type":"osc","wave":"saw","freq":{"node":"ghost"}}],"output":{"node":"a"}}"#,
        );
        assert_eq!(e.place, "node \"a\"");
        assert!(e.message.contains("ghost"));
        let e = error_of(
            r#"{"name":"x","nodes":[{"id":"a","type":"tanh","input":{"node":"b"}},{"id":"b","type":"tanh","input":{"node":"a"}}],"output":{"node":"a"}}"#,
        );
        assert!(e.message.contains("cycle"), "{e}");
        let e = error_of(
            r#"{"name":"x","controls":[{"name":"c","default":9,"min":0,"max":1}],"nodes":[],"output":0}"#,
        );
        assert_eq!(e.place, "control \"c\"");
        let e = error_of(r#"{"name":"x","nodes":[],"output":{"control":"nope"}}"#);
        assert_eq!(e.place, "output");
    }

    #[test]
    fn unknown_primitives_are_refused_by_serde_with_the_name() {
        let e = serde_json::from_str::<SynthDef>(
            r#"{"name":"x","nodes":[{"id":"a","type":"warp"}],"output":0}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("warp"), "{e}");
    }
}
