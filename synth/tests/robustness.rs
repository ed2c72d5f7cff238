//! Bad definitions, NaN controls and absurd values: an error or clamping, never a panic and
//! never a NaN at the output.

use khorus_synth::dsp::filter::Mode;
use khorus_synth::dsp::osc::Wave;
use khorus_synth::graph::{EffectSpec, GraphSpec, InstrumentSpec, Sends};
use khorus_synth::ir::{Input, NodeDef, Op, Ref, SynthDef};
use khorus_synth::prim::{Chan, Fun, KernelKind};
use khorus_synth::render::render;
use proptest::prelude::*;

use crate::util::note;

fn number() -> impl Strategy<Value = f32> {
    prop_oneof![
        -1e6f32..1e6,
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(0.0),
        Just(1e30),
        Just(-1e30),
    ]
}

fn input(nodes: usize) -> impl Strategy<Value = Input> {
    prop_oneof![
        number().prop_map(Input::Const),
        (0..nodes.max(1) + 2).prop_map(|i| Input::Ref(Ref::Node(format!("n{i}")))),
        prop::sample::select(vec!["freq", "gate", "vel", "nope"])
            .prop_map(|c| Input::Ref(Ref::Control(c.to_string()))),
        Just(Input::Ref(Ref::Input)),
    ]
}

fn op(nodes: usize) -> impl Strategy<Value = Op> {
    let i = move || input(nodes);
    prop_oneof![
        (
            prop::sample::select(vec![Wave::Sine, Wave::Saw, Wave::Pulse, Wave::Triangle]),
            i(),
            i()
        )
            .prop_map(|(wave, freq, width)| Op::Osc { wave, freq, width }),
        any::<bool>().prop_map(|pink| Op::Noise { pink }),
        (
            prop::sample::select(vec![Mode::Lowpass, Mode::Highpass, Mode::Bandpass]),
            i(),
            i(),
            i()
        )
            .prop_map(|(mode, input, cutoff, resonance)| Op::Filter {
                mode,
                input,
                cutoff,
                resonance
            }),
        (i(), i(), i(), i(), i()).prop_map(|(gate, attack, decay, sustain, release)| Op::Adsr {
            gate,
            attack,
            decay,
            sustain,
            release
        }),
        prop::collection::vec(i(), 0..4).prop_map(|inputs| Op::Mul { inputs }),
        prop::collection::vec(i(), 0..4).prop_map(|inputs| Op::Add { inputs }),
        (i(), i()).prop_map(|(input, drive)| Op::Tanh { input, drive }),
        i().prop_map(|input| Op::MidiToHz { input }),
        (
            prop::sample::select(Fun::ALL),
            prop::collection::vec(i(), 0..4)
        )
            .prop_map(|(fun, args)| Op::Fun { fun, args }),
        (
            prop::sample::select(KernelKind::ALL),
            prop::collection::vec(i(), 0..6)
        )
            .prop_map(|(kernel, args)| Op::Kernel { kernel, args }),
        i().prop_map(|input| Op::Feedback { input }),
        (
            prop::sample::select(vec![Chan::Pan, Chan::Stereo, Chan::Left, Chan::Right]),
            prop::collection::vec(i(), 0..3)
        )
            .prop_map(|(chan, args)| Op::Chan { chan, args }),
    ]
}

fn def() -> impl Strategy<Value = SynthDef> {
    (1usize..6).prop_flat_map(|n| {
        (prop::collection::vec(op(n), n), input(n)).prop_map(move |(ops, output)| SynthDef {
            name: "fuzz".into(),
            controls: vec![],
            nodes: ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| NodeDef {
                    id: format!("n{i}"),
                    op,
                })
                .collect(),
            output,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_definition_is_rejected_or_renders_finite_audio(
        def in def(),
        notes in prop::collection::vec((number(), number(), -1e3f64..1e3), 1..12),
    ) {
        // A definition that reads the input is an effect, fed by the built-in bass.
        let effect = def.reads_input();
        let instrument = InstrumentSpec {
            name: None,
            builtin: effect.then(|| "bass".to_string()),
            def: (!effect).then(|| def.clone()),
            polyphony: 4,
            gain: 1.0,
            pan: 0.0,
            sends: [0.5, 0.5].into(),
            controls: Default::default(),
        };
        let mut spec = GraphSpec {
            instruments: vec![instrument],
            effects: vec![],
            ids: Default::default(),
        };
        if effect {
            spec.effects.push(EffectSpec::Def {
                name: "fx".into(),
                def,
                controls: Default::default(),
                ret: 1.0,
                sends: Default::default(),
            });
            spec.instruments[0].sends = Sends::Named([("fx".to_string(), 1.0)].into());
        }
        let Ok(mut engine) = spec.build(48_000.0) else { return Ok(()) };
        let list: Vec<_> = notes
            .iter()
            .enumerate()
            .map(|(i, &(midi, vel, _))| {
                let mut n = note(i as f64 * 0.01, 0.02, 60.0, 0.5);
                n.note = midi;
                n.velocity = vel;
                n
            })
            .collect();
        for (i, &(_, value, _)) in notes.iter().enumerate() {
            engine.schedule_set(i as u64 * 100, 0, i % 4, value);
        }
        let (l, r) = render(&mut engine, &list, 0, 0.2);
        for x in l.iter().chain(&r) {
            prop_assert!(x.is_finite() && x.abs() <= 0.9, "{x}");
        }
    }
}
