//! The definition vocabulary as users write it: oscillators and filters by name measured
//! against their references, a user-defined effect with a feedback edge rendered to the frame,
//! and the refusals that name the node at fault.

use khorus_synth::engine::Engine;
use khorus_synth::graph::GraphSpec;
use khorus_synth::instrument::PerChannel;
use khorus_synth::ir::SynthDef;
use khorus_synth::params::ParamTable;
use khorus_synth::render::render;

use crate::util::{frequency, graph_of, note, rms, spectrum};

const RATE: f32 = 48_000.0;

/// An instrument playing `node` (JSON of one node with id "o") under its gate.
fn voice(node: &str) -> String {
    format!(
        r#"{{"name":"t","nodes":[{node},
        {{"id":"out","type":"mul","inputs":[{{"node":"o"}},{{"control":"gate"}},0.5]}}],
        "output":{{"node":"out"}}}}"#
    )
}

fn midi(hz: f32) -> f32 {
    69.0 + 12.0 * (hz / 440.0).log2()
}

fn play(def: &str, hz: f32, seconds: f32) -> Vec<f32> {
    let mut engine = graph_of(def, 1).build(RATE).unwrap();
    render(&mut engine, &[note(0.0, 10.0, midi(hz), 1.0)], 0, seconds).0
}

#[test]
fn oscillators_by_name_sound_at_their_pitch_without_aliases() {
    for wave in ["sine", "saw", "square", "triangle", "pulse"] {
        let node = format!(r#"{{"id":"o","type":"{wave}","freq":{{"control":"freq"}}}}"#);
        let x = play(&voice(&node), 440.0, 0.3);
        let f = frequency(&x[4800..], RATE);
        assert!((f - 440.0).abs() < 0.1, "{wave}: {f} Hz");
        if wave == "sine" || wave == "saw" {
            continue; // the sine has no harmonics; the saw is measured in `offline`
        }
        // At 5 kHz, everything that is not a harmonic stays 40 dB under the fundamental.
        let x = play(&voice(&node), 5000.0, 0.25);
        let spec = spectrum(&x[4800..9600]); // 10 Hz bins
        let bin_hz = RATE as f64 / 4800.0;
        let fundamental = spec[(5000.0 / bin_hz) as usize];
        let worst = spec
            .iter()
            .enumerate()
            .filter(|&(k, _)| {
                let f = k as f64 * bin_hz;
                f > 30.0 && !(1..=4).any(|h| (f - 5000.0 * h as f64).abs() < 40.0)
            })
            .map(|(_, &m)| 20.0 * (m / fundamental).log10())
            .fold(f64::MIN, f64::max);
        assert!(worst <= -40.0, "{wave}: strongest alias {worst:.1} dBc");
    }
}

#[test]
fn filters_by_name_cut_where_they_should() {
    // White noise would need long averages; sines at a few frequencies through each filter
    // at 1 kHz, against the unfiltered sine.
    let through = |mode: &str, hz: f32| {
        let node = format!(
            r#"{{"id":"s","type":"sine","freq":{{"control":"freq"}}}},
            {{"id":"o","type":"{mode}","input":{{"node":"s"}},"cutoff":1000}}"#
        );
        let filtered = play(&voice(&node), hz, 0.3);
        let dry = play(
            &voice(r#"{"id":"o","type":"sine","freq":{"control":"freq"}}"#),
            hz,
            0.3,
        );
        20.0 * (rms(&filtered[4800..]) / rms(&dry[4800..])).log10()
    };
    let lp = [through("lowpass", 250.0), through("lowpass", 4000.0)];
    assert!(lp[0].abs() < 1.0 && lp[1] < -20.0, "lowpass {lp:?}");
    let hp = [through("highpass", 250.0), through("highpass", 4000.0)];
    assert!(hp[0] < -20.0 && hp[1].abs() < 1.0, "highpass {hp:?}");
    let bp = [
        through("bandpass", 250.0),
        through("bandpass", 1000.0),
        through("bandpass", 4000.0),
    ];
    assert!(
        bp[1] > bp[0] + 6.0 && bp[1] > bp[2] + 6.0,
        "bandpass {bp:?}"
    );
}

/// input → highpass → delay (100 ms) with a feedback edge at 0.5 → mixed with the dry input.
const ECHO: &str = r#"{"name":"echo","controls":[{"name":"wet","default":1,"min":0,"max":1}],
    "nodes":[
    {"id":"hp","type":"highpass","input":"input","cutoff":20},
    {"id":"loop","type":"mul","inputs":[{"node":"back"},0.5]},
    {"id":"into","type":"add","inputs":[{"node":"hp"},{"node":"loop"}]},
    {"id":"d","type":"delay","input":{"node":"into"},"time":0.1,"max":0.5},
    {"id":"back","type":"feedback","input":{"node":"d"}},
    {"id":"wet","type":"mul","inputs":[{"node":"d"},{"control":"wet"}]},
    {"id":"mix","type":"add","inputs":["input",{"node":"wet"}]}],
    "output":{"node":"mix"}}"#;

#[test]
fn a_user_defined_echo_sounds_at_the_exact_frame_and_its_feedback_decays() {
    let def: SynthDef = serde_json::from_str(ECHO).unwrap();
    let program = def.compile().unwrap();
    assert!(program.reads_input);
    let mut fx = PerChannel::new(program, RATE);
    // An impulse on the left only, blocks of 64 frames.
    let mut out = [Vec::new(), Vec::new()];
    for b in 0..600 {
        let mut io = [[0.0f32; 64]; 2];
        if b == 0 {
            io[0][0] = 1.0;
        }
        fx.process(&mut io, 64);
        out[0].extend_from_slice(&io[0]);
        out[1].extend_from_slice(&io[1]);
    }
    let [l, r] = out;
    assert!(r.iter().all(|&x| x == 0.0), "channels are independent");
    assert_eq!(l[0], 1.0, "the dry impulse");
    let peak = |from: usize, to: usize| {
        (from..to)
            .max_by(|&a, &b| l[a].abs().total_cmp(&l[b].abs()))
            .unwrap()
    };
    // First echo exactly 0.1 s later; the repeat through the feedback edge one delay and
    // one block (64 samples) after that, at half the level.
    let first = peak(100, 9000);
    assert_eq!(first, 4800);
    let second = peak(first + 100, 14_000);
    assert_eq!(second, 4800 + 64 + 4800);
    let third = peak(second + 100, 19_000);
    assert_eq!(third, second + 64 + 4800);
    let ratio = |a: usize, b: usize| l[b] / l[a];
    assert!(
        (ratio(first, second) - 0.5).abs() < 0.01,
        "{}",
        ratio(first, second)
    );
    assert!(
        (ratio(second, third) - 0.5).abs() < 0.01,
        "{}",
        ratio(second, third)
    );
    // Nothing between the echoes but the highpass's own short ringing.
    assert!(l[200..4700].iter().all(|x| x.abs() < 1e-2));
}

/// First frame at which `fx` answers an impulse, within `frames`.
fn echo_after(fx: &mut PerChannel, frames: usize) -> Option<usize> {
    let mut at = None;
    for b in 0..frames / 64 {
        let mut io = [[0.0f32; 64]; 2];
        if b == 0 {
            io[0][0] = 1.0;
        }
        fx.process(&mut io, 64);
        if let Some(i) = io[0].iter().position(|x| x.abs() > 0.5)
            && at.is_none()
        {
            at = Some(b * 64 + i);
        }
    }
    at
}

#[test]
fn a_delay_timed_in_beats_follows_the_transport() {
    // Half a beat: mul(0.5, div(60, bpm)) seconds, wet only.
    let def: SynthDef = serde_json::from_str(
        r#"{"name":"beat","nodes":[
        {"id":"beat","type":"div","a":60,"b":{"control":"bpm"}},
        {"id":"t","type":"mul","inputs":[{"node":"beat"},0.5]},
        {"id":"d","type":"delay","input":"input","time":{"node":"t"},"max":2}],
        "output":{"node":"d"}}"#,
    )
    .unwrap();
    let mut fx = PerChannel::new(def.compile().unwrap(), RATE);
    assert_eq!(
        echo_after(&mut fx, 48_000),
        Some(12_000),
        "120 bpm until told"
    );
    fx.follow_tempo(60.0);
    assert_eq!(echo_after(&mut fx, 48_000), Some(24_000), "60 bpm");
}

#[test]
fn a_definition_effect_takes_sends_and_routes_and_is_set_by_name() {
    let graph = format!(
        r#"{{"instruments":[{{"name":"click","polyphony":2,"pan":0,"sends":{{"echo":1}},"def":
        {{"name":"click","nodes":[{{"id":"env","type":"decay","trigger":{{"control":"gate"}},"time":0.01}}],
        "output":{{"node":"env"}}}}}}],
        "effects":[{{"type":"def","name":"echo","def":{ECHO},"controls":{{"wet":0.5}},"return":1,
        "sends":{{"verb":0.2}}}},{{"type":"reverb","name":"verb"}}]}}"#
    );
    let spec = GraphSpec::from_json(&graph).unwrap();
    let mut engine: Engine = spec.build(RATE).unwrap();
    let table = ParamTable::of(&engine);
    let wet = table.resolve("echo", "wet", 2.0).unwrap();
    assert_eq!(wet.value, 1.0, "clamped to the control's range");
    assert!(table.resolve("echo", "return", 0.5).is_ok());
    let (left, _) = render(&mut engine, &[note(0.0, 0.005, 60.0, 1.0)], 0, 0.3);
    let echo = left[4700..5200].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let before = left[2000..4700].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        echo > 4.0 * before,
        "the echo at 0.1 s ({echo}) over the gap ({before})"
    );
    // The graph's JSON names the primitives as they were written and reads back the same.
    let again = serde_json::to_string(&spec).unwrap();
    assert!(again.contains(r#""type":"delay""#) && again.contains(r#""type":"feedback""#));
    let back = GraphSpec::from_json(&again).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), again);
}

fn refusal(json: &str) -> String {
    match GraphSpec::from_json(json).and_then(|g| g.build(RATE)) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_vocabulary_is_refused_naming_the_node() {
    let inst = |nodes: &str, output: &str| {
        format!(
            r#"{{"instruments":[{{"name":"i","def":{{"name":"d","nodes":[{nodes}],"output":{output}}}}}]}}"#
        )
    };
    // A cycle that does not go through a feedback edge.
    let e = refusal(&inst(
        r#"{"id":"a","type":"onepole","input":{"node":"b"}},{"id":"b","type":"abs","input":{"node":"a"}}"#,
        r#"{"node":"a"}"#,
    ));
    assert!(e.contains("cycle") && e.contains("node \""), "{e}");
    // The same loop through a feedback edge is fine.
    assert!(
        GraphSpec::from_json(&inst(
            r#"{"id":"a","type":"onepole","input":{"node":"f"}},{"id":"f","type":"feedback","input":{"node":"a"}}"#,
            r#"{"node":"a"}"#,
        ))
        .unwrap()
        .build(RATE)
        .is_ok()
    );
    let e = refusal(&inst(
        r#"{"id":"x","type":"lowpass","input":0,"cutof":300}"#,
        r#"{"node":"x"}"#,
    ));
    assert!(
        e.contains("node \"x\"") && e.contains("cutof") && e.contains("cutoff"),
        "{e}"
    );
    let e = refusal(&inst(r#"{"id":"x","type":"warble"}"#, r#"{"node":"x"}"#));
    assert!(e.contains("node \"x\"") && e.contains("warble"), "{e}");
    let e = refusal(&inst(
        r#"{"id":"x","type":"lowpass","input":0}"#,
        r#"{"node":"x"}"#,
    ));
    assert!(e.contains("needs input \"cutoff\""), "{e}");
    let e = refusal(&inst(
        r#"{"id":"x","type":"delay","input":0,"max":{"control":"freq"}}"#,
        r#"{"node":"x"}"#,
    ));
    assert!(e.contains("node \"x\"") && e.contains("max"), "{e}");
    // An instrument that reads input is an effect, and an effect must read it.
    let e = refusal(&inst(
        r#"{"id":"x","type":"abs","input":"input"}"#,
        r#"{"node":"x"}"#,
    ));
    assert!(e.contains("effect"), "{e}");
    let e = refusal(
        r#"{"effects":[{"type":"def","name":"e","def":{"name":"d","nodes":[],"output":0.5}}]}"#,
    );
    assert!(e.contains("\"e\"") && e.contains("input"), "{e}");
}
