//! The router stage: the bus thread maps notes, signals, curves and the transport to MIDI
//! (through a lock-free ring to the PipeWire thread) and to OSC datagrams; an OSC listener
//! thread forwards control messages as bus commands. Status counts everything sent, late,
//! dropped and refused.

use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply, TempoChange};
use khorus_bus::commands::control::{Change, ControlCommand, ControlReply, Value};
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::wait::{self, Period, Wake};
use khorus_bus::{Bus, BusConfig, CurvePoint, NoteEvent, SignalFrame, StageRunner, TransportState};

use crate::counts::{Counts, OscStats, final_sweep, push_to_midi, status};
use crate::map::{Mapper, RouterConfig, parse_target};
use crate::node;
use crate::osc::{self, NtpClock, OscCommand};
use crate::rt::{Incoming, RtStats, Scheduler, Tempo};
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

/// The transport as the MIDI clock follows it.
pub fn tempo_of(t: &TransportState) -> Option<Tempo> {
    if t.anchor_cycle_den <= 0 || t.cps_den <= 0 || t.cps_num <= 0 || t.beats_per_cycle == 0 {
        return None;
    }
    let bpc = t.beats_per_cycle as f64;
    let cps = t.cps_num as f64 / t.cps_den as f64;
    Some(Tempo {
        anchor_ns: t.anchor_ns,
        anchor_beat: t.anchor_cycle_num as f64 / t.anchor_cycle_den as f64 * bpc,
        ns_per_beat: 1e9 / (cps * bpc),
        running: t.running != 0,
    })
}

/// Sends datagrams to every OSC target, counting what went and what failed.
struct OscOut {
    socket: Option<UdpSocket>,
    targets: Vec<SocketAddr>,
    stats: Arc<OscStats>,
}

impl OscOut {
    fn new(targets: &[String], stats: Arc<OscStats>) -> Result<Self> {
        let targets = targets
            .iter()
            .map(|t| parse_target(t).map_err(|e| anyhow!("--osc {e}")))
            .collect::<Result<Vec<_>>>()?;
        let socket = if targets.is_empty() {
            None
        } else {
            let any: SocketAddr = if targets.iter().all(SocketAddr::is_ipv6) {
                "[::]:0".parse()?
            } else {
                "0.0.0.0:0".parse()?
            };
            Some(UdpSocket::bind(any).context("failed to open the OSC socket")?)
        };
        Ok(Self {
            socket,
            targets,
            stats,
        })
    }

    fn send(&self, bytes: &[u8]) {
        let Some(socket) = &self.socket else { return };
        for t in &self.targets {
            match socket.send_to(bytes, t) {
                Ok(_) => self.stats.out.fetch_add(1, Relaxed),
                Err(_) => self.stats.out_failed.fetch_add(1, Relaxed),
            };
        }
    }

    fn active(&self) -> bool {
        !self.targets.is_empty()
    }
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
                    pattern: None,
                    quantum: None,
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
}

/// Runs the router until SIGINT/SIGTERM or a Shutdown command; sweeps all-notes-off before
/// leaving.
pub fn run(bus_config: &BusConfig, opts: &Options) -> Result<()> {
    let cfg = &opts.config;
    cfg.validate().map_err(|e| anyhow!(e))?;
    let rt_stats = Arc::new(RtStats::default());
    let osc_stats = Arc::new(OscStats::default());
    let mut mapper = Mapper::new(cfg);
    let osc_out = OscOut::new(&cfg.osc, Arc::clone(&osc_stats))?;

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
        let name = cfg.name.clone();
        let thread =
            NodeThread::spawn(move |control, ready| node::run(&name, scheduler, control, ready))?;
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
    stage.announce_ready();

    let mut ntp = NtpClock::measure();
    let mut ntp_at = Instant::now();
    let signal_every = period(cfg.osc_signal_hz);
    let metrics_every = period(cfg.osc_metrics_hz);
    let (mut last_signal, mut last_metrics) = (None::<Instant>, None::<Instant>);
    let mut counts = Counts::default();
    let mut pending = Vec::new();
    let mut was_running = None;
    let mut hushes = None;
    let mut shutdown = false;
    let mut failure = None;
    let mut lost = false;
    let print = opts.print;
    // Signal frames (50 a second) wake the router only while something consumes what they
    // become: a linked MIDI peer (the MIDI thread runs only then) or OSC signal bundles.
    // Otherwise the once-a-second tick empties the subscription, and a peer linking later is
    // noticed by then: its controllers start within a second.
    let wants_signals = |now: u64| {
        rt_stats.linked_at(now)
            || (osc_out.active() && (signal_every.is_some() || metrics_every.is_some()))
    };
    let mut fast = wants_signals(khorus_bus::clock::now_ns());
    let exit = loop {
        let mut switch = false;
        let mut sources = vec![
            (Src::Notes, notes.waker()?),
            (Src::Curves, curves.waker()?),
            (Src::Transport, transport.waker()?),
            (Src::Commands, commands.clone()),
        ];
        if fast {
            sources.push((Src::Signals, signals.waker()?));
        } else {
            // Nobody waiting for frames as they come lets the collector tick at its idle rate.
            signals.read_at_own_pace();
        }
        let every_second = Period::every(Duration::from_secs(1));
        let exit = wait::run(&sources, Some(every_second), None, |wake| {
            let now = khorus_bus::clock::now_ns();
            counts.missed =
                notes.missed() + signals.missed() + curves.missed() + transport.missed();
            let result = match wake {
                Wake::Ready(Src::Notes) => notes
                    .drain(|n| {
                        counts.received += 1;
                        let Some(m) = mapper.note(&n) else {
                            counts.invalid += 1;
                            return;
                        };
                        if print {
                            // The note as every tool prints it, then the MIDI it becomes.
                            println!(
                                "{} -> midi ch={} note={} vel={}",
                                n.line(now),
                                m.channel + 1,
                                m.note,
                                m.velocity
                            );
                        }
                        if osc_out.active() {
                            osc_out.send(&osc::note_bundle(
                                m,
                                n.velocity.clamp(0.0, 1.0),
                                n.dur_ns as f32 / 1e9,
                                ntp.ntp(n.t_ns),
                            ));
                        }
                        pending.push(m.at(n.t_ns, n.dur_ns));
                    })
                    .map(drop),
                Wake::Ready(Src::Signals) => signals
                    .drain(|f| {
                        counts.received += 1;
                        mapper.signals(&f, now, &mut pending);
                        let due = |last: Option<Instant>, every: Option<Duration>| {
                            every.is_some_and(|e| last.is_none_or(|l| l.elapsed() >= e))
                        };
                        if osc_out.active() && due(last_signal, signal_every) {
                            last_signal = Some(Instant::now());
                            osc_out.send(&osc::signal_bundle(&f));
                        }
                        if osc_out.active() && due(last_metrics, metrics_every) {
                            last_metrics = Some(Instant::now());
                            osc_out.send(&osc::metrics_bundle(&f));
                        }
                    })
                    .map(drop),
                Wake::Ready(Src::Curves) => curves
                    .drain(|c| {
                        counts.received += 1;
                        mapper.curve(&c, now, &mut pending);
                    })
                    .map(drop),
                Wake::Ready(Src::Transport) => transport
                    .drain(|t| {
                        counts.received += 1;
                        match tempo_of(&t) {
                            Some(tempo) => {
                                pending.push(Incoming::Transport(tempo));
                                // The transport stopped, or the composer was hushed (by anyone):
                                // nothing may keep sounding.
                                let stopped = was_running == Some(true) && !tempo.running;
                                let hushed = hushes.is_some_and(|h| h != t.hushes);
                                if stopped || hushed {
                                    pending.push(Incoming::AllNotesOff { clear: true });
                                }
                                was_running = Some(tempo.running);
                                hushes = Some(t.hushes);
                            }
                            None => counts.invalid += 1,
                        }
                    })
                    .map(drop),
                Wake::Ready(Src::Commands) => {
                    let (ok, rejected) = stage.commands();
                    let report = status(&rt_stats, &osc_stats, &counts, ok, rejected);
                    stage
                        .server()
                        .serve(|cmd| Ok(cmd.answer(|| report, &mut shutdown)))
                        .map(drop)
                }
                Wake::Tick => {
                    // (Frames that came just as a consumer appeared are kept for it.)
                    if !fast
                        && !wants_signals(now)
                        && let Err(e) = signals.drain(|_| counts.unconsumed += 1)
                    {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                    mapper.flush(now, &mut pending);
                    if ntp_at.elapsed() > Duration::from_secs(10) {
                        ntp = NtpClock::measure();
                        ntp_at = Instant::now();
                    }
                    let (ok, rejected) = stage.commands();
                    stage
                        .heartbeat(true, || {
                            status(&rt_stats, &osc_stats, &counts, ok, rejected)
                        })
                        .map(drop)
                }
            };
            if mapper.has_waiting() {
                mapper.flush(now, &mut pending);
            }
            for item in pending.drain(..) {
                if print && let Incoming::Cc { channel, cc, value } = item {
                    println!("cc ch={} cc={cc} value={value}", channel + 1);
                }
                if let Some(tx) = midi_tx.as_mut() {
                    push_to_midi(tx, item, &rt_stats, now, &mut counts);
                }
            }
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
            if wants_signals(now) != fast {
                switch = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if switch {
            fast = !fast;
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

fn period(hz: f64) -> Option<Duration> {
    (hz > 0.0).then(|| Duration::from_secs_f64(1.0 / hz))
}
