//! Effect nodes and routes: instruments send (post-fader) to named effects, effects return to
//! the master and feed later effects; bad routes are refused with the effect named.

use khorus_synth::graph::GraphSpec;
use khorus_synth::render::render;

use crate::util::note;

const RATE: f32 = 48_000.0;

/// A click (10 ms, no sustain) at 0.1 s into the graph's effects (post-fader).
fn graph(effects: &str, sends: &str) -> String {
    format!(
        r#"{{"instruments":[{{"name":"click","gain":1,"sends":{sends},"def":
        {{"name":"c","nodes":[{{"id":"o","type":"osc","wave":"sine","freq":1000}},
          {{"id":"e","type":"adsr","gate":{{"control":"gate"}},"attack":0.001,"decay":0.01,"sustain":0,"release":0.001}},
          {{"id":"m","type":"mul","inputs":[{{"node":"o"}},{{"node":"e"}}]}}],"output":{{"node":"m"}}}}}}],
        "effects":{effects}}}"#
    )
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

fn window_rms(x: &[f32], at: usize) -> f32 {
    rms(&x[at..at + 480])
}

fn render_graph(json: &str) -> Vec<f32> {
    let mut engine = GraphSpec::from_json(json).unwrap().build(RATE).unwrap();
    render(&mut engine, &[note(0.1, 0.01, 69.0, 1.0)], 0, 1.0).0
}

#[test]
fn an_instrument_sends_by_name_and_an_effect_feeds_a_later_one() {
    // 120 bpm: half a beat = 250 ms = 12 000 frames; a quarter beat = 6 000.
    let onset = 4_800;
    let direct = render_graph(&graph(
        r#"[{"name":"echo","type":"delay","beats":0.5,"feedback":0,"return":1}]"#,
        r#"{"echo":1}"#,
    ));
    let quiet = window_rms(&direct, onset + 6_000);
    let echo = window_rms(&direct, onset + 12_000);
    assert!(quiet < 1e-4, "nothing between dry and echo: {quiet}");
    assert!(echo > 0.05, "the echo at 12 000 frames: {echo}");

    // pre (½ beat, silent into the master) → post (¼ beat): one echo at 18 000 frames.
    let chained = render_graph(&graph(
        r#"[{"name":"pre","type":"delay","beats":0.5,"feedback":0,"return":0,"sends":{"post":1}},
            {"name":"post","type":"delay","beats":0.25,"feedback":0,"return":1}]"#,
        r#"{"pre":1}"#,
    ));
    assert!(
        window_rms(&chained, onset + 12_000) < 1e-4,
        "pre returns nothing"
    );
    let twice = window_rms(&chained, onset + 18_000);
    assert!(twice > 0.05, "the routed echo at 18 000 frames: {twice}");

    // A reverb after the delay: its tail begins only once the echo arrives.
    let verb = render_graph(&graph(
        r#"[{"name":"echo","type":"delay","beats":0.5,"feedback":0,"return":0,"sends":{"hall":1}},
            {"name":"hall","type":"reverb","room":0.8,"return":1}]"#,
        r#"{"echo":1}"#,
    ));
    assert!(window_rms(&verb, onset + 6_000) < 1e-4);
    assert!(
        rms(&verb[onset + 12_000..onset + 24_000]) > 1e-3,
        "reverb tail after the echo"
    );
}

#[test]
fn bad_routes_are_refused_naming_the_effect() {
    let refuse = |effects: &str, sends: &str| -> String {
        let json = graph(effects, sends);
        match GraphSpec::from_json(&json).and_then(|g| g.build(RATE)) {
            Ok(_) => panic!("accepted: {effects} / {sends}"),
            Err(e) => e.to_string(),
        }
    };
    let e = refuse(
        r#"[{"name":"a","type":"reverb"},{"name":"b","type":"delay","sends":{"a":0.5}}]"#,
        "{}",
    );
    assert!(
        e.contains("effect \"b\"") && e.contains("listed before"),
        "{e}"
    );
    let e = refuse(r#"[{"name":"a","type":"delay","sends":{"a":0.5}}]"#, "{}");
    assert!(
        e.contains("effect \"a\"") && e.contains("cannot loop"),
        "{e}"
    );
    let e = refuse(r#"[{"name":"a","type":"delay","sends":{"zz":0.5}}]"#, "{}");
    assert!(e.contains("\"zz\", which is not an effect"), "{e}");
    let e = refuse(
        r#"[{"name":"a","type":"delay"},{"name":"a","type":"reverb"}]"#,
        "{}",
    );
    assert!(e.contains("used twice"), "{e}");
    let e = refuse(r#"[{"name":"click","type":"delay"}]"#, "{}");
    assert!(e.contains("same name"), "{e}");
    let e = refuse(r#"[{"name":"a","type":"delay"}]"#, r#"{"nowhere":1}"#);
    assert!(
        e.contains("instrument 0") && e.contains("\"nowhere\""),
        "{e}"
    );
    let e = refuse(r#"[{"name":"a","type":"chorus"}]"#, "{}");
    assert!(e.contains("chorus"), "{e}");
    let many: Vec<String> = (0..9)
        .map(|i| format!(r#"{{"name":"e{i}","type":"delay"}}"#))
        .collect();
    let e = refuse(&format!("[{}]", many.join(",")), "{}");
    assert!(e.contains("at most 8"), "{e}");
}

#[test]
fn the_default_effects_serve_the_legacy_send_pair() {
    let json = r#"{"instruments":[{"builtin":"pad","sends":[0.2,0.4]}]}"#;
    let engine = GraphSpec::from_json(json).unwrap().build(RATE).unwrap();
    let names: Vec<&str> = engine.effects().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["delay", "reverb"]);
    assert_eq!(&engine.instruments()[0].sends[..3], &[0.2, 0.4, 0.0]);
}

#[test]
fn effect_parameters_are_set_by_name_like_instruments() {
    use khorus_synth::params::ParamTable;
    let json = graph(
        r#"[{"name":"echo","type":"delay","beats":0.5,"feedback":0,"return":1}]"#,
        r#"{"echo":1}"#,
    );
    let mut engine = GraphSpec::from_json(&json).unwrap().build(RATE).unwrap();
    let table = ParamTable::of(&engine);
    // Mute the echo's return before the echo comes back.
    let r = table.resolve("echo", "return", 0.0).unwrap();
    engine.schedule_set(0, r.inst, r.param, r.value);
    let out = render(&mut engine, &[note(0.1, 0.01, 69.0, 1.0)], 0, 1.0).0;
    assert!(
        window_rms(&out, 4_800 + 12_000) < 1e-4,
        "the return was set to 0"
    );
    let e = table.resolve("echo", "room", 0.5).unwrap_err().to_string();
    assert!(
        e.contains("\"echo\" has no parameter \"room\"") && e.contains("feedback"),
        "{e}"
    );
    let e = table
        .resolve("hall", "return", 0.5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("click, echo"), "{e}");
    assert_eq!(table.resolve("echo", "feedback", 5.0).unwrap().value, 0.95);
}

#[test]
fn an_effect_nobody_feeds_sleeps_once_its_tail_is_gone_and_wakes_for_the_next_sound() {
    let json = graph(
        r#"[{"name":"hall","type":"reverb","room":0.7,"return":1},
            {"name":"echo","type":"delay","beats":0.25,"feedback":0.3,"return":1}]"#,
        r#"{"hall":1,"echo":1}"#,
    );
    let mut engine = GraphSpec::from_json(&json).unwrap().build(RATE).unwrap();
    let first = note(0.1, 0.01, 69.0, 1.0);
    let second = note(12.1, 0.01, 69.0, 1.0);
    let (left, _) = render(&mut engine, &[first, second], 0, 12.0);
    // The click at 0.1 s rings in the reverb and the echoes; twelve seconds later every tail
    // is below -120 dB and both effects sleep, returning exact silence.
    assert!(window_rms(&left, 4_800 + 2_400) > 1e-3);
    assert!(engine.effects().iter().all(|e| e.asleep()));
    assert!(left[left.len() - 4_800..].iter().all(|&x| x == 0.0));
    // The next sound wakes them: the reverb answers the click at 12.1 s.
    let (left, _) = render(&mut engine, &[], 0, 1.0);
    assert!(engine.effects().iter().all(|e| !e.asleep()));
    assert!(window_rms(&left, 4_800 + 2_400) > 1e-3);
}

#[test]
fn an_engine_is_asleep_only_once_its_notes_and_every_tail_are_done() {
    use khorus_synth::dsp::BLOCK;
    use khorus_synth::engine::Note;
    let json = graph(
        r#"[{"name":"verb","type":"reverb","room":0.9,"damp":0.2,"return":1}]"#,
        r#"{"verb":1}"#,
    );
    let mut engine = GraphSpec::from_json(&json).unwrap().build(RATE).unwrap();
    let (mut l, mut r) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut frame = 0u64;
    let mut run_until_asleep = |engine: &mut khorus_synth::engine::Engine, frame: &mut u64| {
        let mut loud_after = 0;
        for _ in 0..(60.0 * RATE) as usize / BLOCK {
            engine.render(&mut l, &mut r);
            *frame += BLOCK as u64;
            if engine.asleep() {
                return (*frame, loud_after);
            }
            if l.iter().chain(&r).any(|&x| x != 0.0) {
                loud_after = *frame;
            }
        }
        panic!("never asleep");
    };
    // Fresh: asleep once the reverb has been quiet for its tail.
    run_until_asleep(&mut engine, &mut frame);
    // A click: awake from the moment it is queued until the reverb's tail has died.
    let at = frame + 4_800;
    engine.schedule(Note {
        frame: at,
        dur_frames: 480,
        node: 1,
        note: 69.0,
        velocity: 1.0,
        role: khorus_bus::Role::Melody,
    });
    assert!(!engine.asleep(), "a queued note wakes it");
    let (slept_at, last_sound) = run_until_asleep(&mut engine, &mut frame);
    assert!(
        last_sound > at + RATE as u64,
        "the reverb rang for more than a second (until frame {last_sound})"
    );
    assert!(
        slept_at > last_sound,
        "asleep at {slept_at}, sound until {last_sound}"
    );
    // Asleep: silence, exactly.
    for _ in 0..100 {
        engine.render(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|&x| x == 0.0));
        assert!(engine.asleep());
    }
}

#[test]
fn a_send_level_moves_along_a_line_from_its_frame_without_a_graph_change() {
    let json = graph(
        r#"[{"name":"echo","type":"delay","return":1}]"#,
        r#"{"echo":1}"#,
    );
    let mut engine = GraphSpec::from_json(&json).unwrap().build(RATE).unwrap();
    // From frame 2400, 1 -> 0.2 over 4800 frames.
    engine.schedule_send(2400, 0, 0, 0.2, 4800);
    let (mut l, mut r) = (vec![0.0; 2400], vec![0.0; 2400]);
    engine.render(&mut l, &mut r);
    assert_eq!(
        engine.instruments()[0].send_level(0),
        1.0,
        "not before its frame"
    );
    engine.render(&mut l, &mut r);
    let half = engine.instruments()[0].send_level(0);
    assert!((half - 0.6).abs() < 0.01, "half way: {half}");
    engine.render(&mut l, &mut r);
    assert_eq!(engine.instruments()[0].send_level(0), 0.2);
    // A send that is not there (no effect 3) is dropped and counted.
    engine.schedule_send(0, 0, 3, 0.5, 0);
    assert_eq!(engine.stats().dropped, 1);
}
