//! What the router counts and reports in its status, and how it tells a drop (something was
//! lost while the MIDI side ran) from a note nobody could hear (no MIDI peer linked).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use khorus_bus::{Counter, StageKind, StageStatus, clock};

use crate::rt::{Incoming, RtStats};

/// Counters of the OSC side.
#[derive(Debug, Default)]
pub(crate) struct OscStats {
    pub out: AtomicU64,
    pub out_failed: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub forward_failed: AtomicU64,
}

/// Counters of the bus thread.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub received: u64,
    /// Samples read while nothing consumed them, emptied once a second instead of waking the
    /// router for each: signal frames with no MIDI peer linked and no OSC signal bundles;
    /// notes and curve points with no MIDI peer linked, no OSC target and no `--print`.
    pub unconsumed: u64,
    /// Samples missing from publishers' sequences, over every subscription.
    pub missed: u64,
    pub invalid: u64,
    /// Items refused by the full ring while the MIDI thread ran.
    pub ring_dropped: u64,
    /// Notes refused by the full ring while no cycle ran (no MIDI peer linked).
    pub unlinked: u64,
}

/// Hands `item` to the MIDI thread. A full ring while the MIDI thread runs is a drop; while
/// it does not (nothing linked, so nothing drains the ring) a note counts as unlinked, and
/// controller values and tempo, which are state superseded by the next value, are not counted.
pub(crate) fn push_to_midi(
    tx: &mut rtrb::Producer<Incoming>,
    item: Incoming,
    rt: &RtStats,
    now_ns: u64,
    counts: &mut Counts,
) {
    if tx.push(item).is_ok() {
        return;
    }
    if rt.linked_at(now_ns) {
        counts.ring_dropped += 1;
    } else if matches!(item, Incoming::Note { .. }) {
        counts.unlinked += 1;
    }
}

/// The router's status report.
pub(crate) fn status(
    rt: &RtStats,
    osc: &OscStats,
    c: &Counts,
    ok: u64,
    rejected: u64,
) -> StageStatus {
    let mut s = StageStatus::new(StageKind::Router);
    s.set(Counter::Received, c.received)
        .set(Counter::Unconsumed, c.unconsumed)
        .set(Counter::Missed, c.missed)
        .set(
            Counter::Dropped,
            c.ring_dropped + c.invalid + rt.dropped.load(Relaxed),
        )
        .set(Counter::Unlinked, c.unlinked + rt.unlinked.load(Relaxed))
        .set(Counter::Late, rt.late.load(Relaxed))
        .set(Counter::Xruns, rt.xruns.load(Relaxed))
        .set(Counter::Ticks, rt.callbacks.load(Relaxed))
        .set(Counter::MidiOut, rt.midi_out.load(Relaxed))
        .set(Counter::NotesOut, rt.notes_on.load(Relaxed))
        .set(Counter::ControlChanges, rt.ccs.load(Relaxed))
        .set(Counter::OscOut, osc.out.load(Relaxed))
        .set(Counter::OscIn, osc.accepted.load(Relaxed))
        .set(Counter::OscRejected, osc.rejected.load(Relaxed))
        .set(Counter::ForwardFailed, osc.forward_failed.load(Relaxed))
        .set(Counter::CommandsOk, ok)
        .set(Counter::CommandsRejected, rejected);
    s
}

/// The sweep on the way out: all-notes-off on every used channel, waiting at most `within`
/// until the MIDI thread has written it. Returns a warning for the user when it was not
/// written. No MIDI peer ever linked: nothing can hang, so nothing is sent or awaited; the
/// peer gone meanwhile: nobody would write it, so it is not awaited.
pub(crate) fn final_sweep(
    tx: &mut rtrb::Producer<Incoming>,
    rt: &RtStats,
    within: Duration,
) -> Option<String> {
    if !rt.ever_linked() {
        tracing::debug!("no MIDI peer was ever linked: no all-notes-off needed");
        return None;
    }
    let swept = rt.all_off.load(Relaxed);
    if tx.push(Incoming::AllNotesOff { clear: true }).is_err() {
        return Some("all-notes-off was not written: the MIDI queue is full".into());
    }
    let deadline = Instant::now() + within;
    while rt.all_off.load(Relaxed) == swept && Instant::now() < deadline {
        if !rt.linked_at(clock::now_ns()) {
            return Some(
                "all-notes-off was not written: the MIDI peer was unlinked (notes it still \
                 holds may hang)"
                    .into(),
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (rt.all_off.load(Relaxed) == swept).then(|| {
        format!(
            "all-notes-off was not written within {} s (is the graph running?)",
            within.as_secs_f64()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Incoming {
        Incoming::Note {
            t_ns: 1,
            dur_ns: 1,
            channel: 0,
            note: 60,
            velocity: 100,
        }
    }

    #[test]
    fn notes_refused_while_nothing_is_linked_count_as_unlinked_not_dropped() {
        let (mut tx, _rx) = rtrb::RingBuffer::new(1);
        let rt = RtStats::default();
        let mut c = Counts::default();
        let now = clock::now_ns();
        for _ in 0..3 {
            push_to_midi(&mut tx, note(), &rt, now, &mut c);
        }
        // Controller values are state: not a lost note.
        push_to_midi(
            &mut tx,
            Incoming::Cc {
                channel: 0,
                cc: 1,
                value: 2,
            },
            &rt,
            now,
            &mut c,
        );
        assert_eq!((c.unlinked, c.ring_dropped), (2, 0));
        let s = status(&rt, &OscStats::default(), &c, 0, 0);
        assert_eq!(s.get(Counter::Unlinked), Some(2));
        assert_eq!(s.get(Counter::Dropped), Some(0));
    }

    #[test]
    fn a_full_ring_while_the_midi_thread_runs_is_a_drop() {
        let (mut tx, _rx) = rtrb::RingBuffer::new(1);
        let rt = RtStats::default();
        let now = clock::now_ns();
        rt.last_cycle_ns.store(now, Relaxed);
        rt.unlinked.store(5, Relaxed);
        let mut c = Counts::default();
        push_to_midi(&mut tx, note(), &rt, now, &mut c);
        push_to_midi(&mut tx, note(), &rt, now, &mut c);
        assert_eq!((c.unlinked, c.ring_dropped), (0, 1));
        let s = status(&rt, &OscStats::default(), &c, 0, 0);
        assert_eq!(s.get(Counter::Dropped), Some(1));
        // The MIDI thread's own skipped notes.
        assert_eq!(s.get(Counter::Unlinked), Some(5));
    }

    #[test]
    fn a_router_never_linked_does_not_sweep_or_warn_on_exit() {
        let (mut tx, rx) = rtrb::RingBuffer::new(4);
        let rt = RtStats::default();
        assert_eq!(final_sweep(&mut tx, &rt, Duration::from_secs(3600)), None);
        assert_eq!(rx.slots(), 0, "nothing queued");
    }

    #[test]
    fn a_router_whose_peer_left_does_not_wait_for_the_sweep() {
        let (mut tx, rx) = rtrb::RingBuffer::new(4);
        let rt = RtStats::default();
        // The last cycle ran long ago.
        rt.last_cycle_ns.store(1, Relaxed);
        let warning = final_sweep(&mut tx, &rt, Duration::from_secs(3600));
        assert_eq!(
            warning.as_deref(),
            Some(
                "all-notes-off was not written: the MIDI peer was unlinked (notes it still holds \
                 may hang)"
            )
        );
        assert_eq!(
            rx.slots(),
            1,
            "the sweep is queued for a peer that links again"
        );
    }
}
