//! OSC with real peers: liblo's `oscdump` receives the router's bundles, liblo's `oscsend`
//! (and raw garbage) reaches the router's listener, which forwards to the real composer.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use khorus_bus::command::CommonReply;
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TransportAction};
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{Bus, Common, Counter, NoteEvent, Role, SignalFrame, SignalId, clock};
use khorus_router::osc::{NtpClock, from_ntp};
use khorus_tests::{Child, TestBus, bin, wait_for};
use rosc::OscTime;

use crate::util::{free_udp_port, note};

/// `oscdump` on a free port, proven to be listening (a probe it printed).
fn oscdump() -> (Child, u16) {
    let port = free_udp_port();
    let mut cmd = Command::new("oscdump");
    cmd.args(["-L", &port.to_string()]);
    let dump = Child::spawn(cmd);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packet = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/probe".into(),
        args: vec![],
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        probe.send_to(&packet, ("127.0.0.1", port)).unwrap();
        // Waits on the dump's output (condition), re-probing in case it was not bound yet.
        let seen = dump.try_wait_line(false, Duration::from_millis(200), |l| l.contains("/probe"));
        if seen.is_some() {
            return (dump, port);
        }
        assert!(Instant::now() < deadline, "oscdump never printed the probe");
    }
}

fn router(bus: &TestBus, args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_khorus-router"));
    cmd.envs(bus.config.env()).args(args);
    let r = Child::spawn(cmd);
    r.wait_line(true, Duration::from_secs(20), |l| l == "router: ready");
    r
}

/// `XXXXXXXX.YYYYYYYY /addr types args…` → (timetag, addr, rest).
fn parse_oscdump(line: &str) -> Option<(OscTime, String, String)> {
    let (tt, rest) = line.split_once(' ')?;
    let (s, f) = tt.split_once('.')?;
    let time = OscTime {
        seconds: u32::from_str_radix(s, 16).ok()?,
        fractional: u32::from_str_radix(f, 16).ok()?,
    };
    let (addr, args) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((time, addr.to_string(), args.to_string()))
}

#[test]
fn osc_bundles_carry_each_notes_time_as_their_timetag() {
    let bus = TestBus::new("rosc");
    let (dump, port) = oscdump();
    let _router = router(&bus, &["--osc", &format!("127.0.0.1:{port}")]);
    let node = Bus::open("test-notes", &bus.config).unwrap();
    let mut notes = node.publisher::<NoteEvent>().unwrap();
    let mut signals = node.publisher::<SignalFrame>().unwrap();
    let t0 = clock::now_ns() + 300_000_000;
    let sent: Vec<NoteEvent> = (0..6u64)
        .map(|i| {
            note(
                t0 + i * 125_000_000,
                250,
                60.0 + i as f32,
                0.75,
                Role::Percussion,
            )
        })
        .collect();
    for n in &sent {
        notes.publish(*n).unwrap();
    }
    let mut frame = SignalFrame::default();
    frame.level[SignalId::EXEC.index()] = 0.5;
    frame.rate[SignalId::EXEC.index()] = 42.0;
    frame.available = 1 << SignalId::EXEC.index();
    signals.publish(frame).unwrap();

    let lines = dump.wait_lines(false, Duration::from_secs(10), 6, |l| {
        l.contains("/khorus/note")
    });
    let ntp = NtpClock::measure();
    for (line, n) in lines.iter().zip(&sent) {
        let (tt, addr, args) = parse_oscdump(line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(addr, "/khorus/note");
        let want = from_ntp(ntp.ntp(n.t_ns));
        let got = from_ntp(tt);
        assert!(
            (got - want).abs() < 1_000_000,
            "timetag off by {} ns: {line}",
            got - want
        );
        let want_args = format!("iiff 10 {} 0.750000 0.250000", n.note as u32);
        assert_eq!(args, want_args, "{line}");
    }
    dump.wait_line(false, Duration::from_secs(10), |l| {
        l.ends_with("/khorus/signal sf \"exec\" 0.500000")
            || l.ends_with("/khorus/signal sf exec 0.500000")
    });
    dump.wait_line(false, Duration::from_secs(10), |l| {
        l.contains("/khorus/metrics sf") && l.contains("42.0")
    });
}

fn status_of(bus: &Bus) -> khorus_bus::StageStatus {
    let mut c = bus
        .command_client::<khorus_bus::commands::Router>()
        .unwrap();
    match c.call(&Common::Status, Duration::from_secs(2)).unwrap() {
        CommonReply::Status(s) => *s,
        other => panic!("status: {other:?}"),
    }
}

#[test]
fn osc_control_reaches_the_composer_and_garbage_is_counted_and_ignored() {
    let bus = TestBus::new("rosci");
    let mut cmd = Command::new(bin("khorus-composer"));
    cmd.envs(bus.config.env());
    let composer = Child::spawn(cmd);
    composer.wait_line(true, Duration::from_secs(20), |l| l == "composer: ready");
    let port = free_udp_port();
    let _router = router(&bus, &["--no-midi", "--osc-in", &port.to_string()]);
    let node = Bus::open("test-client", &bus.config).unwrap();

    let send = |args: &[&str]| {
        let status = Command::new("oscsend")
            .args(["127.0.0.1", &port.to_string()])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "oscsend {args:?}");
    };
    send(&["/khorus/tempo", "f", "90"]);
    let mut composer_cmd = node
        .command_client::<khorus_bus::commands::Composer>()
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the composer at 90 bpm",
        || match composer_cmd
            .call(
                &ComposerCommand::Transport(TransportAction::Query),
                Duration::from_secs(2),
            )
            .unwrap()
        {
            ComposerReply::Transport(t) => ((t.bpm - 90.0).abs() < 1e-9).then_some(()),
            other => panic!("{other:?}"),
        },
    );

    // Garbage, an unknown address, wrong argument types: counted, ignored, router alive.
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.send_to(b"\x00\x01garbage", ("127.0.0.1", port))
        .unwrap();
    send(&["/khorus/bogus", "i", "1"]);
    send(&["/khorus/set", "s", "pad"]);
    let s = wait_for(Duration::from_secs(10), "3 rejected packets", || {
        let s = status_of(&node);
        (s.get(Counter::OscRejected) == Some(3)).then_some(s)
    });
    assert_eq!(
        s.get(Counter::OscIn),
        Some(1),
        "only the tempo was accepted"
    );
    assert_eq!(s.get(Counter::ForwardFailed), Some(0));

    // A well-formed /khorus/set with no synth on the bus: accepted, the forward fails, counted.
    send(&["/khorus/set", "ssf", "pad", "gain", "0.5"]);
    wait_for(
        Duration::from_secs(10),
        "the failed forward counted",
        || (status_of(&node).get(Counter::ForwardFailed) == Some(1)).then_some(()),
    );
}

#[test]
fn bad_flags_and_an_absent_pipewire_fail_with_a_clear_message() {
    let bus = TestBus::new("rbad");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_khorus-router"));
        cmd.envs(bus.config.env())
            .envs(env.iter().copied())
            .args(args);
        let mut child = Child::spawn(cmd);
        let (status, _, stderr) = child.wait_exit(Duration::from_secs(20));
        (status.code(), stderr.join("\n"))
    };
    let (code, err) = run(
        &[],
        &[
            ("XDG_RUNTIME_DIR", "/nonexistent"),
            ("PIPEWIRE_RUNTIME_DIR", "/nonexistent"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot connect to PipeWire"), "{err}");
    assert!(err.contains("XDG_RUNTIME_DIR=/nonexistent"), "{err}");
    // A bad setting is a usage error, like a bad flag.
    let (code, err) = run(&["--no-midi", "--osc", "nowhere"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("router.osc: \"nowhere\""), "{err}");
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = run(&["--no-midi", "--osc-in", &port], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("failed to listen for OSC on 127.0.0.1:"),
        "{err}"
    );
}

fn synth_status(node: &Bus) -> khorus_bus::StageStatus {
    let mut c = node
        .command_client::<khorus_bus::commands::Synth>()
        .unwrap();
    match c
        .call(
            &SynthCommand::Common(Common::Status),
            Duration::from_secs(5),
        )
        .unwrap()
    {
        SynthReply::Common(CommonReply::Status(s)) => *s,
        other => panic!("synth status: {other:?}"),
    }
}

#[test]
fn osc_set_reaches_the_real_synth_which_applies_or_refuses_it() {
    let Some(stack) = khorus_tests::PipeWireStack::start() else {
        return;
    };
    let bus = TestBus::new("roscs");
    let mut cmd = stack.command(bin("khorus-synth"));
    cmd.envs(bus.config.env()).args(["--no-autoconnect"]);
    let synth = Child::spawn(cmd);
    synth.wait_line(true, Duration::from_secs(30), |l| l == "synth: ready");
    let port = free_udp_port().to_string();
    let _router = router(&bus, &["--no-midi", "--osc-in", &port]);
    let node = Bus::open("test-client", &bus.config).unwrap();
    let before = synth_status(&node);
    let send = |args: &[&str]| {
        let status = Command::new("oscsend")
            .args(["127.0.0.1", &port])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "oscsend {args:?}");
    };
    send(&["/khorus/set", "ssf", "pad", "gain", "0.5"]);
    send(&["/khorus/set", "ssf", "nope", "gain", "0.5"]);
    // Both accepted; the unknown node is refused by the synth, which the router counts.
    wait_for(Duration::from_secs(10), "both sets forwarded", || {
        let s = status_of(&node);
        (s.get(Counter::OscIn) == Some(2) && s.get(Counter::ForwardFailed) == Some(1)).then_some(())
    });
    let after = synth_status(&node);
    let ok = |st: &khorus_bus::StageStatus| st.get(Counter::CommandsOk).unwrap_or(0);
    let refused = |st: &khorus_bus::StageStatus| st.get(Counter::CommandsRejected).unwrap_or(0);
    // +1 applied set (+1 for the status call itself), +1 refused set.
    assert_eq!(ok(&after) - ok(&before), 2, "{after:?}");
    assert_eq!(refused(&after) - refused(&before), 1, "{after:?}");
}
