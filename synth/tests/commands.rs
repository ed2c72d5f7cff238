//! `Set` by name and `LoadGraph` through the controller (the bus thread's side) and the
//! renderer (the callback's side), rendered offline and measured.

use std::sync::Arc;

use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{Reply, StageKind, StageStatus};
use khorus_synth::command::Controller;
use khorus_synth::graph::GraphSpec;
use khorus_synth::rt::{Clock, Incoming, Renderer, RtStats};

use crate::util::{note, rms};

const RATE: f32 = 48_000.0;
/// Frames per callback in these renders.
const CALLBACK: usize = 256;

/// A sine instrument named `name` with a `level` control (0..1, default 1), dry, centred.
fn sine_graph(name: &str, amplitude: f32) -> String {
    format!(
        r#"{{"instruments":[{{"name":"{name}","polyphony":4,"pan":0,"sends":[0,0],"def":
        {{"name":"sine","controls":[{{"name":"level","default":1,"min":0,"max":1}}],"nodes":[
        {{"id":"o","type":"osc","wave":"sine","freq":{{"control":"freq"}}}},
        {{"id":"env","type":"adsr","gate":{{"control":"gate"}},"attack":0.001,"decay":0.1,"sustain":1,"release":0.01}},
        {{"id":"out","type":"mul","inputs":[{{"node":"o"}},{{"node":"env"}},{{"control":"level"}},{amplitude}]}}],
        "output":{{"node":"out"}}}}}}]}}"#
    )
}

/// A controller and renderer playing `graph`, and a clock at frame 0.
fn rig(graph: &str) -> (Controller, Renderer, Clock) {
    let engine = GraphSpec::from_json(graph).unwrap().build(RATE).unwrap();
    let (c, r) = Controller::new(engine, Arc::new(RtStats::default()), 8192);
    (c, r, Clock { buffer_start_ns: 0 })
}

/// Runs the callback for `frames` frames (whole callbacks) and returns the left channel.
fn play(renderer: &mut Renderer, clock: &mut Clock, frames: usize) -> Vec<f32> {
    let mut left = Vec::with_capacity(frames);
    while left.len() < frames {
        let out = renderer.fill(*clock, CALLBACK);
        left.extend(out.iter().step_by(2));
        clock.buffer_start_ns += (CALLBACK as f64 * 1e9 / RATE as f64) as i64;
    }
    left
}

fn midi(hz: f32) -> f32 {
    69.0 + 12.0 * (hz / 440.0).log2()
}

/// A note on instrument 1 at `t_ns`.
fn tone(t_ns: i64, dur_s: f64, hz: f32) -> Incoming {
    let mut n = note(0.0, dur_s, midi(hz), 1.0);
    n.t_ns = t_ns as u64;
    Incoming::Note(n)
}

fn handle(c: &mut Controller, cmd: SynthCommand) -> Reply<SynthReply> {
    c.handle(cmd, || StageStatus::new(StageKind::Synth))
}

fn set(node: &str, param: &str, value: f32) -> SynthCommand {
    SynthCommand::Set {
        node: node.into(),
        param: param.into(),
        value,
    }
}

fn refusal(r: Reply<SynthReply>) -> String {
    r.expect_err("a refusal").message
}

fn db(ratio: f32) -> f32 {
    20.0 * ratio.log10()
}

#[test]
fn set_by_name_changes_the_level_smoothly_and_clamps() {
    let (mut c, mut r, mut clock) = rig(&sine_graph("tone", 0.1));
    c.push(tone(0, 10.0, 300.0));
    let before = play(&mut r, &mut clock, 9600);
    let level = rms(&before[4800..]);
    // A control of the definition, then the gain; 100 ms later each has settled.
    assert_eq!(
        handle(&mut c, set("tone", "level", 0.5)),
        Ok(SynthReply::Applied)
    );
    let after = play(&mut r, &mut clock, 9600);
    let halved = rms(&after[4800..]);
    assert!(
        (db(halved / level) + 6.02).abs() < 0.1,
        "{} dB",
        db(halved / level)
    );
    // Smoothed: no step at the change (a steady 300 Hz sine of this level moves at most
    // 0.0028 per sample; a hard step would add about 0.035).
    let jump = after
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(jump < 0.004, "largest sample step {jump}");
    // Out of range: clamped to gain's maximum, 4.
    assert_eq!(
        handle(&mut c, set("tone", "gain", 100.0)),
        Ok(SynthReply::Applied)
    );
    let loud = play(&mut r, &mut clock, 9600);
    let ratio = rms(&loud[4800..]) / halved;
    assert!((ratio - 4.0).abs() < 0.05, "gain clamped to 4: ×{ratio}");
}

#[test]
fn bad_names_and_nan_are_refused_by_name_and_change_nothing() {
    // Two identical rigs; only one receives the bad commands. Their output stays identical.
    let graph = sine_graph("tone", 0.2);
    let (mut c, mut r, mut clock) = rig(&graph);
    let (mut c2, mut r2, mut clock2) = rig(&graph);
    for c in [&mut c, &mut c2] {
        c.push(tone(0, 10.0, 440.0));
    }
    play(&mut r, &mut clock, 4800);
    play(&mut r2, &mut clock2, 4800);
    let e = refusal(handle(&mut c, set("piano", "gain", 0.5)));
    assert!(e.contains("\"piano\"") && e.contains("tone"), "{e}");
    let e = refusal(handle(&mut c, set("tone", "cutof", 0.5)));
    assert!(
        e.contains("\"tone\"") && e.contains("\"cutof\"") && e.contains("level"),
        "{e}"
    );
    let e = refusal(handle(&mut c, set("tone", "gain", f32::NAN)));
    assert!(e.contains("tone.gain") && e.contains("NaN"), "{e}");
    let e = refusal(handle(&mut c, set("tone", "pan", f32::INFINITY)));
    assert!(e.contains("tone.pan") && e.contains("inf"), "{e}");
    // Graphs that do not parse or do not build are refused, naming the problem.
    let load = |json: &str| SynthCommand::LoadGraph {
        json: json.into(),
        fade_ms: 10,
    };
    let e = refusal(handle(&mut c, load("{\"instruments\": [")));
    assert!(e.contains("invalid graph JSON"), "{e}");
    let e = refusal(handle(
        &mut c,
        load(r#"{"instruments":[{"builtin":"tuba"}]}"#),
    ));
    assert!(e.contains("\"tuba\""), "{e}");
    let e = refusal(handle(
        &mut c,
        load(
            r#"{"instruments":[{"def":{"name":"x","nodes":[{"id":"a","type":"osc","wave":"saw","freq":{"node":"ghost"}}],"output":{"node":"a"}}}]}"#,
        ),
    ));
    assert!(e.contains("node \"a\"") && e.contains("ghost"), "{e}");
    let e = refusal(handle(
        &mut c,
        load(r#"{"instruments":[{"builtin":"pad"},{"builtin":"pad"}]}"#),
    ));
    assert!(e.contains("instrument 1") && e.contains("\"pad\""), "{e}");
    assert!(!c.swap_pending());
    assert_eq!(
        play(&mut r, &mut clock, 9600),
        play(&mut r2, &mut clock2, 9600),
        "refused commands changed the sound"
    );
    // The running graph stays: its names still resolve.
    assert_eq!(
        handle(&mut c, set("tone", "level", 0.1)),
        Ok(SynthReply::Applied)
    );
}

#[test]
fn a_graph_swap_during_sustained_notes_crossfades_without_clicks_at_constant_power() {
    // Old graph: a held 200 Hz sine. At the swap the new graph starts a 300 Hz sine of the
    // same level. Over 10 ms windows the two are orthogonal (whole periods of 100 and
    // 500 Hz), so an equal-power fade keeps the power constant where a linear one would dip
    // by 3 dB at its middle.
    let (mut c, mut r, mut clock) = rig(&sine_graph("old", 0.3));
    c.push(tone(0, 10.0, 200.0));
    let mut left = play(&mut r, &mut clock, 24_000);
    let swap_at = left.len();
    let load = SynthCommand::LoadGraph {
        json: sine_graph("new", 0.3),
        fade_ms: 200,
    };
    assert_eq!(handle(&mut c, load.clone()), Ok(SynthReply::Applied));
    // After the swap, notes and names go to the new graph.
    c.push(tone(clock.buffer_start_ns, 10.0, 300.0));
    assert!(refusal(handle(&mut c, set("old", "gain", 1.0))).contains("\"old\""));
    assert_eq!(
        handle(&mut c, set("new", "pan", 0.0)),
        Ok(SynthReply::Applied)
    );
    left.extend(play(&mut r, &mut clock, 4800));
    // One swap at a time: a second one during the fade is refused, then accepted after it.
    let e = refusal(handle(&mut c, load.clone()));
    assert!(e.contains("crossfade"), "{e}");
    left.extend(play(&mut r, &mut clock, 43_200));
    assert!(!c.swap_pending(), "the old engine came back after the fade");

    // No click: two sines of amplitude A = 0.3 × 0.707 (centre pan) mixed with cos/sin gains
    // move at most A·2π·√(200² + 300²)/48000 = 0.0100 per sample; the threshold leaves 20 %
    // for the gain's own motion. A hard switch between them would jump by up to 0.4.
    let jump = left[4800..]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(jump < 0.012, "largest sample step {jump}");
    // Constant power: every 10 ms window from 100 ms before the swap to 300 ms after the fade
    // is within 0.5 dB of the level before it.
    let reference = rms(&left[swap_at - 9600..swap_at]);
    let worst = (swap_at - 4800..swap_at + 9600 + 14_400)
        .step_by(480)
        .map(|i| db(rms(&left[i..i + 480]) / reference))
        .fold(0.0f32, |m, d| if d.abs() > m.abs() { d } else { m });
    assert!(worst.abs() < 0.5, "power moved by {worst:.2} dB");
    // And the new graph is what plays now.
    let f = crate::util::frequency(&left[left.len() - 9600..], RATE);
    assert!((f - 300.0).abs() < 0.5, "{f} Hz after the fade");
    assert_eq!(handle(&mut c, load), Ok(SynthReply::Applied));
}

#[test]
fn two_loud_graphs_crossfading_never_pass_the_ceiling() {
    // Each graph alone is limited by its engine; their equal-power sum in a crossfade would
    // reach √2 of the ceiling, which the renderer's own limiter takes back.
    let ceiling = khorus_synth::engine::CEILING;
    let (mut c, mut r, mut clock) = rig(&sine_graph("old", 3.0));
    c.push(tone(0, 10.0, 200.0));
    let mut left = play(&mut r, &mut clock, 24_000);
    let before = left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        before > ceiling * 0.99,
        "the engine alone is at its ceiling: {before}"
    );
    let load = SynthCommand::LoadGraph {
        json: sine_graph("new", 3.0),
        fade_ms: 200,
    };
    assert_eq!(handle(&mut c, load), Ok(SynthReply::Applied));
    c.push(tone(clock.buffer_start_ns, 10.0, 300.0));
    left.extend(play(&mut r, &mut clock, 24_000));
    let peak = left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak <= ceiling + 1e-6, "{peak} over the ceiling {ceiling}");
}

/// Frames from the loudest sample of the dry click to the loudest of its first echo.
fn echo_delay(renderer: &mut Renderer, c: &mut Controller, clock: &mut Clock) -> usize {
    // Let the delay time settle (it glides over ~50 ms), then one click.
    play(renderer, clock, 24_000);
    c.push(tone(clock.buffer_start_ns, 0.005, 440.0));
    let left = play(renderer, clock, 96_000);
    let loudest = |x: &[f32]| {
        (0..x.len())
            .max_by(|&a, &b| x[a].abs().total_cmp(&x[b].abs()))
            .unwrap()
    };
    let dry = loudest(&left[..4800]);
    9600 + loudest(&left[dry + 9600..])
}

#[test]
fn the_delay_follows_the_transport_tempo_and_a_new_graph_keeps_it() {
    // A short click sent fully to the delay (0.75 beat: 18 000 frames at 120 bpm).
    let graph = r#"{"instruments":[{"name":"click","polyphony":2,"pan":0,"sends":[1,0],"def":
        {"name":"click","nodes":[{"id":"env","type":"adsr","gate":{"control":"gate"},
        "attack":0.0005,"decay":0.005,"sustain":0,"release":0.002}],"output":{"node":"env"}}}]}"#;
    let (mut c, mut r, mut clock) = rig(graph);
    let d = echo_delay(&mut r, &mut c, &mut clock);
    assert!(d.abs_diff(18_000) <= 2, "120 bpm: echo after {d} frames");
    // The composer's transport at 60 bpm (1/4 cycle per second, 4 beats per cycle).
    let transport = khorus_bus::TransportState {
        seq: 0,
        t_ns: 0,
        anchor_ns: 0,
        anchor_cycle_num: 0,
        anchor_cycle_den: 1,
        cps_num: 1,
        cps_den: 4,
        beats_per_cycle: 4,
        running: 1,
        ..khorus_bus::TransportState::default()
    };
    c.follow_transport(&transport);
    let d = echo_delay(&mut r, &mut c, &mut clock);
    assert!(d.abs_diff(36_000) <= 2, "60 bpm: echo after {d} frames");
    let load = SynthCommand::LoadGraph {
        json: graph.into(),
        fade_ms: 1,
    };
    assert_eq!(handle(&mut c, load), Ok(SynthReply::Applied));
    let d = echo_delay(&mut r, &mut c, &mut clock);
    assert!(
        d.abs_diff(36_000) <= 2,
        "new graph at 60 bpm: echo after {d} frames"
    );
}

#[test]
fn a_hand_over_sounds_from_now_to_each_notes_end_and_skips_what_came_on_the_bus() {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = Arc::new(RtStats::default());
    let engine = GraphSpec::from_json(&sine_graph("drone", 0.5))
        .unwrap()
        .build(RATE)
        .unwrap();
    let (mut c, mut r) = Controller::new(engine, Arc::clone(&stats), 8192);
    let mut clock = Clock { buffer_start_ns: 0 };
    // The synth starts listening half a second in.
    assert!(rms(&play(&mut r, &mut clock, 24_000)) < 1e-6);
    // A note that began at 0.1 s (before it listened) and ends at 1.5 s; one at 0.7 s that
    // also came on the bus.
    let began = note(0.1, 1.4, midi(440.0), 1.0);
    let ahead = note(0.7, 0.2, midi(660.0), 1.0);
    c.push(Incoming::Note(ahead));
    let too_many = SynthCommand::Resume {
        notes: vec![began; khorus_bus::commands::composer::SOUNDING_MAX + 1],
    };
    assert!(refusal(handle(&mut c, too_many)).contains("at most 256"));
    assert_eq!(
        stats.resumed.load(Relaxed),
        0,
        "a refused hand-over takes nothing"
    );
    let resume = SynthCommand::Resume {
        notes: vec![began, ahead],
    };
    assert_eq!(handle(&mut c, resume), Ok(SynthReply::Applied));
    assert_eq!(
        stats.resumed.load(Relaxed),
        1,
        "the bus's note is not taken twice"
    );
    // It sounds from the next callback, not late…
    let first = play(&mut r, &mut clock, CALLBACK);
    assert!(rms(&first[CALLBACK / 2..]) > 0.1, "{}", rms(&first));
    let rest = play(&mut r, &mut clock, 60_000 - CALLBACK);
    assert_eq!(stats.late.load(Relaxed), 0);
    // …and ends at its own end (1.5 s; 10 ms of release): silent after 1.52 s.
    let end = (1.52 * RATE) as usize - 24_000 - CALLBACK;
    assert!(rms(&rest[..end - 2_000]) > 0.1);
    assert!(rms(&rest[end..]) < 1e-4, "{}", rms(&rest[end..]));
    assert_eq!(stats.notes.load(Relaxed), 2, "two notes, none doubled");
}

#[test]
fn a_send_moves_an_existing_route_without_a_new_graph_and_says_so_in_the_graph() {
    let graph = r#"{"instruments":[{"name":"pad","builtin":"pad","sends":{"verb":0.5}}],
        "effects":[{"name":"verb","type":"reverb"}]}"#;
    let (mut c, mut r, mut clock) = rig(graph);
    c.started_from(GraphSpec::from_json(graph).unwrap());
    let send = |level: f32, over_ns: u64| SynthCommand::Send {
        from: "pad".into(),
        to: "verb".into(),
        level,
        at_ns: 0,
        over_ns,
    };
    // 0.5 -> 0.1 over 100 ms (4800 frames) from the next block.
    assert_eq!(
        handle(&mut c, send(0.1, 100_000_000)),
        Ok(SynthReply::Applied)
    );
    play(&mut r, &mut clock, 2 * CALLBACK);
    let before = c.swap_pending();
    play(&mut r, &mut clock, 5000);
    assert!(!before, "no engine swapped in");
    match handle(&mut c, SynthCommand::Describe) {
        Ok(SynthReply::Graph { json: Some(j) }) => {
            let g: serde_json::Value = serde_json::from_str(&j).unwrap();
            assert_eq!(g["instruments"][0]["sends"]["verb"], 0.1, "{j}");
        }
        other => panic!("{other:?}"),
    }
    // No route into "pad", none from the pad into a node that is not there: refused.
    let e = handle(
        &mut c,
        SynthCommand::Send {
            from: "verb".into(),
            to: "pad".into(),
            level: 0.5,
            at_ns: 0,
            over_ns: 0,
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no route from \"verb\" into \"pad\""),
        "{e}"
    );
    assert!(
        handle(&mut c, send(0.0, 0)).is_err(),
        "0 removes a route: a graph edit"
    );
}
