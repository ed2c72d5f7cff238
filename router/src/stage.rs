//! The router stage: the bus thread maps notes, signals, curves and the transport to MIDI
//! (through a lock-free ring to the PipeWire thread) and to OSC datagrams; an OSC listener
//! thread forwards control messages as bus commands. Status counts everything sent, late,
//! dropped and refused.

use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TempoChange};
use khorus_bus::commands::control::{Change, ControlCommand, ControlReply, Value};
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::wait::{self, Period, Wake, Waker};
use khorus_bus::{
    Bus, BusConfig, BusError, CurvePoint, NoteEvent, SignalFrame, StageRunner, TransportState,
};

use crate::counts::{OscStats, final_sweep, status};
use crate::feed::Feed;
use crate::map::RouterConfig;
use crate::node::{self, LinkWatch};
use crate::osc::{self, OscCommand};
use crate::rt::{Incoming, RtStats, Scheduler};
use khorus_pw::NodeThread;

/// Ring capacity bus thread → MIDI thread.
const RING: usize = 8192;
/// Events the MIDI thread can hold ahead of time.
const QUEUE: usize = 16384;

/// How the router runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `[router]` settings (with the command line applied).
    pub config: RouterConfig,
    /// Run the PipeWire MIDI node.
    pub midi: bool,
    /// Print every note and controller change on stdout.
    pub print: bool,
}

/// Sends decoded OSC control to control (`khorus up`), which owns the session, as a batch;
/// a router running without control (used on its own) sends it to the stages directly.
struct Forwarder {
    control: khorus_bus::CommandClient<ControlCommand, ControlReply>,
    composer: khorus_bus::CommandClient<ComposerCommand, ComposerReply>,
    synth: khorus_bus::CommandClient<SynthCommand, SynthReply>,
}

impl Forwarder {
    fn forward(&mut self, cmd: &OscCommand) -> Result<(), khorus_bus::BusError> {
        // Generous: a busy machine (CI runs debug builds of every stage at once on two cores)
        // was seen to take over 500 ms to answer, and a forward that times out is a lost
        // command. A missing stage is still reported, after this long.
        const WAIT: Duration = Duration::from_secs(2);
        if self.control.has_server() {
            let change = match cmd {
                OscCommand::Set { node, param, value } => Change::Set {
                    node: node.clone(),
                    param: param.clone(),
                    value: Value::Number(*value as f64),
                },
                OscCommand::Tempo(bpm) => Change::Tempo {
                    bpm: *bpm,
                    beats_per_cycle: None,
                },
                OscCommand::Hush(None) => Change::HushAll,
                OscCommand::Hush(Some(node)) => Change::Play {
                    node: node.clone(),
                    param: None,
                    pattern: None,
                },
            };
            // A batch may wait for the synth to build a graph: allow for it.
            return self
                .control
                .call(&ControlCommand::Batch(vec![change]), WAIT * 5)
                .map(drop);
        }
        match cmd {
            OscCommand::Set { node, param, value } => self
                .synth
                .call(
                    &SynthCommand::Set {
                        node: node.clone(),
                        param: param.clone(),
                        value: *value,
                    },
                    WAIT,
                )
                .map(drop),
            OscCommand::Tempo(bpm) => self
                .composer
                .call(
                    &ComposerCommand::Tempo(TempoChange {
                        bpm: Some(*bpm),
                        cps: None,
                        beats_per_cycle: None,
                        over: None,
                    }),
                    WAIT,
                )
                .map(drop),
            OscCommand::Hush(slot) => self
                .composer
                .call(&ComposerCommand::Hush { slot: slot.clone() }, WAIT)
                .map(drop),
        }
    }
}

fn osc_listener(
    socket: UdpSocket,
    bus_config: BusConfig,
    mut midi: Option<rtrb::Producer<Incoming>>,
    stats: Arc<OscStats>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let bus = Bus::open("router-osc-in", &bus_config).context("OSC listener: join the bus")?;
    let mut fwd = Forwarder {
        control: bus.command_client::<khorus_bus::commands::Control>()?,
        composer: bus.command_client::<khorus_bus::commands::Composer>()?,
        synth: bus.command_client::<khorus_bus::commands::Synth>()?,
    };
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .context("OSC listener: set a read timeout")?;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e).context("OSC listener: receive"),
        };
        let commands = match osc::decode(&buf[..n]) {
            Ok(c) => c,
            Err(e) => {
                stats.rejected.fetch_add(1, Relaxed);
                tracing::warn!("OSC from {from}: {e}");
                continue;
            }
        };
        stats.accepted.fetch_add(1, Relaxed);
        for cmd in &commands {
            if let (OscCommand::Hush(None), Some(ring)) = (cmd, midi.as_mut())
                && ring.push(Incoming::AllNotesOff { clear: true }).is_err()
            {
                tracing::warn!("MIDI ring full: hush not swept");
            }
            match fwd.forward(cmd) {
                Ok(()) => tracing::debug!("OSC from {from}: {cmd:?} forwarded"),
                Err(e) => {
                    stats.forward_failed.fetch_add(1, Relaxed);
                    tracing::warn!("OSC from {from}: {cmd:?} not carried out: {e}");
                }
            }
        }
    }
    Ok(())
}

/// What woke the bus thread.
#[derive(Debug, Clone, Copy)]
enum Src {
    Notes,
    Signals,
    Curves,
    Transport,
    Commands,
    Link,
}

/// Runs the router until SIGINT/SIGTERM or a Shutdown command; sweeps all-notes-off before
/// leaving.
pub fn run(bus_config: &BusConfig, opts: &Options) -> Result<()> {
    let cfg = &opts.config;
    cfg.validate().map_err(|e| anyhow!(e))?;
    let rt_stats = Arc::new(RtStats::default());
    let osc_stats = Arc::new(OscStats::default());
    let mut feed = Feed::new(cfg, opts.print, Arc::clone(&osc_stats))?;
    let link = Arc::new(LinkWatch::new().context("failed to make the link event")?);

    // The MIDI node, fed by two rings: the bus thread's and the OSC listener's.
    let (mut midi_tx, mut osc_midi_tx, mut pw) = (None, None, None);
    if opts.midi {
        let (tx, rx) = rtrb::RingBuffer::<Incoming>::new(RING);
        let (otx, orx) = rtrb::RingBuffer::<Incoming>::new(64);
        let scheduler = Scheduler::new(
            vec![rx, orx],
            QUEUE,
            cfg.channel_mask(),
            cfg.midi_clock,
            Arc::clone(&rt_stats),
        );
        let (name, link) = (cfg.name.clone(), Arc::clone(&link));
        let thread = NodeThread::spawn(move |control, ready| {
            node::run(&name, scheduler, control, ready, link)
        })?;
        tracing::info!("PipeWire MIDI node {:?} is up", cfg.name);
        midi_tx = Some(tx);
        osc_midi_tx = Some(otx);
        pw = Some(thread);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let listener = if cfg.osc_in != 0 {
        let addr = SocketAddr::new(cfg.osc_in_bind.parse().context("osc_in_bind")?, cfg.osc_in);
        let socket =
            UdpSocket::bind(addr).with_context(|| format!("failed to listen for OSC on {addr}"))?;
        let (bus_config, stats, stop) = (bus_config.clone(), Arc::clone(&osc_stats), stop.clone());
        let ring = osc_midi_tx.take();
        Some(
            std::thread::Builder::new()
                .name("osc-in".into())
                .stack_size(8 << 20)
                .spawn(move || osc_listener(socket, bus_config, ring, stats, stop))
                .context("failed to start the OSC listener")?,
        )
    } else {
        None
    };

    let mut stage = StageRunner::<khorus_bus::commands::Router>::open(bus_config)
        .context("failed to join the bus")?;
    let bus = stage.bus();
    let mut notes = bus.subscriber::<NoteEvent>()?;
    let mut signals = bus.subscriber::<SignalFrame>()?;
    let mut curves = bus.subscriber::<CurvePoint>()?;
    let mut transport = bus.subscriber::<TransportState>()?;
    let commands = stage.server().waker();
    let link_changed = Waker::fd(link.readable().context("failed to watch the MIDI link")?);
    stage.announce_ready();

    let mut shutdown = false;
    let mut failure = None;
    let mut lost = false;
    // A subscription wakes the router only while something consumes what its samples become
    // (`Feed::wants`); otherwise the once-a-second tick empties it, and the collector (nobody
    // waiting for frames) ticks at its idle rate. A peer linking wakes the router at once
    // (`LinkWatch`); the MIDI thread's cycles are the fallback, noticed within a second.
    let wants = |feed: &Feed, now: u64| feed.wants(link.linked() || rt_stats.linked_at(now));
    let mut fast = wants(&feed, khorus_bus::clock::now_ns());
    let exit = loop {
        let mut sources = vec![
            (Src::Transport, transport.waker()?),
            (Src::Commands, commands.clone()),
            (Src::Link, link_changed.clone()),
        ];
        if fast.notes {
            sources.push((Src::Notes, notes.waker()?));
            sources.push((Src::Curves, curves.waker()?));
        } else {
            notes.read_at_own_pace();
            curves.read_at_own_pace();
        }
        if fast.signals {
            sources.push((Src::Signals, signals.waker()?));
        } else {
            signals.read_at_own_pace();
        }
        // A consumer appeared: what came since the last tick is its (the listeners made above
        // wake the router for anything published from now on).
        let now = khorus_bus::clock::now_ns();
        let mut take = || -> Result<(), BusError> {
            if fast.notes {
                feed.notes(&mut notes, now)?;
                feed.curves(&mut curves, now)?;
            }
            if fast.signals {
                feed.signals(&mut signals, now)?;
            }
            Ok(())
        };
        let taken = take();
        feed.hand_over(midi_tx.as_mut(), &rt_stats, now);
        if let Err(e) = taken {
            // Leave as any failure does: the MIDI thread sweeps and stops first.
            failure = Some(e);
            break Ok(wait::Exit::Stopped);
        }
        let mut switch = false;
        let every_second = Period::every(Duration::from_secs(1));
        let exit = wait::run(&sources, Some(every_second), None, |wake| {
            let now = khorus_bus::clock::now_ns();
            feed.counts.missed =
                notes.missed() + signals.missed() + curves.missed() + transport.missed();
            let result = match wake {
                Wake::Ready(Src::Notes) => feed.notes(&mut notes, now),
                Wake::Ready(Src::Signals) => feed.signals(&mut signals, now),
                Wake::Ready(Src::Curves) => feed.curves(&mut curves, now),
                Wake::Ready(Src::Transport) => feed.transport(&mut transport),
                Wake::Ready(Src::Link) => {
                    link.clear();
                    Ok(())
                }
                Wake::Ready(Src::Commands) => {
                    let (ok, rejected) = stage.commands();
                    let report = status(&rt_stats, &osc_stats, &feed.counts, ok, rejected);
                    stage
                        .server()
                        .serve(|cmd| Ok(cmd.answer(|| report, &mut shutdown)))
                        .map(drop)
                }
                Wake::Tick => {
                    // (What came just as a consumer appeared is kept for it.)
                    let now_wanted = wants(&feed, now);
                    let mut empty = || -> Result<(), BusError> {
                        if !fast.signals && !now_wanted.signals {
                            feed.unconsumed(&mut signals)?;
                        }
                        if !fast.notes && !now_wanted.notes {
                            feed.unconsumed(&mut notes)?;
                            feed.unconsumed(&mut curves)?;
                        }
                        Ok(())
                    };
                    if let Err(e) = empty() {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                    feed.tick(now);
                    let (ok, rejected) = stage.commands();
                    stage
                        .heartbeat(true, || {
                            status(&rt_stats, &osc_stats, &feed.counts, ok, rejected)
                        })
                        .map(drop)
                }
            };
            feed.hand_over(midi_tx.as_mut(), &rt_stats, now);
            if let Err(e) = result {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            if pw.as_ref().is_some_and(|t: &NodeThread| t.is_finished()) {
                // The daemon went away: exit, so the supervisor starts us again when it is back.
                lost = true;
                return ControlFlow::Break(());
            }
            if shutdown {
                return ControlFlow::Break(());
            }
            let now_wanted = wants(&feed, now);
            if now_wanted != fast {
                fast = now_wanted;
                switch = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if switch {
            continue;
        }
        break exit;
    };

    stop.store(true, Relaxed);
    if let Some(thread) = pw.filter(|_| !lost) {
        // Leave nothing hanging: sweep every used channel, and wait (bounded) until the MIDI
        // thread has written it.
        if let Some(tx) = midi_tx.as_mut()
            && let Some(warning) = final_sweep(tx, &rt_stats, Duration::from_secs(1))
        {
            tracing::warn!("{warning}");
        }
        thread.stop()?;
    }
    if let Some(l) = listener {
        l.join()
            .map_err(|_| anyhow!("the OSC listener panicked"))??;
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    exit?;
    if lost {
        anyhow::bail!("the PipeWire thread ended without being asked to");
    }
    Ok(())
}
