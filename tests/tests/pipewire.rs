//! The private PipeWire stack every audio test runs against.

use std::process::Command;
use std::time::Duration;

use khorus_tests::pipewire::NULL_SINK;
use khorus_tests::{Child, PipeWireStack};
use nix::sys::signal::Signal;

/// Frequency by counting rising zero crossings.
fn zero_crossing_hz(samples: &[f32], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
        .count();
    crossings as f64 * rate as f64 / samples.len() as f64
}

#[test]
fn private_stack_has_a_null_sink_whose_monitor_records_what_is_played() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    assert!(stack.node_exists(NULL_SINK));
    assert!(
        stack
            .output_ports()
            .iter()
            .any(|p| p.starts_with(&format!("{NULL_SINK}:monitor_"))),
        "no monitor ports: {:?}",
        stack.output_ports()
    );

    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    let out = dir.path().join("out.wav");
    let status = Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "2", "-b", "16"])
        .arg(&tone)
        .args(["synth", "2", "sine", "440", "vol", "0.5"])
        .status()
        .expect("sox (scripts/deps.sh installs it)");
    assert!(status.success());

    let mut recorder = stack.record_monitor(&out);

    let mut play = stack.command("pw-play");
    play.args(["--target", NULL_SINK]).arg(&tone);
    let (status, _, stderr) = Child::spawn(play).wait_exit(Duration::from_secs(20));
    assert!(status.success(), "pw-play: {}", stderr.join("\n"));

    recorder.signal(Signal::SIGINT);
    // pw-record finishes its file on SIGINT and then exits with status 1 (0.3.65); the file is
    // what counts, and it is checked below.
    let (status, _, stderr) = recorder.wait_exit(Duration::from_secs(10));
    eprintln!("pw-record: {status} {}", stderr.join("\n"));

    let mut reader = hound::WavReader::open(&out).expect("pw-record wrote a WAV file");
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, 48_000);
    let left: Vec<f32> = reader
        .samples::<f32>()
        .step_by(spec.channels as usize)
        .map(Result::unwrap)
        .collect();
    // Keep the part where the tone sounds.
    let loud: Vec<f32> = left
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.05)
        .collect();
    assert!(
        loud.len() > 48_000,
        "only {} loud samples of {}",
        loud.len(),
        left.len()
    );
    let tone_part = &loud[..48_000];
    let rms = (tone_part.iter().map(|s| s * s).sum::<f32>() / tone_part.len() as f32).sqrt();
    assert!(
        (0.3..0.4).contains(&rms),
        "rms {rms} (a 0.5 sine has 0.354)"
    );
    let hz = zero_crossing_hz(tone_part, 48_000);
    assert!((hz - 440.0).abs() < 2.0, "{hz} Hz");
}
