//! The audio callback's code under an allocation detector: any allocation (or free) aborts the
//! test.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use assert_no_alloc::assert_no_alloc;
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{CurvePoint, StageKind, StageStatus};
use khorus_synth::command::Controller;
use khorus_synth::graph::GraphSpec;
use khorus_synth::rt::{Clock, Incoming, RtStats};

use crate::util::note;

/// Graphs to swap between, edited node by node: from the built-in patch, the pad (node 1,
/// same polyphony: carried with its voices) and the bass (other polyphony: replaced, its held
/// notes taken over) stay, the rest are removed; then the delay and reverb are carried with
/// new routes and settings and a new effect comes in; then an effect definition with a delay
/// line and a feedback edge; then a stereo pad (panned by noise) into a stereo
/// ping-pong effect.
const GRAPHS: [&str; 5] = [
    r#"{"instruments":[{"builtin":"pad","polyphony":32},{"builtin":"bass","polyphony":4}]}"#,
    r#"{"instruments":[{"builtin":"pad","polyphony":32,"sends":{"reverb":0.6,"echo":0.3}},
        {"builtin":"bass","polyphony":8,"gain":0.7}],
       "effects":[{"type":"delay","name":"echo","beats":0.5},
        {"type":"delay","name":"delay","feedback":0.5,"sends":{"reverb":0.4}},
        {"type":"reverb","name":"reverb","room":0.9}]}"#,
    r#"{"instruments":[{"builtin":"pad","polyphony":32,"sends":{"dub":0.5}}],
       "effects":[{"type":"def","name":"dub","controls":{"mix":0.7},"def":{"name":"dub",
        "controls":[{"name":"mix","default":0.5,"min":0,"max":1}],"nodes":[
        {"id":"in","type":"add","inputs":["input",{"node":"fb"}]},
        {"id":"d","type":"echo","input":{"node":"in"},"time":0.05,"feedback":0.3,"max":0.1},
        {"id":"c","type":"chorus","input":{"node":"d"}},
        {"id":"fb","type":"feedback","input":{"node":"c"}},
        {"id":"s","type":"mul","inputs":[{"node":"c"},{"control":"mix"}]},
        {"id":"out","type":"clip","input":{"node":"s"}}],"output":{"node":"out"}}}]}"#,
    r#"{"instruments":[{"name":"pad","polyphony":4,"sends":{"pingpong":0.5},"def":{"name":"wide",
        "controls":[{"name":"cutoff","default":3000,"min":20,"max":8000}],"nodes":[{"id":"o","type":"saw","freq":{"control":"freq"}},
        {"id":"n","type":"white_noise"},
        {"id":"m","type":"mul","inputs":[{"node":"o"},{"control":"gate"},0.3]},
        {"id":"p","type":"pan","input":{"node":"m"},"pos":{"node":"n"}},
        {"id":"f","type":"lowpass","input":{"node":"p"},"cutoff":{"control":"cutoff"}}],
        "output":{"node":"f"}}}],
       "effects":[{"type":"def","name":"pingpong","def":{"name":"pingpong","nodes":[
        {"id":"in","type":"left","input":"input"},
        {"id":"back","type":"feedback","input":{"node":"dr"}},
        {"id":"sum","type":"add","inputs":[{"node":"in"},{"node":"back"}]},
        {"id":"dl","type":"delay","input":{"node":"sum"},"time":0.05,"max":0.1},
        {"id":"dr","type":"delay","input":{"node":"dl"},"time":0.05,"max":0.1},
        {"id":"out","type":"stereo","left":{"node":"dl"},"right":{"node":"dr"}}],
        "output":{"node":"out"}}}]}"#,
    "{}",
];

#[test]
fn the_callback_path_never_allocates() {
    // Built outside the detector, as the stage does before handing it to PipeWire.
    let engine = GraphSpec::default().build(48_000.0).unwrap();
    let stats = Arc::new(RtStats::default());
    let (mut controller, mut renderer) = Controller::new(engine, Arc::clone(&stats), 8192);
    let status = || StageStatus::new(StageKind::Synth);
    let mut sum = 0.0f32;
    let mut clock = Clock { buffer_start_ns: 0 };
    let mut swaps = 0;
    for cycle in 0..200u64 {
        // 60 notes per cycle on the pad (32 voices): stealing in every cycle; some in the
        // past (late); automation of the pad's cutoff (node 1 param 2) and gain.
        for k in 0..60u64 {
            let mut n = note(
                (cycle * 1024 + k * 10) as f64 / 48_000.0 - 0.001,
                0.05,
                40.0 + k as f32 % 30.0,
                0.7,
            );
            n.node = 1;
            controller.push(Incoming::Note(n));
        }
        let curve: CurvePoint = serde_json::from_str(&format!(
            r#"{{"t_ns":{},"node":1,"param":{},"value":{},"shape":"step"}}"#,
            cycle * 21_333_333,
            2 + cycle % 2,
            300.0 + (cycle % 10) as f32 * 500.0
        ))
        .unwrap();
        controller.push(Incoming::Curve(curve));
        // A linear point on the third node: an effect's setting where the graph has one
        // (a delay's feedback), moved block by block.
        let ramp: CurvePoint = serde_json::from_str(&format!(
            r#"{{"t_ns":{},"node":3,"param":1,"value":{},"shape":"linear"}}"#,
            cycle * 21_333_333 + 40_000_000,
            0.1 + (cycle % 5) as f32 * 0.1
        ))
        .unwrap();
        controller.push(Incoming::Curve(ramp));
        // Sets by name, and every 20 cycles a new graph with a 50 ms crossfade (about two
        // cycles), so the callback swaps engines, renders two at once and hands one back.
        let set = SynthCommand::Set {
            node: "pad".into(),
            param: ["cutoff", "pan", "gain"][cycle as usize % 3].into(),
            value: 0.5 + (cycle % 7) as f32 * 100.0,
        };
        assert_eq!(controller.handle(set, status), Ok(SynthReply::Applied));
        if cycle % 20 == 10 {
            let json = GRAPHS[swaps as usize % GRAPHS.len()];
            let load = SynthCommand::LoadGraph {
                json: json.into(),
                fade_ms: 50,
            };
            assert_eq!(controller.handle(load, status), Ok(SynthReply::Applied));
            swaps += 1;
        }
        assert_no_alloc(|| {
            let out = renderer.fill(clock, 1024);
            sum += out.iter().map(|x| x.abs()).sum::<f32>();
            renderer.account(1000, 21_333_333);
        });
        // Retired engines are freed here, outside the detector.
        controller.collect_retired();
        clock.buffer_start_ns += 21_333_333;
    }
    let stolen = stats.stolen.load(Relaxed);
    assert!(sum > 0.0 && stolen > 100, "sound {sum}, stolen {stolen}");
    assert!(stats.late.load(Relaxed) > 0);
    assert_eq!(
        stats.swaps.load(Relaxed),
        swaps,
        "every graph was swapped in"
    );
    assert!(!controller.swap_pending(), "every old engine came back");
}
