//! Graph edits node by node: what a new graph shares with the one playing keeps sounding bit
//! for bit; a replaced node crossfades at constant power; a removed node leaves the effects it
//! fed ringing. Offline engines are compared sample for sample with renders without the edit.

use khorus_bus::Role;
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_synth::dsp::BLOCK;
use khorus_synth::edit::Carry;
use khorus_synth::engine::{Engine, Note};
use khorus_synth::graph::GraphSpec;

const RATE: f32 = 48_000.0;

/// A definition named `name`: an oscillator of `wave` at `ratio` × the note's pitch under a
/// sustaining envelope, times `amp`.
fn def(name: &str, wave: &str, ratio: f32, amp: f32) -> String {
    format!(
        r#"{{"name":"{name}","controls":[{{"name":"cutoff","default":3000,"min":50,"max":8000}}],"nodes":[
        {{"id":"f","type":"mul","inputs":[{{"control":"freq"}},{ratio}]}},
        {{"id":"o","type":"osc","wave":"{wave}","freq":{{"node":"f"}}}},
        {{"id":"lp","type":"filter","mode":"lowpass","input":{{"node":"o"}},"cutoff":{{"control":"cutoff"}}}},
        {{"id":"env","type":"adsr","gate":{{"control":"gate"}},"attack":0.002,"decay":0.1,"sustain":1,"release":0.05}},
        {{"id":"out","type":"mul","inputs":[{{"node":"lp"}},{{"node":"env"}},{amp}]}}],
        "output":{{"node":"out"}}}}"#
    )
}

/// An instrument entry of a graph file.
fn inst(name: &str, def: &str, extra: &str) -> String {
    format!(r#"{{"name":"{name}","polyphony":4,"pan":0,{extra}"def":{def}}}"#)
}

fn build(json: &str) -> Engine {
    GraphSpec::from_json(json).unwrap().build(RATE).unwrap()
}

/// `new` takes over from `old` as the audio thread does at a swap.
fn edit(old: &mut Engine, mut new: Engine, fade_frames: u32) -> Engine {
    new.set_carry(Carry::between(&old.outline(), &new.outline()));
    new.transplant(old, fade_frames);
    new
}

/// A note on node `node` (positional ids: node i + 1 is instrument i).
fn note(frame: u64, dur_frames: u64, node: u32, midi: f32) -> Note {
    Note {
        frame,
        dur_frames,
        node,
        note: midi,
        velocity: 0.8,
        role: Role::Melody,
    }
}

fn block(e: &mut Engine) {
    let (mut l, mut r) = ([0.0; BLOCK], [0.0; BLOCK]);
    e.render(&mut l, &mut r);
}

#[test]
fn replacing_one_instrument_leaves_another_ones_held_note_sample_for_sample() {
    let held = def("held", "saw", 1.0, 0.3);
    let before = format!(
        "{{\"instruments\":[{},{}]}}",
        inst("held", &held, ""),
        inst("other", &def("other", "pulse", 1.0, 0.3), "")
    );
    // The other instrument replaced by another definition, and listed first: `held` moves to
    // index 1 and is still carried, by name.
    let after = format!(
        "{{\"instruments\":[{},{}]}}",
        inst("other", &def("other2", "triangle", 2.0, 0.3), ""),
        inst("held", &held, "")
    );
    let mut reference = build(&before);
    let mut edited = build(&before);
    // A note held across the edit, one still queued at the edit (it must play at its frame
    // after it), and notes on the other instrument on both sides.
    for e in [&mut reference, &mut edited] {
        e.schedule(note(100, 96_000, 1, 45.0));
        e.schedule(note(30_000, 20_000, 1, 52.0));
        e.schedule(note(0, 40_000, 2, 60.0));
    }
    let edit_block = 300; // frame 19 200
    let mut compared = 0;
    let mut loud = 0.0f32;
    for b in 0..1500 {
        if b == edit_block {
            let next = build(&after);
            edited = edit(&mut edited, next, 2880);
        }
        block(&mut reference);
        block(&mut edited);
        let held_index = if b >= edit_block { 1 } else { 0 };
        let want = reference.instrument_output(0, BLOCK).unwrap();
        let got = edited.instrument_output(held_index, BLOCK).unwrap();
        for ch in 0..2 {
            for (i, (a, b2)) in want[ch].iter().zip(got[ch]).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b2.to_bits(),
                    "block {b} frame {i} channel {ch}: {a} vs {b2}"
                );
                loud = loud.max(a.abs());
                compared += 1;
            }
        }
    }
    assert!(loud > 0.05, "the held note sounds ({loud})");
    assert_eq!(compared, 1500 * BLOCK * 2);
    // The note queued before the edit for frame 30 000 was moved to the new engine and
    // started there (the comparison above shows at its frame).
    assert_eq!(edited.stats().notes, 1);
}

#[test]
fn removing_a_node_leaves_an_unchanged_reverbs_tail_intact() {
    let verb = r#"{"name":"verb","type":"reverb","room":0.9,"damp":0.2,"return":1}"#;
    let before = format!(
        "{{\"instruments\":[{},{}],\"effects\":[{verb}]}}",
        inst("a", &def("a", "saw", 1.0, 0.3), r#""sends":{"verb":1},"#),
        inst("b", &def("b", "sine", 1.0, 0.3), r#""sends":{"verb":0.5},"#)
    );
    let after = format!(
        "{{\"instruments\":[{}],\"effects\":[{verb}]}}",
        inst("a", &def("a", "saw", 1.0, 0.3), r#""sends":{"verb":1},"#)
    );
    let mut reference = build(&before);
    let mut edited = build(&before);
    for e in [&mut reference, &mut edited] {
        e.schedule(note(0, 4800, 1, 57.0));
    }
    let mut tail = 0.0f32;
    for b in 0..1000 {
        if b == 150 {
            // 0.2 s: the note has ended, the reverb rings.
            edited = edit(&mut edited, build(&after), 2880);
        }
        block(&mut reference);
        block(&mut edited);
        let want = reference.effects()[0].output(BLOCK);
        let got = edited.effects()[0].output(BLOCK);
        assert_eq!(want, got, "block {b}: the reverb's output differs");
        if b > 150 {
            tail = tail.max(want[0].iter().fold(0.0f32, |m, x| m.max(x.abs())));
        }
    }
    assert!(
        tail > 1e-3,
        "the reverb was still ringing after the edit ({tail})"
    );
    assert_eq!(edited.instruments().len(), 1);
}

#[test]
fn a_changed_gain_of_a_kept_node_glides_and_its_automation_goes_on() {
    let held = def("held", "sine", 1.0, 0.3);
    let before = format!("{{\"instruments\":[{}]}}", inst("held", &held, ""));
    let after = format!(
        "{{\"instruments\":[{}]}}",
        inst("held", &held, r#""gain":0.5,"#)
    );
    let mut e = build(&before);
    e.schedule(note(0, 96_000, 1, 69.0));
    // Automation of the cutoff (parameter 2), which the new graph does not change: it must
    // not be reset by the edit.
    e.schedule_set(0, 0, 2, 200.0);
    let mut out = Vec::new();
    for b in 0..600 {
        if b == 200 {
            e = edit(&mut e, build(&after), 2880);
        }
        block(&mut e);
        out.extend_from_slice(e.instrument_output(0, BLOCK).unwrap()[0]);
    }
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let (was, is) = (rms(&out[9600..12_800]), rms(&out[30_000..38_400]));
    let ratio = 20.0 * (is / was).log10();
    assert!((ratio + 6.02).abs() < 0.1, "gain 1 → 0.5: {ratio:.2} dB");
    // A sine well below the 200 Hz cutoff moves at most A·2π·440/48000 per sample; the glide
    // adds nothing near a step.
    let amp = out[9600..12_800].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let limit = amp * std::f32::consts::TAU * 440.0 / RATE * 1.1;
    let step = out[12_700..14_000]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(step < limit, "largest step {step} (limit {limit})");
    // The cutoff is still 200 Hz: a 440 Hz sine through a 2-pole low-pass at 200 Hz is far
    // quieter than at 3 kHz (the default a reset would bring back).
    let mut open = build(&after);
    open.schedule(note(0, 96_000, 1, 69.0));
    let mut reference = Vec::new();
    for _ in 0..600 {
        block(&mut open);
        reference.extend_from_slice(open.instrument_output(0, BLOCK).unwrap()[0]);
    }
    assert!(
        rms(&out[30_000..38_400]) < 0.5 * rms(&reference[30_000..38_400]),
        "the automated cutoff survived the edit"
    );
}

/// Through the controller and the real-time renderer: one node redefined while it holds a
/// note. The held note goes on in the new definition, fading in along a quarter sine while
/// the old one fades out along a quarter cosine.
#[test]
fn a_replaced_node_crossfades_its_held_note_at_constant_power_without_steps() {
    use std::sync::Arc;

    use khorus_bus::{StageKind, StageStatus};
    use khorus_synth::command::Controller;
    use khorus_synth::rt::{Clock, Incoming, RtStats};

    let graph = |ratio: f32| {
        format!(
            "{{\"instruments\":[{}]}}",
            inst("voice", &def("v", "sine", ratio, 0.3), "")
        )
    };
    let engine = build(&graph(1.0));
    let (mut c, mut r) = Controller::new(engine, Arc::new(RtStats::default()), 8192);
    let mut clock = Clock { buffer_start_ns: 0 };
    // 200 Hz held; the new definition plays it at 1.5 × = 300 Hz: over 10 ms windows the two
    // are orthogonal, so only an equal-power fade keeps the power constant.
    let mut n = crate::util::note(0.0, 10.0, 69.0 + 12.0 * (200.0f32 / 440.0).log2(), 1.0);
    n.node = 1;
    c.push(Incoming::Note(n));
    let mut left = Vec::new();
    let play = |r: &mut khorus_synth::rt::Renderer, clock: &mut Clock, frames: usize| {
        let mut out: Vec<f32> = Vec::new();
        while out.len() < frames {
            out.extend(r.fill(*clock, 256).iter().step_by(2));
            clock.buffer_start_ns += (256.0 * 1e9 / RATE as f64) as i64;
        }
        out
    };
    left.extend(play(&mut r, &mut clock, 24_064));
    let swap_at = left.len();
    let load = SynthCommand::LoadGraph {
        json: graph(1.5),
        fade_ms: 200,
    };
    let status = || StageStatus::new(StageKind::Synth);
    assert_eq!(c.handle(load, status), Ok(SynthReply::Applied));
    left.extend(play(&mut r, &mut clock, 48_000));
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let reference = rms(&left[swap_at - 9600..swap_at]);
    let worst = (swap_at - 4800..swap_at + 9600 + 14_400)
        .step_by(480)
        .map(|i| 20.0 * (rms(&left[i..i + 480]) / reference).log10())
        .fold(0.0f32, |m, d| if d.abs() > m.abs() { d } else { m });
    assert!(worst.abs() < 0.5, "power moved by {worst:.2} dB");
    // Steps: the two sines (amplitude A each) under cos/sin gains move at most
    // A·2π·√(200² + 300²)/48000 per sample; 20 % more for the gains' own motion.
    let a = left[swap_at - 9600..swap_at]
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()));
    let limit =
        a * std::f32::consts::TAU * (200.0f32.powi(2) + 300.0f32.powi(2)).sqrt() / RATE * 1.2;
    let step = left[swap_at - 480..]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(step < limit, "largest step {step} (limit {limit})");
    let f = crate::util::frequency(&left[left.len() - 9600..], RATE);
    assert!(
        (f - 300.0).abs() < 0.5,
        "the held note plays on the new definition: {f} Hz"
    );
}

/// Node-by-node edit commands through the controller: what they touch changes, nothing else
/// does — the pad's stem is bit for bit what it is without the edits.
#[test]
fn edit_commands_add_remove_and_route_nodes_while_the_rest_plays_on_untouched() {
    use std::sync::Arc;

    use khorus_bus::commands::synth::GraphEdit;
    use khorus_bus::{StageKind, StageStatus};
    use khorus_synth::command::Controller;
    use khorus_synth::rt::{Clock, Incoming, RtStats};

    let rig = || {
        let engine = GraphSpec::default().build(RATE).unwrap();
        let (mut c, r) = Controller::new(engine, Arc::new(RtStats::default()), 8192);
        // The pad (node 1) holds a chord; its stem is slot 0.
        for (k, midi) in [57.0, 60.0, 64.0].into_iter().enumerate() {
            let mut n = crate::util::note(0.01 * k as f64, 5.0, midi, 0.8);
            n.node = 1;
            c.push(Incoming::Note(n));
        }
        (c, r, Clock { buffer_start_ns: 0 })
    };
    let status = || StageStatus::new(StageKind::Synth);
    let edit = |c: &mut Controller, edit: GraphEdit| {
        c.handle(SynthCommand::Edit { edit, fade_ms: 20 }, status)
    };
    let (mut reference, mut plain, mut clock_a) = rig();
    let (mut edited, mut r, mut clock_b) = rig();
    let describe = |c: &mut Controller| match c.handle(SynthCommand::Describe, status) {
        Ok(SynthReply::Graph { json }) => json,
        other => panic!("{other:?}"),
    };
    let edits = [
        GraphEdit::Put {
            json: r#"{"name":"lead2","builtin":"lead","sends":{"reverb":0.3}}"#.into(),
        },
        GraphEdit::Route {
            from: "bass".into(),
            to: "reverb".into(),
            level: 0.5,
        },
        GraphEdit::Put {
            json: r#"{"type":"delay","name":"echo","beats":0.5}"#.into(),
        },
        GraphEdit::Remove {
            node: "lead2".into(),
        },
        GraphEdit::Remove {
            node: "glitch".into(),
        },
    ];
    let mut next = 0;
    let mut loud = 0.0f32;
    for cycle in 0..400 {
        // An edit every 40 callbacks (each one's 20 ms fade is long over by then).
        if cycle % 40 == 20 && next < edits.len() {
            assert_eq!(
                edit(&mut edited, edits[next].clone()),
                Ok(SynthReply::Applied),
                "{:?}",
                edits[next]
            );
            next += 1;
        }
        plain.fill(clock_a, 256);
        r.fill(clock_b, 256);
        let (a, b) = (plain.stem(0, 256), r.stem(0, 256));
        assert_eq!(a, b, "callback {cycle}: the pad's stem changed");
        loud = loud.max(a.iter().fold(0.0f32, |m, x| m.max(x.abs())));
        clock_a.buffer_start_ns += 5_333_333;
        clock_b.buffer_start_ns += 5_333_333;
        edited.collect_retired();
        reference.collect_retired();
    }
    assert_eq!(next, edits.len());
    assert!(loud > 0.01, "the pad sounds ({loud})");
    let graph = describe(&mut edited).expect("a graph");
    let g = GraphSpec::from_json(&graph).unwrap();
    let names: Vec<&str> = g.node_names().collect();
    assert!(names.contains(&"echo") && !names.contains(&"lead2") && !names.contains(&"glitch"));
    assert!(
        graph.contains(r#""reverb":0.5"#),
        "the bass's send: {graph}"
    );
    // Refused edits name what is wrong and change nothing.
    for (bad, words) in [
        (
            GraphEdit::Remove {
                node: "tuba".into(),
            },
            vec!["\"tuba\"", "no such node"],
        ),
        (
            GraphEdit::Route {
                from: "bass".into(),
                to: "pad".into(),
                level: 1.0,
            },
            vec!["\"pad\"", "effect"],
        ),
        (
            GraphEdit::Put {
                json: r#"{"name":"x","builtin":"tuba"}"#.into(),
            },
            vec!["tuba"],
        ),
        (
            GraphEdit::Put {
                json: "{not json".into(),
            },
            vec!["JSON"],
        ),
    ] {
        let e = edit(&mut edited, bad).expect_err("refused").message;
        for w in words {
            assert!(e.contains(w), "{e:?} lacks {w}");
        }
        assert_eq!(describe(&mut edited).as_deref(), Some(graph.as_str()));
    }
}

#[test]
fn a_synth_describes_the_graph_it_started_with_spelled_out_and_the_sets_since() {
    use std::sync::Arc;

    use khorus_bus::{StageKind, StageStatus};
    use khorus_synth::command::Controller;
    use khorus_synth::rt::RtStats;

    let status = || StageStatus::new(StageKind::Synth);
    let describe = |c: &mut Controller| match c.handle(SynthCommand::Describe, status) {
        Ok(SynthReply::Graph { json: Some(json) }) => GraphSpec::from_json(&json).unwrap(),
        other => panic!("{other:?}"),
    };
    // Started with no graph: the built-in patch, every node named, the effects too.
    let engine = GraphSpec::default().build(RATE).unwrap();
    let (mut c, _r) = Controller::new(engine, Arc::new(RtStats::default()), 64);
    let g = describe(&mut c);
    let names: Vec<&str> = g.node_names().collect();
    assert_eq!(
        names,
        [
            "pad", "lead", "bass", "chords", "kick", "click", "hat", "glitch", "delay", "reverb"
        ]
    );
    // A set is recorded in what it describes, on an instrument and on an implied effect alike.
    for (node, param, value) in [("pad", "cutoff", 1200.0), ("reverb", "room", 0.9)] {
        let set = SynthCommand::Set {
            node: node.into(),
            param: param.into(),
            value,
        };
        assert!(matches!(c.handle(set, status), Ok(SynthReply::Applied)));
    }
    let json = serde_json::to_string(&describe(&mut c)).unwrap();
    assert!(json.contains("\"cutoff\":1200.0"), "{json}");
    assert!(json.contains("\"room\":0.9"), "{json}");
    // What it prints builds the same nodes (a render with it plays what the synth played).
    let rebuilt = describe(&mut c).build(RATE).unwrap();
    assert_eq!(
        rebuilt.instruments().len() + rebuilt.effects().len(),
        names.len()
    );

    // Started from a graph file that leaves its effects implied: they are spelled out.
    let file = GraphSpec::from_json(&format!(
        r#"{{"instruments":[{}]}}"#,
        inst(
            "solo",
            &def("solo", "sine", 1.0, 0.5),
            r#""sends":[0.0,0.3],"#
        )
    ))
    .unwrap();
    let (mut c, _r) = Controller::new(file.build(RATE).unwrap(), Arc::new(RtStats::default()), 64);
    c.started_from(file);
    let g = describe(&mut c);
    assert_eq!(
        g.node_names().collect::<Vec<_>>(),
        ["solo", "delay", "reverb"]
    );
    let json = serde_json::to_string(&g).unwrap();
    assert!(json.contains("\"sends\":{\"reverb\":0.3}"), "{json}");
}
