//! The whole pipeline, as `scripts/run.sh` starts it: collector → composer (a kernel score)
//! → synth, autoconnected to the default sink of a private PipeWire daemon.

use std::process::Command;
use std::time::{Duration, Instant};

use khorus_bus::{Bus, Counter, StageKind, StageStatus};
use khorus_tests::{Child, PipeWireStack, TestBus, bin, wait_for};
use nix::sys::signal::Signal;

#[test]
fn kernel_activity_becomes_music_on_the_default_sink() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let bus = TestBus::new("pipe");
    let spawn = |name: &str, args: &[&str]| {
        let mut cmd = stack.command(bin(name));
        cmd.envs(bus.config.env()).args(args);
        Child::spawn(cmd)
    };
    let _collector = spawn("khorus-collector", &["--source", "procfs"]);
    let _synth = spawn("khorus-synth", &["--name", "khorus-synth-pipeline"]);
    let _composer = spawn(
        "khorus-composer",
        &["--score", "percussive", "--bpm", "140"],
    );
    // The synth connects itself to the default sink (the null sink).
    wait_for(
        Duration::from_secs(20),
        "the synth linked to the default sink",
        || {
            stack
                .links()
                .iter()
                .any(|l| l.contains("khorus-synth-pipeline:output_FL"))
                .then_some(())
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("music.wav");
    let mut recorder = stack.record_monitor(&out);

    // Kernel activity for the score to play: processes, disk writes, context switches.
    let me = Bus::open("test", &bus.config).unwrap();
    let mut status = me.subscriber::<StageStatus>().unwrap();
    let until = Instant::now() + Duration::from_secs(4);
    let mut notes_received = 0;
    while Instant::now() < until {
        Command::new("/bin/true").status().unwrap();
        std::fs::write(dir.path().join("load"), vec![0u8; 1 << 18]).unwrap();
        status
            .drain(|s| {
                if s.stage() == StageKind::Synth {
                    notes_received = s.get(Counter::Received).unwrap_or(0);
                }
            })
            .unwrap();
    }
    recorder.signal(Signal::SIGINT);
    recorder.wait_exit(Duration::from_secs(10));
    let mut reader = hound::WavReader::open(&out).expect("a recording");
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    let rms = (samples.iter().map(|x| x * x).sum::<f32>() / samples.len().max(1) as f32).sqrt();
    let peak = samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(notes_received > 0, "the synth received no notes");
    assert!(
        rms > 0.005,
        "the sink heard silence (rms {rms}, peak {peak})"
    );
    assert!(peak <= 0.9, "the master limiter holds its ceiling ({peak})");
}
