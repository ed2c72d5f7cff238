//! Synth definitions: a serde IR (an expression DAG of DSP primitives with named controls),
//! validated and compiled off the audio thread into a [`Program`] that voices run block by
//! block.
//!
//! Every voice has the standard inputs `freq` (Hz), `gate` (0/1) and `vel` (0..1); a
//! definition adds its own controls with a default and a range. Invalid definitions — unknown
//! references, cycles, non-finite numbers, out-of-range defaults — are rejected with an error
//! that names the node, before anything reaches the audio thread.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dsp::filter::Mode;
use crate::dsp::osc::Wave;

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

/// A node: an id and what it computes. (serde cannot deny unknown fields through `flatten`,
/// so a misspelt optional field of a node is ignored; required ones are still checked.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDef {
    /// Referenced as `{"node": id}`.
    pub id: String,
    /// The primitive.
    #[serde(flatten)]
    pub op: Op,
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
    Noise { pink: bool, out: usize },
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
}

/// Buffer indices of the standard voice inputs.
pub const FREQ: usize = 0;
/// The gate buffer.
pub const GATE: usize = 1;
/// The velocity buffer.
pub const VEL: usize = 2;
const STANDARD: [&str; 3] = ["freq", "gate", "vel"];

/// A compiled definition: steps in dependency order over numbered buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The definition's name.
    pub name: String,
    /// Named controls (buffer `3 + i` holds control `i`).
    pub controls: Vec<ControlDef>,
    /// Steps in evaluation order.
    pub steps: Vec<Step>,
    /// Number of buffers a voice needs.
    pub buffers: usize,
    /// The voice's output.
    pub output: Operand,
    /// Constant buffers: (index, value), filled when a voice is built and never written.
    pub constants: Vec<(usize, f32)>,
}

impl SynthDef {
    /// Validates and compiles.
    pub fn compile(&self) -> Result<Program, DefError> {
        let err = |place: String, message: String| DefError {
            synth: self.name.clone(),
            place,
            message,
        };
        let mut control_index = HashMap::new();
        for (i, name) in STANDARD.iter().enumerate() {
            control_index.insert(name.to_string(), i);
        }
        for (i, c) in self.controls.iter().enumerate() {
            let place = format!("control {:?}", c.name);
            if control_index
                .insert(c.name.clone(), STANDARD.len() + i)
                .is_some()
            {
                return Err(err(
                    place,
                    "defined twice (or shadows freq/gate/vel)".into(),
                ));
            }
            if !(c.min.is_finite() && c.max.is_finite() && c.default.is_finite()) {
                return Err(err(place, "min, max and default must be finite".into()));
            }
            if c.min > c.max || !(c.min..=c.max).contains(&c.default) {
                return Err(err(
                    place,
                    format!("default {} is outside {}..={}", c.default, c.min, c.max),
                ));
            }
        }
        let mut node_index = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if node_index.insert(n.id.clone(), i).is_some() {
                return Err(err(format!("node {:?}", n.id), "id used twice".into()));
            }
        }
        // Dependencies, checked for existence.
        let mut deps = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for input in n.op.inputs() {
                match input {
                    Input::Const(v) if !v.is_finite() => {
                        return Err(err(
                            format!("node {:?}", n.id),
                            format!("constant {v} is not finite"),
                        ));
                    }
                    Input::Const(_) => {}
                    Input::Ref(Ref::Control(c)) if !control_index.contains_key(c) => {
                        return Err(err(
                            format!("node {:?}", n.id),
                            format!("unknown control {c:?}"),
                        ));
                    }
                    Input::Ref(Ref::Control(_)) => {}
                    Input::Ref(Ref::Node(id)) => match node_index.get(id) {
                        Some(&j) => deps[i].push(j),
                        None => {
                            return Err(err(
                                format!("node {:?}", n.id),
                                format!("unknown node {id:?}"),
                            ));
                        }
                    },
                }
            }
        }
        // Topological order (depth-first, with cycle detection).
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut state = vec![0u8; self.nodes.len()]; // 0 new, 1 visiting, 2 done
        for start in 0..self.nodes.len() {
            let mut stack = vec![(start, 0usize)];
            while let Some(&mut (n, ref mut next)) = stack.last_mut() {
                if state[n] == 2 {
                    stack.pop();
                    continue;
                }
                state[n] = 1;
                if let Some(&d) = deps[n].get(*next) {
                    *next += 1;
                    match state[d] {
                        1 => {
                            return Err(err(
                                format!("node {:?}", self.nodes[d].id),
                                format!("is part of a cycle (through {:?})", self.nodes[n].id),
                            ));
                        }
                        0 => stack.push((d, 0)),
                        _ => {}
                    }
                } else {
                    state[n] = 2;
                    order.push(n);
                    stack.pop();
                }
            }
        }
        let base = STANDARD.len() + self.controls.len();
        let constants = std::cell::RefCell::new(Vec::<(usize, f32)>::new());
        let operand = |input: &Input| -> Operand {
            match input {
                Input::Const(v) => {
                    let mut c = constants.borrow_mut();
                    // One buffer per distinct value (compared bit for bit).
                    match c.iter().find(|(_, x)| x.to_bits() == v.to_bits()) {
                        Some(&(k, _)) => k,
                        None => {
                            let k = base + self.nodes.len() + c.len();
                            c.push((k, *v));
                            k
                        }
                    }
                }
                Input::Ref(Ref::Control(c)) => control_index[c],
                Input::Ref(Ref::Node(id)) => base + node_index[id],
            }
        };
        let steps = order
            .iter()
            .map(|&i| {
                let out = base + i;
                match &self.nodes[i].op {
                    Op::Osc { wave, freq, width } => Step::Osc {
                        wave: *wave,
                        freq: operand(freq),
                        width: operand(width),
                        out,
                    },
                    Op::Noise { pink } => Step::Noise { pink: *pink, out },
                    Op::Filter {
                        mode,
                        input,
                        cutoff,
                        resonance,
                    } => Step::Filter {
                        mode: *mode,
                        input: operand(input),
                        cutoff: operand(cutoff),
                        resonance: operand(resonance),
                        out,
                    },
                    Op::Adsr {
                        gate,
                        attack,
                        decay,
                        sustain,
                        release,
                    } => Step::Adsr {
                        gate: operand(gate),
                        a: operand(attack),
                        d: operand(decay),
                        s: operand(sustain),
                        r: operand(release),
                        out,
                    },
                    Op::Mul { inputs } => Step::Mul {
                        inputs: inputs.iter().map(operand).collect(),
                        out,
                    },
                    Op::Add { inputs } => Step::Add {
                        inputs: inputs.iter().map(operand).collect(),
                        out,
                    },
                    Op::Tanh { input, drive } => Step::Tanh {
                        input: operand(input),
                        drive: operand(drive),
                        out,
                    },
                    Op::MidiToHz { input } => Step::MidiToHz {
                        input: operand(input),
                        out,
                    },
                }
            })
            .collect();
        let output = match &self.output {
            Input::Ref(Ref::Node(id)) if !node_index.contains_key(id) => {
                return Err(err("output".into(), format!("unknown node {id:?}")));
            }
            Input::Ref(Ref::Control(c)) if !control_index.contains_key(c) => {
                return Err(err("output".into(), format!("unknown control {c:?}")));
            }
            Input::Const(v) if !v.is_finite() => {
                return Err(err("output".into(), format!("constant {v} is not finite")));
            }
            other => operand(other),
        };
        let constants = constants.into_inner();
        Ok(Program {
            name: self.name.clone(),
            controls: self.controls.clone(),
            steps,
            buffers: base + self.nodes.len() + constants.len(),
            output,
            constants,
        })
    }
}

impl Op {
    fn inputs(&self) -> Vec<&Input> {
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
            Op::MidiToHz { input } => vec![input],
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
        // env(4), osc(6) before flt(7) before amp(5)
        let pos = |b| outs.iter().position(|&o| o == b).unwrap();
        assert!(pos(6) < pos(7) && pos(7) < pos(5) && pos(4) < pos(5));
        assert_eq!(p.buffers, 8 + p.constants.len());
        assert!(!p.constants.is_empty());
        for (i, (k, _)) in p.constants.iter().enumerate() {
            assert_eq!(*k, 8 + i, "constants follow the node outputs");
        }
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
