//! The pattern core: a pattern is a function from a query span (plus the live context) to
//! haps. Everything else — combinators, mini-notation, scores — builds on the few primitives
//! here: `pure`, `signal`, time mapping, `app_left` and `inner_join`.

use std::sync::Arc;

use crate::levels::Signals;
use crate::span::{Hap, Span};
use crate::time::{Q, TimeError};

/// What a query sees besides its span: the quantised signal levels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// Kernel signal levels at query time (quantised, so replays are exact).
    pub signals: Signals,
    /// Leaf events made by the current top-level query; past [`MAX_QUERY_WORK`] the query
    /// fails with `TooDense` instead of exhausting memory (found by fuzzing `a*4064!7…`).
    pub work: std::cell::Cell<u64>,
}

/// Most leaf events one top-level query may make.
pub const MAX_QUERY_WORK: u64 = 1 << 18;

impl Context {
    fn charge(&self, n: u64) -> Result<(), TimeError> {
        let w = self.work.get() + n;
        self.work.set(w);
        if w > MAX_QUERY_WORK {
            return Err(TimeError::TooDense);
        }
        Ok(())
    }
}

/// A query: the span and the context.
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    /// The span asked for.
    pub span: Span,
    /// Signals and the work done.
    pub ctx: &'a Context,
}

impl<'a> State<'a> {
    /// The same query over another span.
    pub fn with_span(&self, span: Span) -> State<'a> {
        State {
            span,
            ctx: self.ctx,
        }
    }
}

/// The result of a query.
pub type Haps<T> = Result<Vec<Hap<T>>, TimeError>;

/// The meeting of two wholes (Tidal's `subMaybeArc`): `None` when two wholes do not meet (the
/// pair makes no hap), `Some(None)` when either side is continuous.
fn meet(a: Option<Span>, b: Option<Span>) -> Option<Option<Span>> {
    match (a, b) {
        (Some(a), Some(b)) => a.sect(b).map(Some),
        _ => Some(None),
    }
}

type QueryFn<T> = dyn Fn(&State<'_>) -> Haps<T> + Send + Sync;

/// Values patterns can carry.
pub trait Val: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Val for T {}

/// A pattern of `T`: cheap to clone (shared query function).
pub struct Pattern<T> {
    query: Arc<QueryFn<T>>,
}

impl<T> Clone for Pattern<T> {
    fn clone(&self) -> Self {
        Pattern {
            query: Arc::clone(&self.query),
        }
    }
}

impl<T> std::fmt::Debug for Pattern<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pattern")
    }
}

impl<T: Val> Pattern<T> {
    /// A pattern from a query function.
    pub fn new(f: impl Fn(&State<'_>) -> Haps<T> + Send + Sync + 'static) -> Self {
        Pattern { query: Arc::new(f) }
    }

    /// Queries the pattern (unsorted, as the combinators produce them).
    pub fn query(&self, state: &State<'_>) -> Haps<T> {
        (self.query)(state)
    }

    /// Queries `[begin, end)` and sorts the haps by part start (stable).
    pub fn query_span(&self, begin: Q, end: Q, ctx: &Context) -> Haps<T> {
        ctx.work.set(0);
        let mut haps = self.query(&State {
            span: Span::new(begin, end),
            ctx,
        })?;
        haps.sort_by_key(|h| h.part.begin);
        Ok(haps)
    }

    /// Only the haps that start inside `[begin, end)` (onsets), sorted.
    pub fn onsets(&self, begin: Q, end: Q, ctx: &Context) -> Haps<T> {
        if begin >= end {
            return Ok(Vec::new());
        }
        let mut haps = self.query_span(begin, end, ctx)?;
        haps.retain(Hap::has_onset);
        Ok(haps)
    }

    /// Nothing, ever.
    pub fn silence() -> Self {
        Pattern::new(|_| Ok(Vec::new()))
    }

    /// `v` once per cycle.
    pub fn pure(v: T) -> Self {
        Pattern::new(move |st| {
            let mut out = Vec::with_capacity(1);
            let parts = st.span.cycle_iter()?;
            st.ctx.charge(parts.len() as u64)?;
            for part in parts {
                let c = part.begin.sam();
                out.push(Hap::new(Some(Span::new(c, c.next_sam()?)), part, v.clone()));
            }
            Ok(out)
        })
    }

    /// A continuous pattern: one hap without a whole per query, valued at the query's start.
    pub fn signal(f: impl Fn(Q, &Context) -> Result<T, TimeError> + Send + Sync + 'static) -> Self {
        Pattern::new(move |st| {
            st.ctx.charge(1)?;
            Ok(vec![Hap::new(None, st.span, f(st.span.begin, st.ctx)?)])
        })
    }

    /// Splits every query at cycle boundaries (for functions that decide per cycle).
    pub fn split_queries(self) -> Self {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for span in st.span.cycle_iter()? {
                out.extend(self.query(&st.with_span(span))?);
            }
            Ok(out)
        })
    }

    /// Maps query times with `to_inner` and hap times back with `to_outer`.
    pub fn with_time(
        self,
        to_inner: impl Fn(Q) -> Result<Q, TimeError> + Send + Sync + 'static,
        to_outer: impl Fn(Q) -> Result<Q, TimeError> + Send + Sync + 'static,
    ) -> Self {
        Pattern::new(move |st| {
            let span = st.span.with_time(&to_inner)?;
            self.query(&st.with_span(span))?
                .into_iter()
                .map(|h| h.with_span(|s| s.with_time(&to_outer)))
                .collect()
        })
    }

    /// Maps values.
    pub fn fmap<U: Val>(self, f: impl Fn(&T) -> U + Send + Sync + 'static) -> Pattern<U> {
        Pattern::new(move |st| {
            Ok(self
                .query(st)?
                .into_iter()
                .map(|h| h.with_value(|v| f(&v)))
                .collect())
        })
    }

    /// Keeps the haps `keep` accepts.
    pub fn filter_haps(
        self,
        keep: impl Fn(&Hap<T>, &Context) -> bool + Send + Sync + 'static,
    ) -> Self {
        Pattern::new(move |st| {
            let mut haps = self.query(st)?;
            haps.retain(|h| keep(h, st.ctx));
            Ok(haps)
        })
    }

    /// Keeps the values `keep` accepts.
    pub fn filter_values(self, keep: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.filter_haps(move |h, _| keep(&h.value))
    }

    /// Structure from `self`, values combined with `other`'s values sampled over each hap's
    /// whole (Tidal's `<*`, used by `#` and by patterned parameters).
    pub fn app_left<U: Val, V: Val>(
        self,
        other: Pattern<U>,
        f: impl Fn(&T, &U) -> V + Send + Sync + 'static,
    ) -> Pattern<V> {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for h in self.query(st)? {
                let over = h.whole_or_part();
                for o in other.query(&st.with_span(over))? {
                    if let Some(part) = h.part.sect(o.part) {
                        out.push(Hap::new(h.whole, part, f(&h.value, &o.value)));
                    }
                }
            }
            Ok(out)
        })
    }

    /// Structure from both sides: every pair of haps whose parts meet gives one hap over the
    /// meeting, its whole the meeting of the wholes (Tidal's `<*>`).
    pub fn app_both<U: Val, V: Val>(
        self,
        other: Pattern<U>,
        f: impl Fn(&T, &U) -> V + Send + Sync + 'static,
    ) -> Pattern<V> {
        Pattern::new(move |st| {
            let right = other.query(st)?;
            let mut out = Vec::new();
            for l in self.query(st)? {
                for r in &right {
                    let Some(whole) = meet(l.whole, r.whole) else {
                        continue;
                    };
                    if let Some(part) = l.part.sect(r.part) {
                        out.push(Hap::new(whole, part, f(&l.value, &r.value)));
                    }
                }
            }
            Ok(out)
        })
    }

    /// For each hap of `self`, the pattern `f(value)` queried over that hap's part; each inner
    /// hap keeps the meeting of its whole with the outer whole (Tidal's `unwrap`, the join of
    /// `>>=`: an inner event cut by the outer one starts where the outer one starts).
    pub fn bind<U: Val>(self, f: impl Fn(&T) -> Pattern<U> + Send + Sync + 'static) -> Pattern<U> {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for outer in self.query(st)? {
                for inner in f(&outer.value).query(&st.with_span(outer.part))? {
                    let Some(whole) = meet(outer.whole, inner.whole) else {
                        continue;
                    };
                    if let Some(part) = outer.part.sect(inner.part) {
                        out.push(Hap::new(whole, part, inner.value));
                    }
                }
            }
            Ok(out)
        })
    }

    /// For each hap of `self`, the pattern `f(value)` queried over that hap's part, keeping
    /// the inner structure (Tidal's `innerJoin`; how patterned arguments work).
    pub fn inner_bind<U: Val>(
        self,
        f: impl Fn(&T) -> Pattern<U> + Send + Sync + 'static,
    ) -> Pattern<U> {
        Pattern::new(move |st| {
            let mut out = Vec::new();
            for outer in self.query(st)? {
                for inner in f(&outer.value).query(&st.with_span(outer.part))? {
                    if let Some(part) = inner.part.sect(outer.part)
                        && let Some(part) = part.sect(st.span)
                    {
                        out.push(Hap::new(inner.whole, part, inner.value));
                    }
                }
            }
            Ok(out)
        })
    }

    /// Plays `self` squeezed into each cycle window `[b, e)` (fractions of a cycle), silent
    /// elsewhere (Tidal's `compress`).
    pub fn compress(self, b: Q, e: Q) -> Self {
        if b >= e || b < Q::ZERO || e > Q::ONE {
            return Pattern::silence();
        }
        Pattern::new(move |st| {
            let width = (e - b)?;
            let mut out = Vec::new();
            for span in st.span.cycle_iter()? {
                self.query_window(st, span, b, e, width, &mut out)?;
            }
            Ok(out)
        })
    }

    /// One cycle's piece `span` of a [`Pattern::compress`] query: `self`'s cycle squeezed
    /// into the window `[c + b, c + e)` (`width = e − b`), its haps pushed onto `out`.
    ///
    /// The maps are `c + (t − window.begin) / width` in and `window.begin + (t − c) · width`
    /// out. Sequences query whole windows of whole-cycle events, so nearly every time mapped
    /// is a window edge, the cycle start, or a query edge mapped back; those are answered
    /// without arithmetic. Each shortcut is the exact value the formula gives, and the
    /// formula cannot overflow there (its intermediates were computed on the way in), so the
    /// results and errors are the formula's.
    pub(crate) fn query_window(
        &self,
        st: &State<'_>,
        span: Span,
        b: Q,
        e: Q,
        width: Q,
        out: &mut Vec<Hap<T>>,
    ) -> Result<(), TimeError> {
        let c = span.begin.sam();
        let window = Span::new((c + b)?, (c + e)?);
        let Some(part) = span.sect(window) else {
            return Ok(());
        };
        let to_inner = |t: Q| {
            if t == window.begin {
                Ok(c)
            } else if t == window.end {
                c + Q::ONE
            } else {
                c + ((t - window.begin)? / width)?
            }
        };
        let inner = part.with_time(to_inner)?;
        let next_c = c.numer().checked_add(1).map(Q::int);
        let to_outer = |t: Q| {
            if t == c {
                Ok(window.begin)
            } else if t == inner.begin {
                Ok(part.begin)
            } else if t == inner.end {
                Ok(part.end)
            } else if Some(t) == next_c {
                Ok(window.end)
            } else {
                window.begin + ((t - c)? * width)?
            }
        };
        // Mapped in place (whole, then part, as `Hap::with_span` does): a hap is large, and
        // rebuilding it per step showed up as most of this function's time.
        for mut h in self.query(&st.with_span(inner))? {
            if let Some(w) = h.whole {
                h.whole = Some(w.with_time(to_outer)?);
            }
            if let Some(p) = h.part.with_time(to_outer)?.sect(part) {
                h.part = p;
                out.push(h);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    #[test]
    fn pure_gives_one_whole_per_cycle() {
        let ctx = Context::default();
        let haps = Pattern::pure('a')
            .query_span(q(1, 2), q(5, 2), &ctx)
            .unwrap();
        assert_eq!(haps.len(), 3);
        assert_eq!(haps[0].whole, Some(Span::new(Q::ZERO, Q::ONE)));
        assert!(!haps[0].has_onset());
        assert!(haps[1].has_onset());
        assert_eq!(haps[2].part, Span::new(Q::int(2), q(5, 2)));
    }

    #[test]
    fn compress_squeezes_into_a_window() {
        let ctx = Context::default();
        let haps = Pattern::pure(1)
            .compress(q(1, 4), q(3, 4))
            .query_span(Q::ZERO, Q::int(2), &ctx)
            .unwrap();
        let wholes: Vec<_> = haps.iter().map(|h| h.whole.unwrap()).collect();
        assert_eq!(
            wholes,
            vec![Span::new(q(1, 4), q(3, 4)), Span::new(q(5, 4), q(7, 4))]
        );
    }
}
