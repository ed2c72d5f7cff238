//! The synth stage: the PipeWire node on its own thread, fed from the bus by this thread
//! through lock-free rings, with a status heartbeat and the synth's commands (served by
//! [`Controller`], which also owns every graph build and frees retired graphs).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result};
use khorus_bus::commands;
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::wait::{self, Exit, Period, Wake};
use khorus_bus::{
    BusConfig, Common, Counter, CurvePoint, NoteEvent, StageKind, StageRunner, StageStatus,
    Subscriber, TransportState,
};

use crate::command::Controller;
use crate::engine::Engine;
use crate::graph::GraphSpec;
use crate::node::{self, NodeOptions};
use crate::rt::{Incoming, RtStats};
use khorus_pw::NodeThread;
/// How long the synth fades out when it stops, ms.
const FADE_OUT_MS: u32 = 40;
/// Largest PipeWire quantum the renderer is sized for.
pub const MAX_FRAMES: usize = 8192;

/// The bus ports' counters, for the status report.
#[derive(Debug, Clone, Copy)]
struct Ports {
    received: u64,
    missed: u64,
    ring_dropped: u64,
    server_ok: u64,
    server_rejected: u64,
}

fn status(stats: &RtStats, ports: Ports, paused: bool) -> StageStatus {
    let Ports {
        received,
        missed,
        ring_dropped,
        server_ok,
        server_rejected,
    } = ports;
    let mut s = StageStatus::new(StageKind::Synth);
    s.set(Counter::Received, received)
        .set(Counter::Missed, missed)
        .set(Counter::Unrouted, stats.unrouted.load(Relaxed))
        .set(Counter::Dropped, ring_dropped + stats.dropped.load(Relaxed))
        .set(Counter::Late, stats.late.load(Relaxed))
        .set(Counter::Resumed, stats.resumed.load(Relaxed))
        .set(Counter::ActiveVoices, stats.active_voices.load(Relaxed))
        .set(Counter::CallbackAvgNs, stats.avg_ns.load(Relaxed))
        .set(Counter::CallbackMaxNs, stats.max_ns.load(Relaxed))
        .set(Counter::CallbackBudgetNs, stats.budget_ns.load(Relaxed))
        .set(Counter::Xruns, stats.xruns.load(Relaxed))
        .set(Counter::Ticks, stats.callbacks.load(Relaxed))
        // The PipeWire cycle, ms; 0 while the stream is paused.
        .set(
            Counter::TickMs,
            if paused {
                0
            } else {
                stats.budget_ns.load(Relaxed) / 1_000_000
            },
        )
        .set(Counter::CommandsOk, server_ok)
        .set(Counter::CommandsRejected, server_rejected);
    s
}

fn ports(
    notes: &Subscriber<NoteEvent>,
    curves: &Subscriber<CurvePoint>,
    controller: &Controller,
    (server_ok, server_rejected): (u64, u64),
) -> Ports {
    Ports {
        received: notes.received() + curves.received(),
        missed: notes.missed() + curves.missed(),
        ring_dropped: controller.dropped(),
        server_ok,
        server_rejected,
    }
}

/// Pauses the master stream once the engine has been asleep (nothing sounding, queued or
/// fading) at two status ticks in a row with nothing sent to it in between, and runs it
/// again as soon as anything is: a hushed synth costs no callbacks. A note arrives at least
/// half the composer's lookahead (100 ms) before it sounds; a stream runs again from the next
/// cycle (43 ms at 2048 frames).
///
/// Curve points alone (a control following a signal, which a hush leaves running) make no
/// sound: while paused, the latest point of each control is held here and handed to the
/// engine when the stream runs again, before whatever woke it.
#[derive(Debug, Default)]
struct Pause {
    paused: bool,
    quiet_ticks: u8,
    /// While paused: the latest curve point of each (node, parameter).
    held: Vec<CurvePoint>,
}

impl Pause {
    /// Something that may sound was (or is about to be) sent to the engine.
    fn busy(
        &mut self,
        to_node: &pipewire::channel::Sender<node::ToNode>,
        controller: &mut Controller,
    ) {
        self.quiet_ticks = 0;
        if self.paused {
            self.paused = false;
            tracing::debug!("running the stream again");
            // Only fails once the PipeWire thread has ended, which the loop notices.
            to_node.send(node::ToNode::Active(true)).ok();
            for c in self.held.drain(..) {
                controller.push(Incoming::Curve(c));
            }
        }
    }

    /// A curve point: held while paused (the latest per control, for at most [`HELD_MAX`]
    /// controls: more runs the stream again), else sent on.
    fn curve(
        &mut self,
        c: CurvePoint,
        to_node: &pipewire::channel::Sender<node::ToNode>,
        controller: &mut Controller,
    ) {
        if self.paused {
            let same = |h: &&mut CurvePoint| (h.node, h.param) == (c.node, c.param);
            if let Some(h) = self.held.iter_mut().find(same) {
                *h = c;
                return;
            }
            if self.held.len() < HELD_MAX {
                self.held.push(c);
                return;
            }
            self.busy(to_node, controller);
        }
        controller.push(Incoming::Curve(c));
    }

    /// The status tick: `asleep` as the last callback left the engine.
    fn tick(&mut self, asleep: bool, to_node: &pipewire::channel::Sender<node::ToNode>) {
        if self.paused {
            return;
        }
        self.quiet_ticks = if asleep { self.quiet_ticks + 1 } else { 0 };
        if self.quiet_ticks >= 2 {
            self.paused = true;
            tracing::debug!("nothing sounds: pausing the stream");
            to_node.send(node::ToNode::Active(false)).ok();
        }
    }
}

/// Says in the log when the PipeWire cycle the synth runs at is shorter than the quantum it
/// asked for (`--quantum`), and when that changes: a larger quantum is asked for to wake less
/// often, and PipeWire grants it only up to its `clock.max-quantum` and to the smallest
/// quantum any other node asks for.
#[derive(Debug)]
struct CycleWatch {
    asked: u32,
    rate: u32,
    /// The cycle last seen, frames (0: none yet).
    seen: u32,
    /// Whether a shortfall was said.
    said: bool,
}

impl CycleWatch {
    fn new(asked: u32, rate: u32) -> Self {
        Self {
            asked,
            rate,
            seen: 0,
            said: false,
        }
    }

    /// The status tick: `budget_ns` is the last callback's cycle (0 before the first). A line
    /// for the log when the cycle changed and either it or the one before fell short, and
    /// whether it is the first shortfall.
    fn tick(&mut self, budget_ns: u64) -> Option<(String, bool)> {
        let frames = ((budget_ns as u128 * self.rate as u128 + 500_000_000) / 1_000_000_000) as u32;
        if frames == 0 || frames == self.seen {
            return None;
        }
        let before = std::mem::replace(&mut self.seen, frames);
        if frames < self.asked {
            let first = !std::mem::replace(&mut self.said, true);
            let line = format!(
                "PipeWire runs the graph at {frames} frames a cycle, not the {} asked for \
                 (--quantum): it grants at most its clock.max-quantum (`pw-metadata -n \
                 settings` shows it; 2048 by default in Debian 12's PipeWire) and follows the \
                 smallest quantum another node asks for",
                self.asked
            );
            Some((line, first))
        } else if before != 0 && before < self.asked {
            let line = format!("PipeWire runs the graph at the {frames} frames a cycle asked for");
            Some((line, false))
        } else {
            None
        }
    }
}

/// Controls whose latest point a paused synth holds (each a curve point of 32 bytes).
const HELD_MAX: usize = 256;

/// What woke the bus thread.
#[derive(Debug, Clone, Copy)]
enum Src {
    Notes,
    Curves,
    Transport,
    Commands,
}

/// Runs the synth until SIGINT/SIGTERM or a Shutdown command.
/// `engine` was built from `start`, which node-by-node edits start from.
pub fn run(
    bus_config: &BusConfig,
    options: &NodeOptions,
    start: GraphSpec,
    engine: Engine,
) -> Result<()> {
    let stats = Arc::new(RtStats::default());
    let (mut controller, renderer) = Controller::new(engine, Arc::clone(&stats), MAX_FRAMES);
    controller.started_from(start);
    let node_options = options.clone();
    let (to_node, to_node_rx) = pipewire::channel::channel::<node::ToNode>();
    let pw = NodeThread::spawn(move |control, ready| {
        node::run(&node_options, renderer, to_node_rx, control, ready)
    })?;
    let offer_stems = |controller: &mut Controller| {
        if let Some(list) = controller.take_stems_changed() {
            tracing::debug!("stems: {list:?}");
            // Only fails once the PipeWire thread has ended, which the loop notices.
            to_node.send(node::ToNode::Stems(list)).ok();
        }
    };
    offer_stems(&mut controller);
    let mut pause = Pause::default();
    let mut cycle = CycleWatch::new(options.quantum, options.rate);
    tracing::info!("PipeWire node {:?} is up", options.name);

    let mut stage =
        StageRunner::<commands::Synth>::open(bus_config).context("failed to join the bus")?;
    let mut notes = stage.bus().subscriber::<NoteEvent>()?;
    let mut curves = stage.bus().subscriber::<CurvePoint>()?;
    let mut transport = stage.bus().subscriber::<TransportState>()?;
    let commands = stage.server().waker();
    stage.announce_ready();
    let mut failure: Option<anyhow::Error> = None;
    let mut lost = false;
    let sources = [
        (Src::Notes, notes.waker()?),
        (Src::Curves, curves.waker()?),
        (Src::Transport, transport.waker()?),
        (Src::Commands, commands),
    ];
    let exit = wait::run(
        &sources,
        Some(Period::every(Duration::from_secs(1))),
        None,
        |wake| {
            // Notes sound: the stream runs (from the next cycle, well before them).
            if matches!(wake, Wake::Ready(Src::Notes)) {
                pause.busy(&to_node, &mut controller);
            }
            let result = match wake {
                Wake::Ready(Src::Notes) => notes
                    .drain(|n| controller.push(Incoming::Note(n)))
                    .map(drop),
                Wake::Ready(Src::Curves) => curves
                    .drain(|c| pause.curve(c, &to_node, &mut controller))
                    .map(drop),
                Wake::Ready(Src::Transport) => transport
                    .drain(|t| {
                        // A new tempo (not the once-a-second report) is for the audio thread.
                        if controller.follow_transport(&t) {
                            pause.busy(&to_node, &mut controller);
                        }
                    })
                    .map(drop),
                // Notes that came before the command first: a hand-over (`Resume`) skips those
                // it finds already received.
                Wake::Ready(Src::Commands) => notes
                    .drain(|n| controller.push(Incoming::Note(n)))
                    .and_then(|drained| {
                        if drained > 0 {
                            pause.busy(&to_node, &mut controller);
                        }
                        let counts = stage.commands();
                        let ports = ports(&notes, &curves, &controller, counts);
                        let report = status(&stats, ports, pause.paused);
                        let served = stage
                            .server()
                            .serve(|cmd| {
                                // Every command but a question may reach the audio thread,
                                // and some wait for it (a graph swap): run it first.
                                if !matches!(
                                    cmd,
                                    SynthCommand::Common(Common::Status | Common::Ping { .. })
                                ) {
                                    pause.busy(&to_node, &mut controller);
                                }
                                controller.handle(cmd, || report)
                            })
                            .map(drop);
                        offer_stems(&mut controller);
                        served
                    }),
                Wake::Tick => {
                    controller.collect_retired();
                    pause.tick(stats.asleep.load(Relaxed), &to_node);
                    if let Some((line, first)) = cycle.tick(stats.budget_ns.load(Relaxed)) {
                        // Explained once in the log a stage keeps (warnings); after that a
                        // desktop's players come and go, and so does their quantum.
                        if first {
                            tracing::warn!("{line}");
                        } else {
                            tracing::info!("{line}");
                        }
                    }
                    let counts = stage.commands();
                    stage
                        .heartbeat(true, || {
                            let ports = ports(&notes, &curves, &controller, counts);
                            status(&stats, ports, pause.paused)
                        })
                        .map(drop)
                }
            };
            if let Err(e) = result {
                failure = Some(e.into());
                return ControlFlow::Break(());
            }
            if pw.is_finished() {
                // The daemon went away: exit, so the supervisor starts us again when it is back.
                lost = true;
                return ControlFlow::Break(());
            }
            if controller.shutdown_requested() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    if !lost && !pause.paused {
        // Fade out rather than stop mid-waveform; the audio thread hands the old graph back
        // when the fade is done (bounded: a graph that stopped running never will).
        controller.fade_out(FADE_OUT_MS);
        let deadline = std::time::Instant::now() + Duration::from_millis(400);
        while controller.swap_pending() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let stopped = pw.stop();
    if let Some(e) = failure {
        return Err(e);
    }
    stopped?;
    if lost {
        anyhow::bail!("the PipeWire thread ended without being asked to");
    }
    match exit? {
        Exit::Terminated | Exit::Stopped | Exit::Deadline => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_shorter_than_the_quantum_asked_for_is_said_once_a_change() {
        let ns = |frames: u64| frames * 1_000_000_000 / 48_000;
        let mut watch = CycleWatch::new(4096, 48_000);
        assert_eq!(watch.tick(0), None, "no callback yet");
        let (short, first) = watch
            .tick(ns(2048))
            .expect("a cycle shorter than asked is said");
        assert!(
            short.contains("2048 frames") && short.contains("4096"),
            "{short}"
        );
        assert!(first);
        assert_eq!(watch.tick(ns(2048)), None, "once, not at every tick");
        let (shorter, first) = watch.tick(ns(1024)).unwrap();
        assert!(shorter.contains("1024 frames") && !first, "{shorter}");
        let (back, first) = watch
            .tick(ns(4096))
            .expect("getting what was asked is said");
        assert!(back.contains("4096 frames") && !first, "{back}");
        assert_eq!(watch.tick(ns(4096)), None);
        // What was asked from the start: nothing to say.
        let mut watch = CycleWatch::new(2048, 48_000);
        assert_eq!(watch.tick(ns(2048)), None);
        // A budget's ns rounded down still names the frames (44.1 kHz: not whole ns).
        let mut watch = CycleWatch::new(2048, 44_100);
        let (line, _) = watch.tick(1024 * 1_000_000_000 / 44_100).unwrap();
        assert!(line.contains("1024 frames"), "{line}");
    }

    #[test]
    fn a_paused_synth_holds_the_latest_point_of_each_control_and_a_flood_runs_it() {
        let engine = GraphSpec::builtin_patch(4).build(48_000.0).unwrap();
        let stats = Arc::new(RtStats::default());
        let (mut controller, _renderer) = Controller::new(engine, stats, 256);
        let (to_node, _rx) = pipewire::channel::channel::<node::ToNode>();
        let point = |node: u32, param: u32, value: f32| CurvePoint {
            node,
            param,
            value,
            ..Default::default()
        };
        let mut pause = Pause {
            paused: true,
            ..Default::default()
        };
        pause.curve(point(3, 2, 100.0), &to_node, &mut controller);
        pause.curve(point(3, 2, 200.0), &to_node, &mut controller);
        assert_eq!(pause.held, vec![point(3, 2, 200.0)], "the latest, once");
        for k in 1..HELD_MAX as u32 {
            pause.curve(point(1000 + k, 0, 1.0), &to_node, &mut controller);
        }
        assert!(pause.paused);
        assert_eq!(pause.held.len(), HELD_MAX);
        // One control more than it holds: the stream runs, and every point goes on.
        pause.curve(point(5000, 0, 1.0), &to_node, &mut controller);
        assert!(!pause.paused);
        assert!(pause.held.is_empty());
        // A note runs a paused stream too, and hands the held points over first.
        pause.paused = true;
        pause.curve(point(3, 2, 300.0), &to_node, &mut controller);
        pause.busy(&to_node, &mut controller);
        assert!(!pause.paused && pause.held.is_empty());
    }
}
