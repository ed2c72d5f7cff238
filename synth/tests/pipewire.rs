//! The synth as a real PipeWire node on a private daemon, recorded from the null sink's
//! monitor.

use std::process::Command;
use std::time::Duration;

use khorus_bus::{Bus, NoteEvent, Publisher, clock};
use khorus_tests::pipewire::NULL_SINK;
use khorus_tests::{Child, PipeWireStack, TestBus, wait_for};
use nix::sys::signal::Signal;

const RATE: u32 = 48_000;

/// A synth node running a one-instrument graph, linked by hand to the null sink, and a
/// recorder on the sink's monitor.
struct Rig {
    stack: PipeWireStack,
    bus: TestBus,
    _synth: Child,
    recorder: Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn rig(def: &str, name: &str) -> Option<Rig> {
    let stack = PipeWireStack::start()?;
    let bus = TestBus::new("syn");
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("graph.json");
    std::fs::write(
        &graph,
        format!(r#"{{"instruments":[{{"def":{def},"polyphony":8,"pan":0,"sends":[0,0]}}]}}"#),
    )
    .unwrap();
    let mut cmd = stack.command(env!("CARGO_BIN_EXE_khorus-synth"));
    cmd.envs(bus.config.env())
        .args(["--no-autoconnect", "--name", name, "--graph"])
        .arg(&graph);
    let synth = Child::spawn(cmd);
    wait_for(Duration::from_secs(20), "the synth node", || {
        stack.node_exists(name).then_some(())
    });
    for ch in ["FL", "FR"] {
        let out = format!("{name}:output_{ch}");
        let sink = format!("{NULL_SINK}:playback_{ch}");
        wait_for(Duration::from_secs(10), "the synth's ports", || {
            stack.output_ports().contains(&out).then_some(())
        });
        let status = stack.tool("pw-link").args([&out, &sink]).status().unwrap();
        assert!(status.success(), "pw-link {out} {sink}");
    }
    let out = dir.path().join("rec.wav");
    let recorder = stack.record_monitor(&out);
    Some(Rig {
        stack,
        bus,
        _synth: synth,
        recorder,
        out,
        _dir: dir,
    })
}

impl Rig {
    /// Publishes `notes`; the returned publisher must live until they have been played (a
    /// subscriber reads a publisher's samples only while it exists).
    fn play(&self, notes: Vec<NoteEvent>) -> (Bus, Publisher<NoteEvent>) {
        let me = Bus::open("test", &self.bus.config).unwrap();
        let mut publisher = me.publisher::<NoteEvent>().unwrap();
        publisher.publish_all(notes).unwrap();
        (me, publisher)
    }

    /// Stops recording at `until_ns` and returns the left channel.
    fn recording(mut self, until_ns: u64) -> Vec<f32> {
        wait_for(Duration::from_secs(30), "the notes to be played", || {
            (clock::now_ns() >= until_ns).then_some(())
        });
        self.recorder.signal(Signal::SIGINT);
        self.recorder.wait_exit(Duration::from_secs(10));
        let mut reader = hound::WavReader::open(&self.out).expect("a recording");
        let spec = reader.spec();
        assert_eq!(spec.sample_rate, RATE);
        let samples: Vec<f32> = reader
            .samples::<f32>()
            .step_by(2)
            .map(Result::unwrap)
            .collect();
        drop(self.stack);
        samples
    }
}

fn note(t_ns: u64, dur_ns: u64, midi: f32) -> NoteEvent {
    serde_json::from_str(&format!(
        r#"{{"t_ns":{t_ns},"dur_ns":{dur_ns},"node":1,"note":{midi},"velocity":1.0,"role":"melody"}}"#
    ))
    .unwrap()
}

#[test]
fn the_node_plays_a4_at_the_right_pitch_and_level() {
    let def = r#"{"name":"sine","nodes":[
        {"id":"o","type":"osc","wave":"sine","freq":{"control":"freq"}},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.005,"decay":0.1,"sustain":1,"release":0.02},
        {"id":"out","type":"mul","inputs":[{"node":"o"},{"node":"env"},0.5]}],"output":{"node":"out"}}"#;
    let Some(rig) = rig(def, "khorus-synth-a4") else {
        return;
    };
    let start = clock::now_ns() + 200_000_000;
    let _playing = rig.play(vec![note(start, 1_500_000_000, 69.0)]);
    let left = rig.recording(start + 1_800_000_000);
    let loud: Vec<f32> = left
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.01)
        .collect();
    assert!(loud.len() > 48_000, "{} loud samples", loud.len());
    let part = &loud[4800..4800 + 48_000];
    let crossings = part
        .windows(2)
        .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
        .count();
    assert!((crossings as i64 - 440).abs() <= 1, "{crossings} Hz");
    // 0.5 amplitude, panned centre (equal power: × 0.707): RMS 0.25.
    let rms = (part.iter().map(|x| x * x).sum::<f32>() / part.len() as f32).sqrt();
    assert!((rms - 0.25).abs() < 0.02, "rms {rms}");
}

#[test]
fn sixteenth_notes_at_120_bpm_are_6000_samples_apart() {
    // Output = the envelope: silent between notes, positive from the first frame of each.
    let def = r#"{"name":"tick","nodes":[
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.01,"sustain":0,"release":0.005}],
        "output":{"node":"env"}}"#;
    let Some(rig) = rig(def, "khorus-synth-ioi") else {
        return;
    };
    let start = clock::now_ns() + 300_000_000;
    let step = 125_000_000; // a 16th at 120 bpm
    let notes = (0..16)
        .map(|k| note(start + k * step, 20_000_000, 60.0))
        .collect();
    let _playing = rig.play(notes);
    let left = rig.recording(start + 17 * step + 200_000_000);
    let onsets: Vec<usize> = (1..left.len())
        .filter(|&i| left[i - 1] <= 1e-6 && left[i] > 1e-6)
        .collect();
    assert_eq!(onsets.len(), 16, "onsets at {onsets:?}");
    let iois: Vec<i64> = onsets.windows(2).map(|w| (w[1] - w[0]) as i64).collect();
    assert!(
        iois.iter().all(|&d| (d - 6000).abs() <= 1),
        "inter-onset intervals {iois:?}"
    );
}

#[test]
fn without_pipewire_the_error_says_so() {
    let bus = TestBus::new("nopw");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_khorus-synth"))
        .envs(bus.config.env())
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("PIPEWIRE_RUNTIME_DIR", dir.path())
        .env_remove("PIPEWIRE_REMOTE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to PipeWire"), "{err}");
    assert!(
        !err.contains("CreationFailed") || err.contains("is the daemon running"),
        "{err}"
    );
}

#[test]
fn the_synth_answers_ping_status_and_shutdown() {
    use khorus_bus::command::CommonReply;
    use khorus_bus::{Common, Counter, StageKind};

    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let bus = TestBus::new("syncmd");
    let mut cmd = stack.command(env!("CARGO_BIN_EXE_khorus-synth"));
    cmd.envs(bus.config.env())
        .args(["--no-autoconnect", "--name", "khorus-synth-cmd"]);
    let mut synth = Child::spawn(cmd);
    // The node exists as soon as the stream connects; commands are served once the stage
    // says it is ready (a request sent before any server exists is lost).
    synth.wait_line(true, Duration::from_secs(20), |l| l == "synth: ready");
    assert!(stack.node_exists("khorus-synth-cmd"));
    let me = Bus::open("test", &bus.config).unwrap();
    let mut client = me
        .command_client::<Common, CommonReply>(StageKind::Synth)
        .unwrap();
    let t = Duration::from_secs(10);
    let reply = client.call(&Common::Ping { nonce: 3 }, t).unwrap();
    assert_eq!(
        reply,
        CommonReply::Pong {
            nonce: 3,
            pid: synth.pid()
        }
    );
    let CommonReply::Status(status) = client.call(&Common::Status, t).unwrap() else {
        panic!("a status reply");
    };
    assert_eq!(status.stage(), StageKind::Synth);
    assert!(status.get(Counter::Xruns).is_some());
    assert!(status.get(Counter::CallbackBudgetNs).is_some());
    assert_eq!(client.call(&Common::Shutdown, t).unwrap(), CommonReply::Ack);
    let (exit, _, stderr) = synth.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{}", stderr.join("\n"));
}
