//! Mini-notation as Tidal writes it: the cases where khorus once differed from Tidal (found
//! with Strudel's own test suite), Tidal's documented examples, and Tidal's random choices.
//!
//! Expected events are exact rational spans. The random ones were computed from Tidal 1.10's
//! definitions (`Sound.Tidal.UI`: `xorwise`, `timeToIntSeed`, `intSeedToRand`, `rand` read at
//! the start of its query, `_degradeByUsing` keeping `r >= p`; `Sound.Tidal.ParseBP`: seeds
//! counted from 0 per `?` and per `|` group, read `0.0001 * seed` cycles later) in exact
//! rationals with Haskell's 64-bit `Int`.

use khorus_composer::combinators::{choose, randcat};
use khorus_composer::controls::to_notes;
use khorus_composer::mini;
use khorus_composer::pattern::{Context, Pattern};
use khorus_composer::time::{Q, q};

use crate::util::{mini, onsets, s};

fn refused(src: &str) -> String {
    match mini::parse(src) {
        Ok(_) => panic!("{src:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

// The deviations, one test per row of the table they were reported in.

#[test]
fn a_lone_dash_is_a_rest_and_a_dash_before_a_digit_a_sign() {
    assert_eq!(mini("a - b [- c]", 1), mini("a ~ b [~ c]", 1));
    assert_eq!(
        mini("a - b [- c]", 1),
        s(&["0-1/4 a", "1/2-3/4 b", "7/8-1 c"])
    );
    assert_eq!(
        mini("-1 - 2 -0.5", 1),
        s(&["0-1/4 -1", "1/2-3/4 2", "3/4-1 -1/2"])
    );
    assert_eq!(mini("a -", 1), s(&["0-1/2 a"]));
}

#[test]
fn range_ends_are_patterns() {
    // Tidal: `[<0 1> .. <2 4>]*2` is `[0 1 2] [1 2 3 4]`.
    let want = s(&[
        "0-1/6 0",
        "1/6-1/3 1",
        "1/3-1/2 2",
        "1/2-5/8 1",
        "5/8-3/4 2",
        "3/4-7/8 3",
        "7/8-1 4",
    ]);
    assert_eq!(mini("[<0 1> .. <2 4>]*2", 1), want);
    assert_eq!(mini("[<0 1> .. <2 4>]*2", 1), mini("[0 1 2] [1 2 3 4]", 1));
    assert_eq!(
        mini("<0 .. 2 [4 .. 3]>", 2),
        s(&["0-1/3 0", "1/3-2/3 1", "2/3-1 2", "1-3/2 4", "3/2-2 3"])
    );
    // An end with modifiers: each of its events ranges over its own stretch.
    assert_eq!(
        mini("0*2 .. 3", 1),
        s(&["0-1/4 0", "1/4-1/2 1", "1/2-3/4 2", "3/4-1 3"])
    );
    assert_eq!(mini("c .. <d e>", 2).len(), 3 + 5);
    assert_eq!(
        mini("0 .. 3@3 8", 1),
        s(&[
            "0-3/16 0",
            "3/16-3/8 1",
            "3/8-9/16 2",
            "9/16-3/4 3",
            "3/4-1 8"
        ])
    );
}

#[test]
fn range_ends_that_are_not_whole_numbers_or_notes_are_refused_where_they_are() {
    for (src, col) in [
        ("0 .. x", 6),
        ("<0 x> .. 3", 4),
        ("[0 0.5] .. 3", 4),
        ("0 .. c", 6),
        ("a*2 .. 3", 8),
        (".. 3", 1),
        ("0 ..", 5),
    ] {
        let e = mini::parse(src).unwrap_err();
        assert_eq!(e.col, col, "{src}: {e}");
    }
    assert!(refused("0 .. 99999999").contains("more than 4096"));
    assert!(refused("0 .. <1 c>").contains("not one of each"));
    assert!(refused("0@2 .. 3").contains("goes after its second end"));
}

#[test]
fn a_bare_at_lengthens_like_an_underscore() {
    // Tidal: `a @ b @ @` is `a@2 b@3`.
    assert_eq!(mini("a @ b @ @", 1), s(&["0-2/5 a", "2/5-1 b"]));
    assert_eq!(mini("a @ b @ @", 1), mini("a@2 b@3", 1));
    assert_eq!(mini("a@ b", 1), s(&["0-2/3 a", "2/3-1 b"]));
    // The lengths add up, whatever the order: 1 + 2 + 1.
    assert_eq!(mini("a@3 _ b", 1), s(&["0-4/5 a", "4/5-1 b"]));
    assert_eq!(mini("a@3@2 b", 1), s(&["0-4/5 a", "4/5-1 b"]));
    // A number after a space is the next step.
    assert_eq!(mini("a@ 3", 1), s(&["0-2/3 a", "2/3-1 3"]));
    assert!(refused("a@0").contains("must be positive"));
    assert!(refused("a@0.5@0.5").contains("must be positive"));
}

#[test]
fn an_underscore_with_a_number_lengthens_by_it() {
    // Tidal: `a _2 b _3` is `a@2 b@3`.
    assert_eq!(mini("a _2 b _3", 1), s(&["0-2/5 a", "2/5-1 b"]));
    assert_eq!(mini("a _1.5 b", 1), s(&["0-3/5 a", "3/5-1 b"]));
    // Spaced, the number is a step of its own.
    assert_eq!(mini("a _ 2", 1), s(&["0-2/3 a", "2/3-1 2"]));
}

#[test]
fn a_colon_is_part_of_a_word() {
    assert_eq!(mini("a:b c:d", 1), s(&["0-1/2 a:b", "1/2-1 c:d"]));
    assert_eq!(
        mini("bd:3 sd:4:1.4", 1),
        s(&["0-1/2 bd:3", "1/2-1 sd:4:1.4"])
    );
    assert_eq!(
        mini("bd:3:0.4 sd:4:0.5:3:17", 1),
        s(&["0-1/2 bd:3:0.4", "1/2-1 sd:4:0.5:3:17"])
    );
    assert_eq!(
        mini("808:4 bd: x:-2", 1),
        s(&["0-1/3 808:4", "1/3-2/3 bd:", "2/3-1 x:-2"])
    );
}

#[test]
fn drum_words_read_their_index_and_gain_fields() {
    let notes = |src: &str| -> Vec<(f64, Option<f64>)> {
        to_notes(mini::parse(src).unwrap(), None)
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap()
            .into_iter()
            .map(|h| (h.value.note.unwrap(), h.value.velocity))
            .collect()
    };
    // bd's variants are [36, 35], sd's [38, 40]; the third field scales the velocity (0.8).
    let v = notes("bd:3:0.4 sd:4:0.5:3:17 bd:1 a:b");
    assert_eq!(v[0].0, 35.0);
    assert!((v[0].1.unwrap() - 0.32).abs() < 1e-12, "{v:?}");
    assert_eq!(v[1].0, 38.0);
    assert!((v[1].1.unwrap() - 0.4).abs() < 1e-12, "{v:?}");
    assert_eq!(v[2], (35.0, None));
    assert_eq!(v[3], (60.0, None), "an unknown word is a plain hit");
}

#[test]
fn strudel_only_syntax_is_refused_saying_so() {
    for src in ["a ^b", "[a b]:3", "a:[b c]", "a:<b c>"] {
        let e = refused(src);
        assert!(e.contains("Strudel"), "{src}: {e}");
    }
    assert!(refused(":3").contains("starts with a letter or digit"));
}

// Random choices as Tidal makes them.

#[test]
fn a_question_mark_keeps_the_cycles_tidal_keeps() {
    let kept: Vec<String> = mini("a?", 20);
    let cycles: Vec<i64> = kept
        .iter()
        .map(|e| e.split('-').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(cycles, [1, 3, 6, 11, 18, 19]);
    assert_eq!(mini("a?0.7", 10), s(&["3-4 a"]));
    assert_eq!(
        mini("a*8?", 2),
        s(&[
            "1/4-3/8 a",
            "3/8-1/2 a",
            "1-9/8 a",
            "9/8-5/4 a",
            "11/8-3/2 a",
            "13/8-7/4 a",
            "7/4-15/8 a"
        ])
    );
}

#[test]
fn each_question_mark_has_its_own_seed_in_the_order_written() {
    // Tidal's documented `bd? sd? hh? cp?`: seeds 0, 1, 2, 3, each read in its step's own
    // time (the sequence squeezes the degraded step, random stream and all), so at the cycle.
    assert_eq!(
        mini("bd? sd? hh? cp?", 2),
        s(&["1-5/4 bd", "5/4-3/2 sd", "3/2-7/4 hh"])
    );
    let layers = mini("[a?, b?]", 8);
    let starts = |v: &str| -> Vec<String> {
        layers
            .iter()
            .filter(|e| e.ends_with(v))
            .map(|e| e.split('-').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(starts("a"), ["1", "3", "6"]);
    assert_eq!(starts("b"), ["1", "6"]);
    assert_eq!(
        mini("bd sn:2?", 4)
            .iter()
            .filter(|e| e.ends_with("sn:2"))
            .count(),
        2
    );
    assert_eq!(
        mini("bd sn:2?", 4)
            .into_iter()
            .filter(|e| e.ends_with("sn:2"))
            .collect::<Vec<_>>(),
        s(&["3/2-2 sn:2", "7/2-4 sn:2"])
    );
}

#[test]
fn a_random_choice_picks_what_tidal_picks() {
    assert_eq!(
        mini("[bd | cp | hh]", 8),
        s(&[
            "0-1 bd", "1-2 cp", "2-3 bd", "3-4 hh", "4-5 bd", "5-6 bd", "6-7 cp", "7-8 bd"
        ])
    );
    // The group's seed comes after its alternatives' (0 for `b?`, 1 for `|`) ...
    assert_eq!(
        mini("[a | b?]", 8),
        s(&[
            "0-1 a", "1-2 b", "2-3 a", "3-4 a", "4-5 a", "5-6 a", "6-7 b", "7-8 a"
        ])
    );
    // ... and before a `?` after the group (0 for `|`, 1 for `?`).
    assert_eq!(mini("[a | b]?", 8), s(&["1-2 b", "6-7 b"]));
    // An event longer than the cycle is cut to it, and starts with it (Tidal's unwrap).
    assert_eq!(mini("[a/2 | a/2]", 2), s(&["0-1 a", "1-2 a"]));
}

#[test]
fn tidals_functions_draw_the_same_numbers() {
    let a4 = mini::parse("a*4").unwrap();
    assert_eq!(
        onsets(&a4.clone().degrade_by(q(3, 10), 0), 0, 2),
        s(&["1/4-1/2 a", "1-5/4 a", "3/2-7/4 a", "7/4-2 a"])
    );
    // undegrade_by keeps exactly the rest.
    assert_eq!(
        onsets(&a4.undegrade_by(q(3, 10), 0), 0, 2),
        s(&["0-1/4 a", "1/2-3/4 a", "3/4-1 a", "5/4-3/2 a"])
    );
    // randcat: cycle c plays the cat `floor(rand(c) * n)` cycles on.
    let p = |src: &str| -> Pattern<mini::Value> { mini::parse(src).unwrap() };
    let r = randcat(vec![p("a"), p("b c"), p("d")]);
    assert_eq!(
        onsets(&r, 0, 5),
        s(&["0-1 a", "1-2 d", "2-3 d", "3-4 d", "4-9/2 b", "9/2-5 c"])
    );
    // choose: floor(rand(t) * n) at each sample.
    let c = choose(vec!['x', 'y']).segment(4);
    assert_eq!(
        onsets(&c, 0, 1),
        s(&["0-1/4 x", "1/4-1/2 y", "1/2-3/4 x", "3/4-1 x"])
    );
}

// Tidal's documented mini-notation examples (the mini-notation reference), exact.

#[test]
fn tidals_documented_examples() {
    let cases: &[(&str, i64, &[&str])] = &[
        (
            "bd*2 [sn cp]",
            1,
            &["0-1/4 bd", "1/4-1/2 bd", "1/2-3/4 sn", "3/4-1 cp"],
        ),
        (
            "bd sd . hh hh hh",
            1,
            &[
                "0-1/4 bd",
                "1/4-1/2 sd",
                "1/2-2/3 hh",
                "2/3-5/6 hh",
                "5/6-1 hh",
            ],
        ),
        ("bd ~ hh ~", 1, &["0-1/4 bd", "1/2-3/4 hh"]),
        ("bd - hh -", 1, &["0-1/4 bd", "1/2-3/4 hh"]),
        ("[bd, hh hh]", 1, &["0-1 bd", "0-1/2 hh", "1/2-1 hh"]),
        (
            "bd <sn cp>",
            2,
            &["0-1/2 bd", "1/2-1 sn", "1-3/2 bd", "3/2-2 cp"],
        ),
        (
            "bd!3 sn",
            1,
            &["0-1/4 bd", "1/4-1/2 bd", "1/2-3/4 bd", "3/4-1 sn"],
        ),
        ("bd _ _ sn", 1, &["0-3/4 bd", "3/4-1 sn"]),
        ("bd@3 sn", 1, &["0-3/4 bd", "3/4-1 sn"]),
        ("bd/2", 2, &["0-2 bd"]),
        ("bd(3,8)", 1, &["0-1/8 bd", "3/8-1/2 bd", "3/4-7/8 bd"]),
        ("bd(3,8,2)", 1, &["1/8-1/4 bd", "1/2-5/8 bd", "3/4-7/8 bd"]),
        (
            "{bd sn, hh hh hh}",
            1,
            &["0-1/2 bd", "1/2-1 sn", "0-1/2 hh", "1/2-1 hh"],
        ),
        (
            "{bd sn}%4",
            1,
            &["0-1/4 bd", "1/4-1/2 sn", "1/2-3/4 bd", "3/4-1 sn"],
        ),
        (
            "bd*<2 3>",
            2,
            &["0-1/2 bd", "1/2-1 bd", "1-4/3 bd", "4/3-5/3 bd", "5/3-2 bd"],
        ),
        (
            "0 .. 3",
            1,
            &["0-1/4 0", "1/4-1/2 1", "1/2-3/4 2", "3/4-1 3"],
        ),
        ("bd:3 sn", 1, &["0-1/2 bd:3", "1/2-1 sn"]),
    ];
    for (src, cycles, want) in cases {
        let mut got = mini(src, *cycles);
        let mut want = s(want);
        // Stacked layers come out in layer order at equal onsets; compare as sets.
        got.sort();
        want.sort();
        assert_eq!(got, want, "{src}");
    }
}
