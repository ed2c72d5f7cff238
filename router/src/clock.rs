//! The MIDI clock as arithmetic on the composer's transport: where tick k (24 per quarter
//! note) falls on the monotonic clock, which tick comes next, and when Start and Stop are
//! due. The MIDI thread ([`crate::rt`]) asks it what to write; it never writes itself.

use khorus_bus::TransportState;
use khorus_bus::services::transport::{ramp_position, ramp_seconds};

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
    /// A tempo ramp from the anchor: its length in beats, and the length of a beat at its
    /// end, ns.
    pub ramp: Option<(f64, f64)>,
}

impl Tempo {
    fn beat_at(&self, t_ns: i64) -> f64 {
        let dt = t_ns as f64 - self.anchor_ns as f64;
        match self.ramp {
            Some((span, end)) if dt > 0.0 => {
                let (r0, r1) = (1e9 / self.ns_per_beat, 1e9 / end);
                self.anchor_beat + ramp_position(r0, r1, span, dt * 1e-9)
            }
            _ => self.anchor_beat + dt / self.ns_per_beat,
        }
    }

    fn time_of_tick(&self, tick: i64) -> i64 {
        let x = tick as f64 / 24.0 - self.anchor_beat;
        let ns = match self.ramp {
            Some((span, end)) if x > 0.0 => {
                let (r0, r1) = (1e9 / self.ns_per_beat, 1e9 / end);
                ramp_seconds(r0, r1, span, x) * 1e9
            }
            _ => x * self.ns_per_beat,
        };
        (self.anchor_ns as f64 + ns).round() as i64
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
        ramp: t
            .ramp()
            .map(|(span, cps_end)| (span * bpc, 1e9 / (cps_end * bpc))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn during_a_tempo_ramp_the_ticks_speed_up_with_the_tempo_of_each_beat() {
        // 120 -> 140 bpm over 8 cycles of 4 beats, from cycle 2 at t = 1 s.
        let t = TransportState {
            anchor_ns: 1_000_000_000,
            anchor_cycle_num: 2,
            anchor_cycle_den: 1,
            cps_num: 1,
            cps_den: 2,
            beats_per_cycle: 4,
            running: 1,
            ramp_end_num: 10,
            ramp_end_den: 1,
            ramp_cps_num: 7,
            ramp_cps_den: 12,
            ..TransportState::default()
        };
        let tempo = tempo_of(&t).unwrap();
        let tick = |k: i64| tempo.time_of_tick(k);
        let first = 8 * 24;
        assert_eq!(tick(first), 1_000_000_000, "the ramp starts at the anchor");
        // A tick lasts 1/24 beat at the tempo of where it is.
        let bpm_near = |k: i64| 60e9 / (24.0 * (tick(k + 1) - tick(k)) as f64);
        assert!((bpm_near(first) - 120.0).abs() < 0.1, "{}", bpm_near(first));
        assert!((bpm_near(first + 16 * 24) - 130.0).abs() < 0.1);
        assert!(
            (bpm_near(first + 40 * 24) - 140.0).abs() < 0.01,
            "after it: 140"
        );
        for k in (first..first + 40 * 24).step_by(7) {
            assert!(tick(k + 1) > tick(k));
            let back = tempo.beat_at(tick(k)) * 24.0;
            assert!((back - k as f64).abs() < 1e-3, "tick {k}: {back}");
        }
    }
}
