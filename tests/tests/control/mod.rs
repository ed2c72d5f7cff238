//! `khorus up` with the real stages on a private PipeWire: supervision (restarts, back-off,
//! adoption after control dies, PipeWire coming and going, a slow start) and `khorus down` in
//! [`lifecycle`]; the session (the CLI changes the music; refused batches change nothing) in
//! [`cli`]. What both use is here.

mod cli;
mod lifecycle;
mod ramps;
mod scale;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use khorus_bus::commands::control::StageState;
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{Bus, NoteEvent, StageKind, commands};
use khorus_tests::control::{ALL, Up, alive, kill9, wait_back, wait_state, zombies_of};
use khorus_tests::{Child, PipeWireStack, wait_for};
use nix::sys::signal::Signal;

/// RMS of each 10 ms window of a recorded stereo float WAV.
fn window_rms(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    let samples: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    samples
        .chunks(960)
        .map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

/// Runs of silent windows (RMS below -80 dBFS) between sound, ignoring the start and end.
fn gaps(rms: &[f32]) -> usize {
    let first = rms.iter().position(|&x| x > 1e-4).unwrap_or(rms.len());
    let last = rms.iter().rposition(|&x| x > 1e-4).unwrap_or(0);
    if first >= last {
        return 0;
    }
    let mut gaps = 0;
    let mut in_gap = false;
    for &x in &rms[first..=last] {
        if x <= 1e-4 && !in_gap {
            gaps += 1;
        }
        in_gap = x <= 1e-4;
    }
    gaps
}

/// Waits until the synth's output is linked to the sink.
fn synth_on_the_sink(stack: &PipeWireStack) {
    wait_for(Duration::from_secs(30), "the synth on the sink", || {
        stack
            .links()
            .iter()
            .any(|l| l.contains("khorus-synth:output_FL"))
            .then_some(())
    });
}

/// Lets `d` pass (a span of music to record or to leave alone), waiting on the clock.
fn pass(d: Duration) {
    let until = Instant::now() + d;
    wait_for(d + Duration::from_secs(5), "time to pass", || {
        (Instant::now() >= until).then_some(())
    });
}

/// A sustained chord on the pad and nothing else: sound with no gaps of its own.
fn drone(up: &Up) {
    up.ok(&["score", "none"]);
    up.ok(&["tempo", "120"]);
    up.ok(&["play", "pad", "[c3,e3,g3]"]);
}
