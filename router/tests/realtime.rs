//! The MIDI callback path never allocates: notes, overlapping pitches, controllers, clock
//! ticks, a hush, a full queue and a full buffer, all under the allocation detector.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use assert_no_alloc::assert_no_alloc;
use khorus_router::rt::{Cycle, Incoming, RtStats, Scheduler, Tempo};
use khorus_router::seq::{self, SeqWriter};

#[test]
fn the_midi_callback_never_allocates() {
    let (mut tx, rx) = rtrb::RingBuffer::new(4096);
    let stats = Arc::new(RtStats::default());
    let mut s = Scheduler::new(vec![rx], 512, 0b10_0000_0111, true, Arc::clone(&stats));
    let mut buf = vec![0u8; 1024];
    let mut t = 10_000_000_000i64;
    let step = 1024 * 1_000_000_000 / 48_000;
    tx.push(Incoming::Transport(Tempo {
        anchor_ns: t as u64,
        anchor_beat: 0.0,
        ns_per_beat: 500_000_000.0,
        running: true,
        ramp: None,
    }))
    .unwrap();
    let mut written = 0;
    for c in 0..400 {
        // Feed from "the bus thread" between cycles (allocation allowed there).
        if c % 2 == 0 {
            for k in 0..12u64 {
                let note = (40 + (k * 7 + c as u64) % 24) as u8;
                tx.push(Incoming::Note {
                    t_ns: (t + (k as i64 - 3) * 3_000_000) as u64,
                    dur_ns: 30_000_000 + k * 9_000_000,
                    channel: (k % 4) as u8,
                    note,
                    velocity: 100,
                })
                .ok();
            }
            tx.push(Incoming::Cc {
                channel: 0,
                cc: 20,
                value: (c % 128) as u8,
            })
            .ok();
        }
        if c == 100 {
            // A burst far ahead: more than the queue holds.
            for k in 0..300u64 {
                tx.push(Incoming::Note {
                    t_ns: (t + 60_000_000_000) as u64 + k,
                    dur_ns: 1_000_000,
                    channel: 5,
                    note: 60,
                    velocity: 1,
                })
                .unwrap();
            }
        }
        if c == 200 {
            tx.push(Incoming::AllNotesOff { clear: true }).unwrap();
        }
        // A small buffer now and then, so events are deferred.
        let len = if c % 7 == 0 { 96 } else { buf.len() };
        let used = assert_no_alloc(|| {
            let mut w = SeqWriter::new(&mut buf[..len]).unwrap();
            s.process(
                Cycle {
                    start_ns: t,
                    frames: 1024,
                    rate: 48_000,
                },
                &mut w,
            );
            w.len()
        });
        written += seq::read(&buf[..used]).unwrap().len();
        t += step;
    }
    assert!(stats.notes_on.load(Relaxed) > 1000);
    assert!(
        stats.notes_held.load(Relaxed) > 0,
        "overlaps were refcounted"
    );
    assert!(stats.clock_ticks.load(Relaxed) > 300);
    assert!(stats.dropped.load(Relaxed) > 0, "the queue filled");
    assert!(stats.deferred.load(Relaxed) > 0, "the buffer filled");
    assert_eq!(
        stats.all_off.load(Relaxed),
        3,
        "start-up, its repeat, the hush"
    );
    assert_eq!(written as u64, stats.midi_out.load(Relaxed));
}
