//! What the router's bus thread makes of each sample: notes, signal frames, curve points and
//! the transport become MIDI items (handed to the MIDI thread's ring) and OSC bundles. Which
//! subscriptions wake the thread as their samples come depends on who consumes them
//! ([`Feed::wants`]); the others are emptied, unread, once a second.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use khorus_bus::{BusError, CurvePoint, NoteEvent, SignalFrame, Subscriber, Topic, TransportState};

use crate::clock::tempo_of;
use crate::counts::{Counts, OscStats, push_to_midi};
use crate::map::{Mapper, RouterConfig, parse_target};
use crate::osc::{self, NtpClock};
use crate::rt::{Incoming, RtStats};

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

/// Which subscriptions wake the bus thread as their samples come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wants {
    /// Signal frames (50 a second): while a MIDI peer is linked (they become controllers) or
    /// OSC signal or metrics bundles are sent.
    pub signals: bool,
    /// Notes and curve points: while a MIDI peer is linked, OSC targets get note bundles, or
    /// `--print` shows them.
    pub notes: bool,
}

/// The bus thread's mapping state and counters.
pub(crate) struct Feed {
    mapper: Mapper,
    osc_out: OscOut,
    ntp: NtpClock,
    ntp_at: Instant,
    signal_every: Option<Duration>,
    metrics_every: Option<Duration>,
    last_signal: Option<Instant>,
    last_metrics: Option<Instant>,
    was_running: Option<bool>,
    hushes: Option<u32>,
    print: bool,
    /// What the last samples became, for the MIDI thread ([`Feed::hand_over`]).
    pending: Vec<Incoming>,
    pub counts: Counts,
}

impl Feed {
    pub fn new(cfg: &RouterConfig, print: bool, osc_stats: Arc<OscStats>) -> Result<Self> {
        Ok(Self {
            mapper: Mapper::new(cfg),
            osc_out: OscOut::new(&cfg.osc, osc_stats)?,
            ntp: NtpClock::measure(),
            ntp_at: Instant::now(),
            signal_every: period(cfg.osc_signal_hz),
            metrics_every: period(cfg.osc_metrics_hz),
            last_signal: None,
            last_metrics: None,
            was_running: None,
            hushes: None,
            print,
            pending: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// Who consumes what, now: `linked` says a MIDI peer is linked.
    pub fn wants(&self, linked: bool) -> Wants {
        let osc = self.osc_out.active();
        Wants {
            signals: linked
                || (osc && (self.signal_every.is_some() || self.metrics_every.is_some())),
            notes: linked || osc || self.print,
        }
    }

    /// Maps every note waiting in `sub`: MIDI, an OSC bundle stamped with its time, a printed
    /// line.
    pub fn notes(&mut self, sub: &mut Subscriber<NoteEvent>, now: u64) -> Result<(), BusError> {
        sub.drain(|n| {
            self.counts.received += 1;
            let Some(m) = self.mapper.note(&n) else {
                self.counts.invalid += 1;
                return;
            };
            if self.print {
                // The note as every tool prints it, then the MIDI it becomes.
                println!(
                    "{} -> midi ch={} note={} vel={}",
                    n.line(now),
                    m.channel + 1,
                    m.note,
                    m.velocity
                );
            }
            if self.osc_out.active() {
                self.osc_out.send(&osc::note_bundle(
                    m,
                    n.velocity.clamp(0.0, 1.0),
                    n.dur_ns as f32 / 1e9,
                    self.ntp.ntp(n.t_ns),
                ));
            }
            self.pending.push(m.at(n.t_ns, n.dur_ns));
        })
        .map(drop)
    }

    /// Maps every signal frame waiting in `sub` to controllers and OSC signal and metrics
    /// bundles (at their rates).
    pub fn signals(&mut self, sub: &mut Subscriber<SignalFrame>, now: u64) -> Result<(), BusError> {
        sub.drain(|f| {
            self.counts.received += 1;
            self.mapper.signals(&f, now, &mut self.pending);
            let due = |last: Option<Instant>, every: Option<Duration>| {
                every.is_some_and(|e| last.is_none_or(|l| l.elapsed() >= e))
            };
            if self.osc_out.active() && due(self.last_signal, self.signal_every) {
                self.last_signal = Some(Instant::now());
                self.osc_out.send(&osc::signal_bundle(&f));
            }
            if self.osc_out.active() && due(self.last_metrics, self.metrics_every) {
                self.last_metrics = Some(Instant::now());
                self.osc_out.send(&osc::metrics_bundle(&f));
            }
        })
        .map(drop)
    }

    /// Maps every curve point waiting in `sub` to controllers.
    pub fn curves(&mut self, sub: &mut Subscriber<CurvePoint>, now: u64) -> Result<(), BusError> {
        sub.drain(|c| {
            self.counts.received += 1;
            self.mapper.curve(&c, now, &mut self.pending);
        })
        .map(drop)
    }

    /// Follows the transport for the MIDI clock; a stop or a hush (by anyone) sweeps every
    /// note off.
    pub fn transport(&mut self, sub: &mut Subscriber<TransportState>) -> Result<(), BusError> {
        sub.drain(|t| {
            self.counts.received += 1;
            let Some(tempo) = tempo_of(&t) else {
                self.counts.invalid += 1;
                return;
            };
            self.pending.push(Incoming::Transport(tempo));
            let stopped = self.was_running == Some(true) && !tempo.running;
            let hushed = self.hushes.is_some_and(|h| h != t.hushes);
            if stopped || hushed {
                self.pending.push(Incoming::AllNotesOff { clear: true });
            }
            self.was_running = Some(tempo.running);
            self.hushes = Some(t.hushes);
        })
        .map(drop)
    }

    /// Empties `sub` unread, counting what nobody consumed.
    pub fn unconsumed<T: Topic>(&mut self, sub: &mut Subscriber<T>) -> Result<(), BusError> {
        self.counts.unconsumed += sub.drain(drop)? as u64;
        Ok(())
    }

    /// The once-a-second work: controllers held back by their rate limit, a fresh NTP
    /// reference every ten seconds.
    pub fn tick(&mut self, now: u64) {
        self.mapper.flush(now, &mut self.pending);
        if self.ntp_at.elapsed() > Duration::from_secs(10) {
            self.ntp = NtpClock::measure();
            self.ntp_at = Instant::now();
        }
    }

    /// Hands what the samples became to the MIDI thread (if there is one), printing
    /// controller changes with `--print`.
    pub fn hand_over(
        &mut self,
        mut midi: Option<&mut rtrb::Producer<Incoming>>,
        rt: &RtStats,
        now: u64,
    ) {
        if self.mapper.has_waiting() {
            self.mapper.flush(now, &mut self.pending);
        }
        for item in self.pending.drain(..) {
            if self.print
                && let Incoming::Cc { channel, cc, value } = item
            {
                println!("cc ch={} cc={cc} value={value}", channel + 1);
            }
            if let Some(tx) = midi.as_deref_mut() {
                push_to_midi(tx, item, rt, now, &mut self.counts);
            }
        }
    }
}

fn period(hz: f64) -> Option<Duration> {
    (hz > 0.0).then(|| Duration::from_secs_f64(1.0 / hz))
}
