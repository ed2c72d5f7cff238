//! Compiling a [`SynthDef`] into a [`Program`], in three steps: **validate** (names resolve,
//! numbers are finite, defaults within ranges, constants within the ranges their primitives
//! declare, a delay's `max` is a constant), **sort** (the
//! nodes in dependency order; a cycle that does not pass through a feedback edge is refused
//! naming a node on it), **lower** (each node to a step over numbered buffers — one per
//! channel where its input is stereo — constants shared, feedback reads first and their
//! writes last). Off the audio thread, once per build.

use std::collections::HashMap;

use crate::ir::{
    DefError, FIRST_CONTROL, INPUT, INPUT_RIGHT, Input, Op, Program, Ref, STANDARD, Step, SynthDef,
};
use crate::prim::{self, Chan, Fun, KernelKind, MAX_DELAY_S};

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
        // A definition whose output is stereo with a mono input (it pans) takes a stereo
        // input, if it reads one: a stereo effect sees both channels.
        let mut input = 1;
        let mut widths = self.widths(&names, input);
        if self.reads_input() && width(&self.output, &names, &widths, input) == 2 {
            input = 2;
            widths = self.widths(&names, input);
        }
        Ok(self.lower(&names, order, &widths, input))
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
            // A constant outside the range its primitive declares (the core filter's and
            // pulse's as in the vocabulary table).
            let declared = match &n.op {
                Op::Kernel { kernel, .. } => kernel.args(),
                Op::Chan { chan, .. } => chan.args(),
                Op::Filter { .. } => prim::lookup("lowpass").map_or(&[][..], |(_, a)| a),
                Op::Osc { .. } => prim::lookup("pulse").map_or(&[][..], |(_, a)| a),
                _ => &[],
            };
            for (arg, input) in declared.iter().zip(n.op.inputs()) {
                if let Input::Const(v) = input
                    && let Some(m) = arg.refuse(*v)
                {
                    return Err(self.err(place(), m));
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

    /// Each node's channels (1 or 2) when the input has `input` channels: two for `pan` and
    /// `stereo`, one for `left` and `right`, otherwise the most of its inputs' — so a node
    /// with a stereo input runs once per channel. Found by iterating to the fixed point (a
    /// feedback edge's width may depend on itself; widths only grow, to at most 2).
    fn widths(&self, names: &Names, input: usize) -> Vec<usize> {
        let mut widths = vec![1; self.nodes.len()];
        loop {
            let mut changed = false;
            for (i, n) in self.nodes.iter().enumerate() {
                let w = match &n.op {
                    Op::Chan {
                        chan: Chan::Pan | Chan::Stereo,
                        ..
                    } => 2,
                    Op::Chan {
                        chan: Chan::Left | Chan::Right,
                        ..
                    } => 1,
                    op => op
                        .inputs()
                        .into_iter()
                        .map(|x| width(x, names, &widths, input))
                        .max()
                        .unwrap_or(1),
                };
                if w > widths[i] {
                    widths[i] = w;
                    changed = true;
                }
            }
            if !changed {
                return widths;
            }
        }
    }

    /// Steps over numbered buffers: the voice inputs, the controls, one per node and channel,
    /// then the constants (one buffer per distinct value). A node with two channels becomes
    /// two steps; `left`, `right` and `stereo` become no step, only a choice of buffers.
    fn lower(&self, names: &Names, order: Vec<usize>, widths: &[usize], input: usize) -> Program {
        let base = FIRST_CONTROL + self.controls.len();
        let alias = |op: &Op| {
            matches!(
                op,
                Op::Chan {
                    chan: Chan::Left | Chan::Right | Chan::Stereo,
                    ..
                }
            )
        };
        // Each node's buffers, left and right: its own, or (an alias) those it picks.
        let mut bufs = vec![[0usize; 2]; self.nodes.len()];
        let mut next = base;
        for (i, n) in self.nodes.iter().enumerate() {
            if !alias(&n.op) {
                bufs[i] = [next, next + widths[i] - 1];
                next += widths[i];
            }
        }
        let first_constant = next;
        let mut constants = Vec::<(usize, f32)>::new();
        let mut constant = |v: f32| match constants.iter().find(|(_, x)| x.to_bits() == v.to_bits())
        {
            Some(&(k, _)) => k,
            None => {
                let k = first_constant + constants.len();
                constants.push((k, v));
                k
            }
        };
        // Channel `c` of an input (a mono input's only channel for either); aliases resolve
        // in dependency order, so the nodes they pick are resolved before them.
        let operand =
            |x: &Input, c: usize, bufs: &[[usize; 2]], constant: &mut dyn FnMut(f32) -> usize| {
                match x {
                    Input::Const(v) => constant(*v),
                    Input::Ref(Ref::Control(name)) => names.controls[name],
                    Input::Ref(Ref::Node(id)) => bufs[names.nodes[id]][c],
                    Input::Ref(Ref::Input) if c == 1 && input == 2 => INPUT_RIGHT,
                    Input::Ref(Ref::Input) => INPUT,
                }
            };
        let zero = Input::Const(0.0);
        let mut steps: Vec<Step> = Vec::with_capacity(order.len());
        // Noise steps so far: each draws its own numbers.
        let mut noises = 0u32;
        // The step reading each feedback edge, per channel.
        let mut reads = vec![[0usize; 2]; self.nodes.len()];
        for &i in &order {
            if let Op::Chan { chan, args } = &self.nodes[i].op
                && alias(&self.nodes[i].op)
            {
                let arg = |k: usize| args.get(k).unwrap_or(&zero);
                bufs[i] = match chan {
                    Chan::Left => [operand(arg(0), 0, &bufs, &mut constant); 2],
                    Chan::Right => [operand(arg(0), 1, &bufs, &mut constant); 2],
                    _ => [
                        operand(arg(0), 0, &bufs, &mut constant),
                        operand(arg(1), 1, &bufs, &mut constant),
                    ],
                };
                continue;
            }
            for c in 0..widths[i] {
                let out = bufs[i][0] + c;
                let mut op = |x: &Input| operand(x, c, &bufs, &mut constant);
                let step = match &self.nodes[i].op {
                    Op::Osc { wave, freq, width } => Step::Osc {
                        wave: *wave,
                        freq: op(freq),
                        width: op(width),
                        out,
                    },
                    Op::Noise { pink } => {
                        noises += 1;
                        Step::Noise {
                            pink: *pink,
                            salt: noises - 1,
                            out,
                        }
                    }
                    Op::Filter {
                        mode,
                        input,
                        cutoff,
                        resonance,
                    } => Step::Filter {
                        mode: *mode,
                        input: op(input),
                        cutoff: op(cutoff),
                        resonance: op(resonance),
                        out,
                    },
                    Op::Adsr {
                        gate,
                        attack,
                        decay,
                        sustain,
                        release,
                    } => Step::Adsr {
                        gate: op(gate),
                        a: op(attack),
                        d: op(decay),
                        s: op(sustain),
                        r: op(release),
                        out,
                    },
                    Op::Mul { inputs } => Step::Mul {
                        inputs: inputs.iter().map(&mut op).collect(),
                        out,
                    },
                    Op::Add { inputs } => Step::Add {
                        inputs: inputs.iter().map(&mut op).collect(),
                        out,
                    },
                    Op::Tanh { input, drive } => Step::Tanh {
                        input: op(input),
                        drive: op(drive),
                        out,
                    },
                    Op::MidiToHz { input } => Step::MidiToHz {
                        input: op(input),
                        out,
                    },
                    Op::Fun { fun, args } => Step::Fun {
                        fun: *fun,
                        args: std::array::from_fn(|k| op(args.get(k).unwrap_or(&zero))),
                        out,
                    },
                    // Only `pan` gets here (the other channel primitives picked buffers
                    // above): its two channels are its law's two gains.
                    Op::Chan { args, .. } => Step::Fun {
                        fun: [Fun::PanLeft, Fun::PanRight][c],
                        args: std::array::from_fn(|k| op(args.get(k).unwrap_or(&zero))),
                        out,
                    },
                    Op::Kernel { kernel, args } => Step::Kernel {
                        kernel: *kernel,
                        args: std::array::from_fn(|k| op(args.get(k).unwrap_or(&zero))),
                        // Validated.
                        max_s: max_delay(*kernel, args).unwrap_or(0.0),
                        out,
                    },
                    Op::Feedback { .. } => {
                        reads[i][c] = steps.len();
                        Step::FeedbackRead { out }
                    }
                };
                steps.push(step);
            }
        }
        // Each feedback edge's write, after everything it may read.
        for &i in &order {
            if let Op::Feedback { input } = &self.nodes[i].op {
                for (c, &read) in reads[i][..widths[i]].iter().enumerate() {
                    steps.push(Step::FeedbackWrite {
                        input: operand(input, c, &bufs, &mut constant),
                        read,
                    });
                }
            }
        }
        let output = [0, 1].map(|c| operand(&self.output, c, &bufs, &mut constant));
        let stereo = width(&self.output, names, widths, input) == 2;
        Program {
            name: self.name.clone(),
            controls: self.controls.clone(),
            reads_input: self.reads_input(),
            stereo,
            steps,
            buffers: first_constant + constants.len(),
            output,
            constants,
        }
    }
}

/// An input's channels.
fn width(x: &Input, names: &Names, widths: &[usize], input: usize) -> usize {
    match x {
        Input::Ref(Ref::Node(id)) => names.nodes.get(id).map_or(1, |&i| widths[i]),
        Input::Ref(Ref::Input) => input,
        _ => 1,
    }
}

/// A kernel's `max` input (its longest delay, s): a constant (its range is declared in the
/// vocabulary and checked with the other inputs'); 0 for kernels without one.
fn max_delay(kernel: KernelKind, args: &[Input]) -> Result<f32, String> {
    let Some(k) = kernel.args().iter().position(|a| a.name == "max") else {
        return Ok(0.0);
    };
    match args.get(k) {
        Some(Input::Const(v)) => Ok(*v),
        _ => Err(format!(
            "\"max\" must be a number of seconds within 0..={MAX_DELAY_S}"
        )),
    }
}
