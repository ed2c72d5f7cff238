//! Properties over generated patterns: splitting a query never changes the onsets, fast∘slow
//! and rev∘rev are the identity, results are sorted and inside the span, and no input string
//! makes the parser panic.

use khorus_composer::mini;
use khorus_composer::pattern::{Context, Pattern};
use khorus_composer::time::Q;
use proptest::prelude::*;

/// Mini-notation built from a small grammar, so most cases are valid and interesting.
fn pattern_src() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c3".to_string()),
        Just("~".to_string()),
        Just("60".to_string()),
        Just("e'min7'ii".to_string()),
        Just("bd:3".to_string()),
        Just("0 .. 3".to_string()),
    ];
    let step = (
        atom,
        prop_oneof![
            Just(String::new()),
            Just("*2".into()),
            Just("/3".into()),
            Just("!2".into()),
            Just("@3".into()),
            Just("?".into()),
            Just("(3,8,1)".into()),
            Just("*1.5".into()),
        ],
    )
        .prop_map(|(a, m)| format!("{a}{m}"));
    let seq = prop::collection::vec(step, 1..5).prop_map(|v| v.join(" "));
    seq.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| format!("[{s}]")),
            inner.clone().prop_map(|s| format!("<{s}>")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{{a}, {b}}}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} [{b}]*2")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("[{a} | {b}]")),
        ]
    })
}

fn small_q() -> impl Strategy<Value = Q> {
    (-40i64..40, 1i64..8).prop_map(|(n, d)| Q::new(n, d).unwrap())
}

fn onsets(p: &Pattern<mini::Value>, a: Q, b: Q) -> Vec<String> {
    p.onsets(a, b, &Context::default())
        .unwrap()
        .into_iter()
        .map(|h| format!("{:?} {}", h.whole, h.value))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn split_queries_give_the_same_onsets(src in pattern_src(), a in small_q(), l1 in 0i64..12, l2 in 0i64..12) {
        let p = mini::parse(&src).unwrap();
        let b = (a + Q::new(l1, 3).unwrap()).unwrap();
        let c = (b + Q::new(l2, 5).unwrap()).unwrap();
        let mut split = onsets(&p, a, b);
        split.extend(onsets(&p, b, c));
        prop_assert_eq!(onsets(&p, a, c), split);
    }

    #[test]
    fn fast_then_slow_is_identity(src in pattern_src(), n in 1i64..7, d in 1i64..5) {
        let p = mini::parse(&src).unwrap();
        let k = Q::new(n, d).unwrap();
        let id = p.clone().slow(k).fast(k);
        let ctx = Context::default();
        prop_assert_eq!(
            p.query_span(Q::ZERO, Q::int(3), &ctx).unwrap(),
            id.query_span(Q::ZERO, Q::int(3), &ctx).unwrap()
        );
    }

    #[test]
    fn rev_twice_is_identity(src in pattern_src()) {
        // Identity up to fragmentation: rev works cycle by cycle, so an event longer than a
        // cycle comes back in per-cycle fragments; its onsets and wholes are unchanged.
        let p = mini::parse(&src).unwrap();
        prop_assert_eq!(
            onsets(&p, Q::ZERO, Q::int(3)),
            onsets(&p.clone().rev().rev(), Q::ZERO, Q::int(3))
        );
    }

    #[test]
    fn results_are_sorted_and_inside_the_span(src in pattern_src(), a in small_q(), l in 1i64..20) {
        let p = mini::parse(&src).unwrap();
        let b = (a + Q::new(l, 4).unwrap()).unwrap();
        let haps = p.query_span(a, b, &Context::default()).unwrap();
        for w in haps.windows(2) {
            prop_assert!(w[0].part.begin <= w[1].part.begin);
        }
        for h in &haps {
            prop_assert!(a <= h.part.begin && h.part.end <= b && h.part.begin < h.part.end);
            if let Some(w) = h.whole {
                prop_assert!(w.begin <= h.part.begin && h.part.end <= w.end);
            }
        }
    }

    #[test]
    fn random_strings_never_panic_the_parser(src in "\\PC{0,64}") {
        let _ = mini::parse(&src);
    }

    #[test]
    fn token_soup_never_panics_parser_or_query(src in "[a-eimo0-9~\\[\\]<>{}(),|*/!@_?%.':d -]{0,48}") {
        if let Ok(p) = mini::parse(&src) {
            // Overflow is an error value, never a panic.
            let _ = p.query_span(Q::ZERO, Q::int(2), &Context::default());
        } else if let Err(e) = mini::parse(&src) {
            prop_assert!(e.line >= 1 && e.col >= 1);
            prop_assert!(e.to_string().contains('^'));
        }
    }
}
