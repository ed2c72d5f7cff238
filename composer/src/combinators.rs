//! The pattern combinators, with TidalCycles semantics. Each one says what it does in its doc;
//! the conformance tests in `tests/conformance.rs` pin the exact rational results.
//!
//! Numeric arguments are [`Param`]s: a constant, or a pattern of numbers (including a live
//! signal expression), applied the way Tidal applies patterned arguments (`innerJoin`: the
//! argument is sampled over each stretch of time and the transformed pattern keeps its own
//! structure).

use crate::pattern::{Pattern, Val, rand_at};
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
        for span in st.span.cycles()? {
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
pub fn timecat<T: Val>(parts: Vec<(Q, Pattern<T>)>) -> Result<Pattern<T>, TimeError> {
    let mut total = Q::ZERO;
    for (w, _) in &parts {
        total = (total + *w)?;
    }
    if total <= Q::ZERO {
        return Ok(Pattern::silence());
    }
    let mut begin = Q::ZERO;
    let mut out = Vec::with_capacity(parts.len());
    for (w, p) in parts {
        if w <= Q::ZERO {
            continue;
        }
        let end = (begin + w)?;
        out.push(p.compress((begin / total)?, (end / total)?));
        begin = end;
    }
    Ok(if out.len() == 1 {
        out.pop().unwrap_or_else(Pattern::silence)
    } else {
        stack(out)
    })
}

/// Per cycle, one of the patterns picked at random (seeded by slot, cycle and `salt`).
pub fn randcat<T: Val>(pats: Vec<Pattern<T>>, salt: u64) -> Pattern<T> {
    if pats.is_empty() {
        return Pattern::silence();
    }
    Pattern::new(move |st| {
        let mut out = Vec::new();
        for span in st.span.cycles()? {
            let c = span.begin.sam();
            let i = (rand_at(st.ctx.seed, c, salt) * pats.len() as f64) as usize;
            out.extend(pats[i.min(pats.len() - 1)].query(&st.with_span(span))?);
        }
        Ok(out)
    })
}

/// A continuous random choice among `values` (sample it with `segment` or `struct`).
pub fn choose<T: Val>(values: Vec<T>, salt: u64) -> Pattern<T> {
    if values.is_empty() {
        return Pattern::silence();
    }
    Pattern::signal(move |t, ctx| {
        let i = (rand_at(ctx.seed, t, salt) * values.len() as f64) as usize;
        Ok(values[i.min(values.len() - 1)].clone())
    })
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
            for span in st.span.cycles()? {
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
            for span in st.span.cycles()? {
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

    fn degrade_with(self, prob: Param, salt: u64, inverse: bool) -> Self {
        let keep = move |r: f64, p: Q| {
            if inverse {
                r < p.to_f64()
            } else {
                r >= p.to_f64()
            }
        };
        match prob {
            Param::Const(p) => self.filter_haps(move |h, ctx| {
                keep(rand_at(ctx.seed, h.whole_or_part().begin, salt), p)
            }),
            Param::Pat(pp) => {
                let tagged = self.app_left(pp, |v, p| (v.clone(), *p));
                Pattern::new(move |st| {
                    let mut out = Vec::new();
                    for h in tagged.query(st)? {
                        let r = rand_at(st.ctx.seed, h.whole_or_part().begin, salt);
                        if keep(r, h.value.1) {
                            out.push(h.with_value(|(v, _)| v));
                        }
                    }
                    Ok(out)
                })
            }
        }
    }

    /// Drops each event with probability `p`, decided by a hash of the slot seed, the event's
    /// onset and `salt` (so two uses in one pattern differ, and replays agree).
    pub fn degrade_by(self, p: impl Into<Param>, salt: u64) -> Self {
        self.degrade_with(p.into(), salt, false)
    }

    /// Keeps exactly the events `degrade_by(p, salt)` drops.
    pub fn undegrade_by(self, p: impl Into<Param>, salt: u64) -> Self {
        self.degrade_with(p.into(), salt, true)
    }

    /// Applies `f` to each event with probability `p`; every event is either transformed or
    /// not, never both and never neither (the same draw decides both halves).
    pub fn sometimes_by(
        self,
        p: impl Into<Param>,
        salt: u64,
        f: impl FnOnce(Pattern<T>) -> Pattern<T>,
    ) -> Self {
        let p = p.into();
        let plain = self.clone().degrade_with(p.clone(), salt, false);
        let changed = f(self.degrade_with(p, salt, true));
        stack(vec![plain, changed])
    }

    /// `sometimes_by(1/2)`.
    pub fn sometimes(self, salt: u64, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(1, 2).unwrap_or(Q::ZERO), salt, f)
    }

    /// `sometimes_by(3/4)`.
    pub fn often(self, salt: u64, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(3, 4).unwrap_or(Q::ZERO), salt, f)
    }

    /// `sometimes_by(1/4)`.
    pub fn rarely(self, salt: u64, f: impl FnOnce(Pattern<T>) -> Pattern<T>) -> Self {
        self.sometimes_by(Q::new(1, 4).unwrap_or(Q::ZERO), salt, f)
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
