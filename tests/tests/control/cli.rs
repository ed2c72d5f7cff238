//! The session through the CLI: changes reach the music, bad batches change nothing.

use super::*;

#[test]
fn the_cli_changes_the_music_and_bad_batches_change_nothing() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let osc_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!("[control]\nrouter_args = [\"--osc-in\", \"{osc_port}\"]\n");
    let mut up = Up::start(stack.env(), "cli", Some(&config));
    up.wait_ready(&ALL);
    let first = up.session();

    // `status --watch` reports every second over one connection: between two reports its
    // node is still on the bus (a watch that joined for each report had left it by then).
    let mut cmd = up.command("khorus");
    cmd.args(["status", "--watch", "--json"]);
    let mut watch = Child::spawn(cmd);
    let reports = watch.wait_lines(false, Duration::from_secs(10), 2, |l| l.starts_with('['));
    let stages: Vec<khorus_bus::commands::control::StageReport> =
        serde_json::from_str(&reports[1]).unwrap();
    assert_eq!(stages.len(), ALL.len(), "{}", reports[1]);
    let name = format!("khorus-cli-{}", watch.pid());
    let nodes = khorus_bus::nodes::list(&up.bus.config).unwrap();
    assert!(
        nodes.iter().any(|n| n.name == name),
        "{name} not on the bus: {nodes:?}"
    );
    watch.signal(Signal::SIGTERM);
    watch.wait_exit(Duration::from_secs(10));
    let bus = Bus::open("t-cli", &up.bus.config).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let mut synth = bus.command_client::<commands::Synth>().unwrap();
    let mut graph = || match synth.call(&SynthCommand::Describe, Duration::from_secs(5)) {
        Ok(SynthReply::Graph { json }) => json.unwrap_or_default(),
        other => panic!("describe: {other:?}"),
    };
    let first_graph = graph();
    up.ok(&["score", "none"]);
    up.ok(&["tempo", "120"]);
    // The score's notes published before it stopped (up to a lookahead ahead) are not ours.
    notes.drain(|_| {}).unwrap();
    let bass = up.node_id("bass");
    let lead = up.node_id("lead");

    // Nothing to make: the composer reads a frame a second, and the collector makes them at
    // that pace; a pattern brings both back to ten a second.
    let collector_tick = |up: &mut Up| {
        let r = up
            .status()
            .into_iter()
            .find(|r| r.stage == StageKind::Collector)?;
        r.counters
            .iter()
            .find(|(c, _)| *c == khorus_bus::Counter::TickMs)
            .map(|(_, v)| *v)
    };
    wait_for(
        Duration::from_secs(10),
        "the collector at the composer's pace",
        || (collector_tick(&mut up) == Some(1000)).then_some(()),
    );

    // play: bass notes every quarter cycle (0.5 s at 120 bpm).
    up.ok(&["play", "bass", "a1*4"]);
    wait_for(
        Duration::from_secs(5),
        "the collector back to ten frames a second",
        || (collector_tick(&mut up) == Some(100)).then_some(()),
    );
    let gather = |notes: &mut khorus_bus::Subscriber<NoteEvent>, node: u32, n: usize| {
        let mut got = Vec::new();
        wait_for(Duration::from_secs(15), "notes of the node", || {
            notes
                .drain(|e| {
                    if e.node == node {
                        got.push(e)
                    }
                })
                .unwrap();
            (got.len() >= n).then(|| got.clone())
        })
    };
    let b = gather(&mut notes, bass, 3);
    assert!((b[2].t_ns - b[1].t_ns).abs_diff(500_000_000) <= 2, "{b:?}");
    assert!((b[0].note - 33.0).abs() < 1e-3, "a1 is MIDI 33: {b:?}");
    // tempo: twice as slow.
    up.ok(&["tempo", "60"]);
    pass(Duration::from_secs(3));
    notes.drain(|_| {}).unwrap();
    let b = gather(&mut notes, bass, 3);
    assert!(
        (b[2].t_ns - b[1].t_ns).abs_diff(1_000_000_000) <= 2,
        "{b:?}"
    );
    // note: an audition on the lead.
    up.ok(&["note", "lead", "70", "0.5", "200"]);
    let l = gather(&mut notes, lead, 1);
    assert!((l[0].note - 70.0).abs() < 1e-3);
    // set: a number reaches the synth's graph; route too.
    up.ok(&["set", "pad.cutoff", "1234"]);
    assert!(graph().contains("\"cutoff\":1234.0"), "{}", graph());
    up.ok(&["route", "bass", "delay", "0.5"]);
    let g = graph();
    assert!(
        g.contains("\"sends\":{\"delay\":0.5,\"reverb\":0.08}"),
        "{g}"
    );
    // hush: the bass stops.
    up.ok(&["hush", "bass"]);
    pass(Duration::from_secs(3));
    notes.drain(|_| {}).unwrap();
    let quiet = Instant::now() + Duration::from_secs(3);
    let mut late_bass = 0;
    wait_for(Duration::from_secs(8), "three quiet seconds", || {
        notes
            .drain(|e| late_bass += (e.node == bass) as usize)
            .unwrap();
        (Instant::now() >= quiet).then_some(())
    });
    assert_eq!(late_bass, 0, "bass notes after hush");
    // OSC in goes through control too: the session records it.
    let sent = Command::new("oscsend")
        .args([
            "127.0.0.1",
            &osc_port.to_string(),
            "/khorus/set",
            "ssf",
            "lead",
            "gain",
            "0.25",
        ])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_for(
        Duration::from_secs(10),
        "the OSC set in the session",
        || up.session().contains("\"gain\": 0.25").then_some(()),
    );
    assert!(graph().contains("\"gain\":0.25"), "{}", graph());
    let session = up.session();
    assert!(session.contains("\"cutoff\": 1234.0"), "{session}");
    assert!(session.contains("\"bpm\": 60.0"), "{session}");

    // Refused batches: the element is named, exit 2, and nothing changes.
    up.ok(&["route", "delay", "reverb", "0.3"]);
    let graph_before = graph();
    let bad: &[(&[&str], &str)] = &[
        (&["set", "piano.gain", "1"], "\"piano\""),
        (&["play", "bass", "a [b"], "pattern of bass"),
        (&["route", "reverb", "delay", "0.3"], "would close a loop"),
        (&["set", "pad.gain", "7"], "pad.gain"),
        (&["score", "jazz"], "score"),
    ];
    for (args, named) in bad {
        let before = up.session();
        let out = up.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
        assert_eq!(up.session(), before, "{args:?} changed the session");
    }
    let def = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        def.path(),
        r#"{"name":"x","nodes":[{"id":"o","type":"osc","wave":"saw","freq":{"node":"nope"}}],"output":{"node":"o"}}"#,
    )
    .unwrap();
    let before = up.session();
    let out = up.cli(&["node", "add", "x", "--def", def.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
    assert_eq!(up.session(), before);
    assert_eq!(graph(), graph_before, "a refused batch reached the synth");

    // Nodes come and go; a new node plays under its own id; unroute removes a send.
    up.ok(&[
        "node",
        "add",
        "bass2",
        "--builtin",
        "bass",
        "--role",
        "bass",
    ]);
    let bass2 = up.node_id("bass2");
    assert!(bass2 > lead, "a new id");
    assert!(graph().contains("\"bass2\""), "{}", graph());
    up.ok(&["play", "bass2", "e1*2"]);
    let b2 = gather(&mut notes, bass2, 1);
    assert!((b2[0].note - 28.0).abs() < 1e-3, "e1 is MIDI 28: {b2:?}");
    up.ok(&["unroute", "bass", "delay"]);
    assert!(!graph().contains("\"sends\":{\"delay\":0.5"), "{}", graph());
    up.ok(&["node", "remove", "bass2"]);
    assert!(!up.session().contains("bass2"));
    assert!(!graph().contains("\"bass2\""));

    // A session saved and loaded back is the same session.
    let saved = up.session();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), saved.replace("\"bpm\": 60.0", "\"bpm\": 90.0")).unwrap();
    up.ok(&["session", "load", file.path().to_str().unwrap()]);
    assert_eq!(
        up.session(),
        saved.replace("\"bpm\": 60.0", "\"bpm\": 90.0")
    );
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), saved.replace("\"bass\"", "\"bass!\"")).unwrap();
    let before = up.session();
    assert_eq!(
        up.cli(&["session", "load", bad.path().to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(up.session(), before);

    // `khorus-synth graph` prints what the synth plays, with control's node ids, and
    // `render --graph` takes it as it is (resolving those ids is `synth::ids`' own test).
    let out = up.command("khorus-synth").arg("graph").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["ids"]["bass"]["id"], bass);
    assert_eq!(printed["ids"]["lead"]["id"], lead);
    let dir = tempfile::tempdir().unwrap();
    let (g_json, n_json, wav) = (
        dir.path().join("g.json"),
        dir.path().join("n.jsonl"),
        dir.path().join("take.wav"),
    );
    std::fs::write(&g_json, &out.stdout).unwrap();
    std::fs::write(
        &n_json,
        format!(r#"{{"t_ns":0,"dur_ns":500000000,"node":{bass},"note":45,"velocity":0.8,"role":"bass"}}"#),
    )
    .unwrap();
    let paths = [&g_json, &n_json, &wav].map(|p| p.to_str().unwrap().to_owned());
    let rendered = up
        .command("khorus-synth")
        .args(["render", "--graph", &paths[0], "--notes", &paths[1]])
        .args(["--seconds", "1", "--out", &paths[2]])
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(
        window_rms(&wav).iter().any(|&r| r > 0.01),
        "the rendered note is silent"
    );

    // A restarted synth comes back with what the CLI set.
    let g = graph();
    let pid = up.pid_of(StageKind::Synth);
    kill9(pid);
    wait_back(&mut up, StageKind::Synth, pid);
    assert_eq!(graph(), g);

    // `session reset`: back to the session khorus started with, the graph with it.
    assert_ne!(up.session(), first);
    up.ok(&["session", "reset"]);
    assert_eq!(up.session(), first);
    assert_eq!(graph(), first_graph);
}

/// Per 50 ms window of a recorded stereo float WAV: the RMS of its first difference over its
/// RMS — how much of the sound is high frequencies, whatever its level (a low-passed sound
/// reads low, the same sound with the filter open reads high). Silent windows are left out.
fn brightness(path: &std::path::Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    let left: Vec<f32> = r.samples::<f32>().map(Result::unwrap).step_by(2).collect();
    left.chunks(2400)
        .filter_map(|c| {
            let rms = (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt();
            let diff = c.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f32>();
            let diff = (diff / (c.len() - 1) as f32).sqrt();
            (rms > 1e-3).then(|| diff / rms)
        })
        .collect()
}

/// Largest over smallest, after dropping the extreme tenth at either end.
fn spread(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    let cut = v.len() / 10;
    let v = &v[cut..v.len() - cut];
    v[v.len() - 1] / v[0]
}

#[test]
fn a_curve_on_a_parameter_sweeps_the_sound() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "curve", None);
    up.wait_ready(&ALL);
    synth_on_the_sink(&stack);
    drone(&up);
    let dir = tempfile::tempdir().unwrap();
    let record = |name: &str| {
        let wav = dir.path().join(name);
        let mut rec = stack.record_monitor(&wav);
        pass(Duration::from_secs(6));
        rec.signal(Signal::SIGINT);
        rec.wait_exit(Duration::from_secs(10));
        brightness(&wav)
    };
    // The pad's chord with its filter held: the same colour throughout.
    up.ok(&["set", "pad.cutoff", "1200"]);
    pass(Duration::from_secs(3));
    let steady = record("steady.wav");
    // The cutoff swept by a curve: 150 Hz for half of each 2 s cycle, 9 kHz for the other.
    let out = up.ok(&["play", "pad.cutoff", "150 9000"]);
    assert!(out.is_empty() || !out.contains("refused"), "{out}");
    assert!(
        up.session().contains("\"150 9000\""),
        "the curve is in the session: {}",
        up.session()
    );
    pass(Duration::from_secs(3));
    let swept = record("swept.wav");
    let (s, w) = (spread(&steady), spread(&swept));
    assert!(steady.len() > 50 && swept.len() > 50, "too little sound");
    assert!(
        w > 2.0 * s && w > 2.0,
        "brightness spread with the curve {w:.2}, without {s:.2}"
    );
    // The expression form: a kernel-independent sweep sampled 16 times a cycle.
    up.ok(&[
        "play",
        "pad.cutoff",
        "range(sine, 150, 9000)",
        "--per-cycle",
        "16",
    ]);
    pass(Duration::from_secs(3));
    let sine = record("sine.wav");
    assert!(spread(&sine) > 2.0 * s, "sine sweep {:.2}", spread(&sine));
    // Hushed, the parameter goes back to its number-less default: no curve in the session.
    up.ok(&["hush", "pad.cutoff"]);
    assert!(!up.session().contains("150 9000"));
    // A word is not a curve's point: refused where it is, the music untouched.
    let refused = up.cli(&["play", "pad.cutoff", "150 x"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("pad.cutoff") && err.contains("1:5"), "{err}");
}
