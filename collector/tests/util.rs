//! Helpers: start the collector on an isolated bus, collect its frames, count events.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use khorus_bus::signals::SignalId;
use khorus_bus::{Bus, SignalFrame, Subscriber, clock};
use khorus_collector::sample::raw_unit;
use khorus_tests::{Child, TestBus};

pub const T: Duration = Duration::from_secs(30);

/// Collector tests measure machine-wide activity: run them one at a time so they do not
/// count each other's load.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn collector_cmd(bus: &TestBus, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_khorus-collector"));
    cmd.envs(bus.config.env()).args(args);
    cmd
}

/// A running collector and a subscriber to its frames.
pub struct Running {
    pub child: Child,
    pub frames: Subscriber<SignalFrame>,
    _bus: Bus,
    test_bus: TestBus,
}

fn bpf_required() -> bool {
    std::env::var("KHORUS_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// Starts `khorus-collector --source <source> args…` and waits for its first frame. With the
/// BPF source, returns `None` (or fails under KHORUS_REQUIRE_BPF=1) when BPF cannot load.
pub fn start(source: &str, args: &[&str]) -> Option<Running> {
    let test_bus = TestBus::new("col");
    let bus = Bus::open("test", &test_bus.config).unwrap();
    let mut frames = bus.subscriber::<SignalFrame>().unwrap();
    let mut all = vec!["--source", source];
    all.extend_from_slice(args);
    let mut child = Child::spawn(collector_cmd(&test_bus, &all));
    let deadline = Instant::now() + T;
    loop {
        if let Some(f) = frames
            .receive_until(Instant::now() + Duration::from_millis(200))
            .unwrap()
        {
            assert_eq!(
                f.source().into_str(),
                source,
                "frame from an unexpected source"
            );
            break;
        }
        if Instant::now() > deadline || child_exited(&mut child) {
            let (status, _, stderr) = child.wait_exit(Duration::from_secs(5));
            let msg = format!(
                "collector --source {source} did not start ({status}):\n{}",
                stderr.join("\n")
            );
            if source == "bpf" && !bpf_required() {
                eprintln!("NOT RUN: {msg}");
                return None;
            }
            panic!("{msg}");
        }
    }
    Some(Running {
        child,
        frames,
        _bus: bus,
        test_bus,
    })
}

fn child_exited(child: &mut Child) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", child.pid()))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

trait SourceName {
    fn into_str(self) -> &'static str;
}

impl SourceName for khorus_bus::SignalSource {
    fn into_str(self) -> &'static str {
        match self {
            khorus_bus::SignalSource::Bpf => "bpf",
            khorus_bus::SignalSource::Procfs => "procfs",
            khorus_bus::SignalSource::Replay => "replay",
            khorus_bus::SignalSource::Synthetic => "synthetic",
            khorus_bus::SignalSource::Inject => "inject",
        }
    }
}

impl Running {
    /// The bus the collector runs on.
    pub fn bus_config(&self) -> &khorus_bus::BusConfig {
        &self.test_bus.config
    }

    /// Frames until one ends at or after `t_end_ns` (monotonic).
    ///
    /// Asserts none was lost on the way: the subscriber holds 256 frames (5 s at 50 Hz), so
    /// a test that reads later than that undercounts, and should say so rather than fail on
    /// its count.
    pub fn frames_until(&mut self, t_end_ns: u64) -> Vec<SignalFrame> {
        let missed = self.frames.missed();
        let mut out = Vec::new();
        let deadline = Instant::now() + T;
        loop {
            let f = self
                .frames
                .receive_until(deadline)
                .unwrap()
                .expect("frames keep coming");
            out.push(f);
            if f.t_ns >= t_end_ns {
                assert_eq!(
                    self.frames.missed(),
                    missed,
                    "frames were lost before the test read them"
                );
                return out;
            }
        }
    }

    /// Drops frames already queued, so counting starts now.
    pub fn skip_pending(&mut self) {
        self.frames.drain(|_| {}).unwrap();
    }
}

/// Events (or bytes, or stall µs) of `id` in frames whose interval ends after `t0_ns`.
pub fn count(frames: &[SignalFrame], id: SignalId, t0_ns: u64) -> f64 {
    assert!(
        frames.iter().any(|f| f.is_available(id)),
        "{id:?} is unavailable in every frame"
    );
    frames
        .iter()
        .filter(|f| f.t_ns > t0_ns && f.is_available(id))
        .map(|f| f.rate[id.index()] as f64 * f.dt_ns as f64 * 1e-9 / raw_unit(id).per_raw)
        .sum()
}

/// Runs `work`, returning the frames covering it (from just before to just after).
///
/// The frames are taken while `work` runs on its own thread: the subscriber holds 256
/// frames (5 s at 50 Hz), and work that outlasts that (a slow disk under 64 MiB of direct
/// writes) would otherwise lose its first frames to the queue's overflow. Asserts that
/// none were missed, so a count that falls short names the cause.
pub fn measure(run: &mut Running, work: impl FnOnce() + Send) -> (Vec<SignalFrame>, u64) {
    run.skip_pending();
    let missed = run.frames.missed();
    let t0 = clock::now_ns();
    let mut frames = Vec::new();
    std::thread::scope(|s| {
        let worker = s.spawn(work);
        let deadline = Instant::now() + 10 * T;
        while !worker.is_finished() {
            assert!(Instant::now() < deadline, "the work did not finish");
            let poll = Instant::now() + Duration::from_millis(100);
            if let Some(f) = run.frames.receive_until(poll).unwrap() {
                frames.push(f);
            }
        }
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
    });
    let t1 = clock::now_ns();
    frames.extend(run.frames_until(t1));
    assert_eq!(
        run.frames.missed(),
        missed,
        "frames were lost while the work ran"
    );
    (frames, t0)
}
