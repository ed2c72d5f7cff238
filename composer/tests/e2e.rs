//! End to end: the real `khorus-composer` binary on an isolated bus. The test injects signal
//! frames, sets a signal-gated slot over the command service, receives the notes, sends a
//! broken pattern (refused with line:col and a caret) and checks the music carried on.

use std::process::Command;
use std::time::{Duration, Instant};

use khorus_bus::commands::composer::{
    ComposerCommand, ComposerReply, SlotSpec, Source, Target, Transform,
};
use khorus_bus::{
    Bus, BusError, Counter, NoteEvent, Role, SignalFrame, SignalId, StageKind, StageStatus,
    TransportState,
};
use khorus_tests::{Child, TestBus};

const T: Duration = Duration::from_secs(5);

/// `src` as the melody of slot "lead" on node 7, gated by `gate` (no gate if empty).
fn slot(src: &str, gate: &str) -> ComposerCommand {
    let gates = (!gate.is_empty()).then(|| Transform::Gate(gate.into()));
    ComposerCommand::SetSlot {
        slot: "lead".into(),
        fade: 0,
        spec: SlotSpec {
            source: Source::Mini(src.into()),
            transforms: gates.into_iter().collect(),
            controls: vec![],
            target: Target::Notes {
                node: 7,
                role: Role::Melody,
                channel: None,
            },
            quantum: None,
        },
    }
}

/// Receives notes until `n` match `pred` or the deadline passes.
fn notes_until(
    sub: &mut khorus_bus::Subscriber<NoteEvent>,
    n: usize,
    pred: impl Fn(&NoteEvent) -> bool,
) -> Vec<NoteEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        match sub.receive_until(deadline).unwrap() {
            Some(note) if pred(&note) => got.push(note),
            Some(_) => {}
            None => panic!("only {} matching notes before the deadline", got.len()),
        }
    }
    got
}

/// The next transport report that satisfies `pred`, within [`T`].
fn next_matching(
    sub: &mut khorus_bus::Subscriber<TransportState>,
    pred: impl Fn(&TransportState) -> bool,
) -> TransportState {
    let deadline = Instant::now() + T;
    loop {
        let s = sub
            .receive_until(deadline)
            .unwrap()
            .expect("a transport report before the deadline");
        if pred(&s) {
            return s;
        }
    }
}

/// The real composer with `args` on a bus of its own, once it says it is ready.
fn start(tag: &str, args: &[&str]) -> (TestBus, Child) {
    let bus = TestBus::new(tag);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_khorus-composer"));
    cmd.envs(bus.config.env()).args(args);
    let child = Child::spawn(cmd);
    child.wait_line(true, Duration::from_secs(20), |l| {
        l.contains("composer: ready")
    });
    (bus, child)
}

#[test]
fn composer_plays_signal_driven_slots_and_refuses_bad_patterns() {
    let (bus, child) = start("composer", &["--bpm", "240", "--lookahead-ms", "40"]);

    let me = Bus::open("composer-e2e", &bus.config).unwrap();
    let mut notes = me.subscriber::<NoteEvent>().unwrap();
    let mut status = me.subscriber::<StageStatus>().unwrap();
    let mut signals = me.publisher::<SignalFrame>().unwrap();
    let mut client = me
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();

    // exec high: the gate opens.
    let mut frame = SignalFrame::default();
    frame.set(SignalId::EXEC, 200.0, 0.9);
    frame.t_ns = khorus_bus::clock::now_ns();
    signals.publish(frame).unwrap();

    let reply = client.call(&slot("c5*4", "exec > 0.5"), T).unwrap();
    assert!(matches!(reply, ComposerReply::Applied { .. }), "{reply:?}");
    let first = notes_until(&mut notes, 4, |n| n.note == 72.0);
    for n in &first {
        assert_eq!((n.node, n.channel, n.role()), (7, 1, Role::Melody));
        assert!(n.dur_ns > 0 && n.velocity > 0.0);
    }
    // Quarter-cycle steps at 240 bpm (1 cycle/s): 250 ms apart, exactly.
    assert!(
        first
            .windows(2)
            .all(|w| w[1].t_ns - w[0].t_ns == 250_000_000),
        "{first:?}"
    );

    // A broken pattern is refused with its place, and nothing changes.
    let err = client.call(&slot("c5 [e5", "exec > 0.5"), T).unwrap_err();
    let BusError::Refused { error, .. } = err else {
        panic!("not a refusal: {err:?}")
    };
    assert!(
        error.message.contains("source: 1:7:") && error.message.contains('^'),
        "{}",
        error.message
    );
    let err = client.call(&slot("c5", "exec > nope"), T).unwrap_err();
    assert!(err.to_string().contains("transforms[0].gate"), "{err}");
    let rejected_at = khorus_bus::clock::now_ns();
    let after = notes_until(&mut notes, 4, |n| n.t_ns > rejected_at);
    assert!(
        after.iter().all(|n| n.note == 72.0),
        "music changed: {after:?}"
    );

    // exec drops: the gate closes and notes stop (within a cycle and a lookahead).
    frame.set(SignalId::EXEC, 0.0, 0.1);
    signals.publish(frame).unwrap();
    let quiet_from = khorus_bus::clock::now_ns() + 1_200_000_000;
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(n) = notes.receive_until(deadline).unwrap() {
        assert!(n.t_ns < quiet_from, "note after the gate closed: {n:?}");
    }

    // The heartbeat reports what was published and refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status
            .receive_until(deadline)
            .unwrap()
            .expect("a composer heartbeat");
        if s.stage() == StageKind::Composer
            && s.get(Counter::CommandsRejected) == Some(2)
            && s.get(Counter::Published).is_some_and(|p| p >= 8)
        {
            assert_eq!(s.get(Counter::CommandsOk), Some(1));
            assert_eq!(s.get(Counter::Late), Some(0));
            break;
        }
    }

    // Shutdown exits cleanly.
    let reply = client
        .call(&ComposerCommand::Common(khorus_bus::Common::Shutdown), T)
        .unwrap();
    assert!(matches!(reply, ComposerReply::Common(_)));
    let mut child = child;
    let (code, _, stderr) = child.wait_exit(Duration::from_secs(10));
    assert!(code.success(), "exit {code}: {}", stderr.join("\n"));
}

#[test]
fn query_prints_exact_spans_and_usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_khorus-composer"))
        .args(["query", "a <b c>", "--cycles", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[0, 1/2) part [0, 1/2) a\n[1/2, 1) part [1/2, 1) b\n[1, 3/2) part [1, 3/2) a\n[3/2, 2) part [3/2, 2) c\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_khorus-composer"))
        .args(["query", "a [b", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1:5") && err.contains('^'), "{err}");
}

#[test]
fn the_transport_is_published_and_follows_tempo_and_stop() {
    use khorus_bus::commands::composer::{TempoChange, TransportAction};

    let (bus, _child) = start("transport", &["--bpm", "120"]);
    let me = Bus::open("transport-e2e", &bus.config).unwrap();
    let mut transport = me.subscriber::<TransportState>().unwrap();
    let mut client = me
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    let first = next_matching(&mut transport, |s| s.running == 1);
    assert!((first.bpm() - 120.0).abs() < 1e-9, "{first:?}");
    assert_eq!(first.beats_per_cycle, 4);
    // A second follower, settled: it has the clock (and whatever its own joining sent).
    let mut follower = me.subscriber::<TransportState>().unwrap();
    next_matching(&mut follower, |h| h.same_clock(&first));
    while follower.receive().unwrap().is_some() {}
    // While nothing changes, nothing is sent: followers are not woken for a clock they know.
    let quiet = follower
        .receive_until(Instant::now() + Duration::from_millis(1500))
        .unwrap();
    assert!(quiet.is_none(), "sent again with no change: {quiet:?}");
    // A follower that joins now (a restarted stage, a tap) has it within a tick.
    let mut late = me.subscriber::<TransportState>().unwrap();
    let got = late
        .receive_until(Instant::now() + Duration::from_secs(3))
        .unwrap()
        .expect("the transport for a newcomer");
    assert!(got.same_clock(&first), "{got:?} vs {first:?}");
    drop(late);

    let tempo = ComposerCommand::Tempo(TempoChange {
        bpm: Some(137.0),
        cps: None,
        beats_per_cycle: None,
        over: None,
    });
    client.call(&tempo, T).unwrap();
    let faster = next_matching(&mut transport, |s| (s.bpm() - 137.0).abs() < 1e-9);
    // Phase continuity: at the new anchor the cycle position is where the old clock had it.
    let old_position = first.cycle_at(faster.anchor_ns);
    let new_position = faster.anchor_cycle_num as f64 / faster.anchor_cycle_den as f64;
    assert!(
        (old_position - new_position).abs() < 1e-6,
        "{old_position} vs {new_position}"
    );

    client
        .call(&ComposerCommand::Transport(TransportAction::Stop), T)
        .unwrap();
    next_matching(&mut transport, |s| s.running == 0);
}

#[test]
fn a_composer_with_nothing_to_make_ticks_once_a_second_and_a_command_wakes_it() {
    use khorus_bus::Common;
    use khorus_bus::command::CommonReply;

    let (bus, _child) = start("idle", &["--bpm", "240"]);
    let me = Bus::open("idle-e2e", &bus.config).unwrap();
    let mut notes = me.subscriber::<NoteEvent>().unwrap();
    let mut transport = me.subscriber::<TransportState>().unwrap();
    let mut client = me
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    let mut status = || match client
        .call(&ComposerCommand::Common(Common::Status), T)
        .unwrap()
    {
        ComposerReply::Common(CommonReply::Status(s)) => *s,
        other => panic!("{other:?}"),
    };
    // No slot: nothing to make, a tick a second.
    assert_eq!(status().get(Counter::TickMs), Some(1000));

    // A pattern: the command wakes it, its notes come, none late, ten ticks a second.
    // (A second client: the first is the status closure's.)
    let mut commands = me
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    let sent = khorus_bus::clock::now_ns();
    commands.call(&slot("c5*4", ""), T).unwrap();
    let first = notes_until(&mut notes, 4, |n| n.note == 72.0);
    assert!(first.iter().all(|n| n.t_ns > sent), "{first:?}");
    let s = status();
    assert_eq!(s.get(Counter::Late), Some(0));
    assert_eq!(s.get(Counter::TickMs), Some(100));

    // A hush: published at once (the hush count moves), and once it is in force (the next
    // cycle, 1 s at 240 bpm) the composer is idle again.
    let hushes = transport
        .receive_until(Instant::now() + T)
        .unwrap()
        .unwrap()
        .hushes;
    transport.drain(|_| {}).unwrap();
    commands
        .call(&ComposerCommand::Hush { slot: None }, T)
        .unwrap();
    next_matching(&mut transport, |t| t.hushes != hushes);
    khorus_tests::wait_for(Duration::from_secs(10), "the composer idle", || {
        (status().get(Counter::TickMs) == Some(1000)).then_some(())
    });
}
