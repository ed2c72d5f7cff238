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
    synth: Child,
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
        synth,
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

/// Sixteen onsets (silence, then sound) in `left`, 6000 ± 1 samples apart: 16ths at 120 bpm.
fn assert_sixteenths(left: &[f32]) {
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
    assert_sixteenths(&left);
}

#[test]
fn a_synth_with_nothing_to_play_pauses_its_stream_and_plays_the_next_notes_on_time() {
    use khorus_bus::{Counter, StageKind, StageStatus};
    let def = r#"{"name":"tick","nodes":[
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.01,"sustain":0,"release":0.005}],
        "output":{"node":"env"}}"#;
    let Some(rig) = rig(def, "khorus-synth-pause") else {
        return;
    };
    // Its heartbeats, not a status command: a command would wake it.
    let me = Bus::open("pause-status", &rig.bus.config).unwrap();
    let mut heartbeats = me.subscriber::<StageStatus>().unwrap();
    let mut next_report = || loop {
        let s = heartbeats
            .receive_until(std::time::Instant::now() + Duration::from_secs(10))
            .unwrap()
            .expect("a heartbeat");
        if s.stage() == StageKind::Synth {
            return s;
        }
    };
    // Nothing to play: after two quiet seconds the stream pauses, and no callback runs. (A
    // report before the first callback also has no cycle: the stream ran, then paused.)
    let paused = wait_for(Duration::from_secs(20), "the stream paused", || {
        let s = next_report();
        (s.get(Counter::TickMs) == Some(0) && s.get(Counter::Ticks) > Some(0)).then_some(s)
    });
    let later = next_report();
    assert_eq!(
        later.get(Counter::Ticks),
        paused.get(Counter::Ticks),
        "callbacks while paused"
    );

    // A control that keeps moving (as one following a signal does through a hush) makes no
    // sound: the stream stays paused, and the control's last value is there for the notes.
    let mut curves = me.publisher::<khorus_bus::CurvePoint>().unwrap();
    let sent = clock::now_ns();
    for k in 0..10 {
        curves
            .publish(khorus_bus::CurvePoint {
                t_ns: sent + k * 20_000_000,
                node: 1,
                param: 0, // gain
                value: 0.5,
                ..Default::default()
            })
            .unwrap();
    }
    let after_curves = wait_for(Duration::from_secs(10), "a report after the curves", || {
        let s = next_report();
        (s.t_ns > sent + 200_000_000).then_some(s)
    });
    assert_eq!(
        after_curves.get(Counter::TickMs),
        Some(0),
        "curves woke the stream"
    );

    // Notes wake it: every onset on time, 6000 samples apart from the first.
    let start = clock::now_ns() + 300_000_000;
    let step = 125_000_000;
    let notes = (0..16)
        .map(|k| note(start + k * step, 20_000_000, 60.0))
        .collect();
    let _playing = rig.play(notes);
    let end = start + 17 * step;
    let after = wait_for(Duration::from_secs(10), "a report after the notes", || {
        let s = next_report();
        (s.t_ns > end).then_some(s)
    });
    assert_eq!(
        after.get(Counter::Late),
        Some(0),
        "a note came after its time"
    );
    assert!(after.get(Counter::Ticks) > paused.get(Counter::Ticks));
    let left = rig.recording(end + 200_000_000);
    assert_sixteenths(&left);
    // The held gain of 0.5 (equal-power centre: × 0.707) on an envelope peaking at 1.
    let peak = left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        (0.30..0.40).contains(&peak),
        "peak {peak}, not at a gain of 0.5"
    );
}

#[test]
fn a_cycle_shorter_than_the_quantum_asked_for_is_said_in_the_log_and_in_status() {
    use khorus_bus::command::CommonReply;
    use khorus_bus::commands::synth::{SynthCommand, SynthReply};
    use khorus_bus::{Common, Counter};

    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    // PipeWire grants at most its max-quantum, whatever its version's default.
    let set = stack
        .tool("pw-metadata")
        .args(["-n", "settings", "0", "clock.max-quantum", "1024"])
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    let bus = TestBus::new("synq");
    let mut cmd = stack.command(env!("CARGO_BIN_EXE_khorus-synth"));
    cmd.envs(bus.config.env())
        .args(["--name", "khorus-synth-quantum", "--quantum", "2048"]);
    let mut synth = Child::spawn(cmd);
    let line = synth.wait_line(true, Duration::from_secs(20), |l| {
        l.contains("frames a cycle")
    });
    assert!(
        line.contains("WARN") && line.contains("at 1024 frames a cycle, not the 2048 asked for"),
        "{line}"
    );
    let me = Bus::open("test", &bus.config).unwrap();
    let mut client = me.command_client::<khorus_bus::commands::Synth>().unwrap();
    let t = Duration::from_secs(10);
    let mut call = |c: Common| client.call(&SynthCommand::Common(c), t).unwrap();
    let SynthReply::Common(CommonReply::Status(status)) = call(Common::Status) else {
        panic!("a status reply");
    };
    assert_eq!(
        status.get(Counter::TickMs),
        Some(21),
        "1024 frames at 48 kHz"
    );
    assert_eq!(call(Common::Shutdown), SynthReply::Common(CommonReply::Ack));
    let (exit, _, stderr) = synth.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{}", stderr.join("\n"));
    let said = stderr
        .iter()
        .filter(|l| l.contains("frames a cycle"))
        .count();
    assert_eq!(said, 1, "said once: {stderr:?}");
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
    use khorus_bus::commands::synth::{SynthCommand, SynthReply};
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
    let mut client = me.command_client::<khorus_bus::commands::Synth>().unwrap();
    let t = Duration::from_secs(10);
    let mut call = |c: Common| client.call(&SynthCommand::Common(c), t).unwrap();
    let reply = call(Common::Ping { nonce: 3 });
    assert_eq!(
        reply,
        SynthReply::Common(CommonReply::Pong {
            nonce: 3,
            pid: synth.pid()
        })
    );
    let SynthReply::Common(CommonReply::Status(status)) = call(Common::Status) else {
        panic!("a status reply");
    };
    assert_eq!(status.stage(), StageKind::Synth);
    assert!(status.get(Counter::Xruns).is_some());
    assert!(status.get(Counter::CallbackBudgetNs).is_some());
    assert_eq!(call(Common::Shutdown), SynthReply::Common(CommonReply::Ack));
    let (exit, _, stderr) = synth.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{}", stderr.join("\n"));
}

/// `khorus-synth ARGS…` as a client of the rig's bus: (exit code, stdout, stderr).
fn client(bus: &TestBus, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_khorus-synth"))
        .envs(bus.config.env())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn set_and_load_graph_from_the_command_line_change_the_running_synth() {
    use khorus_bus::Common;
    use khorus_bus::command::CommonReply;
    use khorus_bus::commands::synth::{SynthCommand, SynthReply};

    let sine = |name: &str, amplitude: f32| {
        format!(
            r#"{{"name":"{name}","controls":[{{"name":"level","default":1,"min":0,"max":1}}],"nodes":[
            {{"id":"o","type":"osc","wave":"sine","freq":{{"control":"freq"}}}},
            {{"id":"env","type":"adsr","gate":{{"control":"gate"}},"attack":0.005,"decay":0.1,"sustain":1,"release":0.02}},
            {{"id":"out","type":"mul","inputs":[{{"node":"o"}},{{"node":"env"}},{{"control":"level"}},{amplitude}]}}],
            "output":{{"node":"out"}}}}"#
        )
    };
    let Some(rig) = rig(&sine("tone", 0.5), "khorus-synth-live") else {
        return;
    };
    rig.synth
        .wait_line(true, Duration::from_secs(20), |l| l == "synth: ready");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    // Set: applied, or refused naming what is wrong (exit 2).
    let (code, out, err) = client(&rig.bus, &["set", "tone", "level", "0.5"]);
    assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");
    let (code, _, err) = client(&rig.bus, &["set", "tone", "cutoff", "100"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"tone\"") && err.contains("\"cutoff\""),
        "{err}"
    );
    let (code, _, err) = client(&rig.bus, &["set", "piano", "gain", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"piano\""), "{err}");
    let (code, _, err) = client(&rig.bus, &["set", "tone", "pan", "NaN"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tone.pan") && err.contains("NaN"), "{err}");
    let (code, out, err) = client(&rig.bus, &["set", "tone", "pan", "-0.25"]);
    assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");

    // LoadGraph: a broken graph is refused and the old one keeps playing; a good one is
    // applied, and its instrument is the one that answers to Set afterwards.
    let broken = write("broken.json", r#"{"instruments":[{"builtin":"tuba"}]}"#);
    let (code, _, err) = client(&rig.bus, &["load", &broken]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"tuba\""), "{err}");
    let (code, out, err) = client(&rig.bus, &["set", "tone", "level", "1"]);
    assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");
    let graph = format!(
        r#"{{"instruments":[{{"def":{},"polyphony":8,"pan":0,"sends":[0,0]}}]}}"#,
        sine("fresh", 0.5)
    );
    let good = write("good.json", &graph);
    let (code, out, err) = client(&rig.bus, &["load", &good, "--fade-ms", "50"]);
    assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");
    let (code, out, err) = client(&rig.bus, &["set", "fresh", "level", "0.5"]);
    assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");
    let (code, _, err) = client(&rig.bus, &["set", "tone", "level", "0.5"]);
    assert_eq!(code, Some(2), "the old graph's names are gone: {err}");
    // The callback runs (the node is linked), so the 50 ms fade ends and the next swap is
    // accepted; until then it is refused as still crossfading.
    wait_for(Duration::from_secs(10), "the next graph swap", || {
        let (code, out, err) = client(&rig.bus, &["load", &good, "--fade-ms", "1"]);
        match code {
            Some(0) => Some(out),
            Some(2) if err.contains("crossfade") => None,
            _ => panic!("unexpected: {code:?} {out} {err}"),
        }
    });
    let missing = dir.path().join("missing.json").display().to_string();
    let (code, _, err) = client(&rig.bus, &["load", &missing]);
    assert_eq!(code, Some(2), "{err}");

    // Still running and answering; and the new graph plays notes at their pitch.
    let me = Bus::open("test", &rig.bus.config).unwrap();
    let mut cmd = me.command_client::<khorus_bus::commands::Synth>().unwrap();
    let reply = cmd
        .call(
            &SynthCommand::Common(Common::Ping { nonce: 9 }),
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(
        reply,
        SynthReply::Common(CommonReply::Pong {
            nonce: 9,
            pid: rig.synth.pid()
        })
    );
    let start = clock::now_ns() + 200_000_000;
    let _playing = rig.play(vec![note(start, 1_000_000_000, 69.0)]);
    let left = rig.recording(start + 1_300_000_000);
    let loud: Vec<f32> = left
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.01)
        .collect();
    assert!(loud.len() > 24_000, "{} loud samples", loud.len());
    let part = &loud[4800..4800 + 19_200];
    let crossings = part
        .windows(2)
        .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
        .count();
    assert!(
        (crossings as i64 - 176).abs() <= 1,
        "{crossings} crossings in 0.4 s"
    );
}

/// Starts `pw-record` as node `name`, not linked by the session manager, and links output
/// ports `<from>:output_FL/FR` to it. Stop it with SIGINT.
fn record_from(stack: &PipeWireStack, from: &str, name: &str, out: &std::path::Path) -> Child {
    let mut rec = stack.command("pw-record");
    rec.args([
        "-P",
        &format!("{{ node.name = \"{name}\", node.autoconnect = false }}"),
    ])
    .args(["--rate", "48000", "--channels", "2", "--format", "f32"])
    .arg(out);
    let recorder = Child::spawn(rec);
    for ch in ["FL", "FR"] {
        stack.link(
            &format!("{from}:output_{ch}"),
            &format!("{name}:input_{ch}"),
        );
    }
    recorder
}

fn left_channel(path: &std::path::Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).expect("a recording");
    reader
        .samples::<f32>()
        .step_by(2)
        .map(Result::unwrap)
        .collect()
}

/// Level of `hz` in `x` relative to its strongest component, dB (Goertzel-style projection).
fn level_at(x: &[f32], hz: f32) -> f32 {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        let a = std::f64::consts::TAU * hz as f64 * i as f64 / RATE as f64;
        re += v as f64 * a.cos();
        im += v as f64 * a.sin();
    }
    (2.0 * (re * re + im * im).sqrt() / x.len() as f64) as f32
}

#[test]
fn every_node_is_a_stem_with_only_its_sound_and_edits_add_and_remove_stems() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let bus = TestBus::new("stm");
    let dir = tempfile::tempdir().unwrap();
    let sine = |name: &str| {
        format!(
            r#"{{"name":"{name}","polyphony":4,"pan":0,"def":{{"name":"{name}","nodes":[
            {{"id":"o","type":"sine","freq":{{"control":"freq"}}}},
            {{"id":"env","type":"adsr","gate":{{"control":"gate"}},"attack":0.01,"decay":0.1,"sustain":1,"release":0.05}},
            {{"id":"out","type":"mul","inputs":[{{"node":"o"}},{{"node":"env"}},0.3]}}],
            "output":{{"node":"out"}}}}}}"#
        )
    };
    let graph = |names: &[&str]| {
        let path = dir.path().join(format!("{}.json", names.join("-")));
        let list: Vec<String> = names.iter().map(|n| sine(n)).collect();
        std::fs::write(&path, format!(r#"{{"instruments":[{}]}}"#, list.join(","))).unwrap();
        path
    };
    let name = "khorus-stems";
    let mut cmd = stack.command(env!("CARGO_BIN_EXE_khorus-synth"));
    cmd.envs(bus.config.env())
        .args(["--no-autoconnect", "--name", name, "--graph"])
        .arg(graph(&["bass", "pad"]));
    let synth = Child::spawn(cmd);
    synth.wait_line(true, Duration::from_secs(20), |l| l == "synth: ready");
    let (bass_wav, master_wav) = (dir.path().join("bass.wav"), dir.path().join("master.wav"));
    let bass_rec = record_from(&stack, &format!("{name}.bass"), "rec-bass", &bass_wav);
    let master_rec = record_from(&stack, name, "rec-master", &master_wav);

    // The bass (node 1) at 110 Hz and the pad (node 2) at 659 Hz, held for 4 s.
    let t0 = clock::now_ns() + 300_000_000;
    let mut bass = note(t0, 4_000_000_000, 45.0);
    bass.node = 1;
    let mut pad = note(t0, 4_000_000_000, 76.0);
    pad.node = 2;
    let me = Bus::open("test", &bus.config).unwrap();
    let mut publisher = me.publisher::<NoteEvent>().unwrap();
    publisher.publish_all(vec![bass, pad]).unwrap();

    // While they play: a graph with a lead adds its stem; the graph without it removes it.
    // Bass and pad are the same nodes in every graph, so they play on through both edits.
    wait_for(Duration::from_secs(10), "the notes to start", || {
        (clock::now_ns() > t0 + 1_000_000_000).then_some(())
    });
    let lead = format!("{name}.lead:output_FL");
    let load = |path: std::path::PathBuf| {
        let (code, out, err) = client(
            &bus,
            &["load", &path.display().to_string(), "--fade-ms", "50"],
        );
        assert_eq!((code, out.trim()), (Some(0), "applied"), "{err}");
    };
    load(graph(&["bass", "pad", "lead"]));
    wait_for(Duration::from_secs(10), "the lead's stem", || {
        stack.output_ports().contains(&lead).then_some(())
    });
    wait_for(
        Duration::from_secs(10),
        "the next swap to be accepted",
        || {
            let path = graph(&["bass", "pad"]).display().to_string();
            let (code, _, _) = client(&bus, &["load", &path, "--fade-ms", "50"]);
            (code == Some(0)).then_some(())
        },
    );
    wait_for(Duration::from_secs(10), "the lead's stem to go", || {
        (!stack.output_ports().contains(&lead)).then_some(())
    });
    wait_for(Duration::from_secs(30), "the notes to end", || {
        (clock::now_ns() > t0 + 4_200_000_000).then_some(())
    });
    for rec in [&bass_rec, &master_rec] {
        rec.signal(Signal::SIGINT);
    }
    let (mut bass_rec, mut master_rec) = (bass_rec, master_rec);
    bass_rec.wait_exit(Duration::from_secs(10));
    master_rec.wait_exit(Duration::from_secs(10));
    drop(synth);
    drop(publisher);

    let stem = left_channel(&bass_wav);
    let master = left_channel(&master_wav);
    // The stretch where both sound: find the stem's first loud sample, skip the attack.
    let start = stem
        .iter()
        .position(|x| x.abs() > 0.05)
        .expect("the bass sounds")
        + 4800;
    let span = 96_000.min(stem.len() - start - 4800);
    assert!(
        span >= 48_000,
        "at least a second recorded while both play ({span})"
    );
    let bass_only = &stem[start..start + span];
    // MIDI 76 is E5, 659.26 Hz.
    let e5 = 440.0 * 2f32.powf(7.0 / 12.0);
    let (b110, b660) = (level_at(bass_only, 110.0), level_at(bass_only, e5));
    assert!(b110 > 0.1, "the bass stem carries the bass: {b110}");
    assert!(
        20.0 * (b660 / b110).log10() < -60.0,
        "and nothing of the pad: 660 Hz at {b660} against {b110}"
    );
    let mstart = master
        .iter()
        .position(|x| x.abs() > 0.05)
        .expect("the mix sounds")
        + 4800;
    let mix = &master[mstart..mstart + span.min(master.len() - mstart)];
    let (m110, m660) = (level_at(mix, 110.0), level_at(mix, e5));
    assert!(
        (m660 / m110 - 1.0).abs() < 0.1,
        "the master carries both at their level: {m110} {m660}"
    );
    // Neither does the master glitch through the edits: the two sines together move at most
    // 2π(A₁·110 + A₂·659)/48000 per sample (20 % margin).
    let limit = std::f32::consts::TAU * (m110 * 110.0 + m660 * e5) / RATE as f32 * 1.2;
    let step = master[mstart..(mstart + 3 * 48_000).min(master.len() - 4800)]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(
        step < limit,
        "largest step on the master {step} (limit {limit})"
    );
    // No glitch on the bass stem through both edits: a 110 Hz sine of amplitude A moves at
    // most A·2π·110/48000 per sample (20 % margin); a dropout or a cut would jump.
    let amp = bass_only.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let limit = amp * std::f32::consts::TAU * 110.0 / RATE as f32 * 1.2;
    let end = stem.len() - 48_000.min(stem.len() - start);
    let held = &stem[start..(start + 3 * 48_000).min(end.max(start + span))];
    let step = held
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(
        step < limit,
        "largest step on the bass stem {step} (limit {limit})"
    );
}
