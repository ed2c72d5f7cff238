//! The bus between real processes: payloads, events, commands, crashes.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use khorus_bus::codec::MAX_COMMAND_BYTES;
use khorus_bus::command::{CommonReply, ReplyErrorKind};
use khorus_bus::nodes::NodeLiveness;
use khorus_bus::{Bus, BusError, Common, CurvePoint, NoteEvent, SignalFrame, StageStatus, Topic};
use khorus_tests::{Child, TestBus, bin, wait_for};
use serde::de::DeserializeOwned;

const T: Duration = Duration::from_secs(20);

fn khorus(bus: &TestBus) -> Command {
    let mut cmd = Command::new(bin("khorus"));
    cmd.envs(bus.config.env());
    cmd
}

fn peer(bus: &TestBus, args: &[&str]) -> Child {
    let mut cmd = Command::new(bin("khorus-bus-peer"));
    cmd.envs(bus.config.env()).args(args);
    let child = Child::spawn(cmd);
    child.wait_line(false, T, |l| l == "ready");
    child
}

/// Starts `khorus tap <stream> --json --count n` and waits until it is subscribed.
fn tap(bus: &TestBus, stream: &str, n: usize) -> Child {
    let mut cmd = khorus(bus);
    cmd.args(["tap", stream, "--json", "--count", &n.to_string()]);
    let child = Child::spawn(cmd);
    child.wait_line(true, T, |l| l.starts_with("tap: listening"));
    child
}

fn inject(bus: &TestBus, stream: &str, lines: &str) {
    let mut cmd = khorus(bus);
    cmd.args(["inject", stream, "-", "--linger-ms", "300"])
        .stdin(Stdio::piped());
    let mut child = Child::spawn(cmd);
    child.stdin().unwrap().write_all(lines.as_bytes()).unwrap();
    let (status, _, stderr) = child.wait_exit(T);
    assert!(status.success(), "inject failed: {}", stderr.join("\n"));
}

/// Injects `lines` on `stream` in one process and taps them in another; the payloads read
/// back must equal what went in (but for the sequence number the publisher assigns).
fn crosses_intact<P: Topic + DeserializeOwned + PartialEq>(stream: &str, lines: &str) {
    let bus = TestBus::new(stream);
    let expected: Vec<P> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut tap = tap(&bus, stream, expected.len());
    inject(&bus, stream, lines);
    let (status, stdout, stderr) = tap.wait_exit(T);
    assert!(status.success(), "tap failed: {}", stderr.join("\n"));
    let got: Vec<P> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), expected.len(), "{stdout:?}");
    for (i, (mut want, have)) in expected.into_iter().zip(got).enumerate() {
        assert_eq!(
            have.seq(),
            i as u64 + 1,
            "sequence numbers start at 1 and have no gaps"
        );
        want.set_seq(have.seq());
        assert_eq!(have, want, "sample {i} changed on the way");
    }
}

#[test]
fn signal_frames_cross_the_bus_intact() {
    crosses_intact::<SignalFrame>(
        "signals",
        concat!(
            r#"{"t_ns":1000,"dt_ns":20000000,"source":"bpf","signals":{"exec":{"rate":12.5,"level":0.25},"csw":{"rate":90000.0,"level":0.9},"io_pressure":{"rate":3.25,"level":0.03}}}"#,
            "\n",
            r#"{"t_ns":2000,"dt_ns":19999999,"source":"procfs","signals":{"rx":{"rate":1.5,"level":1.0}}}"#,
            "\n"
        ),
    );
}

#[test]
fn note_events_cross_the_bus_intact() {
    crosses_intact::<NoteEvent>(
        "notes",
        concat!(
            r#"{"t_ns":1000,"dur_ns":250000000,"node":3,"note":69.0,"velocity":0.8,"channel":1,"role":"melody"}"#,
            "\n",
            r#"{"t_ns":1001,"dur_ns":1,"node":0,"note":36.25,"velocity":1.0,"channel":10,"role":"percussion"}"#,
            "\n",
            r#"{"t_ns":1002,"dur_ns":5,"node":7,"note":0.0,"velocity":0.0,"channel":16,"role":"other"}"#,
            "\n"
        ),
    );
}

#[test]
fn curve_points_cross_the_bus_intact() {
    crosses_intact::<CurvePoint>(
        "curves",
        concat!(
            r#"{"t_ns":5,"node":1,"param":2,"value":1200.5,"shape":"exponential"}"#,
            "\n",
            r#"{"t_ns":6,"node":1,"param":3,"value":-0.5,"shape":"step"}"#,
            "\n"
        ),
    );
}

#[test]
fn stage_status_crosses_the_bus_intact() {
    crosses_intact::<StageStatus>(
        "status",
        concat!(
            r#"{"t_ns":5,"stage":"synth","pid":42,"counters":{"xruns":3,"late":0,"callback_max_ns":123456}}"#,
            "\n"
        ),
    );
}

/// CPU time (user + system) of a process in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_waiting_subscriber_sleeps_until_an_event_wakes_it() {
    let bus = TestBus::new("wake");
    let tap = tap(&bus, "notes", 1);
    // A subscriber that polled would burn CPU while nothing is published.
    let before = cpu_ticks(tap.pid());
    let window = Instant::now() + Duration::from_millis(500);
    wait_for(Duration::from_secs(2), "the idle window", || {
        (Instant::now() >= window).then_some(())
    });
    let idle = cpu_ticks(tap.pid()) - before;
    assert!(
        idle <= 5,
        "tap used {idle} ticks of CPU while idle: it is polling"
    );
    one_note_reaches(&bus, tap);
}

/// Injects one note; `tap` (waiting for one) prints it and exits.
fn one_note_reaches(bus: &TestBus, mut tap: Child) {
    inject(
        bus,
        "notes",
        r#"{"dur_ns":1,"note":60,"velocity":0.5,"role":"bass"}"#,
    );
    let (status, stdout, _) = tap.wait_exit(T);
    assert!(status.success());
    assert_eq!(stdout.len(), 1, "the tap waited for its note: {stdout:?}");
}

#[test]
fn a_stopped_and_continued_waiter_goes_on_waiting() {
    // epoll_wait fails with EINTR after SIGSTOP and SIGCONT (signal(7)); a wait loop that took
    // that for a termination request would end a stage on a Ctrl-Z and `fg`, or a debugger.
    let bus = TestBus::new("stop");
    let tap = tap(&bus, "notes", 1);
    let state = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(") ").next().and_then(|r| r.chars().next())
    };
    // Stopped while it sleeps in epoll_wait (not on its way there).
    wait_for(T, "the tap in epoll_wait", || {
        let wchan = std::fs::read_to_string(format!("/proc/{}/wchan", tap.pid()));
        wchan.is_ok_and(|w| w.contains("epoll")).then_some(())
    });
    tap.signal(nix::sys::signal::Signal::SIGSTOP);
    wait_for(T, "the tap stopped", || {
        (state(tap.pid()) == Some('T')).then_some(())
    });
    tap.signal(nix::sys::signal::Signal::SIGCONT);
    wait_for(T, "the tap running", || {
        (state(tap.pid()) != Some('T')).then_some(())
    });
    one_note_reaches(&bus, tap);
}

#[test]
fn commands_round_trip_and_bad_requests_get_error_replies() {
    let bus = TestBus::new("cmd");
    let mut server = peer(&bus, &["serve"]);
    let me = Bus::open("test-client", &bus.config).unwrap();
    let mut client = me.command_client::<khorus_bus::commands::Tool>().unwrap();

    let reply = client.call(&Common::Ping { nonce: 0xfeed }, T).unwrap();
    assert_eq!(
        reply,
        CommonReply::Pong {
            nonce: 0xfeed,
            pid: server.pid()
        }
    );

    // Garbage: not a Common at all.
    let reply = client.call_raw(&[0xff, 0xfe, 0x00, 0x13, 0x37], T).unwrap();
    assert_eq!(reply.unwrap_err().kind, ReplyErrorKind::Malformed);
    // A valid command followed by junk.
    let mut bytes = khorus_bus::codec::encode(&Common::Status).unwrap();
    bytes.extend_from_slice(b"junk");
    let reply = client.call_raw(&bytes, T).unwrap();
    assert_eq!(reply.unwrap_err().kind, ReplyErrorKind::Malformed);
    // Oversized (twice the 16 MiB limit, sent in parts): refused at its first part.
    let reply = client
        .call_raw(&vec![0u8; 2 * MAX_COMMAND_BYTES], T)
        .unwrap();
    let err = reply.unwrap_err();
    assert_eq!(err.kind, ReplyErrorKind::TooLarge, "{err}");
    assert!(
        err.message.contains(&MAX_COMMAND_BYTES.to_string()),
        "{err}"
    );

    // The server survived all of it and counted it.
    let CommonReply::Status(status) = client.call(&Common::Status, T).unwrap() else {
        panic!("expected a status reply");
    };
    assert_eq!(status.get(khorus_bus::Counter::CommandsRejected), Some(3));
    assert_eq!(status.get(khorus_bus::Counter::CommandsOk), Some(1));

    assert_eq!(client.call(&Common::Shutdown, T).unwrap(), CommonReply::Ack);
    let (status, _, stderr) = server.wait_exit(T);
    assert!(status.success(), "{}", stderr.join("\n"));

    // Nobody serves now: a call says so once its wait for a server is over, not after its
    // whole timeout.
    let mut client = me
        .command_client::<khorus_bus::commands::Tool>()
        .unwrap()
        .wait_for_server(Duration::from_millis(100));
    let err = client.call(&Common::Ping { nonce: 1 }, T).unwrap_err();
    assert!(matches!(err, BusError::NoServer { .. }), "{err}");
}

#[test]
fn a_command_sent_before_its_server_starts_is_answered_once_it_does() {
    let bus = TestBus::new("early");
    let (calling, called) = std::sync::mpsc::channel();
    let config = bus.config.clone();
    let caller = std::thread::spawn(move || {
        let me = Bus::open("early-client", &config).unwrap();
        let mut client = me.command_client::<khorus_bus::commands::Tool>().unwrap();
        calling.send(()).unwrap();
        client.call(&Common::Ping { nonce: 7 }, T)
    });
    // The request goes out while nobody serves (a process takes far longer to start than
    // the call to send); it used to wait out its timeout unanswered.
    called.recv().unwrap();
    let _server = peer(&bus, &["serve"]);
    let reply = caller.join().unwrap().unwrap();
    assert!(
        matches!(reply, CommonReply::Pong { nonce: 7, .. }),
        "{reply:?}"
    );
}

#[test]
fn a_tool_asking_a_stage_that_is_not_on_the_bus_says_so_without_waiting() {
    let bus = TestBus::new("absent");
    // No synth process at all: the client does not wait for one to appear (it used to wait
    // out its whole 10 s timeout).
    let mut cmd = Command::new(bin("khorus-synth"));
    cmd.envs(bus.config.env()).arg("graph");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("synth is not running"), "{stderr}");
    let waited: u64 = stderr
        .split("waited ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {stderr:?}"));
    assert!(
        waited < 1_000,
        "waited {waited} ms for a synth that is not there"
    );
    // A process of the stage on the bus (starting, not serving yet) is waited for.
    let me = Bus::open("absent-probe", &bus.config).unwrap();
    assert!(!me.stage_present(khorus_bus::StageKind::Synth, &[]));
    assert!(me.stage_present(khorus_bus::StageKind::Synth, &["absent-probe"]));
    let _synth_node = Bus::open("synth", &bus.config).unwrap();
    assert!(me.stage_present(khorus_bus::StageKind::Synth, &[]));
}

#[test]
fn sigkilled_publishers_are_detected_and_cleaned_without_leaks() {
    let bus = TestBus::new("kill");
    let survivor = Bus::open("survivor", &bus.config).unwrap();
    let mut sub = survivor.subscriber::<SignalFrame>().unwrap();
    let mut baseline = None;
    for round in 0..20 {
        let mut publisher = peer(&bus, &["publish", "--period-ms", "2"]);
        let pid = publisher.pid() as i32;
        // The survivor hears it…
        let frame = sub
            .receive_until(Instant::now() + T)
            .unwrap()
            .expect("a frame from the publisher");
        assert!(frame.seq >= 1);
        // …then it dies without any chance to clean up, and is reaped.
        publisher.kill();
        let dead = survivor
            .nodes()
            .unwrap()
            .into_iter()
            .filter(|n| n.pid == Some(pid))
            .map(|n| n.state)
            .collect::<Vec<_>>();
        assert_eq!(
            dead,
            vec![NodeLiveness::Dead],
            "round {round}: node of pid {pid}"
        );
        let cleanup = survivor.cleanup_dead_nodes();
        assert!(cleanup.cleaned >= 1, "round {round}: {cleanup:?}");
        assert_eq!(cleanup.failed, 0);
        assert!(
            survivor
                .nodes()
                .unwrap()
                .iter()
                .all(|n| n.state == NodeLiveness::Alive),
            "round {round}: dead nodes remain"
        );
        sub.drain(|_| {}).unwrap();
        let files = bus.config.resource_files();
        let base = *baseline.get_or_insert(files);
        assert!(
            files <= base,
            "round {round}: {files} bus files, {base} after the first round"
        );
    }
}

#[test]
fn isolated_buses_never_see_each_others_traffic() {
    let a = TestBus::new("isoa");
    let b = TestBus::new("isob");
    let bus_a = Bus::open("a", &a.config).unwrap();
    let bus_b = Bus::open("b", &b.config).unwrap();
    let mut sub_a = bus_a.subscriber::<NoteEvent>().unwrap();
    let mut sub_b = bus_b.subscriber::<NoteEvent>().unwrap();
    let mut publisher = bus_a.publisher::<NoteEvent>().unwrap();
    let note: NoteEvent =
        serde_json::from_str(r#"{"t_ns":1,"dur_ns":1,"note":60,"velocity":0.5,"role":"bass"}"#)
            .unwrap();
    publisher.publish(note).unwrap();
    assert!(sub_a.receive_until(Instant::now() + T).unwrap().is_some());
    assert_eq!(
        sub_b
            .receive_until(Instant::now() + Duration::from_millis(200))
            .unwrap(),
        None
    );
}

#[test]
fn a_signal_in_the_middle_of_a_wait_is_not_an_error() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::os::unix::thread::JoinHandleExt;
    extern "C" fn nothing(_: i32) {}
    // A handler without SA_RESTART: a blocked wait returns EINTR, as it does in a process
    // whose children exit or that is stopped and continued.
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe {
        sigaction(
            Signal::SIGUSR1,
            &SigAction::new(
                SigHandler::Handler(nothing),
                SaFlags::empty(),
                SigSet::empty(),
            ),
        )
    }
    .unwrap();
    let bus = TestBus::new("eintr");
    let me = Bus::open("eintr-pub", &bus.config).unwrap();
    let mut notes = me.publisher::<NoteEvent>().unwrap();
    let config = bus.config.clone();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let node = Bus::open("eintr-sub", &config).unwrap();
        let mut sub = node.subscriber::<NoteEvent>().unwrap();
        tid_tx.send(nix::unistd::gettid()).unwrap();
        sub.receive_until(Instant::now() + T)
    });
    let tid = tid_rx.recv().unwrap();
    // Asleep in the wait (state S: nothing else in `receive_until` sleeps), then interrupted.
    wait_for(T, "the waiter asleep in its wait", || {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .filter(|st| {
                st.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('S'))
            })
    });
    // SAFETY: the thread is alive (it is waiting for the note below).
    let sent = unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGUSR1) };
    assert_eq!(sent, 0);
    let note = NoteEvent {
        t_ns: 42,
        ..NoteEvent::default()
    };
    notes.publish(note).unwrap();
    let got = waiter
        .join()
        .unwrap()
        .expect("an interrupted wait is not an error");
    assert_eq!(got.map(|n| n.t_ns), Some(42));
}
