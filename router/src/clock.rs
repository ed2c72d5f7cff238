//! The MIDI clock as arithmetic on the composer's transport: where tick k (24 per quarter
//! note) falls on the monotonic clock, which tick comes next, and when Start and Stop are
//! due. The MIDI thread ([`crate::rt`]) asks it what to write; it never writes itself.

use khorus_bus::TransportState;

/// The composer's transport, as the MIDI clock needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tempo {
    /// Monotonic time of the anchor, ns.
    pub anchor_ns: u64,
    /// Beat (quarter note) at the anchor.
    pub anchor_beat: f64,
    /// Length of a beat, ns (> 0).
    pub ns_per_beat: f64,
    /// Whether the transport runs.
    pub running: bool,
}

impl Tempo {
    fn beat_at(&self, t_ns: i64) -> f64 {
        self.anchor_beat + (t_ns as f64 - self.anchor_ns as f64) / self.ns_per_beat
    }

    fn time_of_tick(&self, tick: i64) -> i64 {
        (self.anchor_ns as f64 + (tick as f64 / 24.0 - self.anchor_beat) * self.ns_per_beat).round()
            as i64
    }
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

/// Clock state: the transport followed, the next tick, pending Start/Stop.
#[derive(Debug, Default)]
pub struct MidiClock {
    enabled: bool,
    tempo: Option<Tempo>,
    next_tick: Option<i64>,
    last_tick_ns: i64,
    start_due: bool,
    stop_due: bool,
}

impl MidiClock {
    /// A clock that ticks (`enabled`) or stays silent.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// Follows a transport update: Start when it starts running, Stop when it stops; the
    /// next tick is re-derived from the new tempo at the next cycle.
    pub fn follow(&mut self, tempo: Tempo) {
        if !(self.enabled && tempo.ns_per_beat.is_finite() && tempo.ns_per_beat > 0.0) {
            return;
        }
        let was_running = self.tempo.is_some_and(|t| t.running);
        if tempo.running && !was_running {
            self.start_due = true;
        } else if !tempo.running && was_running {
            self.stop_due = true;
        }
        if tempo.running {
            self.next_tick = None;
        }
        self.tempo = Some(tempo);
    }

    /// Whether a Stop waits to be written.
    pub fn stop_due(&self) -> bool {
        self.stop_due
    }

    /// The Stop was written.
    pub fn stop_written(&mut self) {
        self.stop_due = false;
    }

    /// Whether a Start must precede the next tick.
    pub fn start_due(&self) -> bool {
        self.start_due
    }

    /// At a cycle starting at `start_ns`: settles which tick comes next if a transport
    /// update left it open — the first at or after the cycle, never one already written.
    pub fn prepare(&mut self, start_ns: i64) {
        if let Some(t) = self.tempo
            && t.running
            && self.next_tick.is_none()
        {
            let mut k = (t.beat_at(start_ns) * 24.0).ceil() as i64;
            while t.time_of_tick(k) <= self.last_tick_ns {
                k += 1;
            }
            self.next_tick = Some(k);
        }
    }

    /// When the next tick falls, if the clock runs.
    pub fn next_tick_ns(&self) -> Option<i64> {
        let t = self.tempo?;
        if !(self.enabled && t.running) {
            return None;
        }
        Some(t.time_of_tick(self.next_tick?))
    }

    /// The next tick (and any Start before it) was written at `t_ns`.
    pub fn ticked(&mut self, t_ns: i64) {
        self.start_due = false;
        self.next_tick = self.next_tick.map(|k| k + 1);
        self.last_tick_ns = t_ns;
    }
}
