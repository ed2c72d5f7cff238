//! The engine rendered offline, measured.

use khorus_synth::graph::GraphSpec;
use khorus_synth::render::render;

use crate::util::{frequency, graph_of, note, spectrum};

const RATE: f32 = 48_000.0;

const SINE: &str = r#"{"name":"sine","nodes":[
    {"id":"o","type":"osc","wave":"sine","freq":{"control":"freq"}},
    {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.001,"decay":0.1,"sustain":1,"release":0.01},
    {"id":"out","type":"mul","inputs":[{"node":"o"},{"node":"env"},0.5]}],"output":{"node":"out"}}"#;

#[test]
fn a4_sounds_at_440_hz() {
    let mut engine = graph_of(SINE, 4).build(RATE).unwrap();
    let (left, _) = render(&mut engine, &[note(0.0, 2.0, 69.0, 1.0)], 0, 2.0);
    let f = frequency(&left[4800..90_000], RATE);
    assert!((f - 440.0).abs() <= 0.5, "{f} Hz");
}

#[test]
fn a_note_starts_exactly_at_its_frame() {
    // Output = the envelope alone: zero before the gate, positive from its first frame.
    let def = r#"{"name":"env","nodes":[
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.01,"decay":0.1,"sustain":1,"release":0.01}],
        "output":{"node":"env"}}"#;
    let mut engine = graph_of(def, 4).build(RATE).unwrap();
    let t = 12_345.0 / RATE as f64;
    let (left, _) = render(&mut engine, &[note(t, 0.1, 60.0, 1.0)], 0, 0.5);
    let first = left.iter().position(|&x| x != 0.0).unwrap();
    assert_eq!(first, 12_345);
}

#[test]
fn a_5_khz_saw_has_no_alias_above_minus_40_dbc() {
    let def = r#"{"name":"saw","nodes":[{"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}},
        {"id":"out","type":"mul","inputs":[{"node":"o"},{"control":"gate"},0.5]}],"output":{"node":"out"}}"#;
    let mut engine = graph_of(def, 1).build(RATE).unwrap();
    // MIDI note for exactly 5 kHz.
    let midi = 69.0 + 12.0 * (5000.0f32 / 440.0).log2();
    let (left, _) = render(&mut engine, &[note(0.0, 1.0, midi, 1.0)], 0, 0.6);
    let spec = spectrum(&left[4800..4800 + 9600]); // 5 Hz bins
    let bin_hz = RATE as f64 / 9600.0;
    let fundamental = spec[(5000.0 / bin_hz) as usize];
    let mut worst = f64::MIN;
    for (k, &m) in spec.iter().enumerate() {
        let f = k as f64 * bin_hz;
        let near_harmonic = (1..=4).any(|h| (f - 5000.0 * h as f64).abs() < 30.0);
        if f > 30.0 && !near_harmonic {
            worst = worst.max(20.0 * (m / fundamental).log10());
        }
    }
    assert!(worst <= -40.0, "strongest alias {worst:.1} dBc");
}

#[test]
fn three_hundred_overlapping_notes_with_stealing_do_not_click() {
    // The pad with 16 voices: 300 notes, 10 per 50 ms, each 400 ms long, so voices are stolen
    // constantly; a stolen voice fades out instead of cutting.
    let mut engine = GraphSpec::default().build(RATE).unwrap();
    let notes: Vec<_> = (0..300)
        .map(|i| {
            let mut n = note(i as f64 * 0.005, 0.4, 48.0 + (i * 7 % 24) as f32, 0.8);
            n.node = 0; // melody → pad
            n
        })
        .collect();
    let (left, right) = render(&mut engine, &notes, 0, 2.5);
    let stats = engine.stats();
    assert!(stats.stolen > 50, "stealing was exercised: {stats:?}");
    let max_jump = left
        .windows(2)
        .chain(right.windows(2))
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    let peak = left
        .iter()
        .chain(&right)
        .fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak <= 0.89 + 1e-4, "the limiter holds the ceiling: {peak}");
    // A hard cut of a loud voice jumps by about its amplitude; stated threshold: 0.25.
    assert!(max_jump < 0.25, "largest sample-to-sample jump {max_jump}");
}

#[test]
fn two_renders_of_the_same_input_are_identical() {
    let notes: Vec<_> = (0..40)
        .map(|i| {
            let mut n = note(i as f64 * 0.05, 0.2, 36.0 + (i % 12) as f32, 0.9);
            n.node = 0;
            n.role = [0u8, 1, 2, 3][i % 4];
            n
        })
        .collect();
    let a = render(
        &mut GraphSpec::default().build(RATE).unwrap(),
        &notes,
        0,
        2.5,
    );
    let b = render(
        &mut GraphSpec::default().build(RATE).unwrap(),
        &notes,
        0,
        2.5,
    );
    assert!(a.0.iter().any(|&x| x != 0.0));
    assert_eq!(a, b);
}

#[test]
fn an_idle_instrument_skipped_by_the_engine_keeps_its_automation_on_time() {
    use khorus_synth::dsp::Shape;
    // The control `level` ramps 0 → 1 over 9600 frames while nothing plays (the engine skips
    // the instrument); a note at frame 4800 hears the ramp where it would be had every block
    // been rendered, and so does the gain (param 0) ramping 1 → 0.5.
    let def = r#"{"name":"level","controls":[{"name":"level","default":0,"min":0,"max":1}],
        "nodes":[{"id":"out","type":"mul","inputs":[{"control":"level"},{"control":"gate"}]}],
        "output":{"node":"out"}}"#;
    let mut engine = graph_of(def, 1).build(RATE).unwrap();
    engine.schedule_curve(9600, 0, 2, 1.0, Some(Shape::Linear));
    engine.schedule_curve(9600, 0, 0, 0.5, Some(Shape::Linear));
    engine.schedule(khorus_synth::render::note_at(
        &note(0.1, 1.0, 60.0, 1.0),
        0,
        RATE,
    ));
    let mut left = vec![0.0; 9600];
    let mut right = vec![0.0; 9600];
    engine.render(&mut left, &mut right);
    assert!(
        left[..4800].iter().all(|&x| x == 0.0),
        "silent before the note"
    );
    // Frame 4800 + k: level (4801 + k) / 9600, gain 1 - 0.5 (4801 + k) / 9600, hard left.
    for k in [0usize, 1, 100, 4799] {
        let x = (4801 + k) as f32 / 9600.0;
        let want = x * (1.0 - 0.5 * x);
        assert!(
            (left[4800 + k] - want).abs() < 1e-4,
            "frame {}: {} (want {want})",
            4800 + k,
            left[4800 + k]
        );
    }
}

#[test]
fn automation_ramps_reach_each_breakpoint_exactly_along_their_shape() {
    use khorus_synth::dsp::Shape;
    // Output = the control `level` while the gate is held.
    let def = r#"{"name":"level","controls":[{"name":"level","default":0.2,"min":0,"max":1}],
        "nodes":[{"id":"out","type":"mul","inputs":[{"control":"level"},{"control":"gate"}]}],
        "output":{"node":"out"}}"#;
    for (shape, mid) in [
        (Some(Shape::Linear), 0.5),
        (Some(Shape::Exponential), 0.4),
        (Some(Shape::Smooth), 0.5),
        (None, 0.2),
    ] {
        let mut engine = graph_of(def, 1).build(RATE).unwrap();
        // Hold a note; the breakpoint: `level` (param 2 = control 0) is 0.8 at frame 4800.
        engine.schedule(khorus_synth::render::note_at(
            &note(0.0, 1.0, 60.0, 1.0),
            0,
            RATE,
        ));
        engine.schedule_curve(4800, 0, 2, 0.8, shape);
        let mut left = vec![0.0; 9600];
        let mut right = vec![0.0; 9600];
        engine.render(&mut left, &mut right);
        assert!(
            (left[2399] - mid).abs() < 0.01,
            "{shape:?}: {} at the midpoint",
            left[2399]
        );
        match shape {
            Some(_) => assert!(
                (left[4799] - 0.8).abs() < 1e-6,
                "{shape:?} reaches 0.8 at its frame"
            ),
            // A step jumps at its frame (then the control smoother settles it in ~10 ms).
            None => assert!(left[4799] < 0.21 && left[4800 + 2400] > 0.79, "step"),
        }
        assert!((left[9000] - 0.8).abs() < 1e-3, "{shape:?} holds 0.8");
    }
}

#[test]
fn linear_points_that_arrive_together_move_from_point_to_point() {
    use khorus_synth::dsp::Shape;
    // What the composer sends for a ramp, a lookahead early: a step at its start (frame 2400,
    // the value it has: 0.2), then linear points 0.5 at 4800 and 0.8 at 7200, all scheduled
    // before any is due. Each segment starts at the point before it, not when it arrived
    // (which would put 0.5 at frame 3600: one ramp from 0.2 at frame 0 to 0.8 at 7200).
    let def = r#"{"name":"level","controls":[{"name":"level","default":0.2,"min":0,"max":1}],
        "nodes":[{"id":"out","type":"mul","inputs":[{"control":"level"},{"control":"gate"}]}],
        "output":{"node":"out"}}"#;
    let mut engine = graph_of(def, 1).build(RATE).unwrap();
    engine.schedule(khorus_synth::render::note_at(
        &note(0.0, 1.0, 60.0, 1.0),
        0,
        RATE,
    ));
    engine.schedule_curve(2400, 0, 2, 0.2, None);
    engine.schedule_curve(4800, 0, 2, 0.5, Some(Shape::Linear));
    engine.schedule_curve(7200, 0, 2, 0.8, Some(Shape::Linear));
    let mut left = vec![0.0; 9600];
    let mut right = vec![0.0; 9600];
    engine.render(&mut left, &mut right);
    for (frame, want) in [
        (2000usize, 0.2f32),
        (3600, 0.35),
        (4799, 0.5),
        (6000, 0.65),
        (7199, 0.8),
    ] {
        assert!(
            (left[frame] - want).abs() < 0.02,
            "frame {frame}: {} (want {want})",
            left[frame]
        );
    }
}

#[test]
fn an_effect_setting_follows_linear_points_block_by_block() {
    use khorus_synth::dsp::Shape;
    let graph: GraphSpec = serde_json::from_str(
        r#"{"instruments":[{"builtin":"pad"}],
            "effects":[{"type":"delay","name":"echo","feedback":0.2}]}"#,
    )
    .unwrap();
    let mut engine = graph.build(RATE).unwrap();
    // The delay's feedback (its parameter 1; the node after the one instrument) at 0.2 at
    // frame 2400, then 0.6 at 7200, both sent at once.
    engine.schedule_curve(2400, 1, 1, 0.2, None);
    engine.schedule_curve(7200, 1, 1, 0.6, Some(Shape::Linear));
    let mut left = vec![0.0; 4800];
    let mut right = vec![0.0; 4800];
    engine.render(&mut left, &mut right);
    let half = engine.effects()[0].value(1);
    assert!((half - 0.4).abs() < 0.01, "half way at frame 4800: {half}");
    engine.render(&mut left, &mut right);
    assert_eq!(engine.effects()[0].value(1), 0.6);
}
