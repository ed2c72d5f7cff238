//! Time spans and events ("haps"), with TidalCycles/Strudel semantics.
//!
//! A pattern answers a query span with haps. A hap's `whole` is the full extent of the event
//! it is a fragment of; its `part` is the fragment inside the query. An onset is a hap whose
//! `part` begins where its `whole` begins. Continuous patterns (signals) have no `whole`.

use std::fmt;

use crate::time::{MAX_QUERY_CYCLES, Q, TimeError};

/// A half-open time span `[begin, end)` in cycles.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// Start (inclusive).
    pub begin: Q,
    /// End (exclusive).
    pub end: Q,
}

impl Span {
    /// `[begin, end)`.
    pub fn new(begin: Q, end: Q) -> Span {
        Span { begin, end }
    }

    /// The span split at every cycle boundary it crosses. A zero-width span yields itself,
    /// so point queries (used to sample continuous patterns) still get an answer.
    pub fn cycles(self) -> Result<Vec<Span>, TimeError> {
        Ok(self.cycle_iter()?.collect())
    }

    /// [`Span::cycles`] without the `Vec`: queries split every span this way, and most
    /// cover a single cycle, so the allocation was most of the splitting's cost.
    pub fn cycle_iter(self) -> Result<Cycles, TimeError> {
        if self.begin >= self.end {
            let left = u64::from(self.begin == self.end);
            return Ok(Cycles {
                begin: self.begin,
                end: self.end,
                left,
            });
        }
        let count = self.end.ceil() as i128 - self.begin.floor() as i128;
        if count > MAX_QUERY_CYCLES as i128 {
            return Err(TimeError::TooDense);
        }
        Ok(Cycles {
            begin: self.begin,
            end: self.end,
            left: count as u64,
        })
    }

    /// Applies `f` to both ends.
    pub fn with_time(
        self,
        mut f: impl FnMut(Q) -> Result<Q, TimeError>,
    ) -> Result<Span, TimeError> {
        Ok(Span::new(f(self.begin)?, f(self.end)?))
    }

    /// The intersection, if it is not empty. Zero-width spans intersect when the point lies
    /// inside the other span (or both are the same point).
    pub fn sect(self, o: Span) -> Option<Span> {
        let b = self.begin.max(o.begin);
        let e = self.end.min(o.end);
        if b < e {
            return Some(Span::new(b, e));
        }
        if b == e && (self.begin == self.end || o.begin == o.end) {
            // A point query: the point must lie inside both (a span holds [begin, end)).
            let holds = |s: Span| s.begin == s.end || (s.begin <= b && b < s.end);
            if holds(self) && holds(o) {
                return Some(Span::new(b, b));
            }
        }
        None
    }

    /// Length in cycles.
    pub fn duration(self) -> Result<Q, TimeError> {
        self.end - self.begin
    }

    /// The cycle this span starts in.
    pub fn cycle(self) -> i64 {
        self.begin.floor()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.begin, self.end)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The pieces of a span cut at cycle boundaries, in order (see [`Span::cycle_iter`]).
#[derive(Debug, Clone)]
pub struct Cycles {
    begin: Q,
    end: Q,
    left: u64,
}

impl Iterator for Cycles {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.begin >= self.end {
            // The zero-width case: the point itself, once.
            return Some(Span::new(self.begin, self.end));
        }
        // `begin < end <= i64::MAX`, so `floor(begin) + 1` cannot overflow.
        let e = Q::int(self.begin.floor() + 1).min(self.end);
        let piece = Span::new(self.begin, e);
        self.begin = e;
        Some(piece)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Cycles {}

/// An event (or a fragment of one) with a value.
#[derive(Clone, PartialEq, Debug)]
pub struct Hap<T> {
    /// The whole event's span; `None` for continuous values.
    pub whole: Option<Span>,
    /// The fragment inside the query.
    pub part: Span,
    /// The value.
    pub value: T,
}

impl<T> Hap<T> {
    /// A hap.
    pub fn new(whole: Option<Span>, part: Span, value: T) -> Self {
        Hap { whole, part, value }
    }

    /// Whether this fragment contains the event's start.
    pub fn has_onset(&self) -> bool {
        self.whole.is_some_and(|w| w.begin == self.part.begin)
    }

    /// The whole if there is one, else the part.
    pub fn whole_or_part(&self) -> Span {
        self.whole.unwrap_or(self.part)
    }

    /// Maps both spans' times.
    pub fn with_span(
        self,
        mut f: impl FnMut(Span) -> Result<Span, TimeError>,
    ) -> Result<Hap<T>, TimeError> {
        Ok(Hap {
            whole: self.whole.map(&mut f).transpose()?,
            part: f(self.part)?,
            value: self.value,
        })
    }

    /// Replaces the value.
    pub fn with_value<U>(self, f: impl FnOnce(T) -> U) -> Hap<U> {
        Hap {
            whole: self.whole,
            part: self.part,
            value: f(self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    #[test]
    fn spans_split_at_cycle_boundaries() {
        let s = Span::new(q(1, 2), q(5, 2));
        assert_eq!(
            s.cycles().unwrap(),
            vec![
                Span::new(q(1, 2), Q::ONE),
                Span::new(Q::ONE, Q::int(2)),
                Span::new(Q::int(2), q(5, 2))
            ]
        );
        let point = Span::new(q(1, 3), q(1, 3));
        assert_eq!(point.cycles().unwrap(), vec![point]);
        assert!(Span::new(Q::ONE, Q::ZERO).cycles().unwrap().is_empty());
        // Found by the fuzzer: `c*21111111` must be refused, not allocated.
        assert_eq!(
            Span::new(Q::ZERO, Q::int(1 << 20)).cycles(),
            Err(TimeError::TooDense)
        );
    }

    #[test]
    fn intersection() {
        let a = Span::new(Q::ZERO, Q::ONE);
        assert_eq!(
            a.sect(Span::new(q(1, 2), Q::int(2))),
            Some(Span::new(q(1, 2), Q::ONE))
        );
        assert_eq!(a.sect(Span::new(Q::ONE, Q::int(2))), None);
        let p = Span::new(q(1, 2), q(1, 2));
        assert_eq!(a.sect(p), Some(p));
        assert_eq!(p.sect(a), Some(p));
        assert_eq!(a.sect(Span::new(Q::ONE, Q::ONE)), None);
    }
}
