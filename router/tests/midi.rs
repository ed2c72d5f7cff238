//! The real router's MIDI port, linked with pw-link to a real `pw-mididump`.

use std::time::Duration;

use khorus_bus::Counter;
use khorus_bus::command::{Common, CommonReply};
use khorus_bus::commands::composer::{ComposerCommand, TransportAction};
use khorus_bus::{Bus, CurvePoint, NoteEvent, Role, SignalFrame, SignalId, clock};
use nix::sys::signal::Signal;

use crate::util::{MidiRig, RATE, channel, field, free_udp_port, note, note_name};

const ROLES: [(Role, u8); 4] = [
    (Role::Melody, 1),
    (Role::Bass, 2),
    (Role::Chords, 3),
    (Role::Percussion, 10),
];

#[test]
fn notes_and_signal_ccs_reach_pw_mididump_on_their_channels_at_exact_frames() {
    let Some(rig) = MidiRig::start("rmid", &[]) else {
        return;
    };

    let node = Bus::open("test-notes", &rig.bus.config).unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    let mut signals = node.publisher::<SignalFrame>().unwrap();
    // 120 bpm sixteenths: 125 ms = 6000 frames apart, each held 100 ms = 4800 frames.
    let t0 = clock::now_ns() + 400_000_000;
    let velocities = [0.25f32, 0.5, 0.75, 1.0];
    let expected_vel = [32u32, 64, 95, 127];
    for i in 0..8u64 {
        let (role, _) = ROLES[i as usize % 4];
        let v = velocities[i as usize % 4];
        notes
            .publish(note(t0 + i * 125_000_000, 100, 60.0 + i as f32, v, role))
            .unwrap();
    }
    let mut frame = SignalFrame::default();
    frame.level[SignalId::EXEC.index()] = 0.5;
    frame.level[SignalId::CSW.index()] = 1.0;
    frame.available = 1 << SignalId::EXEC.index() | 1 << SignalId::CSW.index();
    signals.publish(frame).unwrap();

    let ons = rig.wait_dumped(8, |d| d.text.starts_with("Note On"));
    let offs = rig.wait_dumped(8, |d| d.text.starts_with("Note Off"));
    for (i, (on, off)) in ons.iter().zip(&offs).enumerate() {
        let want_ch = ROLES[i % 4].1;
        assert_eq!(channel(&on.text), Some(want_ch), "{on:?}");
        assert_eq!(channel(&off.text), Some(want_ch), "{off:?}");
        assert!(
            on.text
                .contains(&format!("note {:>4}", note_name(60 + i as u8))),
            "note {i}: {on:?}"
        );
        assert_eq!(
            field(&on.text, "velocity"),
            Some(expected_vel[i % 4]),
            "{on:?}"
        );
        let held = ((off.sec - on.sec) * RATE).round();
        assert!((held - 4800.0).abs() <= 1.0, "note {i} held {held} frames");
    }
    for w in ons.windows(2) {
        let ioi = ((w[1].sec - w[0].sec) * RATE).round();
        assert!(
            (ioi - 6000.0).abs() <= 1.0,
            "inter-onset {ioi} frames: {w:?}"
        );
    }
    let ccs = rig.wait_dumped(2, |d| {
        d.text.starts_with("Controller") && !d.text.contains("All Notes Off")
    });
    let got: Vec<(u8, u32, u32)> = ccs
        .iter()
        .map(|d| {
            (
                channel(&d.text).unwrap(),
                field(&d.text, "controller").unwrap(),
                field(&d.text, "value").unwrap(),
            )
        })
        .collect();
    assert!(got.contains(&(1, 20, 64)), "exec → CC 20: {got:?}");
    assert!(got.contains(&(1, 23, 127)), "csw → CC 23: {got:?}");
}

#[test]
fn frames_notes_and_curves_wake_the_router_only_while_a_midi_peer_is_linked() {
    let Some(rig) = MidiRig::start_unlinked("rlazy", &[]) else {
        return;
    };
    let node = Bus::open("test-signals", &rig.bus.config).unwrap();
    let mut signals = node.publisher::<SignalFrame>().unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    let mut curves = node.publisher::<CurvePoint>().unwrap();
    let mut status = node
        .command_client::<khorus_bus::commands::Router>()
        .unwrap();
    let counters = |status: &mut khorus_bus::CommandClient<Common, CommonReply>| match status
        .call(&Common::Status, Duration::from_secs(2))
        .unwrap()
    {
        CommonReply::Status(s) => (
            s.get(Counter::Unconsumed).unwrap_or(0),
            s.get(Counter::Received).unwrap_or(0),
        ),
        other => panic!("status: {other:?}"),
    };
    khorus_tests::wait_for(Duration::from_secs(10), "the router on the bus", || {
        status.call(&Common::Status, Duration::from_secs(1)).ok()
    });
    // Nothing linked: a burst of frames is emptied by the once-a-second tick, unread.
    let mut frame = SignalFrame::default();
    frame.level[SignalId::EXEC.index()] = 0.25;
    frame.available = 1 << SignalId::EXEC.index();
    for _ in 0..100 {
        signals.publish(frame).unwrap();
    }
    // Notes and curve points too (no OSC target, no --print: nothing turns them into anything).
    for i in 0..20 {
        let t = clock::now_ns() + 300_000_000;
        notes
            .publish(note(t + i * 1_000_000, 50, 60.0, 0.8, Role::Bass))
            .unwrap();
    }
    for _ in 0..30 {
        curves.publish(CurvePoint::default()).unwrap();
    }
    let (_, received) = khorus_tests::wait_for(Duration::from_secs(5), "150 unconsumed", || {
        let c = counters(&mut status);
        (c.0 == 150).then_some(c)
    });
    assert_eq!(received, 0, "nothing was mapped while nothing consumed it");
    // ...and it does not wait for them: the collector reading this ticks at its idle rate, and
    // a composer's notes do not wake it.
    assert_eq!(
        signals.listeners(),
        0,
        "the unlinked router waits for frames"
    );
    assert_eq!(notes.listeners(), 0, "the unlinked router waits for notes");
    assert_eq!(
        curves.listeners(),
        0,
        "the unlinked router waits for curves"
    );
    // Linked: everything wakes it again at once. A note published just after the link plays
    // on time (the router hears of the link from the stream, not at its next tick).
    rig.link();
    let t = clock::now_ns() + 250_000_000;
    notes.publish(note(t, 50, 62.0, 0.8, Role::Bass)).unwrap();
    let on = rig.wait_dumped(1, |d| d.text.starts_with("Note On"));
    assert!(
        on[0].text.contains(&format!("note {:>4}", note_name(62))),
        "{:?}",
        on[0]
    );
    // From then on it waits for each note.
    notes
        .publish(note(
            clock::now_ns() + 250_000_000,
            50,
            64.0,
            0.8,
            Role::Bass,
        ))
        .unwrap();
    assert_eq!(notes.listeners(), 1, "the linked router waits for notes");
    rig.wait_dumped(2, |d| d.text.starts_with("Note On"));
    match status
        .call(&Common::Status, Duration::from_secs(2))
        .unwrap()
    {
        CommonReply::Status(s) => assert_eq!(s.get(Counter::Late), Some(0), "{s:?}"),
        other => panic!("status: {other:?}"),
    }
    rig.wait_dumped(4, |d| d.text.contains("All Notes Off"));
    frame.level[SignalId::EXEC.index()] = 0.5;
    signals.publish(frame).unwrap();
    let ccs = rig.wait_dumped(1, |d| {
        d.text.starts_with("Controller") && !d.text.contains("All Notes Off")
    });
    assert_eq!(field(&ccs[0].text, "value"), Some(64), "{:?}", ccs[0]);
    assert_eq!(counters(&mut status).0, 150);
    signals.publish(frame).unwrap();
    assert_eq!(
        signals.listeners(),
        1,
        "the linked router waits for each frame"
    );
}

#[test]
fn stopping_and_restarting_the_router_sweeps_all_notes_off() {
    let Some(mut rig) = MidiRig::start("rstop", &[]) else {
        return;
    };
    let node = Bus::open("test-notes", &rig.bus.config).unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    // Two long notes, one on a channel outside the configured ones (role Other, channel 5).
    let t0 = clock::now_ns() + 300_000_000;
    notes
        .publish(note(t0, 60_000, 48.0, 0.8, Role::Bass))
        .unwrap();
    let mut other = note(t0, 60_000, 50.0, 0.8, Role::Other);
    other.channel = 5;
    notes.publish(other).unwrap();
    rig.wait_dumped(2, |d| d.text.starts_with("Note On"));
    // Both start-up sweeps came before the notes (the repeat is 200 ms after the first).
    let before = rig.sweeps_so_far();

    rig.router.signal(Signal::SIGTERM);
    let (status, _, stderr) = rig.router.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "router exit {status:?}: {stderr:?}");
    let stop = rig.wait_sweep(before, 5);
    assert_eq!(stop, vec![1, 2, 3, 5, 10], "stop sweep");
    // No note-off came before the sweep: the notes were still sounding.
    assert!(
        rig.dump
            .wait_lines(false, Duration::ZERO, 0, |l| l.contains("Note Off"))
            .is_empty()
    );

    // A new router (same node name) sweeps again as soon as it is linked.
    let before = rig.sweeps_so_far();
    rig.router = MidiRig::spawn_router(&rig.stack, &rig.bus, &rig.name, &[]);
    rig.link();
    assert_eq!(
        rig.wait_sweep(before, 4),
        vec![1, 2, 3, 10],
        "restart sweep"
    );
}

#[test]
fn the_midi_clock_follows_the_composers_transport_with_start_and_stop() {
    let Some(rig) = MidiRig::start("rclk", &["--midi-clock"]) else {
        return;
    };
    // The real composer at 120 bpm: a clock tick every 20.833 ms = 1000 frames.
    let mut cmd = std::process::Command::new(khorus_tests::bin("khorus-composer"));
    cmd.envs(rig.bus.config.env()).args(["--bpm", "120"]);
    let composer = khorus_tests::Child::spawn(cmd);
    composer.wait_line(true, Duration::from_secs(20), |l| l == "composer: ready");
    let starts = rig.wait_dumped(1, |d| d.text.contains("Start Sequence"));
    let ticks = rig.wait_dumped(49, |d| d.text.contains("Timing Clock"));
    assert!(ticks[0].sec >= starts[0].sec);
    for w in ticks.windows(2) {
        let gap = ((w[1].sec - w[0].sec) * RATE).round();
        assert!((gap - 1000.0).abs() <= 1.0, "tick gap {gap} frames: {w:?}");
    }
    let node = Bus::open("test-client", &rig.bus.config).unwrap();
    let mut client = node
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    let before = rig.sweeps_so_far();
    client
        .call(
            &ComposerCommand::Transport(TransportAction::Stop),
            Duration::from_secs(5),
        )
        .unwrap();
    rig.wait_dumped(1, |d| d.text.contains("Stop Sequence"));
    // Stopping the transport also silences every channel.
    assert_eq!(rig.wait_sweep(before, 4), vec![1, 2, 3, 10]);
}

#[test]
fn an_osc_hush_silences_every_used_channel_at_once() {
    let port = free_udp_port().to_string();
    let Some(rig) = MidiRig::start("rhush", &["--osc-in", &port]) else {
        return;
    };
    let node = Bus::open("test-notes", &rig.bus.config).unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    let t0 = clock::now_ns() + 300_000_000;
    notes
        .publish(note(t0, 60_000, 40.0, 0.8, Role::Chords))
        .unwrap();
    // And one far ahead that the hush must forget.
    notes
        .publish(note(t0 + 3_000_000_000, 100, 41.0, 0.8, Role::Chords))
        .unwrap();
    rig.wait_dumped(1, |d| d.text.starts_with("Note On"));
    let before = rig.sweeps_so_far();
    let status = std::process::Command::new("oscsend")
        .args(["127.0.0.1", &port, "/khorus/hush", "s", "all"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(rig.wait_sweep(before, 4), vec![1, 2, 3, 10]);
    // The forgotten note never plays: wait past its time for a line that must not come.
    let late = rig
        .dump
        .try_wait_line(false, Duration::from_millis(3_500), |l| {
            l.contains("Note On") && l.contains("F2")
        });
    assert_eq!(late, None, "a hushed note played");
}

#[test]
fn an_early_note_off_never_cuts_a_later_note_of_the_same_pitch() {
    let Some(rig) = MidiRig::start("rref", &[]) else {
        return;
    };
    let node = Bus::open("test-notes", &rig.bus.config).unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    // A 400 ms note and, 100 ms in, a 100 ms note of the same pitch: one note-off, at 400 ms.
    let t0 = clock::now_ns() + 300_000_000;
    notes
        .publish(note(t0, 400, 64.0, 0.8, Role::Melody))
        .unwrap();
    notes
        .publish(note(t0 + 100_000_000, 100, 64.0, 0.8, Role::Melody))
        .unwrap();
    // A marker after both, so "no second note-off" is checked once the marker arrived.
    notes
        .publish(note(t0 + 600_000_000, 10, 70.0, 0.8, Role::Melody))
        .unwrap();
    let ons = rig.wait_dumped(3, |d| d.text.starts_with("Note On"));
    rig.wait_dumped(2, |d| d.text.starts_with("Note Off"));
    let offs = rig.wait_dumped(0, |d| {
        d.text.starts_with("Note Off") && d.text.contains("E4")
    });
    assert_eq!(offs.len(), 1, "{offs:?}");
    let held = ((offs[0].sec - ons[0].sec) * RATE).round();
    assert!(
        (held - 19_200.0).abs() <= 1.0,
        "released after {held} frames"
    );
}

#[test]
fn a_hush_from_any_client_reaches_the_router_through_the_transport() {
    let Some(rig) = MidiRig::start("rhush2", &[]) else {
        return;
    };
    let mut cmd = std::process::Command::new(khorus_tests::bin("khorus-composer"));
    cmd.envs(rig.bus.config.env());
    let composer = khorus_tests::Child::spawn(cmd);
    composer.wait_line(true, Duration::from_secs(20), |l| l == "composer: ready");
    let node = Bus::open("test-client", &rig.bus.config).unwrap();
    // The router has the composer's transport (its hush count) before the hush.
    let mut router = node
        .command_client::<khorus_bus::commands::Router>()
        .unwrap();
    khorus_tests::wait_for(
        Duration::from_secs(10),
        "the router to hear the transport",
        || match router
            .call(&khorus_bus::Common::Status, Duration::from_secs(2))
            .unwrap()
        {
            khorus_bus::command::CommonReply::Status(s) => {
                (s.get(khorus_bus::Counter::Received) >= Some(1)).then_some(())
            }
            _ => None,
        },
    );
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    notes
        .publish(note(
            clock::now_ns() + 300_000_000,
            60_000,
            45.0,
            0.8,
            Role::Bass,
        ))
        .unwrap();
    rig.wait_dumped(1, |d| d.text.starts_with("Note On"));
    let before = rig.sweeps_so_far();
    // A hush sent straight to the composer (as `khorus` or a script would), not via the router.
    let mut client = node
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    client
        .call(
            &ComposerCommand::Hush { slot: None },
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(rig.wait_sweep(before, 4), vec![1, 2, 3, 10]);
}
