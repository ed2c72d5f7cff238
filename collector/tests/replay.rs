//! Record and replay: a recorded performance replays to the same frames, bit for bit.

use std::time::Duration;

use khorus_bus::SignalFrame;
use khorus_tests::{Child, TestBus};

use crate::util::{collector_cmd, serial};

fn frames(stdout: &[String]) -> Vec<SignalFrame> {
    stdout
        .iter()
        .map(|l| serde_json::from_str::<SignalFrame>(l).unwrap())
        .collect()
}

/// What must be identical: everything but the sequence number, the timestamp and the source.
fn content(f: &SignalFrame) -> (u64, [u32; 32], [u32; 32], u32) {
    (
        f.dt_ns,
        f.rate.map(f32::to_bits),
        f.level.map(f32::to_bits),
        f.available,
    )
}

#[test]
fn a_recorded_trace_replays_to_bit_identical_frames() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("perf.trace");
    let trace_arg = trace.to_str().unwrap();
    // Record a live source (procfs: runs anywhere; the trace format is the same for BPF).
    let bus = TestBus::new("rec");
    let mut rec = Child::spawn(collector_cmd(
        &bus,
        &[
            "--source",
            "procfs",
            "--tick-ms",
            "10",
            "--frames",
            "60",
            "--json",
            "--record",
            trace_arg,
        ],
    ));
    let (status, live, stderr) = rec.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", stderr.join("\n"));
    assert!(trace.exists() && !dir.path().join("perf.trace.partial").exists());
    let live = frames(&live);
    assert_eq!(live.len(), 60);

    for _ in 0..2 {
        let bus = TestBus::new("play");
        let mut play = Child::spawn(collector_cmd(
            &bus,
            &["--replay", trace_arg, "--fast", "--json"],
        ));
        let (status, replayed, stderr) = play.wait_exit(Duration::from_secs(30));
        assert!(status.success(), "{}", stderr.join("\n"));
        let replayed = frames(&replayed);
        assert_eq!(replayed.len(), live.len());
        for (i, (a, b)) in live.iter().zip(&replayed).enumerate() {
            assert_eq!(content(a), content(b), "frame {i} differs");
            assert_eq!(b.source(), khorus_bus::SignalSource::Replay);
        }
    }

    // A truncated trace is refused with the byte offset, after the frames before it.
    let bytes = std::fs::read(&trace).unwrap();
    let cut = dir.path().join("cut.trace");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let bus = TestBus::new("cut");
    let mut play = Child::spawn(collector_cmd(
        &bus,
        &["--replay", cut.to_str().unwrap(), "--fast", "--json"],
    ));
    let (status, out, stderr) = play.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let stderr = stderr.join("\n");
    assert!(stderr.contains("truncated at byte offset"), "{stderr}");
    assert_eq!(
        out.len(),
        59,
        "every complete sample before the cut is replayed"
    );
}
