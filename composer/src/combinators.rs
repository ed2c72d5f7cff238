//! The pattern combinators, with TidalCycles semantics. Each one says what it does in its doc;
//! the conformance tests in `tests/conformance.rs` pin the exact rational results.
//!
//! Numeric arguments are [`Param`]s: a constant, or a pattern of numbers (including a live
//! signal expression), applied the way Tidal applies patterned arguments (`innerJoin`: the
//! argument is sampled over each stretch of time and the transformed pattern keeps its own
//! structure).

use crate::pattern::{Pattern, Val};
use crate::rand::{rand_at, time_to_rand};
use crate::span::{Hap, Span};
use crate::time::{Q, TimeError};

/// A numeric argument: a constant or a pattern (e.g. a signal expression).
#[derive(Clone, Debug)]
pub enum Param {
    /// A fixed value.
    Const(Q),
    /// A pattern of values, sampled where the combinator is queried.
    Pat(Pattern<Q>),
}

impl From<Q> for Param {
    fn from(v: Q) -> Self {
        Param::Const(v)
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Const(Q::int(v))
    }
}

impl From<Pattern<Q>> for Param {
    fn from(p: Pattern<Q>) -> Self {
        Param::Pat(p)
    }
}

impl Param {
    /// The argument as a pattern.
    pub fn pattern(&self) -> Pattern<Q> {
        match self {
            Param::Const(v) => Pattern::pure(*v),
            Param::Pat(p) => p.clone(),
        }
    }

    /// Applies `f(pat, value)`: directly for a constant, by inner join for a pattern.
    fn apply<T: Val>(
        self,
        pat: Pattern<T>,
        f: impl Fn(Pattern<T>, Q) -> Pattern<T> + Send + Sync + 'static,
    ) -> Pattern<T> {
        match self {
            Param::Const(v) => f(pat, v),
            Param::Pat(p) => p.inner_bind(move |v| f(pat.clone(), *v)),
        }
    }
}

/// Euclidean distribution of `k` onsets over `n` steps (Bjorklund, as in Tidal).
pub fn bjorklund(k: usize, n: usize) -> Vec<bool> {
    let k = k.min(n);
    let mut a: Vec<Vec<bool>> = vec![vec![true]; k];
    let mut b: Vec<Vec<bool>> = vec![vec![false]; n - k];
    while a.len().min(b.len()) > 1 {
        let rest = if a.len() > b.len() {
            let rest = a.split_off(b.len());
            for (x, y) in a.iter_mut().zip(&b) {
                x.extend(y);
            }
            rest
        } else {
            let rest = b.split_off(a.len());
            for (x, y) in a.iter_mut().zip(&b) {
                x.extend(y);
            }
            rest
        };
        b = rest;
    }
    a.into_iter().chain(b).flatten().collect()
}

/// The boolean euclid pattern `(k, n, r)`: `k` onsets over `n` steps, rotated left by `r`
/// steps; a negative `k` inverts it (the off-steps).
pub fn euclid_bools(k: i64, n: i64, r: i64) -> Pattern<bool> {
    if n <= 0 {
        return Pattern::silence();
    }
    let steps = n.min(4096) as usize;
    let mut bits = bjorklund(k.unsigned_abs().min(steps as u64) as usize, steps);
    if k < 0 {
        bits.iter_mut().for_each(|b| *b = !*b);
    }
    bits.rotate_left(r.rem_euclid(steps as i64) as usize);
    fastcat(bits.into_iter().map(Pattern::pure).collect())
}

/// Plays the patterns at once.
pub fn stack<T: Val>(pats: Vec<Pattern<T>>) -> Pattern<T> {
    Pattern::new(move |st| {
        let mut out = Vec::new();
        for p in &pats {
            out.extend(p.query(st)?);
        }
        Ok(out)
    })
}

/// One pattern per cycle, in turn (Tidal's `cat`/`slowcat`); each pattern advances only on
/// the cycles it plays, so `cat [a, <b c>]` gives `a b a c`.
pub fn slowcat<T: Val>(pats: Vec<Pattern<T>>) -> Pattern<T> {
    if pats.is_empty() {
        return Pattern::silence();
    }
    let n = pats.len() as i64;
    Pattern::new(move |st| {
        let mut out = Vec::new();
        for span in st.span.cycle_iter()? {
            let c = span.begin.floor();
            let offset = Q::int(c - c.div_euclid(n));
            let p = &pats[c.rem_euclid(n) as usize];
            let inner = span.with_time(|t| t - offset)?;
            for h in p.query(&st.with_span(inner))? {
                out.push(h.with_span(|s| s.with_time(|t| t + offset))?);
            }
        }
        Ok(out)
    })
}

/// The patterns in sequence within one cycle (Tidal's `fastcat`, krach's `a + b`).
pub fn fastcat<T: Val>(pats: Vec<Pattern<T>>) -> Pattern<T> {
    let n = pats.len() as i64;
    slowcat(pats).fast(n)
}

/// The patterns in sequence within one cycle, each taking time in proportion to its weight.
///
/// The same as stacking each pattern compressed into its window (`[s/W, (s+w)/W)`, `s` the
/// weight before it, `W` the total), and answered the same way, child by child (so even the
/// order of unsorted haps is unchanged); but the windows are computed once, here, and a query
/// splits its span into cycles once instead of once per child.
pub fn timecat<T: Val>(parts: Vec<(Q, Pattern<T>)>) -> Result<Pattern<T>, TimeError> {
    let mut total = Q::ZERO;
    for (w, _) in &parts {
        total = (total + *w)?;
    }
    if total <= Q::ZERO {
        return Ok(Pattern::silence());
    }
    let mut begin = Q::ZERO;
    let mut steps = Vec::with_capacity(parts.len());
    for (w, p) in parts {
        if w <= Q::ZERO {
            continue;
        }
        let end = (begin + w)?;
        let (b, e) = ((begin / total)?, (end / total)?);
        begin = end;
        // `compress` plays nothing for a window outside `[0, 1]` (possible when other
        // weights are negative), and nothing plus a pattern is the pattern.
        if b >= e || b < Q::ZERO || e > Q::ONE {
            continue;
        }
        // `compress` computes the width per query and fails there if it overflows; keep
        // the error for the query rather than refusing the pattern.
        steps.push((b, e, e - b, p));
    }
    if let [(b, e, _, _)] = steps[..] {
        let p = steps.pop().map(|s| s.3).unwrap_or_else(Pattern::silence);
        return Ok(p.compress(b, e));
    }
    Ok(Pattern::new(move |st| {
        let cycles = st.span.cycle_iter();
        // Room for one hap per step and cycle, the common case, so `out` never regrows;
        // capped, so a dense pattern over many cycles grows as it goes instead.
        let per_step = cycles.as_ref().map_or(0, ExactSizeIterator::len);
        let mut out = Vec::with_capacity(steps.len().saturating_mul(per_step).min(256));
        for (b, e, width, p) in &steps {
            let width = width.clone()?;
            for span in cycles.clone()? {
                p.query_window(st, span, *b, *e, width, &mut out)?;
            }
        }
        Ok(out)
    }))
}

/// Per cycle, one of the patterns at random (Tidal's `randcat`): cycle `c` plays the
/// [`slowcat`] of the patterns `i` cycles on, `i` drawn from Tidal's random number at `c`;
/// events that the cycle cuts start with it.
pub fn randcat<T: Val>(pats: Vec<Pattern<T>>) -> Pattern<T> {
    if pats.is_empty() {
        return Pattern::silence();
    }
    let n = pats.len();
    let cat = slowcat(pats);
    per_cycle(move |c| {
        let i = pick(time_to_rand(c), n) as i64;
        cat.clone().early(Param::Const(Q::int(i)))
    })
}

/// Per cycle, one of the patterns at random, as mini-notation's `[a | b | c]` chooses (Tidal's
/// `TPat_CycleChoose`): the pattern picked by the random number at the cycle's start, read
/// `seed / 10000` cycles on, played as it is at that cycle; events that the cycle cuts start
/// with it.
pub fn cycle_choose<T: Val>(pats: Vec<Pattern<T>>, seed: u32) -> Pattern<T> {
    if pats.is_empty() {
        return Pattern::silence();
    }
    per_cycle(move |c| pats[pick(rand_at(c, seed), pats.len())].clone())
}

/// Index `floor(r · n)`, kept inside `0..n` (Tidal's cyclic `!!!`; `r < 1`, so only float
/// rounding could reach `n`).
fn pick(r: f64, n: usize) -> usize {
    ((r * n as f64) as usize) % n
}

/// The pattern `f(c)` in each cycle `c`, its events cut to the cycle: an event that starts
/// before the cycle starts with it (Tidal's `unwrap` under one outer event per cycle, whose
/// value is the cycle).
fn per_cycle<T: Val>(f: impl Fn(Q) -> Pattern<T> + Send + Sync + 'static) -> Pattern<T> {
    Pattern::signal(|t, _| Ok(t.sam()))
        .segment(Q::ONE)
        .bind(move |c| f(*c))
}

/// A continuous random choice among `values` (Tidal's `choose`: the value at index
/// `floor(rand · n)`; sample it with `segment` or `struct`).
pub fn choose<T: Val>(values: Vec<T>) -> Pattern<T> {
    if values.is_empty() {
        return Pattern::silence();
    }
    Pattern::signal(move |t, _| Ok(values[pick(time_to_rand(t), values.len())].clone()))
}

impl<T: Val> Pattern<T> {
    fn fast_q(self, k: Q) -> Self {
        if k.is_zero() {
            return Pattern::silence();
        }
        if k < Q::ZERO {
            return match k.negated() {
                Ok(k) => self.rev().fast_q(k),
                Err(_) => Pattern::silence(),
            };
        }
        self.with_time(move |t| t * k, move |t| t / k)
    }

    /// Speeds up by `k` (k cycles of the pattern per cycle); 0 is silence, negative reverses.
    pub fn fast(self, k: impl Into<Param>) -> Self {
        k.into().apply(self, |p, k| p.fast_q(k))
    }

    /// Slows down by `k`; 0 is silence.
    pub fn slow(self, k: impl Into<Param>) -> Self {
        k.into().apply(self, |p, k| match Q::ONE / k {
            Ok(inv) => p.fast_q(inv),
            Err(_) => Pattern::silence(),
        })
    }

    /// Stretches the pattern over `n` cycles (krach's `over`; the same as `slow`).
    pub fn over(self, n: impl Into<Param>) -> Self {
        self.slow(n)
    }

    /// `n` copies in sequence within one cycle (krach's `p * n`): `fastcat` of copies, so a
    /// multi-cycle pattern advances once per cycle, unlike `fast`.
    pub fn repeat(self, n: usize) -> Self {
        fastcat(vec![self; n.clamp(1, 4096)])
    }

    /// Shifts the pattern earlier by `t` cycles (Tidal's `<~`).
    pub fn early(self, t: impl Into<Param>) -> Self {
        t.into()
            .apply(self, |p, t| p.with_time(move |x| x + t, move |x| x - t))
    }

    /// Shifts the pattern later by `t` cycles (Tidal's `~>`).
    pub fn late(self, t: impl Into<Param>) -> Self {
        t.into()
            .apply(self, |p, t| p.with_time(move |x| x - t, move |x| x + t))
    }

    /// Reverses every cycle.
    pub fn rev(self) -> Self {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for span in st.span.cycle_iter()? {
                let cyc = span.begin.sam();
                let next = cyc.next_sam()?;
                let reflect = |t: Q| cyc + (next - t)?;
                let reflect_span = |s: Span| Ok(Span::new(reflect(s.end)?, reflect(s.begin)?));
                for h in self.query(&st.with_span(reflect_span(span)?))? {
                    out.push(h.with_span(reflect_span)?);
                }
            }
            Ok(out)
        })
    }

    /// `f` applied on the cycles where `test(cycle)` holds, the pattern as is elsewhere.
    pub fn when_cycle(
        self,
        test: impl Fn(i64) -> bool + Send + Sync + 'static,
        f: impl FnOnce(Pattern<T>) -> Pattern<T>,
    ) -> Self {
        let transformed = f(self.clone());
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for span in st.span.cycle_iter()? {
                let p = if test(span.cycle()) {
                    &transformed
                } else {
                    &self
                };
                out.extend(p.query(&st.with_span(span))?);
            }
            Ok(out)
        })
    }

    /// `f` applied every `n`th cycle, starting at cycle 0 (cycles −n, 0, n, 2n …; Euclidean
    /// modulo, so negative cycles are right too). `n ≤ 0` leaves the pattern alone.
    pub fn every(self, n: i64, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.every_offset(n, 0, f)
    }

    /// `f` on cycles where `cycle mod n == offset`.
    pub fn every_offset(
        self,
        n: i64,
        offset: i64,
        f: impl FnOnce(Pattern<T>) -> Pattern<T>,
    ) -> Self {
        if n <= 0 {
            return self;
        }
        let o = offset.rem_euclid(n);
        self.when_cycle(move |c| c.rem_euclid(n) == o, f)
    }

    /// Keeps the events whose random number (at their whole's start, `seed` as in
    /// [`rand_at`]) is at least `prob` (`inverse`: below it). Tidal's `_degradeByUsing` and
    /// `_unDegradeBy`.
    fn degrade_with(self, prob: Param, seed: u32, inverse: bool) -> Self {
        let keep = move |r: f64, p: Q| {
            if inverse {
                r < p.to_f64()
            } else {
                r >= p.to_f64()
            }
        };
        match prob {
            Param::Const(p) => {
                self.filter_haps(move |h, _| keep(rand_at(h.whole_or_part().begin, seed), p))
            }
            Param::Pat(pp) => {
                let tagged = self.app_left(pp, |v, p| (v.clone(), *p));
                Pattern::new(move |st| {
                    let mut out = Vec::new();
                    for h in tagged.query(st)? {
                        let r = rand_at(h.whole_or_part().begin, seed);
                        if keep(r, h.value.1) {
                            out.push(h.with_value(|(v, _)| v));
                        }
                    }
                    Ok(out)
                })
            }
        }
    }

    /// Drops each event with probability `p`: Tidal's `degradeBy` (seed 0) or mini-notation's
    /// `?` (its seed), so it drops the events Tidal drops. The number is a function of the
    /// event's start alone, so replays agree.
    pub fn degrade_by(self, p: impl Into<Param>, seed: u32) -> Self {
        self.degrade_with(p.into(), seed, false)
    }

    /// Keeps exactly the events `degrade_by(p, seed)` drops (Tidal's `unDegradeBy`).
    pub fn undegrade_by(self, p: impl Into<Param>, seed: u32) -> Self {
        self.degrade_with(p.into(), seed, true)
    }

    /// Applies `f` to each event with probability `p` (Tidal's `sometimesBy`, with seed 0):
    /// every event is either transformed or not, never both and never neither (the same draw
    /// decides both halves).
    pub fn sometimes_by(
        self,
        p: impl Into<Param>,
        seed: u32,
        f: impl FnOnce(Pattern<T>) -> Pattern<T>,
    ) -> Self {
        let p = p.into();
        let plain = self.clone().degrade_with(p.clone(), seed, false);
        let changed = f(self.degrade_with(p, seed, true));
        stack(vec![plain, changed])
    }

    /// `sometimes_by(1/2)`.
    pub fn sometimes(self, seed: u32, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(1, 2).unwrap_or(Q::ZERO), seed, f)
    }

    /// `sometimes_by(3/4)`.
    pub fn often(self, seed: u32, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(3, 4).unwrap_or(Q::ZERO), seed, f)
    }

    /// `sometimes_by(1/4)`.
    pub fn rarely(self, seed: u32, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(1, 4).unwrap_or(Q::ZERO), seed, f)
    }

    /// Keeps the pattern's structure where `mask` is true (events are cut at its edges).
    pub fn mask(self, mask: Pattern<bool>) -> Self {
        self.app_left(mask, |v, b| (v.clone(), *b))
            .filter_values(|(_, b)| *b)
            .fmap(|(v, _)| v.clone())
    }

    /// Takes the structure (wholes) from `bools`' true events and the values from `self`
    /// sampled there; works on any pattern, at query time.
    pub fn struct_(self, bools: Pattern<bool>) -> Self {
        bools.filter_values(|b| *b).app_left(self, |_, v| v.clone())
    }

    /// The euclid rhythm `(k, n, r)` imposed on the pattern (Strudel's `euclidRot`).
    pub fn euclid(self, k: impl Into<Param>, n: impl Into<Param>, r: impl Into<Param>) -> Self {
        match (k.into(), n.into(), r.into()) {
            (Param::Const(k), Param::Const(n), Param::Const(r)) => {
                self.struct_(euclid_bools(k.floor(), n.floor(), r.floor()))
            }
            (k, n, r) => {
                let args = k
                    .pattern()
                    .app_left(n.pattern(), |k, n| (*k, *n))
                    .app_left(r.pattern(), |(k, n), r| (*k, *n, *r));
                args.inner_bind(move |(k, n, r)| {
                    self.clone()
                        .struct_(euclid_bools(k.floor(), n.floor(), r.floor()))
                })
            }
        }
    }

    /// `f` applied to the events whose onset lies in `[b, e)` of each cycle; the rest as is.
    pub fn within(self, b: Q, e: Q, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        let inside = move |h: &Hap<T>| {
            let pos = h.whole_or_part().begin.cycle_pos();
            b <= pos && pos < e
        };
        let changed = f(self.clone()).filter_haps(move |h, _| inside(h));
        let kept = self.filter_haps(move |h, _| !inside(h));
        stack(vec![changed, kept])
    }

    /// Tidal's `swingBy x n`: splits each cycle into `n` parts and delays the events in the
    /// second half of each part by `x` (in cycles of the part): `inside n (within (½,1) (x ~>))`.
    pub fn swing_by(self, x: Q, n: Q) -> Self {
        let half = Q::new(1, 2).unwrap_or(Q::ZERO);
        self.slow(n).within(half, Q::ONE, |p| p.late(x)).fast(n)
    }

    /// `swing_by(1/3, n)`: the usual triplet swing.
    pub fn swing(self, n: Q) -> Self {
        self.swing_by(Q::new(1, 3).unwrap_or(Q::ZERO), n)
    }

    /// Each event repeated `n` times within its own span.
    pub fn ply(self, n: impl Into<Param>) -> Self {
        n.into().apply(self, |p, n| {
            p.squeeze_bind(move |v| Pattern::pure(v.clone()).fast(n))
        })
    }

    /// For each event, `f(value)`'s first cycle squeezed into the event's whole.
    pub fn squeeze_bind<U: Val>(
        self,
        f: impl Fn(&T) -> Pattern<U> + Send + Sync + 'static,
    ) -> Pattern<U> {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for outer in self.query(st)? {
                let Some(w) = outer.whole else { continue };
                let dur = w.duration()?;
                if dur.is_zero() {
                    continue;
                }
                let to_inner = |t: Q| (t - w.begin)? / dur;
                let to_outer = |t: Q| w.begin + (t * dur)?;
                let inner_span = outer.part.with_time(to_inner)?;
                for h in f(&outer.value)
                    .compress(Q::ZERO, Q::ONE)
                    .query(&st.with_span(inner_span))?
                {
                    let h = h.with_span(|s| s.with_time(to_outer))?;
                    if let Some(part) = h.part.sect(outer.part) {
                        out.push(Hap::new(h.whole, part, h.value));
                    }
                }
            }
            Ok(out)
        })
    }

    /// The pattern, then the pattern reversed, alternating cycles.
    pub fn palindrome(self) -> Self {
        slowcat(vec![self.clone(), self.rev()])
    }

    /// Samples the pattern `n` times per cycle, giving discrete events (for continuous ones).
    pub fn segment(self, n: impl Into<Param>) -> Self {
        n.into().apply(self, |p, n| {
            Pattern::pure(()).fast(n).app_left(p, |_, v| v.clone())
        })
    }
}

impl Pattern<Q> {
    /// Maps values in `0..1` onto `lo..hi` (`lo + v·(hi − lo)`).
    pub fn range(self, lo: Q, hi: Q) -> Self {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for h in self.query(st)? {
                let v = (lo + (h.value * (hi - lo)?)?)?;
                out.push(h.with_value(|_| v));
            }
            Ok(out)
        })
    }

    /// Whether each value is above `threshold` (a gate for `mask`/`struct`).
    pub fn above(self, threshold: Q) -> Pattern<bool> {
        self.fmap(move |v| *v > threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mini::{self, Value};
    use crate::pattern::{Context, State};
    use crate::time::q;

    /// `compress` as it was written before its window shortcuts: the reference.
    fn compress_ref<T: Val>(p: Pattern<T>, b: Q, e: Q) -> Pattern<T> {
        if b >= e || b < Q::ZERO || e > Q::ONE {
            return Pattern::silence();
        }
        Pattern::new(move |st| {
            let width = (e - b)?;
            let mut out = Vec::new();
            for span in st.span.cycles()? {
                let c = span.begin.sam();
                let window = Span::new((c + b)?, (c + e)?);
                let Some(part) = span.sect(window) else {
                    continue;
                };
                let to_inner = |t: Q| c + ((t - window.begin)? / width)?;
                let to_outer = |t: Q| window.begin + ((t - c)? * width)?;
                let inner = part.with_time(to_inner)?;
                for h in p.query(&st.with_span(inner))? {
                    let h = h.with_span(|s| s.with_time(to_outer))?;
                    if let Some(x) = h.part.sect(part) {
                        out.push(Hap::new(h.whole, x, h.value));
                    }
                }
            }
            Ok(out)
        })
    }

    /// `timecat` as it was written before the sequence node: a stack of compressed parts.
    fn timecat_ref<T: Val>(parts: Vec<(Q, Pattern<T>)>) -> Result<Pattern<T>, TimeError> {
        let mut total = Q::ZERO;
        for (w, _) in &parts {
            total = (total + *w)?;
        }
        if total <= Q::ZERO {
            return Ok(Pattern::silence());
        }
        let mut begin = Q::ZERO;
        let mut out = Vec::new();
        for (w, p) in parts {
            if w <= Q::ZERO {
                continue;
            }
            let end = (begin + w)?;
            out.push(compress_ref(p, (begin / total)?, (end / total)?));
            begin = end;
        }
        Ok(stack(out))
    }

    /// The sequence node gives exactly the old stack-of-compress answer — the same haps in
    /// the same (unsorted) order, and the same errors — for assorted children, weights
    /// (including non-positive ones) and spans (negative, point, multi-cycle, huge).
    #[test]
    fn timecat_matches_stacked_compress() {
        let kids = [
            "a", "a b", "a*3 ~", "<a b>/2", "a?", "a(3,8,1)", "[a, b c]", "a@3 b", "a/3",
        ];
        let kids: Vec<Pattern<Value>> = kids.iter().map(|k| mini::parse(k).unwrap()).collect();
        let weight_sets: [&[Q]; 5] = [
            &[Q::ONE; 16],
            &[Q::ONE, q(2, 1), q(1, 3)],
            &[q(3, 2), Q::ZERO, q(1, 7), Q::ONE],
            &[q(2, 1), q(-1, 1), Q::ONE],
            &[q(1, 5)],
        ];
        let spans = [
            (Q::ZERO, Q::ONE),
            (q(-7, 3), q(5, 2)),
            (q(1, 3), q(1, 3)),
            (q(3, 4), q(3, 4)),
            (q(5, 2), q(1, 2)),
            (q(11, 6), q(23, 6)),
            (Q::int(i64::MAX - 1), Q::int(i64::MAX)),
            (q(i64::MAX - 1, 2), q(i64::MAX, 2)),
            (Q::int(i64::MIN), Q::int(i64::MIN + 1)),
            (Q::ZERO, Q::int(5000)),
        ];
        let ctx = Context::default();
        let (mut haps, mut errors) = (0, 0);
        for (i, weights) in weight_sets.iter().enumerate() {
            let parts = |shift: usize| -> Vec<(Q, Pattern<Value>)> {
                weights
                    .iter()
                    .enumerate()
                    .map(|(j, w)| (*w, kids[(i + j + shift) % kids.len()].clone()))
                    .collect()
            };
            for shift in 0..kids.len() {
                let new = timecat(parts(shift)).unwrap();
                let old = timecat_ref(parts(shift)).unwrap();
                for (b, e) in spans {
                    let st = State {
                        span: Span::new(b, e),
                        ctx: &ctx,
                    };
                    ctx.work.set(0);
                    let got = new.query(&st);
                    ctx.work.set(0);
                    assert_eq!(
                        got,
                        old.query(&st),
                        "weights {i}, shift {shift}, [{b}, {e})"
                    );
                    match got {
                        Ok(h) => haps += h.len(),
                        Err(_) => errors += 1,
                    }
                }
            }
        }
        // Both the answers and the error paths were exercised.
        assert!(haps > 1000 && errors > 10, "{haps} haps, {errors} errors");
    }

    fn show(bits: &[bool]) -> String {
        bits.iter().map(|b| if *b { 'x' } else { '.' }).collect()
    }

    #[test]
    fn bjorklund_matches_toussaint() {
        assert_eq!(show(&bjorklund(3, 8)), "x..x..x.");
        assert_eq!(show(&bjorklund(5, 8)), "x.xx.xx.");
        assert_eq!(show(&bjorklund(2, 5)), "x.x..");
        assert_eq!(show(&bjorklund(4, 12)), "x..x..x..x..");
        assert_eq!(show(&bjorklund(7, 16)), "x..x.x.x..x.x.x.");
        assert_eq!(show(&bjorklund(0, 4)), "....");
        assert_eq!(show(&bjorklund(4, 4)), "xxxx");
        assert_eq!(show(&bjorklund(9, 4)), "xxxx");
    }
}
