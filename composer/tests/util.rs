//! Helpers shared by the topic modules.

use khorus_composer::mini;
use khorus_composer::pattern::{Context, Pattern};
use khorus_composer::time::Q;

/// Onsets of `p` over `[from, to)` as "begin-end value" strings with exact rationals.
pub fn onsets<T: khorus_composer::pattern::Val + std::fmt::Display>(
    p: &Pattern<T>,
    from: i64,
    to: i64,
) -> Vec<String> {
    p.onsets(Q::int(from), Q::int(to), &Context::default())
        .unwrap()
        .into_iter()
        .map(|h| {
            let w = h.whole.unwrap();
            format!("{}-{} {}", w.begin, w.end, h.value)
        })
        .collect()
}

/// Onsets of a mini-notation pattern over cycles `0..cycles`.
pub fn mini(src: &str, cycles: i64) -> Vec<String> {
    let p = mini::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    onsets(&p, 0, cycles)
}

/// Owned strings from literals, for comparisons.
pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
