//! Compiling a [`SynthDef`] into a [`Program`], in three steps: **validate** (names resolve,
//! numbers are finite, defaults within ranges, a delay's `max` is a constant), **sort** (the
//! nodes in dependency order; a cycle that does not pass through a feedback edge is refused
//! naming a node on it), **lower** (each node to a step over numbered buffers, constants
//! shared, feedback reads first and their writes last). Off the audio thread, once per build.

use std::collections::HashMap;

use crate::ir::{
    DefError, FIRST_CONTROL, INPUT, Input, Op, Operand, Program, Ref, STANDARD, Step, SynthDef,
};
use crate::prim::{KernelKind, MAX_DELAY_S};

/// What validation resolved: buffers of the controls, indices of the nodes, and each node's
/// dependencies (feedback inputs excluded).
struct Names {
    controls: HashMap<String, usize>,
    nodes: HashMap<String, usize>,
    deps: Vec<Vec<usize>>,
}

impl SynthDef {
    /// Validates and compiles.
    pub fn compile(&self) -> Result<Program, DefError> {
        let names = self.validate()?;
        let order = self.sort(&names.deps)?;
        Ok(self.lower(&names, order))
    }

    fn err(&self, place: String, message: String) -> DefError {
        DefError {
            synth: self.name.clone(),
            place,
            message,
        }
    }

    /// Names resolve, numbers are finite, ranges hold; a kernel's `max` is a constant.
    fn validate(&self) -> Result<Names, DefError> {
        let mut controls = HashMap::new();
        for (name, buffer) in STANDARD {
            controls.insert(name.to_string(), buffer);
        }
        for (i, c) in self.controls.iter().enumerate() {
            let place = format!("control {:?}", c.name);
            if controls.insert(c.name.clone(), FIRST_CONTROL + i).is_some() {
                return Err(self.err(place, "defined twice (or shadows freq/gate/vel/bpm)".into()));
            }
            if !(c.min.is_finite() && c.max.is_finite() && c.default.is_finite()) {
                return Err(self.err(place, "min, max and default must be finite".into()));
            }
            if c.min > c.max || !(c.min..=c.max).contains(&c.default) {
                return Err(self.err(
                    place,
                    format!("default {} is outside {}..={}", c.default, c.min, c.max),
                ));
            }
        }
        let mut nodes = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if nodes.insert(n.id.clone(), i).is_some() {
                return Err(self.err(format!("node {:?}", n.id), "id used twice".into()));
            }
        }
        let check = |input: &Input, place: &dyn Fn() -> String| -> Result<(), DefError> {
            match input {
                Input::Const(v) if !v.is_finite() => {
                    Err(self.err(place(), format!("constant {v} is not finite")))
                }
                Input::Ref(Ref::Control(c)) if !controls.contains_key(c) => {
                    Err(self.err(place(), format!("unknown control {c:?}")))
                }
                Input::Ref(Ref::Node(id)) if !nodes.contains_key(id) => {
                    Err(self.err(place(), format!("unknown node {id:?}")))
                }
                _ => Ok(()),
            }
        };
        let mut deps = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let place = || format!("node {:?}", n.id);
            for input in n.op.inputs() {
                check(input, &place)?;
                // A feedback edge reads its input a block late: not a dependency, so it may
                // close a cycle.
                if let Input::Ref(Ref::Node(id)) = input
                    && !matches!(n.op, Op::Feedback { .. })
                {
                    deps[i].push(nodes[id]);
                }
            }
            if let Op::Kernel { kernel, args } = &n.op {
                max_delay(*kernel, args).map_err(|m| self.err(place(), m))?;
            }
        }
        check(&self.output, &|| "output".to_string())?;
        Ok(Names {
            controls,
            nodes,
            deps,
        })
    }

    /// The nodes in dependency order (depth-first), feedback reads first; a cycle is refused
    /// naming a node on it.
    fn sort(&self, deps: &[Vec<usize>]) -> Result<Vec<usize>, DefError> {
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
                            return Err(self.err(
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
        // Feedback reads depend on nothing this block: they run first.
        order.sort_by_key(|&i| !matches!(self.nodes[i].op, Op::Feedback { .. }));
        Ok(order)
    }

    /// Steps over numbered buffers: the voice inputs, the controls, one per node, then the
    /// constants (one buffer per distinct value).
    fn lower(&self, names: &Names, order: Vec<usize>) -> Program {
        let base = FIRST_CONTROL + self.controls.len();
        let mut constants = Vec::<(usize, f32)>::new();
        let mut operand = |input: &Input| -> Operand {
            match input {
                Input::Const(v) => match constants.iter().find(|(_, x)| x.to_bits() == v.to_bits())
                {
                    Some(&(k, _)) => k,
                    None => {
                        let k = base + self.nodes.len() + constants.len();
                        constants.push((k, *v));
                        k
                    }
                },
                Input::Ref(Ref::Control(c)) => names.controls[c],
                Input::Ref(Ref::Node(id)) => base + names.nodes[id],
                Input::Ref(Ref::Input) => INPUT,
            }
        };
        let zero = Input::Const(0.0);
        let mut steps: Vec<Step> = Vec::with_capacity(order.len());
        for &i in &order {
            let out = base + i;
            let step = match &self.nodes[i].op {
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
                    inputs: inputs.iter().map(&mut operand).collect(),
                    out,
                },
                Op::Add { inputs } => Step::Add {
                    inputs: inputs.iter().map(&mut operand).collect(),
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
                Op::Fun { fun, args } => Step::Fun {
                    fun: *fun,
                    args: std::array::from_fn(|k| operand(args.get(k).unwrap_or(&zero))),
                    out,
                },
                Op::Kernel { kernel, args } => Step::Kernel {
                    kernel: *kernel,
                    args: std::array::from_fn(|k| operand(args.get(k).unwrap_or(&zero))),
                    // Validated.
                    max_s: max_delay(*kernel, args).unwrap_or(0.0),
                    out,
                },
                Op::Feedback { .. } => Step::FeedbackRead { out },
            };
            steps.push(step);
        }
        // Each feedback edge's write, after everything it may read.
        for (read, &i) in order.iter().enumerate() {
            if let Op::Feedback { input } = &self.nodes[i].op {
                steps.push(Step::FeedbackWrite {
                    input: operand(input),
                    read,
                });
            }
        }
        let output = operand(&self.output);
        let reads_input = self.reads_input();
        Program {
            name: self.name.clone(),
            controls: self.controls.clone(),
            reads_input,
            steps,
            buffers: base + self.nodes.len() + constants.len(),
            output,
            constants,
        }
    }
}

/// A kernel's `max` input (its longest delay, s): a constant within 0 ..= [`MAX_DELAY_S`];
/// 0 for kernels without one.
fn max_delay(kernel: KernelKind, args: &[Input]) -> Result<f32, String> {
    let Some(k) = kernel.args().iter().position(|a| a.name == "max") else {
        return Ok(0.0);
    };
    match args.get(k) {
        Some(Input::Const(v)) if (0.0..=MAX_DELAY_S).contains(v) => Ok(*v),
        _ => Err(format!(
            "\"max\" must be a number of seconds within 0..={MAX_DELAY_S}"
        )),
    }
}
