//! Ramps over bars through the CLI on the real stages (krach's transition): a tempo ramp read
//! from the published transport beat by beat — through a composer killed half way — and a
//! gain ramp heard in the recorded level.

use super::*;

use khorus_bus::TransportState;

/// A cycle position written `n` or `n/d`.
fn cycle(text: &str) -> f64 {
    match text.split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
        None => text.parse().unwrap(),
    }
}

/// The session's ramp on `what`, once control has it placed: (start cycle, JSON).
fn placed_ramp(up: &Up, what: &str) -> (f64, serde_json::Value) {
    wait_for(Duration::from_secs(10), "the ramp in the session", || {
        let s: serde_json::Value = serde_json::from_str(&up.session()).unwrap();
        let r = s["ramps"]
            .as_array()?
            .iter()
            .find(|r| r["what"] == what)?
            .clone();
        Some((cycle(r["start"].as_str()?), r))
    })
}

/// The latest transport state, once one satisfies `pred`.
fn transport_until(
    sub: &mut khorus_bus::Subscriber<TransportState>,
    latest: &mut Option<TransportState>,
    what: &str,
    pred: impl Fn(&TransportState) -> bool,
) -> TransportState {
    wait_for(Duration::from_secs(30), what, || {
        sub.drain(|t| *latest = Some(t)).unwrap();
        latest.filter(|t| pred(t))
    })
}

#[test]
fn a_tempo_ramp_is_linear_in_bars_on_the_published_transport_through_a_composer_restart() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "ramp-tempo", None);
    up.wait_ready(&ALL);
    let bus = Bus::open("t-ramp-tempo", &up.bus.config).unwrap();
    let mut transport = bus.subscriber::<TransportState>().unwrap();
    let mut latest = None;
    // A bar of one beat, so that 8 bars take 8 beats.
    up.ok(&["score", "none"]);
    up.ok(&["play", "bass", "a1"]);
    up.ok(&["tempo", "120", "--beats-per-cycle", "1"]);
    transport_until(&mut transport, &mut latest, "120 bpm", |t| {
        t.bpm() == 120.0 && t.beats_per_cycle == 1
    });
    let mut seen: Vec<TransportState> = Vec::new();
    up.ok(&["tempo", "140", "--over", "8"]);
    let (start, ramp) = placed_ramp(&up, "tempo");
    assert_eq!(
        (ramp["from"].as_f64(), ramp["to"].as_f64()),
        (Some(120.0), Some(140.0))
    );
    assert_eq!(ramp["bars"], 8);
    // Three beats in, the composer is killed; control replays the session on the old clock.
    let composer = up.pid_of(StageKind::Composer);
    let mut collect = |what: &str, until: &dyn Fn(&TransportState) -> bool| {
        wait_for(Duration::from_secs(30), what, || {
            transport
                .drain(|t| {
                    seen.push(t);
                    latest = Some(t);
                })
                .unwrap();
            latest.filter(|t| until(t))
        })
    };
    let anchor = |t: &TransportState| t.anchor_cycle_num as f64 / t.anchor_cycle_den as f64;
    let old = collect("three beats of the ramp", &|t| anchor(t) >= start + 3.0);
    let kill_ns = khorus_bus::clock::now_ns();
    let killed_at = old.cycle_at(kill_ns);
    kill9(composer);
    wait_back(&mut up, StageKind::Composer, composer);
    let new = collect("the new composer's transport", &|t| t.t_ns > kill_ns);
    let back_at = new.cycle_at(khorus_bus::clock::now_ns());
    collect("the end of the ramp", &|t| {
        anchor(t) >= start + 8.0 && t.ramp().is_none()
    });
    // The tempo of a straight line in bars from 120 to 140 over 8.
    let line = |c: f64| 120.0 + 20.0 * ((c - start) / 8.0).clamp(0.0, 1.0);
    // Every beat of the ramp was published with its tempo — but those that came while no
    // composer ran (between the kill and its successor's first report, a beat of slack
    // either side) could not be.
    for beat in 0..=8 {
        let c = start + beat as f64;
        match seen.iter().find(|t| (anchor(t) - c).abs() < 1e-9) {
            Some(t) => assert!(
                (t.bpm() - line(c)).abs() < 0.1,
                "beat {beat}: {} bpm, want {}",
                t.bpm(),
                line(c)
            ),
            None => assert!(
                c >= killed_at - 1.0 && c <= back_at + 1.0,
                "beat {beat} (cycle {c}) never published, outside the restart \
                 ({killed_at:.2}..{back_at:.2})"
            ),
        }
    }
    // Every state published after the ramp began (the restarted composer's included) says
    // the same line, at its anchor and half a beat on.
    for t in seen.iter().filter(|t| anchor(t) >= start) {
        let a = anchor(t);
        assert!((t.bpm() - line(a)).abs() < 0.1, "{t:?}");
        assert!((t.bpm_at(a + 0.5) - line(a + 0.5)).abs() < 0.1, "{t:?}");
    }
    // Done (once the lookahead has sounded too), the session shows no ramp; the tempo is
    // the session's.
    let s = wait_for(Duration::from_secs(5), "no ramp in the session", || {
        let s: serde_json::Value = serde_json::from_str(&up.session()).unwrap();
        s.get("ramps").is_none().then_some(s)
    });
    assert_eq!(s["tempo"]["bpm"], 140.0);
    // A pattern changed over 4 bars (a1 = MIDI 33 to e2 = 40) crossfades with the one it replaces: each old note
    // fades out as the new one beside it fades in, their velocities summing to the default.
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let bass = up.node_id("bass");
    up.ok(&["play", "bass", "e2", "--over", "4"]);
    let mut heard: Vec<NoteEvent> = Vec::new();
    wait_for(Duration::from_secs(15), "the crossfade played", || {
        notes.drain(|n| heard.push(n)).unwrap();
        let full_e2 = heard.iter().filter(|n| n.note == 40.0 && n.velocity == 0.8);
        (full_e2.count() >= 2).then_some(())
    });
    let bass_notes: Vec<&NoteEvent> = heard.iter().filter(|n| n.node == bass).collect();
    let fading: Vec<&&NoteEvent> = bass_notes
        .iter()
        .filter(|n| n.note == 33.0 && n.velocity < 0.8)
        .collect();
    assert_eq!(fading.len(), 3, "a1 fading over 4 bars: {bass_notes:?}");
    assert!(fading.windows(2).all(|w| w[1].velocity < w[0].velocity));
    for a in fading {
        let e = bass_notes
            .iter()
            .find(|n| n.note == 40.0 && n.t_ns == a.t_ns)
            .expect("e2 beside each fading a1");
        assert!((a.velocity + e.velocity - 0.8).abs() < 1e-5, "{a:?} {e:?}");
    }
    // Out of range: refused, naming it.
    let refused = up.cli(&["tempo", "100", "--over", "5000"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1..=1024"));
}

#[test]
fn a_gain_ramp_over_bars_is_heard_in_the_recorded_level() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "ramp-gain", None);
    up.wait_ready(&ALL);
    synth_on_the_sink(&stack);
    drone(&up);
    // Dry, so that the level is the pad's gain and no reverb tail.
    up.ok(&["unroute", "pad", "reverb"]);
    up.ok(&["unroute", "pad", "delay"]);
    let bus = Bus::open("t-ramp-gain", &up.bus.config).unwrap();
    let mut transport = bus.subscriber::<TransportState>().unwrap();
    let mut latest = None;
    let t = transport_until(&mut transport, &mut latest, "120 bpm", |t| t.bpm() == 120.0);
    let now = |t: &TransportState| t.cycle_at(khorus_bus::clock::now_ns());
    let began = now(&t);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("ramp.wav");
    let mut rec = stack.record_monitor(&wav);
    // Two bars (4 s) of the steady drone, then a fade to 0.05 over 2 bars (4 s).
    wait_for(Duration::from_secs(10), "two bars recorded", || {
        (now(&t) >= began + 2.0).then_some(())
    });
    up.ok(&["set", "pad.gain", "0.05", "--over", "2"]);
    let (start, ramp) = placed_ramp(&up, "pad.gain");
    assert_eq!(
        (ramp["from"].as_f64(), ramp["to"].as_f64()),
        (Some(1.0), Some(0.05))
    );
    wait_for(Duration::from_secs(15), "the ramp over", || {
        (now(&t) >= start + 2.5).then_some(())
    });
    rec.signal(Signal::SIGINT);
    rec.wait_exit(Duration::from_secs(10));
    // 100 ms windows: steady before, the middle of the range crossed slowly, quiet after.
    let rms: Vec<f32> = window_rms(&wav)
        .chunks(10)
        .map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let median = |v: &[f32]| {
        let mut v = v.to_vec();
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    // The drone starts at a cycle boundary after it was asked for: its first 2 s.
    let first = rms
        .iter()
        .position(|&x| x > 1e-3)
        .expect("the drone sounds");
    assert!(rms.len() > first + 60, "{rms:?}");
    let before = median(&rms[first..first + 20]);
    let after = median(&rms[rms.len() - 4..]);
    assert!(after < 0.12 * before, "faded: {after} from {before}");
    // A jump would cross from 0.6 to 0.25 of the level within a window or two; a 4 s ramp
    // takes about 1.5 s.
    let middle = rms
        .iter()
        .filter(|&&x| x > 0.25 * before && x < 0.6 * before)
        .count();
    assert!(
        middle >= 8,
        "{middle} windows between 0.25 and 0.6 of the level: {rms:?}"
    );
}

#[test]
fn a_new_clock_ends_the_ramps_of_the_old_one_at_their_values() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "ramp-fresh", None);
    up.wait_ready(&ALL);
    up.ok(&["set", "pad.gain", "0.5", "--over", "512"]);
    placed_ramp(&up, "pad.gain");
    // Everything stops; a new `khorus up` starts every stage afresh, on a new clock where
    // the ramp's cycles mean nothing: the gain is where it was going, at once.
    up.ok(&["down"]);
    let mut control = up.control.take().unwrap();
    let (status, _, _) = control.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "control exited with {status}");
    up.spawn_control();
    up.wait_ready(&ALL);
    let s = wait_for(Duration::from_secs(10), "no ramp in the session", || {
        let s: serde_json::Value = serde_json::from_str(&up.session()).unwrap();
        s.get("ramps").is_none().then_some(s)
    });
    assert_eq!(s["nodes"]["pad"]["gain"], 0.5);
    let bus = Bus::open("t-ramp-fresh", &up.bus.config).unwrap();
    let mut synth = bus.command_client::<commands::Synth>().unwrap();
    let gain = wait_for(Duration::from_secs(10), "the synth at the gain", || {
        let g = match synth.call(&SynthCommand::Describe, Duration::from_secs(5)) {
            Ok(SynthReply::Graph { json: Some(j) }) => {
                serde_json::from_str::<serde_json::Value>(&j).unwrap()
            }
            other => panic!("describe: {other:?}"),
        };
        let pad = g["instruments"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == "pad")?
            .clone();
        (pad["gain"] == 0.5).then_some(pad["gain"].clone())
    });
    assert_eq!(gain, 0.5);
}
