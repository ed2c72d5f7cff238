//! What the MIDI callback does, as a plain function: take what arrived on the lock-free rings,
//! keep it in a preallocated time-ordered queue, and write every event that falls in this
//! cycle at its exact frame. Overlapping notes of one pitch are reference-counted so an early
//! note-off never cuts a later note; all-notes-off sweeps every used channel; the MIDI clock
//! follows the composer's transport. Never allocates, locks, logs or blocks — the
//! allocation-detector test runs exactly this code.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::clock::MidiClock;
pub use crate::clock::Tempo;
use crate::seq::SeqWriter;

/// MIDI status bytes and controllers used here.
pub mod msg {
    /// Note off (low nibble: channel).
    pub const NOTE_OFF: u8 = 0x80;
    /// Note on.
    pub const NOTE_ON: u8 = 0x90;
    /// Control change.
    pub const CONTROL: u8 = 0xB0;
    /// Controller 123: all notes off.
    pub const ALL_NOTES_OFF: u8 = 123;
    /// Timing clock (24 per quarter note).
    pub const CLOCK: u8 = 0xF8;
    /// Start.
    pub const START: u8 = 0xFA;
    /// Stop.
    pub const STOP: u8 = 0xFC;
}

/// When the start-up sweep is repeated, after the first cycle.
const RESWEEP_NS: i64 = 200_000_000;

/// "No value waiting" in the controller table.
const NO_CC: u8 = 0xFF;

/// What the bus and OSC threads hand to the MIDI thread. Channels are 0-based here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incoming {
    /// A note: on at `t_ns`, off `dur_ns` later.
    Note {
        /// Onset, monotonic ns.
        t_ns: u64,
        /// Held for, ns.
        dur_ns: u64,
        /// Channel 0 ..= 15.
        channel: u8,
        /// Note number 0 ..= 127.
        note: u8,
        /// Velocity 1 ..= 127.
        velocity: u8,
    },
    /// A control change, sent as soon as possible.
    Cc {
        /// Channel 0 ..= 15.
        channel: u8,
        /// Controller 0 ..= 127.
        cc: u8,
        /// Value 0 ..= 127.
        value: u8,
    },
    /// The transport changed (MIDI clock).
    Transport(Tempo),
    /// All notes off on every used channel, as soon as possible; `clear` also forgets every
    /// note still queued (hush, stop).
    AllNotesOff {
        /// Drop queued notes too.
        clear: bool,
    },
}

/// Counters written by the MIDI thread (relaxed atomics) and read by the status reporter.
#[derive(Debug, Default)]
pub struct RtStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Callbacks without a buffer to fill.
    pub xruns: AtomicU64,
    /// MIDI messages written.
    pub midi_out: AtomicU64,
    /// Note-ons written.
    pub notes_on: AtomicU64,
    /// Note-offs written.
    pub notes_off: AtomicU64,
    /// Note-offs held back because another note of the same pitch still sounds.
    pub notes_held: AtomicU64,
    /// Notes written after their time (at the cycle's first frame).
    pub late: AtomicU64,
    /// Control changes written.
    pub ccs: AtomicU64,
    /// Clock ticks written.
    pub clock_ticks: AtomicU64,
    /// All-notes-off sweeps written.
    pub all_off: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Notes that ended while no cycle ran (no MIDI peer was linked), skipped when they
    /// reached the MIDI thread. Notes already over that ended while cycles ran (they arrived
    /// too late) count as `dropped`.
    pub unlinked: AtomicU64,
    /// When the last cycle started, monotonic ns (0: no cycle ever ran). PipeWire runs the
    /// callback only while the port is linked, so this tells the bus thread whether anyone
    /// drains the ring.
    pub last_cycle_ns: AtomicU64,
    /// Controller values replaced by a newer one before they were written.
    pub coalesced: AtomicU64,
    /// Events deferred to a later cycle because the buffer was full.
    pub deferred: AtomicU64,
}

/// Cycles further apart than this mean the MIDI thread stopped running (nothing linked).
pub const UNLINKED_AFTER_NS: u64 = 250_000_000;

impl RtStats {
    /// Whether a cycle ever ran, that is whether a MIDI peer was ever linked.
    pub fn ever_linked(&self) -> bool {
        self.last_cycle_ns.load(Relaxed) != 0
    }

    /// Whether a cycle ran within [`UNLINKED_AFTER_NS`] of `now_ns`: someone drains the ring.
    pub fn linked_at(&self, now_ns: u64) -> bool {
        let last = self.last_cycle_ns.load(Relaxed);
        last != 0 && now_ns.saturating_sub(last) <= UNLINKED_AFTER_NS
    }
}

/// Where a cycle sits on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cycle {
    /// When the cycle's first frame is heard, monotonic ns.
    pub start_ns: i64,
    /// Frames in the cycle.
    pub frames: u32,
    /// Frames per second.
    pub rate: u32,
}

impl Cycle {
    fn end_ns(&self) -> i64 {
        self.start_ns + self.frames as i64 * 1_000_000_000 / self.rate.max(1) as i64
    }

    /// Frame offset of `t_ns` in this cycle, rounded to the nearest frame (negative: late).
    fn offset(&self, t_ns: i64) -> i64 {
        khorus_pw::frame_offset(t_ns as i128, self.start_ns, self.rate)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    // Order matters at equal times: sweeps first, then note-offs (a note ending where the
    // next of the same pitch starts releases first), then note-ons.
    AllOff,
    NoteOff { channel: u8, note: u8 },
    NoteOn { channel: u8, note: u8, velocity: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    t_ns: i64,
    order: u8,
    seq: u64,
    kind: Kind,
}

/// The MIDI thread's state.
#[derive(Debug)]
pub struct Scheduler {
    rings: Vec<rtrb::Consumer<Incoming>>,
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    sounding: Box<[[u16; 128]; 16]>,
    used: u16,
    /// Controller values waiting to be written (`NO_CC`: none): a controller is state, so
    /// only its latest value matters and a backlog never floods the port.
    controls: Box<[[u8; 128]; 16]>,
    controls_waiting: usize,
    clock: MidiClock,
    /// Where the previous cycle ended (`i64::MIN`: none ran yet).
    last_end_ns: i64,
    stats: Arc<RtStats>,
}

impl Scheduler {
    /// A scheduler reading `rings`, holding at most `capacity` queued events, sweeping
    /// `channels` (bit n = channel n, 0-based) with all-notes-off in its first cycle (a
    /// previous router may have left notes hanging), with the MIDI clock on or off.
    pub fn new(
        rings: Vec<rtrb::Consumer<Incoming>>,
        capacity: usize,
        channels: u16,
        midi_clock: bool,
        stats: Arc<RtStats>,
    ) -> Self {
        let mut s = Self {
            rings,
            queue: BinaryHeap::with_capacity(capacity.max(4)),
            seq: 0,
            sounding: Box::new([[0; 128]; 16]),
            used: channels,
            controls: Box::new([[NO_CC; 128]; 16]),
            controls_waiting: 0,
            clock: MidiClock::new(midi_clock),
            last_end_ns: i64::MIN,
            stats,
        };
        s.enqueue(i64::MIN, Kind::AllOff);
        s
    }

    /// Counts a callback that had no buffer to fill.
    pub fn count_xrun(&self) {
        self.stats.xruns.fetch_add(1, Relaxed);
    }

    /// Events waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn room(&self, n: usize) -> bool {
        self.queue.len() + n <= self.queue.capacity()
    }

    fn enqueue(&mut self, t_ns: i64, kind: Kind) {
        let order = match kind {
            Kind::AllOff => 0,
            Kind::NoteOff { .. } => 1,
            Kind::NoteOn { .. } => 2,
        };
        self.seq += 1;
        self.queue.push(Reverse(Pending {
            t_ns,
            order,
            seq: self.seq,
            kind,
        }));
    }

    fn accept(&mut self, item: Incoming, cycle: Cycle) {
        match item {
            Incoming::Note {
                t_ns,
                dur_ns,
                channel,
                note,
                velocity,
            } => {
                let (channel, note) = (channel & 15, note & 127);
                let on = t_ns.min(i64::MAX as u64 / 2) as i64;
                let off = on.saturating_add(dur_ns.min(i64::MAX as u64 / 2) as i64);
                if off < cycle.start_ns {
                    // Over before this cycle: playing it now would be a burst of stale notes.
                    // Ended after the previous cycle, so while no cycle ran: it waited in the
                    // ring while nothing was linked. Otherwise it simply came too late.
                    if off >= self.last_end_ns {
                        self.stats.unlinked.fetch_add(1, Relaxed);
                    } else {
                        self.stats.dropped.fetch_add(1, Relaxed);
                    }
                    return;
                }
                if !self.room(2) {
                    self.stats.dropped.fetch_add(1, Relaxed);
                    return;
                }
                self.enqueue(
                    on,
                    Kind::NoteOn {
                        channel,
                        note,
                        velocity: velocity.clamp(1, 127),
                    },
                );
                self.enqueue(off, Kind::NoteOff { channel, note });
            }
            Incoming::Cc { channel, cc, value } => {
                let slot = &mut self.controls[(channel & 15) as usize][(cc & 127) as usize];
                if *slot == NO_CC {
                    self.controls_waiting += 1;
                } else {
                    self.stats.coalesced.fetch_add(1, Relaxed);
                }
                *slot = value & 127;
            }
            Incoming::Transport(tempo) => self.clock.follow(tempo),
            Incoming::AllNotesOff { clear } => {
                if clear {
                    self.queue.clear();
                }
                // A sweep always finds room: it is what frees the queue.
                if !self.room(1) {
                    self.queue.clear();
                }
                self.enqueue(i64::MIN, Kind::AllOff);
            }
        }
    }

    /// Writes this cycle's events into `out`.
    pub fn process(&mut self, cycle: Cycle, out: &mut SeqWriter<'_>) {
        if self.stats.callbacks.fetch_add(1, Relaxed) == 0 {
            // The first cycles after a link may run before the peer does; sweep once more a
            // moment later so the start-up sweep reaches it (all-notes-off is idempotent).
            self.enqueue(cycle.start_ns.saturating_add(RESWEEP_NS), Kind::AllOff);
        }
        self.stats
            .last_cycle_ns
            .store(cycle.start_ns.max(1) as u64, Relaxed);
        for i in 0..self.rings.len() {
            while let Ok(item) = self.rings[i].pop() {
                self.accept(item, cycle);
            }
        }
        let end = cycle.end_ns();
        self.last_end_ns = end;
        let last = cycle.frames.saturating_sub(1) as i64;
        if self.clock.stop_due() && out.fits(1) {
            self.clock.stop_written();
            out.push(0, &[msg::STOP]);
            self.stats.midi_out.fetch_add(1, Relaxed);
        }
        self.clock.prepare(cycle.start_ns);
        self.write_controls(out);
        while let Some(Reverse(next)) = self.queue.peek().copied() {
            // Clock ticks interleave with events in time order.
            if let Some(tick_ns) = self.clock.next_tick_ns()
                && tick_ns <= next.t_ns
            {
                if !self.write_tick(cycle, out) {
                    break;
                }
                continue;
            }
            if next.t_ns >= end {
                break;
            }
            let offset = cycle.offset(next.t_ns).clamp(0, last) as u32;
            let events = match next.kind {
                Kind::AllOff => (self.used.count_ones() as usize).max(1),
                _ => 1,
            };
            if !out.fits_many(events, 3) {
                self.stats.deferred.fetch_add(1, Relaxed);
                break;
            }
            self.queue.pop();
            self.emit(next, cycle, offset, out);
        }
        while self.write_tick(cycle, out) {}
    }

    fn emit(&mut self, p: Pending, cycle: Cycle, offset: u32, out: &mut SeqWriter<'_>) {
        let s = &self.stats;
        match p.kind {
            Kind::NoteOn {
                channel,
                note,
                velocity,
            } => {
                if cycle.offset(p.t_ns) < 0 {
                    s.late.fetch_add(1, Relaxed);
                }
                let n = &mut self.sounding[channel as usize][note as usize];
                *n = n.saturating_add(1);
                self.used |= 1 << channel;
                out.push(offset, &[msg::NOTE_ON | channel, note, velocity]);
                s.notes_on.fetch_add(1, Relaxed);
                s.midi_out.fetch_add(1, Relaxed);
            }
            Kind::NoteOff { channel, note } => {
                let n = &mut self.sounding[channel as usize][note as usize];
                match *n {
                    // Already silenced by a sweep.
                    0 => {}
                    1 => {
                        *n = 0;
                        out.push(offset, &[msg::NOTE_OFF | channel, note, 0]);
                        s.notes_off.fetch_add(1, Relaxed);
                        s.midi_out.fetch_add(1, Relaxed);
                    }
                    _ => {
                        *n -= 1;
                        s.notes_held.fetch_add(1, Relaxed);
                    }
                }
            }
            Kind::AllOff => {
                let used = if self.used == 0 { 1 } else { self.used };
                for ch in 0..16u8 {
                    if used & (1 << ch) != 0 {
                        out.push(offset, &[msg::CONTROL | ch, msg::ALL_NOTES_OFF, 0]);
                        s.midi_out.fetch_add(1, Relaxed);
                    }
                }
                for row in self.sounding.iter_mut() {
                    row.fill(0);
                }
                s.all_off.fetch_add(1, Relaxed);
            }
        }
    }

    /// Writes waiting controller values at the cycle's first frame (as many as fit; the rest
    /// wait for the next cycle).
    fn write_controls(&mut self, out: &mut SeqWriter<'_>) {
        if self.controls_waiting == 0 {
            return;
        }
        for ch in 0..16u8 {
            for cc in 0..128u8 {
                let slot = &mut self.controls[ch as usize][cc as usize];
                if *slot == NO_CC {
                    continue;
                }
                if !out.push(0, &[msg::CONTROL | ch, cc, *slot]) {
                    self.stats.deferred.fetch_add(1, Relaxed);
                    return;
                }
                *slot = NO_CC;
                self.controls_waiting -= 1;
                self.stats.ccs.fetch_add(1, Relaxed);
                self.stats.midi_out.fetch_add(1, Relaxed);
            }
        }
    }

    /// Writes the next clock tick if it falls in this cycle; false when there is none.
    fn write_tick(&mut self, cycle: Cycle, out: &mut SeqWriter<'_>) -> bool {
        let Some(t_ns) = self.clock.next_tick_ns() else {
            return false;
        };
        if t_ns >= cycle.end_ns() {
            return false;
        }
        let start = self.clock.start_due();
        if !out.fits_many(if start { 2 } else { 1 }, 1) {
            self.stats.deferred.fetch_add(1, Relaxed);
            return false;
        }
        let offset = cycle
            .offset(t_ns)
            .clamp(0, cycle.frames.saturating_sub(1) as i64) as u32;
        if start {
            out.push(offset, &[msg::START]);
            self.stats.midi_out.fetch_add(1, Relaxed);
        }
        out.push(offset, &[msg::CLOCK]);
        self.clock.ticked(t_ns);
        self.stats.clock_ticks.fetch_add(1, Relaxed);
        self.stats.midi_out.fetch_add(1, Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq;

    const RATE: u32 = 48_000;

    struct Rig {
        tx: rtrb::Producer<Incoming>,
        s: Scheduler,
        stats: Arc<RtStats>,
        t: i64,
    }

    fn rig(channels: u16, clock: bool) -> Rig {
        let (tx, rx) = rtrb::RingBuffer::new(64);
        let stats = Arc::new(RtStats::default());
        let s = Scheduler::new(vec![rx], 256, channels, clock, Arc::clone(&stats));
        Rig {
            tx,
            s,
            stats,
            t: 100_000_000_000,
        }
    }

    /// A rig past its start-up sweeps (the first cycle's and the repeat 200 ms later).
    fn started(channels: u16, clock: bool) -> Rig {
        let mut r = rig(channels, clock);
        for _ in 0..12 {
            cycle(&mut r);
        }
        r
    }

    /// Runs one 1024-frame cycle and returns (absolute frame, bytes) of what it wrote.
    fn cycle(r: &mut Rig) -> Vec<(i64, Vec<u8>)> {
        let mut buf = vec![0u8; 4096];
        let mut w = SeqWriter::new(&mut buf).unwrap();
        let c = Cycle {
            start_ns: r.t,
            frames: 1024,
            rate: RATE,
        };
        r.s.process(c, &mut w);
        let len = w.len();
        let base = (r.t as i128 * RATE as i128 / 1_000_000_000) as i64;
        r.t = c.end_ns();
        seq::read(&buf[..len])
            .unwrap()
            .into_iter()
            .map(|e| (base + e.offset as i64, e.bytes))
            .collect()
    }

    fn note(t_ns: i64, dur_ms: u64, channel: u8, note: u8) -> Incoming {
        Incoming::Note {
            t_ns: t_ns as u64,
            dur_ns: dur_ms * 1_000_000,
            channel,
            note,
            velocity: 100,
        }
    }

    #[test]
    fn the_first_cycle_sweeps_the_configured_channels_and_again_200_ms_later() {
        let mut r = rig(0b10_0000_0111, false);
        let first = r.t;
        let out = cycle(&mut r);
        let chans: Vec<u8> = out.iter().map(|(_, b)| b[0] & 15).collect();
        assert_eq!(chans, vec![0, 1, 2, 9]);
        assert!(out.iter().all(|(_, b)| b[1] == 123));
        assert!(cycle(&mut r).is_empty());
        let mut again = Vec::new();
        for _ in 0..20 {
            again.extend(cycle(&mut r));
        }
        assert_eq!(again.len(), 4, "{again:?}");
        let at = (first as i128 + 200_000_000) * RATE as i128 / 1_000_000_000;
        assert!(
            again
                .iter()
                .all(|(f, b)| (*f as i128 - at).abs() <= 1 && b[1] == 123),
            "{again:?} at {at}"
        );
    }

    #[test]
    fn notes_land_on_their_exact_frames() {
        let mut r = started(1, false);
        let t0 = r.t + 10_000_000; // 10 ms into the future: frame +480
        r.tx.push(note(t0, 125, 0, 60)).unwrap();
        r.tx.push(note(t0 + 125_000_000, 125, 9, 36)).unwrap();
        let mut all = Vec::new();
        for _ in 0..20 {
            all.extend(cycle(&mut r));
        }
        let base = (t0 as i128 * RATE as i128 / 1_000_000_000) as i64;
        let got: Vec<(i64, u8)> = all.iter().map(|(f, b)| (f - base, b[0])).collect();
        assert_eq!(
            got,
            vec![(0, 0x90), (6000, 0x80), (6000, 0x99), (12000, 0x89)]
        );
        assert_eq!(r.stats.late.load(Relaxed), 0);
    }

    #[test]
    fn overlapping_notes_of_one_pitch_are_reference_counted() {
        let mut r = started(1, false);
        let t0 = r.t + 1_000_000;
        // A long note and a short one of the same pitch inside it.
        r.tx.push(note(t0, 500, 0, 64)).unwrap();
        r.tx.push(note(t0 + 100_000_000, 100, 0, 64)).unwrap();
        let mut all = Vec::new();
        for _ in 0..40 {
            all.extend(cycle(&mut r));
        }
        let kinds: Vec<u8> = all.iter().map(|(_, b)| b[0]).collect();
        // on, on (retrigger), one off — at the end of the long note, not the short one.
        assert_eq!(kinds, vec![0x90, 0x90, 0x80]);
        let base = (t0 as i128 * RATE as i128 / 1_000_000_000) as i64;
        assert_eq!(all[2].0 - base, 24_000);
        assert_eq!(r.stats.notes_held.load(Relaxed), 1);
    }

    #[test]
    fn late_notes_play_at_the_first_frame_and_are_counted() {
        let mut r = started(1, false);
        let past = r.t - 50_000_000;
        r.tx.push(note(past, 200, 0, 60)).unwrap();
        let out = cycle(&mut r);
        let base = (r.t as i128 * RATE as i128 / 1_000_000_000) as i64 - 1024;
        assert_eq!(out, vec![(base, vec![0x90, 60, 100])]);
        assert_eq!(r.stats.late.load(Relaxed), 1);
    }

    #[test]
    fn hush_sweeps_used_channels_and_forgets_queued_notes() {
        let mut r = started(0, false);
        let t0 = r.t;
        r.tx.push(note(t0, 1000, 1, 40)).unwrap();
        r.tx.push(note(t0 + 500_000_000, 100, 2, 50)).unwrap();
        cycle(&mut r);
        r.tx.push(Incoming::AllNotesOff { clear: true }).unwrap();
        let out = cycle(&mut r);
        let sweep: Vec<u8> = out.iter().map(|(_, b)| b[0] & 15).collect();
        assert_eq!(sweep, vec![1], "only the used channel: {out:?}");
        let mut rest = Vec::new();
        for _ in 0..60 {
            rest.extend(cycle(&mut r));
        }
        assert!(rest.is_empty(), "nothing after the hush: {rest:?}");
        assert_eq!(r.s.queued(), 0);
    }

    #[test]
    fn notes_over_before_the_cycle_are_skipped_not_burst() {
        let mut r = started(1, false);
        // Nothing linked for 6 s: no cycle ran.
        r.t += 6_000_000_000;
        // Waited in the ring meanwhile: over long ago.
        for i in 0..50 {
            r.tx.push(note(r.t - 5_000_000_000 + i * 10_000_000, 50, 0, 60))
                .unwrap();
        }
        // Started before this cycle but still sounding: played late.
        r.tx.push(note(r.t - 10_000_000, 500, 0, 62)).unwrap();
        let out = cycle(&mut r);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].1, vec![0x90, 62, 100]);
        assert_eq!(r.stats.unlinked.load(Relaxed), 50);
        assert_eq!(r.stats.dropped.load(Relaxed), 0);
        assert_eq!(r.stats.late.load(Relaxed), 1);
    }

    #[test]
    fn notes_that_ended_while_cycles_ran_are_dropped_not_unlinked() {
        let mut r = started(1, false);
        // Cycles ran all along: this note arrived after it was over.
        r.tx.push(note(r.t - 100_000_000, 50, 0, 60)).unwrap();
        assert!(cycle(&mut r).is_empty());
        assert_eq!(r.stats.dropped.load(Relaxed), 1);
        assert_eq!(r.stats.unlinked.load(Relaxed), 0);
    }

    #[test]
    fn the_stats_say_whether_cycles_run() {
        let mut r = rig(1, false);
        assert!(!r.stats.ever_linked());
        assert!(!r.stats.linked_at(r.t as u64));
        cycle(&mut r);
        let last = r.t as u64 - 1024 * 1_000_000_000 / RATE as u64;
        assert!(r.stats.ever_linked());
        assert!(r.stats.linked_at(last + UNLINKED_AFTER_NS));
        assert!(!r.stats.linked_at(last + UNLINKED_AFTER_NS + 1));
    }

    #[test]
    fn controller_values_coalesce_to_the_latest() {
        let mut r = started(1, false);
        for v in 0..50 {
            r.tx.push(Incoming::Cc {
                channel: 0,
                cc: 20,
                value: v,
            })
            .unwrap();
        }
        r.tx.push(Incoming::Cc {
            channel: 1,
            cc: 21,
            value: 7,
        })
        .unwrap();
        let out = cycle(&mut r);
        let bytes: Vec<Vec<u8>> = out.into_iter().map(|(_, b)| b).collect();
        assert_eq!(bytes, vec![vec![0xB0, 20, 49], vec![0xB1, 21, 7]]);
        assert_eq!(r.stats.coalesced.load(Relaxed), 49);
        assert!(cycle(&mut r).is_empty());
    }

    #[test]
    fn a_full_queue_drops_whole_notes_and_counts_them() {
        let (mut tx, rx) = rtrb::RingBuffer::new(64);
        let stats = Arc::new(RtStats::default());
        let mut s = Scheduler::new(vec![rx], 5, 0, false, Arc::clone(&stats));
        for i in 0..4 {
            tx.push(note(5_000_000_000 + i, 10, 0, 60)).unwrap();
        }
        let mut buf = [0u8; 512];
        let mut w = SeqWriter::new(&mut buf).unwrap();
        s.process(
            Cycle {
                start_ns: 0,
                frames: 64,
                rate: RATE,
            },
            &mut w,
        );
        // 5 slots: the start-up sweep and its repeat hold two while the ring is read, so one
        // note (two slots) fits and three are dropped; the first sweep then leaves.
        assert_eq!(stats.dropped.load(Relaxed), 3);
        assert_eq!(s.queued(), 3);
    }

    #[test]
    fn the_clock_ticks_24_per_beat_with_start_and_stop() {
        let mut r = started(0, true);
        // 120 bpm: a beat is 500 ms, a tick 20 833 333 ns = 1000 frames.
        let anchor = r.t + 1_000_000;
        let tempo = Tempo {
            anchor_ns: anchor as u64,
            anchor_beat: 0.0,
            ns_per_beat: 500_000_000.0,
            running: true,
            ramp: None,
        };
        r.tx.push(Incoming::Transport(tempo)).unwrap();
        let mut all = Vec::new();
        for _ in 0..47 {
            all.extend(cycle(&mut r));
        }
        assert_eq!(all[0].1, vec![msg::START]);
        let ticks: Vec<i64> = all
            .iter()
            .filter(|(_, b)| b[0] == msg::CLOCK)
            .map(|(f, _)| *f)
            .collect();
        assert!(ticks.len() >= 47, "{}", ticks.len());
        for w in ticks.windows(2) {
            assert!((w[1] - w[0] - 1000).abs() <= 1, "{w:?}");
        }
        r.tx.push(Incoming::Transport(Tempo {
            running: false,
            ..tempo
        }))
        .unwrap();
        let out = cycle(&mut r);
        assert_eq!(out[0].1, vec![msg::STOP]);
        assert!(out.iter().all(|(_, b)| b[0] != msg::CLOCK));
    }
}
