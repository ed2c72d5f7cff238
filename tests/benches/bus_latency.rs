//! One-way latency of `SignalFrame` and `NoteEvent` between two processes: iceoryx2 with
//! event-driven waiting, iceoryx2 with busy polling, and the same exchange over a Unix domain
//! socket, all in the same run.
//!
//! The bench process sends a ping; a `khorus-bus-peer` process echoes it back stamped with
//! its send time on `CLOCK_MONOTONIC`; the bench measures receive time minus that stamp, the
//! one-way latency of the pong. Criterion reports the mean; the p50/p99 table and the
//! event-driven / UDS ratio are printed at the end.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use khorus_bus::{Bus, NoteEvent, Publisher, SignalFrame, SignalId, Subscriber, Topic, clock};
use khorus_tests::{Child, TestBus};

const PEER: &str = env!("CARGO_BIN_EXE_khorus-bus-peer");
const TIMEOUT: Duration = Duration::from_secs(10);

/// Latency samples of one transport, ns.
struct Row {
    name: String,
    samples: Vec<u64>,
}

impl Row {
    fn percentile(&self, p: f64) -> u64 {
        let mut s = self.samples.clone();
        s.sort_unstable();
        s[((s.len() - 1) as f64 * p).round() as usize]
    }
}

/// The bench side of an iceoryx2 ping-pong with a peer process.
struct IoxRig<T: Topic> {
    publisher: Publisher<T>,
    subscriber: Subscriber<T>,
    poll: bool,
    ping: T,
    samples: Vec<u64>,
    _peer: Child,
    _buses: (Bus, Bus, TestBus, TestBus),
}

impl<T: Topic> IoxRig<T> {
    fn start(kind: &str, poll: bool, ping: T) -> Self {
        let ping_bus = TestBus::new("ping");
        let pong_bus = TestBus::new("pong");
        let out = Bus::open("bench-ping", &ping_bus.config).unwrap();
        let back = Bus::open("bench-pong", &pong_bus.config).unwrap();
        let mut subscriber = back.subscriber::<T>().unwrap();
        let publisher = out.publisher::<T>().unwrap();
        let mut cmd = Command::new(PEER);
        cmd.envs(pong_bus.config.env())
            .args([
                "echo",
                "--kind",
                kind,
                "--mode",
                if poll { "poll" } else { "event" },
            ])
            .arg("--ping-prefix")
            .arg(&ping_bus.config.prefix)
            .arg("--ping-root")
            .arg(&ping_bus.config.root);
        let peer = Child::spawn(cmd);
        peer.wait_line(false, TIMEOUT, |l| l == "ready");
        assert!(subscriber.receive().unwrap().is_none()); // connect to the peer publisher
        let mut rig = Self {
            publisher,
            subscriber,
            poll,
            ping,
            samples: Vec::new(),
            _peer: peer,
            _buses: (out, back, ping_bus, pong_bus),
        };
        rig.round_trip(); // connections are made on first use
        rig.samples.clear();
        rig
    }

    fn round_trip(&mut self) -> u64 {
        let mut ping = self.ping;
        ping.set_t_ns(clock::now_ns());
        self.publisher.publish(ping).unwrap();
        let pong = if self.poll {
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if let Some(v) = self.subscriber.receive().unwrap() {
                    break v;
                }
                assert!(Instant::now() < deadline, "no pong");
            }
        } else {
            let deadline = Instant::now() + TIMEOUT;
            self.subscriber
                .receive_until(deadline)
                .unwrap()
                .expect("no pong")
        };
        let one_way = clock::now_ns().saturating_sub(pong.t_ns());
        self.samples.push(one_way);
        one_way
    }

    fn finish(mut self, name: String) -> Row {
        let mut bye = self.ping;
        bye.set_t_ns(u64::MAX);
        self.publisher.publish(bye).ok();
        Row {
            name,
            samples: std::mem::take(&mut self.samples),
        }
    }
}

/// The same exchange over a Unix domain stream socket, messages of the payload's size.
struct UdsRig {
    stream: UnixStream,
    buf: Vec<u8>,
    samples: Vec<u64>,
    _peer: Child,
    _dir: tempfile::TempDir,
}

impl UdsRig {
    fn start(size: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut cmd = Command::new(PEER);
        cmd.arg("uds-echo")
            .arg(&path)
            .args(["--size", &size.to_string()]);
        let peer = Child::spawn(cmd);
        let (stream, _) = listener.accept().unwrap();
        let mut rig = Self {
            stream,
            buf: vec![0; size],
            samples: Vec::new(),
            _peer: peer,
            _dir: dir,
        };
        rig.round_trip();
        rig.samples.clear();
        rig
    }

    fn round_trip(&mut self) -> u64 {
        self.buf[..8].copy_from_slice(&clock::now_ns().to_le_bytes());
        self.stream.write_all(&self.buf).unwrap();
        self.stream.read_exact(&mut self.buf).unwrap();
        let sent = u64::from_le_bytes(self.buf[..8].try_into().unwrap());
        let one_way = clock::now_ns().saturating_sub(sent);
        self.samples.push(one_way);
        one_way
    }

    fn finish(mut self, name: String) -> Row {
        Row {
            name,
            samples: std::mem::take(&mut self.samples),
        }
    }
}

fn bench_payload<T: Topic>(c: &mut Criterion, kind: &str, label: &str, ping: T) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut group = c.benchmark_group(format!("one_way_latency/{label}"));
    for poll in [false, true] {
        let name = if poll {
            "iceoryx2_busy_poll"
        } else {
            "iceoryx2_event"
        };
        let mut rig = IoxRig::start(kind, poll, ping);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| Duration::from_nanos((0..iters).map(|_| rig.round_trip()).sum()))
        });
        rows.push(rig.finish(format!("{label} {name}")));
    }
    let mut rig = UdsRig::start(std::mem::size_of::<T>());
    group.bench_function("unix_socket", |b| {
        b.iter_custom(|iters| Duration::from_nanos((0..iters).map(|_| rig.round_trip()).sum()))
    });
    rows.push(rig.finish(format!("{label} unix_socket")));
    group.finish();
    rows
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .configure_from_args();

    let mut frame = SignalFrame::default();
    frame.set(SignalId::CSW, 1000.0, 0.5);
    let note: NoteEvent = serde_json::from_str(
        r#"{"t_ns":1,"dur_ns":1000,"note":69,"velocity":0.8,"role":"melody"}"#,
    )
    .unwrap();

    let mut rows = bench_payload(&mut c, "signal", "SignalFrame", frame);
    rows.extend(bench_payload(&mut c, "note", "NoteEvent", note));
    c.final_summary();

    println!("\none-way latency between two processes (ns)");
    println!(
        "{:<36} {:>9} {:>9} {:>9}",
        "transport", "samples", "p50", "p99"
    );
    for r in rows.iter().filter(|r| !r.samples.is_empty()) {
        println!(
            "{:<36} {:>9} {:>9} {:>9}",
            r.name,
            r.samples.len(),
            r.percentile(0.5),
            r.percentile(0.99)
        );
    }
    for label in ["SignalFrame", "NoteEvent"] {
        let find = |t: &str| rows.iter().find(|r| r.name == format!("{label} {t}"));
        if let (Some(ev), Some(uds)) = (find("iceoryx2_event"), find("unix_socket"))
            && !ev.samples.is_empty()
            && !uds.samples.is_empty()
        {
            println!(
                "{label}: event-driven p99 / UDS p99 = {:.2}, p50 ratio = {:.2}",
                ev.percentile(0.99) as f64 / uds.percentile(0.99) as f64,
                ev.percentile(0.5) as f64 / uds.percentile(0.5) as f64
            );
        }
    }
}
