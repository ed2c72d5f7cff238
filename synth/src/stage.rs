//! The synth stage: the PipeWire node on its own thread, fed from the bus by this thread
//! through lock-free rings, with a status heartbeat and the synth's commands (served by
//! [`Controller`], which also owns every graph build and frees retired graphs).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result};
use khorus_bus::commands;
use khorus_bus::wait::{self, Exit, Period, Wake};
use khorus_bus::{
    BusConfig, Counter, CurvePoint, NoteEvent, StageKind, StageRunner, StageStatus, Subscriber,
    TransportState,
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

fn status(stats: &RtStats, ports: Ports) -> StageStatus {
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
    let (stems, stems_rx) = pipewire::channel::channel::<node::StemList>();
    let pw = NodeThread::spawn(move |control, ready| {
        node::run(&node_options, renderer, stems_rx, control, ready)
    })?;
    let offer_stems = move |controller: &mut Controller| {
        if let Some(list) = controller.take_stems_changed() {
            tracing::debug!("stems: {list:?}");
            // Only fails once the PipeWire thread has ended, which the loop notices.
            stems.send(list).ok();
        }
    };
    offer_stems(&mut controller);
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
            let result = match wake {
                Wake::Ready(Src::Notes) => notes
                    .drain(|n| controller.push(Incoming::Note(n)))
                    .map(drop),
                Wake::Ready(Src::Curves) => curves
                    .drain(|c| controller.push(Incoming::Curve(c)))
                    .map(drop),
                Wake::Ready(Src::Transport) => transport
                    .drain(|t| controller.follow_transport(&t))
                    .map(drop),
                // Notes that came before the command first: a hand-over (`Resume`) skips those
                // it finds already received.
                Wake::Ready(Src::Commands) => notes
                    .drain(|n| controller.push(Incoming::Note(n)))
                    .and_then(|_| {
                        let counts = stage.commands();
                        let report = status(&stats, ports(&notes, &curves, &controller, counts));
                        let served = stage
                            .server()
                            .serve(|cmd| controller.handle(cmd, || report))
                            .map(drop);
                        offer_stems(&mut controller);
                        served
                    }),
                Wake::Tick => {
                    controller.collect_retired();
                    let counts = stage.commands();
                    stage
                        .heartbeat(true, || {
                            status(&stats, ports(&notes, &curves, &controller, counts))
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
    if !lost {
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
