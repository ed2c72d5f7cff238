//! The scheduler against the rational schedule: 10 000 cycles at 137 bpm to the nanosecond,
//! tempo changes that keep the phase, slot changes on cycle boundaries, late events counted.

use khorus_bus::Role;
use khorus_bus::commands::composer::Target;
use khorus_composer::controls::to_notes;
use khorus_composer::levels::Signals;
use khorus_composer::mini;
use khorus_composer::scheduler::{Scheduler, Voice};
use khorus_composer::time::{Q, q};
use khorus_composer::transport::Transport;

const START: u64 = 5_000_000_000;
const LOOKAHEAD: u64 = 50_000_000;

fn voice(src: &str) -> Voice {
    Voice {
        pattern: to_notes(mini::parse(src).unwrap(), None),
        target: Target::Notes {
            node: 0,
            role: Role::Melody,
            channel: None,
        },
    }
}

/// A deterministic irregular tick: 1 ms to ~1.3 s.
fn jitter(i: u64) -> u64 {
    let x = i
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    1_000_000 + (x >> 33) % 1_300_000_000
}

#[test]
fn ten_thousand_cycles_at_137_bpm_match_the_rational_schedule_to_the_ns() {
    let transport = Transport::new(Q::int(137), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4 e4 g4 c5")), Q::ONE).unwrap();
    let signals = Signals::default();
    let mut notes = Vec::new();
    let mut now = START;
    let mut i = 0;
    while s.horizon() < Q::int(10_000) {
        notes.extend(s.advance(now, &signals).unwrap().notes);
        now += jitter(i);
        i += 1;
    }
    let notes: Vec<_> = notes.into_iter().take(40_000).collect();
    assert_eq!(notes.len(), 40_000);
    for (k, n) in notes.iter().enumerate() {
        // Cycle k/4 at 137/240 cycles per second: START + k/4 · 240/137 s, rounded half up.
        let num = k as i128 * 240 * 1_000_000_000;
        let den = 4 * 137i128;
        let expected = START as i128 + (2 * num + den) / (2 * den);
        assert_eq!(n.t_ns as i128, expected, "event {k}");
    }
}

#[test]
fn tempo_change_mid_cycle_continues_from_the_current_phase() {
    let transport = Transport::new(Q::int(120), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4*8")), Q::ONE).unwrap();
    let signals = Signals::default();
    // Run to the middle of cycle 1 (120 bpm: 2 s per cycle).
    let mut notes = s.advance(START + 3_000_000_000, &signals).unwrap().notes;
    let h = s.horizon();
    assert!(h > Q::ONE && h < Q::int(2), "horizon {h}");
    let h_ns = s.transport().ns_at(h).unwrap();
    let at = s.set_cps(Q::ONE).unwrap();
    assert_eq!(at, h);
    let mut now = START + 3_000_000_000;
    while s.horizon() < Q::int(4) {
        now += 10_000_000;
        notes.extend(s.advance(now, &signals).unwrap().notes);
    }
    // No event lost or replayed: exactly one per eighth, in order.
    let eighths: Vec<_> = notes.iter().map(|n| n.t_ns).collect();
    assert!(eighths.windows(2).all(|w| w[0] < w[1]));
    let before: Vec<_> = eighths.iter().filter(|&&t| t < h_ns).collect();
    let after: Vec<_> = eighths.iter().filter(|&&t| t >= h_ns).collect();
    // Old tempo: eighths 250 ms apart; new tempo (1 cps): 125 ms apart, phase carried on.
    assert!(before.windows(2).all(|w| w[1] - w[0] == 250_000_000));
    assert!(after.windows(2).all(|w| w[1] - w[0] == 125_000_000));
    let first_after = (h * Q::int(8)).unwrap().ceil();
    let offset = ((Q::new(first_after, 8).unwrap() - h).unwrap() * Q::int(1_000_000_000)).unwrap();
    let expect = h_ns + (offset + q(1, 2)).unwrap().floor() as u64;
    assert_eq!(*after[0], expect);
    assert_eq!(
        before.len() + after.len(),
        (s.horizon() * Q::int(8)).unwrap().ceil() as usize
    );
}

#[test]
fn slot_change_waits_for_the_cycle_boundary() {
    let transport = Transport::new(Q::int(120), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4*4")), Q::ONE).unwrap();
    let signals = Signals::default();
    let mut notes = s.advance(START + 1_000_000_000, &signals).unwrap().notes;
    assert_eq!(
        s.set_slot("m", Some(voice("g4*4")), Q::ONE).unwrap(),
        Q::ONE
    );
    notes.extend(s.advance(START + 4_000_000_000, &signals).unwrap().notes);
    let pitches: Vec<_> = notes.iter().map(|n| n.note as i32).collect();
    assert_eq!(pitches[..4], [60, 60, 60, 60]);
    assert!(pitches[4..].iter().all(|&p| p == 67));
    assert_eq!(notes[4].t_ns, START + 2_000_000_000);
    // Hush takes effect at the next boundary too.
    let h = s.horizon();
    assert!(h > Q::int(2) && h < Q::int(3), "horizon {h}");
    assert_eq!(s.hush_all().unwrap(), Q::int(3));
    let after = s.advance(START + 9_000_000_000, &signals).unwrap().notes;
    assert!(
        after.iter().all(|n| n.t_ns < START + 6_000_000_000),
        "hushed from cycle 3"
    );
    assert_eq!(after.len() as i64, 12 - (h * Q::int(4)).unwrap().ceil());
}

#[test]
fn late_events_are_counted_and_still_published() {
    let transport = Transport::new(Q::int(120), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4*4")), Q::ONE).unwrap();
    // The stage stalled for 3 s: everything before now is late.
    let batch = s
        .advance(START + 3_000_000_000, &Signals::default())
        .unwrap();
    assert_eq!(batch.late, 6);
    assert_eq!(batch.notes.len(), 7);
}

/// The time from the ramp's start to `x` cycles into it, integrated numerically (Simpson's
/// rule on 1/tempo): an independent check of the closed form the transport uses.
fn integrated_seconds(cps0: f64, cps1: f64, span: f64, x: f64) -> f64 {
    let rate = |c: f64| cps0 + (cps1 - cps0) * (c / span).min(1.0);
    let n = 2_000;
    let h = x / n as f64;
    let mut sum = 1.0 / rate(0.0) + 1.0 / rate(x);
    for i in 1..n {
        sum += if i % 2 == 1 { 4.0 } else { 2.0 } / rate(i as f64 * h);
    }
    sum * h / 3.0
}

#[test]
fn a_tempo_ramp_is_linear_in_bars_and_notes_fall_on_its_grid_within_a_sample() {
    // 120 -> 140 bpm over 8 bars (cycles of 4 beats), asked for in the middle of cycle 1.
    let transport = Transport::new(Q::int(120), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4*16")), Q::ONE).unwrap();
    let signals = Signals::default();
    let mut now = START + 3_000_000_000;
    let mut notes = s.advance(now, &signals).unwrap().notes;
    let at = s.ramp_cps(q(140, 240), Q::int(8)).unwrap();
    assert_eq!(at, Q::int(2), "a ramp starts at the next cycle boundary");
    let start_ns = s.transport().ns_at(Q::int(2)).unwrap();
    assert_eq!(
        start_ns,
        START + 4_000_000_000,
        "the grid before it is untouched"
    );
    let mut anchors = Vec::new();
    let mut i = 0;
    while s.horizon() < Q::int(12) {
        now += jitter(i) / 8;
        i += 1;
        notes.extend(s.advance(now, &signals).unwrap().notes);
        let t = s.transport();
        if anchors.last().is_none_or(|&(c, _)| c != t.anchor().1) {
            anchors.push((t.anchor().1, t.cps()));
        }
    }
    // Every beat of the ramp was an anchor, with its exact tempo: linear in bars.
    for beat in 8..=40 {
        let c = q(beat, 4);
        let (_, cps) = anchors
            .iter()
            .find(|(a, _)| *a == c)
            .unwrap_or_else(|| panic!("beat {beat} was never the anchor: {anchors:?}"));
        let bpm = cps.to_f64() * 240.0;
        let linear = 120.0 + 20.0 * (beat - 8) as f64 / 32.0;
        assert!(
            (bpm - linear).abs() < 0.1,
            "beat {beat}: {bpm} bpm, not {linear}"
        );
    }
    assert!(s.transport().ramp().is_none(), "it ended");
    assert_eq!(s.transport().cps(), q(140, 240));
    // Every sixteenth falls where the integral of 1/tempo puts it, within one sample.
    let sample_ns = 1e9 / 48_000.0;
    let sixteenths: Vec<_> = notes.iter().map(|n| n.t_ns).collect();
    assert!(sixteenths.len() >= 12 * 16);
    assert!(sixteenths.windows(2).all(|w| w[0] < w[1]), "none doubled");
    for (k, &t) in sixteenths.iter().enumerate() {
        let c = k as f64 / 16.0;
        let expected = if c <= 2.0 {
            START as f64 + c * 2e9
        } else {
            let x = c - 2.0;
            let inside = integrated_seconds(0.5, 140.0 / 240.0, 8.0, x.min(8.0));
            let after = (x - 8.0).max(0.0) * 240.0 / 140.0;
            start_ns as f64 + (inside + after) * 1e9
        };
        assert!(
            (t as f64 - expected).abs() < sample_ns,
            "sixteenth {k}: {t} vs {expected:.0} ns"
        );
    }
}

#[test]
fn a_pattern_changed_over_bars_crossfades_with_the_one_it_replaces() {
    let transport = Transport::new(Q::int(120), 4, START).unwrap();
    let mut s = Scheduler::new(transport, LOOKAHEAD);
    s.set_slot("m", Some(voice("c4*4")), Q::ONE).unwrap();
    let signals = Signals::default();
    let mut notes = s.advance(START + 1_000_000_000, &signals).unwrap().notes;
    let at = s
        .set_slot_fading("m", Some(voice("g4*4")), Q::ONE, Q::int(2))
        .unwrap();
    assert_eq!(at, Q::ONE);
    let mut now = START + 1_000_000_000;
    while s.horizon() < Q::int(5) {
        now += 30_000_000;
        notes.extend(s.advance(now, &signals).unwrap().notes);
    }
    let cycle_of = |t: u64| (t - START) as f64 / 2e9;
    let old: Vec<(f64, f32)> = notes
        .iter()
        .filter(|n| n.note == 67.0 - 7.0)
        .map(|n| (cycle_of(n.t_ns), n.velocity))
        .collect();
    let new: Vec<(f64, f32)> = notes
        .iter()
        .filter(|n| n.note == 67.0)
        .map(|n| (cycle_of(n.t_ns), n.velocity))
        .filter(|&(c, _)| c < 5.0)
        .collect();
    // The old pattern: full before cycle 1, fading over cycles 1-3 (velocity 0.8 (1 - x)),
    // gone after. The new: from cycle 1, fading in the same way.
    for &(c, v) in &old {
        let x = ((c - 1.0) / 2.0).clamp(0.0, 1.0) as f32;
        assert!((v - 0.8 * (1.0 - x)).abs() < 1e-6, "old at {c}: {v}");
        assert!(c < 3.0, "old at {c}");
    }
    assert_eq!(old.len(), 4 + 8, "a whole cycle, then the two of the fade");
    for &(c, v) in &new {
        let x = ((c - 1.0) / 2.0).clamp(0.0, 1.0) as f32;
        assert!((v - 0.8 * x).abs() < 1e-6, "new at {c}: {v}");
        assert!(c >= 1.25, "new at {c}: its first, at weight 0, is not sent");
    }
    assert_eq!(new.len(), 15, "cycles 1 to 5 but the first, silent");
    // Both sound together through the fade: the crossfade is one of equal sums.
    for &(c, v) in old.iter().filter(|(c, _)| *c >= 1.0) {
        let other = new
            .iter()
            .find(|(d, _)| (d - c).abs() < 1e-9)
            .map_or(0.0, |p| p.1);
        assert!((v + other - 0.8).abs() < 1e-6, "at {c}: {v} + {other}");
    }
}
