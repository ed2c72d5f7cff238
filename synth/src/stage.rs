//! The synth stage: the PipeWire node on its own thread, fed from the bus by this thread
//! through a lock-free ring, with a status heartbeat and the common commands.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use khorus_bus::command::CommonReply;
use khorus_bus::wait::{self, Exit, Wake};
use khorus_bus::{Bus, BusConfig, Common, Counter, CurvePoint, NoteEvent, StageKind, StageStatus};

use crate::engine::Engine;
use crate::node::{self, Control, NodeOptions};
use crate::rt::{Incoming, Renderer, RtStats};

/// Ring capacity between the bus thread and the audio thread.
const RING: usize = 8192;
/// Largest PipeWire quantum the renderer is sized for.
const MAX_FRAMES: usize = 8192;

fn status(
    stats: &RtStats,
    received: u64,
    ring_dropped: u64,
    server_ok: u64,
    server_rejected: u64,
) -> StageStatus {
    let mut s = StageStatus::new(StageKind::Synth);
    s.set(Counter::Received, received)
        .set(Counter::Dropped, ring_dropped + stats.dropped.load(Relaxed))
        .set(Counter::Late, stats.late.load(Relaxed))
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

/// Runs the synth until SIGINT/SIGTERM or a Shutdown command.
pub fn run(bus_config: &BusConfig, options: &NodeOptions, engine: Engine) -> Result<()> {
    let (mut tx, rx) = rtrb::RingBuffer::<Incoming>::new(RING);
    let stats = Arc::new(RtStats::default());
    let renderer = Renderer::new(engine, rx, Arc::clone(&stats), MAX_FRAMES);
    let (control_tx, control_rx) = pipewire::channel::channel::<Control>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let node_options = options.clone();
    let pw_thread = std::thread::Builder::new()
        .name("pipewire".into())
        .spawn(move || node::run(&node_options, renderer, control_rx, ready_tx))
        .context("failed to start the PipeWire thread")?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            pw_thread.join().ok();
            return Err(anyhow!(e));
        }
        Err(_) => return Err(anyhow!("the PipeWire thread did not start within 10 s")),
    }
    tracing::info!("PipeWire node {:?} is up", options.name);

    let bus = Bus::open("synth", bus_config).context("failed to join the bus")?;
    let mut notes = bus.subscriber::<NoteEvent>()?;
    let mut curves = bus.subscriber::<CurvePoint>()?;
    let mut status_pub = bus.publisher::<StageStatus>()?;
    let mut server = bus.command_server::<Common, CommonReply>(StageKind::Synth)?;
    // Supervisors and tests wait for this line: from here on commands are answered.
    eprintln!("synth: ready");
    let mut ring_dropped = 0u64;
    let mut shutdown = false;
    let mut failure = None;
    let exit = wait::run(
        &[notes.waker(), curves.waker(), server.waker()],
        Some(Duration::from_secs(1)),
        None,
        |wake| {
            let mut push = |item: Incoming| {
                if tx.push(item).is_err() {
                    ring_dropped += 1;
                }
            };
            let result = match wake {
                Wake::Ready(0) => notes.drain(|n| push(Incoming::Note(n))).map(drop),
                Wake::Ready(1) => curves.drain(|c| push(Incoming::Curve(c))).map(drop),
                Wake::Ready(_) => {
                    let report = status(
                        &stats,
                        notes.received(),
                        ring_dropped,
                        server.ok(),
                        server.rejected(),
                    );
                    server
                        .serve(|cmd| Ok(cmd.answer(|| report, &mut shutdown)))
                        .map(drop)
                }
                Wake::Tick => status_pub
                    .publish(status(
                        &stats,
                        notes.received(),
                        ring_dropped,
                        server.ok(),
                        server.rejected(),
                    ))
                    .map(drop),
            };
            if let Err(e) = result {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            if shutdown {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    control_tx.send(Control::Terminate).ok();
    let node_result = pw_thread
        .join()
        .map_err(|_| anyhow!("the PipeWire thread panicked"))?;
    node_result?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    match exit? {
        Exit::Terminated | Exit::Stopped | Exit::Deadline => Ok(()),
    }
}
