//! Shared rig: the router on a private bus (and PipeWire), and `pw-mididump` output parsing.

use std::process::Command;

use khorus_bus::{NoteEvent, Role};
use khorus_tests::{Child, PipeWireStack, TestBus};

pub const RATE: f64 = 48_000.0;

/// One line of `pw-mididump`: `OFFSET: track: 0 sec:S TEXT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dumped {
    pub sec: f64,
    pub text: String,
}

pub fn parse_dump(line: &str) -> Option<Dumped> {
    let (_, rest) = line.split_once("sec:")?;
    let (sec, text) = rest.split_once(' ')?;
    Some(Dumped {
        sec: sec.parse().ok()?,
        text: text.trim().to_string(),
    })
}

/// The number in `(channel NN)`.
pub fn channel(text: &str) -> Option<u8> {
    let (_, rest) = text.split_once("(channel")?;
    rest.split_once(')')?.0.trim().parse().ok()
}

/// The number after `key` (e.g. `velocity`, `value`, `controller`).
pub fn field(text: &str, key: &str) -> Option<u32> {
    let (_, rest) = text.split_once(key)?;
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// pw-mididump's name of a note number (60 = C4).
pub fn note_name(n: u8) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    format!("{}{}", NAMES[n as usize % 12], n as i32 / 12 - 1)
}

/// A router linked to a `pw-mididump` on a private PipeWire daemon.
pub struct MidiRig {
    pub stack: PipeWireStack,
    pub bus: TestBus,
    pub router: Child,
    pub dump: Child,
    pub name: String,
}

impl MidiRig {
    pub fn start(tag: &str, args: &[&str]) -> Option<Self> {
        let rig = Self::start_unlinked(tag, args)?;
        rig.link();
        // The router sweeps its channels when its port first runs (and once more 200 ms later,
        // in case the peer was not running yet): proof the link carries data.
        rig.wait_dumped(4, is_sweep);
        Some(rig)
    }

    /// The router and the dump, not linked yet.
    pub fn start_unlinked(tag: &str, args: &[&str]) -> Option<Self> {
        let stack = PipeWireStack::start()?;
        let bus = TestBus::new(tag);
        let name = format!("khorus-router-{tag}");
        let dump = Child::spawn(stack.command("pw-mididump"));
        let router = Self::spawn_router(&stack, &bus, &name, args);
        Some(Self {
            stack,
            bus,
            router,
            dump,
            name,
        })
    }

    pub fn spawn_router(stack: &PipeWireStack, bus: &TestBus, name: &str, args: &[&str]) -> Child {
        let mut cmd: Command = stack.command(env!("CARGO_BIN_EXE_khorus-router"));
        cmd.envs(bus.config.env()).args(["--name", name]).args(args);
        let router = Child::spawn(cmd);
        router.wait_line(true, std::time::Duration::from_secs(20), |l| {
            l == "router: ready"
        });
        router
    }

    pub fn link(&self) {
        self.stack
            .link(&format!("{}:out_0", self.name), "midi-dump:input");
    }

    /// Every parsed dump line so far that satisfies `pred`, once there are at least `n`.
    pub fn wait_dumped(&self, n: usize, pred: impl Fn(&Dumped) -> bool) -> Vec<Dumped> {
        self.dump
            .wait_lines(false, std::time::Duration::from_secs(20), n, |l| {
                parse_dump(l).is_some_and(|d| pred(&d))
            })
            .iter()
            .filter_map(|l| parse_dump(l))
            .collect()
    }
}

fn is_sweep(d: &Dumped) -> bool {
    d.text.contains("All Notes Off")
}

impl MidiRig {
    /// All-notes-off lines seen so far.
    pub fn sweeps_so_far(&self) -> usize {
        self.wait_dumped(0, is_sweep).len()
    }

    /// Waits for `n` more all-notes-off lines after the first `before`, returning their
    /// channels.
    pub fn wait_sweep(&self, before: usize, n: usize) -> Vec<u8> {
        self.wait_dumped(before + n, is_sweep)[before..before + n]
            .iter()
            .filter_map(|d| channel(&d.text))
            .collect()
    }
}

pub fn note(t_ns: u64, dur_ms: u64, note: f32, velocity: f32, role: Role) -> NoteEvent {
    NoteEvent {
        t_ns,
        dur_ns: dur_ms * 1_000_000,
        note,
        velocity,
        channel: 1,
        role: role as u8,
        ..NoteEvent::default()
    }
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
