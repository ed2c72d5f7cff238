//! Conformance: exact rational expectations for every mini-notation token and combinator.

use khorus_bus::SignalId;
use khorus_composer::combinators::{
    choose, euclid_bools, fastcat, randcat, slowcat, stack, timecat,
};
use khorus_composer::levels::Signals;
use khorus_composer::mini::{self, parse_bools};
use khorus_composer::pattern::{Context, Pattern};
use khorus_composer::signal::parse_expr;
use khorus_composer::time::{Q, q};

use crate::util::{mini, onsets, s};

#[test]
fn sequence_and_rest() {
    assert_eq!(mini("a b c", 1), s(&["0-1/3 a", "1/3-2/3 b", "2/3-1 c"]));
    assert_eq!(mini("a ~ b", 1), s(&["0-1/3 a", "2/3-1 b"]));
}

#[test]
fn nested_brackets() {
    assert_eq!(
        mini("a [b [c d]]", 1),
        s(&["0-1/2 a", "1/2-3/4 b", "3/4-7/8 c", "7/8-1 d"])
    );
}

#[test]
fn alternation_over_several_cycles() {
    assert_eq!(mini("<a b c>", 4), s(&["0-1 a", "1-2 b", "2-3 c", "3-4 a"]));
    assert_eq!(
        mini("a <b c>", 2),
        s(&["0-1/2 a", "1/2-1 b", "1-3/2 a", "3/2-2 c"])
    );
    assert_eq!(
        mini("<a <b c>>", 4),
        s(&["0-1 a", "1-2 b", "2-3 a", "3-4 c"])
    );
    // Weights inside < > are cycles.
    assert_eq!(mini("<a@3 b>", 4), s(&["0-3 a", "3-4 b"]));
}

#[test]
fn fast_and_slow() {
    assert_eq!(mini("a*2 b", 1), s(&["0-1/4 a", "1/4-1/2 a", "1/2-1 b"]));
    assert_eq!(
        mini("[a b]*1.5", 2),
        s(&[
            "0-1/3 a",
            "1/3-2/3 b",
            "2/3-1 a",
            "1-4/3 b",
            "4/3-5/3 a",
            "5/3-2 b"
        ])
    );
    assert_eq!(mini("a/2", 3), s(&["0-2 a", "2-4 a"]));
    assert_eq!(mini("[a b]/2", 2), s(&["0-1 a", "1-2 b"]));
    // Patterned speed: one cycle at 1, the next at 2.
    assert_eq!(mini("a*<1 2>", 2), s(&["0-1 a", "1-3/2 a", "3/2-2 a"]));
}

#[test]
fn replicate_with_and_without_count() {
    assert_eq!(
        mini("a!3 b", 1),
        s(&["0-1/4 a", "1/4-1/2 a", "1/2-3/4 a", "3/4-1 b"])
    );
    assert_eq!(mini("a ! b", 1), s(&["0-1/3 a", "1/3-2/3 a", "2/3-1 b"]));
}

#[test]
fn weights_and_elongation() {
    assert_eq!(mini("a@3 b", 1), s(&["0-3/4 a", "3/4-1 b"]));
    assert_eq!(mini("a@1.5 b", 1), s(&["0-3/5 a", "3/5-1 b"]));
    assert_eq!(mini("a _ _ b", 1), s(&["0-3/4 a", "3/4-1 b"]));
    assert_eq!(
        mini("[a _ b] c", 1),
        s(&["0-1/3 a", "1/3-1/2 b", "1/2-1 c"])
    );
}

#[test]
fn layering_with_commas() {
    assert_eq!(mini("[a, b c]", 1), s(&["0-1 a", "0-1/2 b", "1/2-1 c"]));
}

#[test]
fn euclid_with_rotation() {
    assert_eq!(mini("a(3,8)", 1), s(&["0-1/8 a", "3/8-1/2 a", "3/4-7/8 a"]));
    assert_eq!(
        mini("a(3,8,2)", 1),
        s(&["1/8-1/4 a", "1/2-5/8 a", "3/4-7/8 a"])
    );
    assert_eq!(
        mini("a(<3 5>,8)", 2)[3..],
        s(&[
            "1-9/8 a",
            "5/4-11/8 a",
            "11/8-3/2 a",
            "13/8-7/4 a",
            "7/4-15/8 a"
        ])
    );
    // Negative pulses: the complement.
    assert_eq!(
        mini("a(-3,8)", 1),
        s(&[
            "1/8-1/4 a",
            "1/4-3/8 a",
            "1/2-5/8 a",
            "5/8-3/4 a",
            "7/8-1 a"
        ])
    );
}

#[test]
fn polymeter_with_and_without_steps() {
    assert_eq!(
        mini("{a b c, d e}", 2),
        s(&[
            "0-1/3 a",
            "0-1/3 d",
            "1/3-2/3 b",
            "1/3-2/3 e",
            "2/3-1 c",
            "2/3-1 d",
            "1-4/3 a",
            "1-4/3 e",
            "4/3-5/3 b",
            "4/3-5/3 d",
            "5/3-2 c",
            "5/3-2 e",
        ])
    );
    assert_eq!(
        mini("{a b c}%4", 2),
        s(&[
            "0-1/4 a",
            "1/4-1/2 b",
            "1/2-3/4 c",
            "3/4-1 a",
            "1-5/4 b",
            "5/4-3/2 c",
            "3/2-7/4 a",
            "7/4-2 b",
        ])
    );
}

#[test]
fn numbers_and_note_names() {
    assert_eq!(
        mini("60 -1 0.5 c#4 eb3 a2", 1),
        s(&[
            "0-1/6 60",
            "1/6-1/3 -1",
            "1/3-1/2 1/2",
            "1/2-2/3 c#4",
            "2/3-5/6 eb3",
            "5/6-1 a2"
        ])
    );
}

#[test]
fn tidal_ranges() {
    // Tidal: `n "0 .. 7"` plays 0 to 7; a range is one step of its sequence.
    assert_eq!(
        mini("0 .. 3", 1),
        s(&["0-1/4 0", "1/4-1/2 1", "1/2-3/4 2", "3/4-1 3"])
    );
    assert_eq!(
        mini("3 .. 0", 1),
        s(&["0-1/4 3", "1/4-1/2 2", "1/2-3/4 1", "3/4-1 0"])
    );
    assert_eq!(mini("<0 .. 1 5>", 2), s(&["0-1/2 0", "1/2-1 1", "1-2 5"]));
}

#[test]
fn tidal_chords() {
    // Tidal's docs: `n "c'maj e'min"`; c is 60 here as in Tidal (our c4, Tidal's c5).
    assert_eq!(
        mini("c'maj e'min", 1),
        s(&[
            "0-1/2 c4", "0-1/2 e4", "0-1/2 g4", "1/2-1 e4", "1/2-1 g4", "1/2-1 b4"
        ])
    );
    let notes = |src: &str| -> Vec<f64> {
        let p = khorus_composer::controls::to_notes(mini::parse(src).unwrap(), None);
        let mut v: Vec<f64> = p
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap()
            .into_iter()
            .filter_map(|h| h.value.note)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    assert_eq!(notes("c'maj"), [60.0, 64.0, 67.0]);
    assert_eq!(notes("e4'min7"), [64.0, 67.0, 71.0, 74.0]);
    // The documented voicings of c'min9 = [0,3,7,10,14]: 8 tones, 4 tones.
    assert_eq!(
        notes("c'min9'8"),
        [60.0, 63.0, 67.0, 70.0, 72.0, 74.0, 75.0, 79.0]
    );
    assert_eq!(notes("c'min9'4"), [60.0, 63.0, 67.0, 70.0]);
    // Second inversion, open voicing, drop 1.
    assert_eq!(notes("c'major7'ii"), [67.0, 71.0, 72.0, 76.0]);
    assert_eq!(notes("c'major7'o"), [48.0, 55.0, 64.0, 71.0]);
    assert_eq!(notes("c'major7'd1"), [59.0, 60.0, 64.0, 67.0]);
    // Sharp and flat roots, octaves.
    assert_eq!(notes("cs'maj"), [61.0, 65.0, 68.0]);
    assert_eq!(notes("c3'maj"), [48.0, 52.0, 55.0]);
}

#[test]
fn sample_indices_pick_drum_variants() {
    let notes = |src: &str| -> Vec<f64> {
        khorus_composer::controls::to_notes(mini::parse(src).unwrap(), None)
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap()
            .into_iter()
            .filter_map(|h| h.value.note)
            .collect()
    };
    assert_eq!(notes("bd bd:1 sn:1 hh:1"), [36.0, 35.0, 40.0, 44.0]);
    assert_eq!(mini("bd:3*2", 1), s(&["0-1/2 bd:3", "1/2-1 bd:3"]));
}

#[test]
fn dot_groups() {
    assert_eq!(mini("a b . c", 1), s(&["0-1/4 a", "1/4-1/2 b", "1/2-1 c"]));
}

#[test]
fn degrade_is_bounded() {
    assert_eq!(mini("a*8?0", 1).len(), 8);
    assert!(mini("a*8?1", 1).is_empty());
    let kept = mini("a*16?", 64).len();
    assert!((400..=624).contains(&kept), "kept {kept} of 1024");
    assert_eq!(mini("a*16?", 8), mini("a*16?", 8));
}

#[test]
fn random_choice_picks_one_per_cycle() {
    let evs = mini("[a | b | c]", 48);
    assert_eq!(evs.len(), 48);
    for (i, e) in evs.iter().enumerate() {
        assert!(e.starts_with(&format!("{i}-{} ", i + 1)), "{e}");
    }
    for v in ["a", "b", "c"] {
        assert!(evs.iter().any(|e| e.ends_with(v)), "{v} never chosen");
    }
}

fn p(src: &str) -> Pattern<mini::Value> {
    mini::parse(src).unwrap()
}

#[test]
fn sequence_cat_stack_timecat() {
    assert_eq!(
        onsets(&fastcat(vec![p("a"), p("b")]), 0, 1),
        s(&["0-1/2 a", "1/2-1 b"])
    );
    assert_eq!(
        onsets(&slowcat(vec![p("a"), p("b c")]), 0, 2),
        s(&["0-1 a", "1-3/2 b", "3/2-2 c"])
    );
    assert_eq!(
        onsets(&stack(vec![p("a"), p("b b")]), 0, 1),
        s(&["0-1 a", "0-1/2 b", "1/2-1 b"])
    );
    let tc = timecat(vec![(Q::ONE, p("a")), (Q::int(3), p("b"))]).unwrap();
    assert_eq!(onsets(&tc, 0, 1), s(&["0-1/4 a", "1/4-1 b"]));
}

#[test]
fn repeat_is_a_sequence_of_copies_not_fast() {
    assert_eq!(
        onsets(&p("<a b>").repeat(2), 0, 2),
        s(&["0-1/2 a", "1/2-1 a", "1-3/2 b", "3/2-2 b"])
    );
    assert_eq!(
        onsets(&p("<a b>").fast(2), 0, 1),
        s(&["0-1/2 a", "1/2-1 b"])
    );
    assert_eq!(onsets(&p("a b").over(2), 0, 2), s(&["0-1 a", "1-2 b"]));
}

#[test]
fn shifts() {
    assert_eq!(
        onsets(&p("a b").early(q(1, 4)), 0, 1),
        s(&["1/4-3/4 b", "3/4-5/4 a"])
    );
    assert_eq!(
        onsets(&p("a b").late(q(1, 4)), 0, 1),
        s(&["1/4-3/4 a", "3/4-5/4 b"])
    );
}

#[test]
fn rev_and_palindrome() {
    assert_eq!(
        onsets(&p("a b c").rev(), 0, 1),
        s(&["0-1/3 c", "1/3-2/3 b", "2/3-1 a"])
    );
    assert_eq!(
        onsets(&p("a [b c]").rev(), 0, 1),
        s(&["0-1/4 c", "1/4-1/2 b", "1/2-1 a"])
    );
    assert_eq!(
        onsets(&p("a b c").palindrome(), 0, 2),
        s(&[
            "0-1/3 a",
            "1/3-2/3 b",
            "2/3-1 c",
            "1-4/3 c",
            "4/3-5/3 b",
            "5/3-2 a"
        ])
    );
}

#[test]
fn every_is_right_for_negative_cycles() {
    let e = p("a b").every(3, |x| x.rev());
    assert_eq!(
        onsets(&e, -3, 2),
        s(&[
            "-3--5/2 b",
            "-5/2--2 a",
            "-2--3/2 a",
            "-3/2--1 b",
            "-1--1/2 a",
            "-1/2-0 b",
            "0-1/2 b",
            "1/2-1 a",
            "1-3/2 a",
            "3/2-2 b",
        ])
    );
}

#[test]
fn sometimes_is_complementary() {
    for prob in [q(1, 4), q(1, 2), q(3, 4)] {
        let base = p("a*16");
        let out = base.sometimes_by(prob, 0, |x| x.fmap(|_| mini::Value::Word("B".into())));
        let evs = onsets(&out, 0, 8);
        assert_eq!(evs.len(), 128, "each event exactly once");
        let mut times: Vec<_> = evs
            .iter()
            .map(|e| e.split(' ').next().unwrap().to_string())
            .collect();
        times.sort();
        times.dedup();
        assert_eq!(times.len(), 128, "never both");
        let changed = evs.iter().filter(|e| e.ends_with('B')).count() as f64 / 128.0;
        assert!(
            (changed - prob.to_f64()).abs() < 0.15,
            "{changed} vs {prob}"
        );
    }
}

#[test]
fn swing_is_exact() {
    assert_eq!(
        onsets(&p("a*8").swing_by(q(1, 3), Q::int(4)), 0, 1),
        s(&[
            "0-1/8 a",
            "5/24-1/3 a",
            "1/4-3/8 a",
            "11/24-7/12 a",
            "1/2-5/8 a",
            "17/24-5/6 a",
            "3/4-7/8 a",
            "23/24-13/12 a",
        ])
    );
}

#[test]
fn mask_and_struct() {
    assert_eq!(
        onsets(&p("a*4").mask(parse_bools("1 0 1 1").unwrap()), 0, 1),
        s(&["0-1/4 a", "1/2-3/4 a", "3/4-1 a"])
    );
    // Structure from the booleans, values sampled from the pattern.
    assert_eq!(
        onsets(&p("a b").struct_(parse_bools("1 0 1 1").unwrap()), 0, 1),
        s(&["0-1/4 a", "1/2-3/4 b", "3/4-1 b"])
    );
    assert_eq!(
        onsets(&p("a").struct_(euclid_bools(3, 8, 0)), 0, 1),
        mini("a(3,8)", 1)
    );
}

#[test]
fn ply() {
    assert_eq!(
        onsets(&p("a b").ply(2), 0, 1),
        s(&["0-1/4 a", "1/4-1/2 a", "1/2-3/4 b", "3/4-1 b"])
    );
}

#[test]
fn segment_and_range_on_continuous() {
    let ramp = Pattern::signal(|t: Q, _: &Context| Ok(t.cycle_pos()));
    assert_eq!(
        onsets(&ramp.clone().segment(4), 0, 1),
        s(&["0-1/4 0", "1/4-1/2 1/4", "1/2-3/4 1/2", "3/4-1 3/4"])
    );
    assert_eq!(
        onsets(&ramp.segment(4).range(Q::int(2), Q::int(4)), 0, 1),
        s(&["0-1/4 2", "1/4-1/2 5/2", "1/2-3/4 3", "3/4-1 7/2"])
    );
}

#[test]
fn choose_and_randcat_pick_among_their_arguments() {
    let c = choose(vec![1, 2, 3]).segment(8);
    let a = onsets(&c, 0, 4);
    assert_eq!(a, onsets(&c, 0, 4));
    assert!(
        a.iter()
            .all(|e| e.ends_with(" 1") || e.ends_with(" 2") || e.ends_with(" 3"))
    );
    let r = randcat(vec![p("a"), p("b c")]);
    let evs = onsets(&r, 0, 16);
    assert!(evs.iter().any(|e| e.ends_with('a')) && evs.iter().any(|e| e.ends_with('c')));
}

fn with_signals(pairs: &[(SignalId, f32)]) -> Context {
    let mut signals = Signals::default();
    for (id, v) in pairs {
        signals.set(*id, *v);
    }
    Context {
        signals,
        ..Default::default()
    }
}

#[test]
fn signal_driven_arguments() {
    let count = |pat: &Pattern<mini::Value>, ctx: &Context| {
        pat.onsets(Q::ZERO, Q::int(4), ctx).unwrap().len()
    };
    // degradeBy(1 - exec): everything at exec = 1, nothing at exec = 0.
    let deg = p("a*16").degrade_by(parse_expr("1 - exec").unwrap().pattern(), 1);
    assert_eq!(count(&deg, &with_signals(&[(SignalId::EXEC, 1.0)])), 64);
    assert_eq!(count(&deg, &with_signals(&[(SignalId::EXEC, 0.0)])), 0);
    // fast(1 + 3·csw): 1 to 4 events per cycle.
    let fast = p("a").fast(parse_expr("1 + 3*csw").unwrap().pattern());
    assert_eq!(count(&fast, &with_signals(&[(SignalId::CSW, 1.0)])), 16);
    assert_eq!(count(&fast, &with_signals(&[(SignalId::CSW, 0.0)])), 4);
    // Gate: retx > 0.08.
    let gated = p("a*4").mask(parse_expr("retx > 0.08").unwrap().pattern().above(Q::ZERO));
    assert_eq!(count(&gated, &with_signals(&[(SignalId::RETX, 0.1)])), 16);
    assert_eq!(count(&gated, &with_signals(&[(SignalId::RETX, 0.05)])), 0);
    // Continuous io sampled at each event's onset, mapped with range.
    let io = parse_expr("range(io_read, 100, 200)").unwrap().pattern();
    let haps = p("a*2")
        .app_left(io, |_, v| *v)
        .onsets(Q::ZERO, Q::ONE, &with_signals(&[(SignalId::IO_READ, 0.5)]))
        .unwrap();
    assert_eq!(
        haps.iter().map(|h| h.value).collect::<Vec<_>>(),
        [Q::int(150), Q::int(150)]
    );
}

#[test]
fn fuzz_regression_absurd_speeds_are_refused_not_allocated() {
    // Steps that ran together in the fuzzer's input are spaced: the same steps, since run-on
    // steps became an error.
    let p = mini::parse("mc*7111 px1*2 x1*21111111 c*6 n3").unwrap();
    assert!(
        p.query_span(Q::ZERO, Q::int(2), &Context::default())
            .is_err()
    );
}

#[test]
fn fuzz_regression_multiplied_density_is_refused() {
    let p = mini::parse("4*-404*-4064*-404*-406 f!7 bh7bb57k/7?cb6/8?cbf!7 bh7bb57k/7?cb6/8?cb")
        .unwrap();
    assert!(
        p.query_span(Q::ZERO, Q::int(2), &Context::default())
            .is_err()
    );
}
