//! Supervision: `khorus up` and `khorus down`, restarts on the session's grid, adoption by a
//! new control, crash loops backed off, a stage slow to start, PipeWire coming and going.

use super::*;
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TransportAction};

#[test]
fn up_plays_to_the_sink_and_down_leaves_nothing_behind() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "upd", None);
    up.wait_ready(&ALL);
    // Status carries each stage's counters once it has reported (once a second).
    wait_for(
        Duration::from_secs(10),
        "the collector's source in status",
        || {
            up.status()
                .into_iter()
                .find(|r| r.stage == StageKind::Collector)
                .filter(|r| {
                    r.counters
                        .iter()
                        .any(|(c, _)| *c == khorus_bus::Counter::Source)
                })
        },
    );
    // The default session plays the ambient score; its pad plays a drone we can hear.
    drone(&up);
    synth_on_the_sink(&stack);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("up.wav");
    let mut rec = stack.record_monitor(&wav);
    let bus = Bus::open("t-upd", &up.bus.config).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let pad = up.node_id("pad");
    wait_for(Duration::from_secs(10), "a pad note", || {
        let mut hit = false;
        notes.drain(|n| hit |= n.node == pad).unwrap();
        hit.then_some(())
    });
    // Two more seconds of music.
    pass(Duration::from_secs(2));
    rec.signal(Signal::SIGINT);
    rec.wait_exit(Duration::from_secs(10));
    let rms = window_rms(&wav);
    assert!(
        rms.iter().cloned().fold(0.0, f32::max) > 0.01,
        "the recording is silent"
    );
    let reports = up.status();
    for r in &reports {
        assert_eq!(r.state, StageState::Ready, "{r:?}");
        assert_eq!(r.restarts, 0, "{r:?}");
        assert!(r.pss_kib.is_some_and(|k| k > 0), "{r:?}");
        // Measured since the stage became ready (seconds ago): what it costs, in CPU and in
        // wake-ups; the synth at least once per PipeWire cycle (2048 frames: 23 a second).
        let wakes = r.wakes_per_s.expect("wake-ups measured");
        assert!(r.cpu_percent.is_some_and(|c| c > 0.0), "{r:?}");
        if r.stage == StageKind::Synth {
            assert!(wakes > 15.0, "{r:?}");
        }
    }
    drop(notes);
    drop(bus);

    // Down: every stage exits, control too, and the bus is empty.
    let pids: Vec<u32> = reports.iter().filter_map(|r| r.pid).collect();
    up.ok(&["down"]);
    let mut control = up.control.take().unwrap();
    let (status, _, _) = control.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "control exited with {status}");
    for pid in pids {
        assert!(!alive(pid), "stage {pid} still runs after down");
    }
    wait_for(Duration::from_secs(10), "the bus to be empty", || {
        (up.bus.config.resource_files() == 0).then_some(())
    });
}

#[test]
fn a_control_whose_binary_was_replaced_still_restarts_its_stages() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start_copied(stack.env(), "upgrade", dir.path());
    up.wait_ready(&ALL);
    // An upgrade replaces the file under the running control (a new file at the path, the
    // old one deleted).
    let exe = dir.path().join("khorus");
    std::fs::remove_file(&exe).unwrap();
    std::fs::copy(khorus_tests::bin("khorus"), &exe).unwrap();
    // The stages it runs from its own binary come back when killed, running its code.
    for stage in [StageKind::Composer, StageKind::Synth, StageKind::Router] {
        let old = up.pid_of(stage);
        kill9(old);
        let back = wait_back(&mut up, stage, old);
        let pid = back.pid.unwrap();
        let running = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert!(
            running.to_string_lossy().ends_with("(deleted)"),
            "{stage:?} runs {running:?}, not control's own (replaced) file"
        );
    }
}

#[test]
fn killed_stages_come_back_with_the_session_on_the_same_grid() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "kill", None);
    up.wait_ready(&ALL);
    up.ok(&["score", "none"]);
    up.ok(&["tempo", "120"]);
    up.ok(&["play", "bass", "a1*4"]);
    up.ok(&["set", "pad.cutoff", "900"]);
    let bass = up.node_id("bass");
    let bus = Bus::open("t-kill", &up.bus.config).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let mut synth = bus.command_client::<commands::Synth>().unwrap();
    let mut graph = || match synth.call(&SynthCommand::Describe, Duration::from_secs(5)) {
        Ok(SynthReply::Graph { json }) => json,
        other => panic!("describe: {other:?}"),
    };
    let before = graph().expect("control loaded a graph");
    assert!(before.contains("\"cutoff\":900.0"), "{before}");
    let mut files_before = 0;
    let control = up.control_pid();

    let mut times = Vec::new();
    let collect = |notes: &mut khorus_bus::Subscriber<NoteEvent>, times: &mut Vec<u64>| {
        notes
            .drain(|n| {
                if n.node == bass {
                    times.push(n.t_ns)
                }
            })
            .unwrap();
    };
    for round in 0..20 {
        for stage in ALL {
            let pid = up.pid_of(stage);
            kill9(pid);
            let deadline = Instant::now() + Duration::from_secs(30);
            let back = loop {
                let r = up.status();
                if let Some(x) = r.iter().find(|x| {
                    x.stage == stage && x.state == StageState::Ready && x.pid != Some(pid)
                }) {
                    break x.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {} not back within 30 s: {r:#?}",
                    stage.name()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(back.restarts > round as u64, "{back:?}");
            assert!(zombies_of(control).is_empty(), "zombies of control");
            collect(&mut notes, &mut times);
        }
        assert_eq!(graph().as_deref(), Some(before.as_str()), "round {round}");
        if round == 0 {
            // Every port and connection exists once each stage has restarted once; from here
            // on, a leak would grow with every kill.
            files_before = wait_for(Duration::from_secs(10), "status reports", || {
                up.status()
                    .iter()
                    .all(|r| r.counters.len() > 2)
                    .then(|| up.bus.config.resource_files())
            });
        }
    }
    // The session came back to the composer: bass notes after the last restart, on the grid
    // the first one set (anchor + k · 0.5 s).
    let last = times.len();
    wait_for(
        Duration::from_secs(10),
        "bass notes after the restarts",
        || {
            collect(&mut notes, &mut times);
            (times.len() > last + 2).then_some(())
        },
    );
    let t0 = times[0];
    for &t in &times {
        let off = (t - t0) % 500_000_000;
        assert!(
            off <= 2 || off >= 500_000_000 - 2,
            "a note {} ns off the grid",
            off.min(500_000_000 - off)
        );
    }
    // What a killed stage left is cleaned before its successor starts; the last one's
    // successor may still be opening its ports, so give it a moment.
    // Fails (times out) if files from dead stages stay behind.
    wait_for(Duration::from_secs(10), "the bus files to settle", || {
        (up.bus.config.resource_files() <= files_before).then_some(())
    });
}

#[test]
fn kills_leave_no_gap_but_the_synths_and_a_new_control_adopts_the_stages() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "gap", None);
    up.wait_ready(&ALL);
    drone(&up);
    synth_on_the_sink(&stack);
    let dir = tempfile::tempdir().unwrap();
    let settle = |secs: u64| pass(Duration::from_secs(secs));
    settle(3);

    // Collector, composer, router and control itself: no gap.
    let wav = dir.path().join("others.wav");
    let mut rec = stack.record_monitor(&wav);
    settle(1);
    for stage in [StageKind::Collector, StageKind::Composer, StageKind::Router] {
        let pid = up.pid_of(stage);
        kill9(pid);
        wait_back(&mut up, stage, pid);
        settle(1);
    }
    let before: Vec<(StageKind, Option<u32>)> =
        up.status().iter().map(|r| (r.stage, r.pid)).collect();
    let mut control = up.control.take().unwrap();
    control.kill();
    settle(2);
    for (_, pid) in &before {
        assert!(alive(pid.unwrap()), "a stage died with control");
    }
    up.spawn_control();
    let after: Vec<(StageKind, Option<u32>)> = up
        .wait_ready(&ALL)
        .iter()
        .map(|r| (r.stage, r.pid))
        .collect();
    assert_eq!(after, before, "the new control adopts the same stage pids");
    settle(1);
    rec.signal(Signal::SIGINT);
    rec.wait_exit(Duration::from_secs(10));
    let rms = window_rms(&wav);
    assert!(rms.len() > 500, "{} windows", rms.len());
    assert_eq!(gaps(&rms), 0, "a gap in the music");

    // The synth: one gap, then the same graph plays again.
    let wav = dir.path().join("synth.wav");
    let mut rec = stack.record_monitor(&wav);
    settle(1);
    let pid = up.pid_of(StageKind::Synth);
    kill9(pid);
    wait_back(&mut up, StageKind::Synth, pid);
    synth_on_the_sink(&stack);
    // Sounding again (reported with the new synth's heartbeat; under load, the chord comes
    // back with the hand-over or the next cycle's onset), then a second of it recorded.
    wait_for(Duration::from_secs(15), "the new synth sounding", || {
        up.status()
            .into_iter()
            .find(|r| r.stage == StageKind::Synth && r.pid != Some(pid))?
            .counters
            .iter()
            .any(|&(c, v)| c == khorus_bus::Counter::ActiveVoices && v > 0)
            .then_some(())
    });
    settle(1);
    rec.signal(Signal::SIGINT);
    rec.wait_exit(Duration::from_secs(10));
    let rms = window_rms(&wav);
    assert_eq!(
        gaps(&rms),
        1,
        "one gap when the synth dies, then music again"
    );
}

#[test]
fn a_restarted_synth_plays_what_was_sounding_without_waiting_for_the_next_onset() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "resume", None);
    up.wait_ready(&ALL);
    // One chord a cycle, held for the whole cycle: at 15 bpm a cycle is 16 s.
    up.ok(&["score", "none"]);
    up.ok(&["tempo", "15"]);
    let pad = up.node_id("pad");
    let bus = Bus::open("t-resume", &up.bus.config).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    up.ok(&["play", "pad", "[c3,e3,g3]"]);
    synth_on_the_sink(&stack);
    let onset = wait_for(Duration::from_secs(40), "a pad chord", || {
        let mut t = None;
        notes
            .drain(|n| {
                if n.node == pad {
                    t = Some(n.t_ns)
                }
            })
            .unwrap();
        t
    });
    let next_onset = onset + 16_000_000_000;
    wait_for(Duration::from_secs(5), "the chord to sound", || {
        (khorus_bus::clock::now_ns() > onset + 500_000_000).then_some(())
    });
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("resume.wav");
    let mut rec = stack.record_monitor(&wav);
    pass(Duration::from_secs(1));
    let pid = up.pid_of(StageKind::Synth);
    kill9(pid);
    wait_back(&mut up, StageKind::Synth, pid);
    synth_on_the_sink(&stack);
    pass(Duration::from_secs(2));
    rec.signal(Signal::SIGINT);
    rec.wait_exit(Duration::from_secs(10));
    // The chord's next onset has not come: what sounds after the gap is the hand-over.
    assert!(
        khorus_bus::clock::now_ns() + 1_000_000_000 < next_onset,
        "the restart took too long to tell: {} ms left before the next chord",
        (next_onset as i64 - khorus_bus::clock::now_ns() as i64) / 1_000_000
    );
    let mut onsets = Vec::new();
    notes
        .drain(|n| {
            if n.node == pad && n.t_ns > onset {
                onsets.push(n.t_ns)
            }
        })
        .unwrap();
    assert!(
        onsets.iter().all(|&t| t >= next_onset),
        "a chord started meanwhile: {onsets:?}"
    );
    let rms = window_rms(&wav);
    assert_eq!(
        gaps(&rms),
        1,
        "one gap when the synth dies, then the chord again"
    );
    assert!(
        rms[rms.len().saturating_sub(50)..]
            .iter()
            .all(|&x| x > 1e-3),
        "the chord sounds again to the end of the recording"
    );
    // The chord's three notes, taken over (reported with the synth's next heartbeat).
    wait_for(
        Duration::from_secs(5),
        "resumed=3 in the synth's status",
        || {
            let synth = up
                .status()
                .into_iter()
                .find(|r| r.stage == StageKind::Synth)?;
            synth
                .counters
                .contains(&(khorus_bus::Counter::Resumed, 3))
                .then_some(())
        },
    );
}

#[test]
fn a_stage_stuck_at_start_holds_back_neither_control_nor_the_other_stages() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    // A collector replaying a FIFO nobody writes blocks opening it: started, never answering
    // (control gives up on it after 15 s).
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trace");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let config = format!(
        "[control]\ncollector_args = [\"--replay\", \"{}\"]\n",
        fifo.display()
    );
    let mut up = Up::start(stack.env(), "slow", Some(&config));
    // Control answers while the collector starts (it used to wait for it before serving
    // anything) and, two seconds on, starts the others (they used to wait for the collector
    // to answer or be given up on: 15 s of silence).
    let started = wait_for(Duration::from_secs(10), "the collector started", || {
        up.status()
            .into_iter()
            .find(|x| x.stage == StageKind::Collector && x.pid.is_some())
    });
    assert_eq!(started.state, StageState::Starting, "{started:?}");
    // A change is taken meanwhile (the composer gets it when it starts).
    up.ok(&["tempo", "100"]);
    let reports = wait_for(Duration::from_secs(14), "the other stages ready", || {
        let r = up.status();
        r.iter()
            .filter(|x| x.stage != StageKind::Collector)
            .all(|x| x.state == StageState::Ready)
            .then_some(r)
    });
    let collector = reports
        .iter()
        .find(|x| x.stage == StageKind::Collector)
        .unwrap();
    assert_eq!(
        (collector.state, collector.pid, collector.restarts),
        (StageState::Starting, started.pid, 0),
        "the collector, still starting: {collector:?}"
    );
    let bus = Bus::open("t-slow", &up.bus.config).unwrap();
    let mut composer = bus.command_client::<commands::Composer>().unwrap();
    let query = ComposerCommand::Transport(TransportAction::Query);
    match composer.call(&query, Duration::from_secs(5)) {
        Ok(ComposerReply::Transport(t)) => assert_eq!(t.bpm, 100.0, "{t:?}"),
        other => panic!("transport: {other:?}"),
    }
    drop(composer);
    drop(bus);
    // `down` stops the stage that never answered too.
    let pid = started.pid.unwrap();
    up.ok(&["down"]);
    let mut control = up.control.take().unwrap();
    let (status, _, _) = control.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "control exited with {status}");
    assert!(
        !alive(pid),
        "the starting collector {pid} still runs after down"
    );
}

#[test]
fn a_stage_that_crashes_at_start_is_backed_off_and_control_survives() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(
        stack.env(),
        "loop",
        Some(
            "[control]\ncollector_args = [\"--no-such-flag\"]\nbackoff_max_s = 2\n\
             hang_timeout_s = 2\n",
        ),
    );
    let r = wait_state(&mut up, StageKind::Collector, StageState::CrashLooping);
    assert!(
        r.detail.iter().any(|l| l.contains("exited with status 2")),
        "{r:?}"
    );
    assert!(
        r.detail.iter().any(|l| l.contains("--no-such-flag")),
        "the stage's own words: {r:?}"
    );
    let at = r.restarts;
    pass(Duration::from_secs(4));
    let r = up
        .status()
        .into_iter()
        .find(|x| x.stage == StageKind::Collector)
        .unwrap();
    // Backed off to at most 2 s: a handful of restarts in 4 s, not hundreds.
    assert!(r.restarts - at <= 5, "{} restarts in 4 s", r.restarts - at);
    assert!(r.restarts > at, "it keeps being tried");
    up.wait_ready(&[StageKind::Composer, StageKind::Synth, StageKind::Router]);
    let control = up.control_pid();
    assert!(alive(control));

    // A hung stage (alive, silent) is killed and started again.
    let router = up.pid_of(StageKind::Router);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(router as i32), Signal::SIGSTOP).unwrap();
    let back = wait_back(&mut up, StageKind::Router, router);
    assert!(
        back.counters
            .iter()
            .any(|(c, v)| *c == khorus_bus::Counter::Hangs && *v == 1),
        "{back:?}"
    );
    assert!(!alive(router));
}

#[test]
fn pipewire_may_come_and_go_under_a_running_control() {
    let Some(mut stack) = PipeWireStack::prepare() else {
        return;
    };
    // No PipeWire yet: control, collector, composer and the router (OSC only) still run.
    let mut up = Up::start(stack.env(), "pw", None);
    up.wait_ready(&[StageKind::Collector, StageKind::Composer, StageKind::Router]);
    let waiting = wait_state(&mut up, StageKind::Synth, StageState::WaitingForPipewire);
    assert!(
        waiting.detail.iter().any(|l| l.contains("no PipeWire")),
        "{waiting:?}"
    );
    drone(&up);
    stack.start_daemons();
    up.wait_ready(&ALL);
    let heard = |up: &mut Up, stack: &PipeWireStack, name: &str| {
        synth_on_the_sink(stack);
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join(name);
        let mut rec = stack.record_monitor(&wav);
        // A synth that has just (re)started sounds from the next onset: the drone's chord
        // starts each cycle (2 s at 120 bpm), so a recording of two cycles hears it.
        pass(Duration::from_secs(4));
        rec.signal(Signal::SIGINT);
        rec.wait_exit(Duration::from_secs(10));
        let rms = window_rms(&wav);
        let loudest = rms.iter().cloned().fold(0.0, f32::max);
        if loudest <= 0.01 {
            // What the synth and the graph looked like, for whoever reads a failure.
            let synth = up
                .status()
                .into_iter()
                .find(|r| r.stage == StageKind::Synth);
            panic!(
                "{name}: silent (loudest of {} windows: {loudest})\nsynth: {synth:?}\nlinks: {:#?}",
                rms.len(),
                stack.links()
            );
        }
    };
    heard(&mut up, &stack, "first.wav");
    let synth = up.pid_of(StageKind::Synth);
    // The daemon restarts: the synth reconnects (a new process) and the music resumes.
    stack.stop();
    stack.start_daemons();
    wait_back(&mut up, StageKind::Synth, synth);
    heard(&mut up, &stack, "second.wav");
}
