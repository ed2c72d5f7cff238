//! The stage's logic without a bus: ticks, failing slots, signals gone stale, the idle
//! state, the transport, sounding notes.

use super::*;

#[test]
fn a_slot_that_keeps_failing_is_reported_when_it_starts_and_when_it_recovers() {
    let err = |s: &str| (s.to_string(), TimeError::DivZero);
    // The bass starts failing: reported.
    let now = [err("bass")];
    let (started, recovered) = failing_changes(&[], &now);
    assert_eq!(started, [("bass", &TimeError::DivZero)]);
    assert!(recovered.is_empty());
    // Still failing, and the pad too: only the pad is new.
    let before = ["bass".to_string()];
    let now = [err("bass"), err("pad")];
    let (started, recovered) = failing_changes(&before, &now);
    assert_eq!(started.iter().map(|s| s.0).collect::<Vec<_>>(), ["pad"]);
    assert!(recovered.is_empty());
    // The bass plays again, the pad fails on: the bass is reported, nothing new.
    let before = ["bass".to_string(), "pad".to_string()];
    let now = [err("pad")];
    let (started, recovered) = failing_changes(&before, &now);
    assert!(started.is_empty());
    assert_eq!(recovered, ["bass"]);
}

#[test]
fn status_reports_how_long_signal_frames_have_been_missing() {
    let opts = Options {
        lookahead_ns: 100_000_000,
        score: Some((Score::from_name("arp").unwrap(), ScoreParams::default())),
        ..Options::default()
    };
    let mut c = Composer::new(&opts, 0).unwrap();
    c.tick(7_000_000_000).unwrap();
    let s = c.status(PortCounts::default());
    assert_eq!(s.get(Counter::SignalsStale), Some(7));
    c.on_signals(&SignalFrame::default(), 7_500_000_000);
    c.tick(8_000_000_000).unwrap();
    let s = c.status(PortCounts::default());
    assert_eq!(s.get(Counter::SignalsStale), Some(0));
}

/// `mini` as the notes of slot "drone" on node 7.
fn drone(mini: &str) -> ComposerCommand {
    ComposerCommand::SetSlot {
        slot: "drone".into(),
        fade: 0,
        spec: khorus_bus::commands::composer::SlotSpec {
            source: khorus_bus::commands::composer::Source::Mini(mini.into()),
            transforms: vec![],
            controls: vec![],
            target: khorus_bus::commands::composer::Target::Notes {
                role: khorus_bus::Role::Chords,
                node: 7,
                channel: None,
            },
            quantum: None,
        },
    }
}

#[test]
fn a_tempo_the_clock_runs_at_already_leaves_it_as_it_is() {
    let opts = Options::default();
    let mut c = Composer::new(&opts, 0).unwrap();
    c.handle(drone("c3 e3"), 0).unwrap();
    for k in 1..=37 {
        c.tick(k * 100_000_000).unwrap();
    }
    let before = c.scheduler().transport().clone();
    let tempo = |bpm: f64, beats: Option<u32>| {
        ComposerCommand::Tempo(TempoChange {
            bpm: Some(bpm),
            cps: None,
            beats_per_cycle: beats,
            over: None,
        })
    };
    let now = 3_750_000_000;
    c.handle(tempo(120.0, None), now).unwrap();
    c.handle(tempo(120.0, Some(4)), now).unwrap();
    assert_eq!(c.scheduler().transport().anchor(), before.anchor());
    // Another tempo starts at the horizon, from where the old one had it.
    c.handle(tempo(90.0, None), now).unwrap();
    let t = c.scheduler().transport();
    let (at_ns, at_cycle) = t.anchor();
    assert_eq!(t.bpm(), 90.0);
    assert_eq!(at_cycle, c.scheduler().horizon());
    assert_eq!(before.ns_at(at_cycle).unwrap(), at_ns);
}

#[test]
fn a_composer_with_nothing_to_make_is_idle_and_a_pattern_after_a_long_idle_is_not_late() {
    let opts = Options::default();
    let mut c = Composer::new(&opts, 0).unwrap();
    assert!(c.idle(), "no slot");
    c.tick(100_000_000).unwrap();
    // Idle for a minute with no tick (the idle tick is a second; this is the worst case),
    // then a pattern: its first notes are ahead of now, not in the past.
    let now = 60_000_000_000;
    c.catch_up(now).unwrap();
    c.handle(drone("c3 e3"), now).unwrap();
    assert!(!c.idle());
    let batch = c.tick(now + 100_000_000).unwrap();
    assert_eq!(batch.late, 0);
    let mut notes = batch.notes;
    for k in 2..=30 {
        notes.extend(c.tick(now + k * 100_000_000).unwrap().notes);
    }
    assert!(!notes.is_empty(), "the pattern plays");
    assert!(notes.iter().all(|n| n.t_ns > now), "{notes:?}");
    // Stopped: idle; started again: not.
    c.handle(ComposerCommand::Transport(TransportAction::Stop), now)
        .unwrap();
    assert!(c.idle());
    c.handle(ComposerCommand::Transport(TransportAction::Start), now)
        .unwrap();
    assert!(!c.idle());
    // Hushed: idle once the hush is in force (from the next cycle).
    c.handle(ComposerCommand::Hush { slot: None }, now).unwrap();
    assert!(!c.idle(), "the hush waits for the cycle's end");
    for k in 31..=60 {
        c.tick(now + k * 100_000_000).unwrap();
    }
    assert!(c.idle());
}

#[test]
fn sounding_notes_are_those_made_that_have_not_ended() {
    let opts = Options {
        bpm: Q::int(60),
        ..Options::default()
    };
    // One note a cycle (4 s), held for the whole cycle.
    let mut c = Composer::new(&opts, 0).unwrap();
    c.handle(drone("c3"), 0).unwrap();
    let mut made = Vec::new();
    for k in 0..=60 {
        made.extend(c.tick(k * 100_000_000).unwrap().notes);
    }
    // 6 s in: the note of cycle 1 (4.2 s .. 8.2 s) sounds; cycle 0's has ended.
    let Ok(ComposerReply::Notes(now)) = c.handle(ComposerCommand::Sounding, 6_000_000_000) else {
        panic!("no notes reply");
    };
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0], *made.last().unwrap());
    assert_eq!((now[0].node, now[0].t_ns), (7, 4_200_000_000));
    assert!(c.sounding(8_200_000_000).is_empty());
    // Past the cap, those that end last are kept, in time order.
    let note = |t_ns: u64, dur_ns: u64| NoteEvent {
        t_ns,
        dur_ns,
        ..NoteEvent::default()
    };
    let many: Vec<NoteEvent> = (0..SOUNDING_MAX as u64 + 10)
        .map(|i| note(10_000_000_000 + i, 1_000_000_000 + 1_000 * (i % 7)))
        .collect();
    c.remember(&many, 9_000_000_000);
    let kept = c.sounding(9_000_000_000);
    assert_eq!(kept.len(), SOUNDING_MAX);
    assert!(kept.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
    let shortest = kept.iter().map(note_end).min().unwrap();
    let dropped = many.iter().filter(|n| note_end(n) < shortest).count();
    assert!(dropped >= 10, "the notes ending first went");
}
