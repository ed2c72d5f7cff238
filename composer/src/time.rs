//! Exact rational time. Pattern time is measured in cycles; every onset, span and tempo anchor
//! is a ratio of two integers, so schedules never drift and never depend on float rounding.
//!
//! Overflow is an error ([`TimeError::Overflow`]), never a silent wrap or a float fallback.
//! Arithmetic is done in `i128` and reduced back to `i64`; operators return `Result` so `?`
//! carries the error out of any query.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Div, Mul, Sub};

/// Why a time computation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// A numerator or denominator no longer fits in 64 bits.
    #[error("rational time overflow")]
    Overflow,
    /// Division by zero (a zero speed, a zero-length span, a zero divisor in an expression).
    #[error("division by zero")]
    DivZero,
    /// A query would span more cycles than [`MAX_QUERY_CYCLES`] (speeds multiplied out too
    /// far); refused instead of exhausting memory.
    #[error("pattern too dense: one query would span more than {MAX_QUERY_CYCLES} cycles")]
    TooDense,
    /// A value that is not a finite number was used as time.
    #[error("{0} is not a finite number")]
    NotFinite(String),
}

/// Most cycles one (inner) query may span: `a*100000` is refused, not allocated.
pub const MAX_QUERY_CYCLES: i64 = 4096;

/// A reduced fraction `n / d` with `d > 0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Q {
    n: i64,
    d: i64,
}

fn gcd_u128(mut a: u128, mut b: u128) -> u128 {
    // Most values are small: finish in 64-bit arithmetic, which is several times faster.
    while b != 0 {
        if a <= u64::MAX as u128 && b <= u64::MAX as u128 {
            return gcd_u64(a as u64, b as u64) as u128;
        }
        (a, b) = (b, a % b);
    }
    a
}

/// Binary (Stein's) gcd: shifts and subtractions instead of a hardware division per step,
/// which dominates the cost of the small power-of-two denominators patterns are made of.
fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    // Integers (denominator 1) are everywhere, and the loop below needs a step per bit
    // of the other operand to find out.
    if a == 1 || b == 1 {
        return 1;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            (a, b) = (b, a);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

impl Q {
    /// Zero.
    pub const ZERO: Q = Q { n: 0, d: 1 };
    /// One.
    pub const ONE: Q = Q { n: 1, d: 1 };

    /// The integer `n`.
    pub const fn int(n: i64) -> Q {
        Q { n, d: 1 }
    }

    /// `n / d`, reduced.
    pub fn new(n: i64, d: i64) -> Result<Q, TimeError> {
        Self::from_i128(n as i128, d as i128)
    }

    fn from_i128(n: i128, d: i128) -> Result<Q, TimeError> {
        if d == 0 {
            return Err(TimeError::DivZero);
        }
        // Nearly every value fits in 64 bits; 128-bit division is a slow library call.
        if let (Ok(n), Ok(d)) = (i64::try_from(n), i64::try_from(d)) {
            return Self::from_i64(n, d);
        }
        let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
        let g = gcd_u128(n.unsigned_abs(), d as u128) as i128;
        let (n, d) = if g > 1 { (n / g, d / g) } else { (n, d) };
        match (i64::try_from(n), i64::try_from(d)) {
            (Ok(n), Ok(d)) => Ok(Q { n, d }),
            _ => Err(TimeError::Overflow),
        }
    }

    /// `n / d` reduced, for `d != 0`, in 64-bit arithmetic (magnitudes as `u64`, so
    /// `i64::MIN` needs no special case). Overflow exactly when the reduced value does not fit.
    fn from_i64(n: i64, d: i64) -> Result<Q, TimeError> {
        let negative = (n < 0) != (d < 0);
        let (nm, dm) = (n.unsigned_abs(), d.unsigned_abs());
        let g = gcd_u64(nm, dm);
        let (nm, dm) = if g > 1 { (nm / g, dm / g) } else { (nm, dm) };
        let d = i64::try_from(dm).map_err(|_| TimeError::Overflow)?;
        let n = if negative {
            0i64.checked_sub_unsigned(nm).ok_or(TimeError::Overflow)?
        } else {
            i64::try_from(nm).map_err(|_| TimeError::Overflow)?
        };
        Ok(Q { n, d })
    }

    /// `self + o` for unequal denominators in 64-bit arithmetic (Knuth's method: the result
    /// comes out reduced); `None` when an intermediate overflows, for the 128-bit path.
    fn add_i64(self, o: Q) -> Option<Q> {
        let g = gcd_u64(self.d as u64, o.d as u64) as i64;
        let (sd, od) = if g > 1 {
            (self.d / g, o.d / g)
        } else {
            (self.d, o.d)
        };
        let t = self.n.checked_mul(od)?.checked_add(o.n.checked_mul(sd)?)?;
        if t == 0 {
            return Some(Q::ZERO);
        }
        if g == 1 {
            return Some(Q {
                n: t,
                d: self.d.checked_mul(o.d)?,
            });
        }
        let g2 = gcd_u64(t.unsigned_abs(), g as u64) as i64;
        Some(Q {
            n: t / g2,
            d: sd.checked_mul(o.d / g2)?,
        })
    }

    /// `self * o` with cross-cancellation first, so both products are already reduced;
    /// `None` when one overflows 64 bits, for the 128-bit path.
    fn mul_i64(self, o: Q) -> Option<Q> {
        if self.n == 0 || o.n == 0 {
            return Some(Q::ZERO);
        }
        let g1 = gcd_u64(self.n.unsigned_abs(), o.d as u64) as i64;
        let g2 = gcd_u64(o.n.unsigned_abs(), self.d as u64) as i64;
        // Skip the (slow) divisions when there is nothing to cancel, the usual case.
        let (sn, od) = if g1 > 1 {
            (self.n / g1, o.d / g1)
        } else {
            (self.n, o.d)
        };
        let (on, sd) = if g2 > 1 {
            (o.n / g2, self.d / g2)
        } else {
            (o.n, self.d)
        };
        Some(Q {
            n: sn.checked_mul(on)?,
            d: sd.checked_mul(od)?,
        })
    }

    /// Numerator.
    pub fn numer(self) -> i64 {
        self.n
    }

    /// Denominator (always positive).
    pub fn denom(self) -> i64 {
        self.d
    }

    /// The largest integer not above `self`.
    pub fn floor(self) -> i64 {
        self.n.div_euclid(self.d)
    }

    /// The smallest integer not below `self`.
    pub fn ceil(self) -> i64 {
        // `-i64::MIN` does not fit; that one value (an integer) takes the 128-bit path.
        match self.n.checked_neg() {
            Some(neg) => -neg.div_euclid(self.d),
            None => -((-(self.n as i128)).div_euclid(self.d as i128)) as i64,
        }
    }

    /// Start of the cycle containing `self` (Tidal's `sam`).
    pub fn sam(self) -> Q {
        Q::int(self.floor())
    }

    /// Start of the next cycle.
    pub fn next_sam(self) -> Result<Q, TimeError> {
        self.sam() + Q::ONE
    }

    /// Position inside the cycle, in `[0, 1)`.
    pub fn cycle_pos(self) -> Q {
        Q {
            n: self.n.rem_euclid(self.d),
            d: self.d,
        }
    }

    /// Negation.
    pub fn negated(self) -> Result<Q, TimeError> {
        Ok(Q {
            n: self.n.checked_neg().ok_or(TimeError::Overflow)?,
            d: self.d,
        })
    }

    /// The nearest `f64` (for display and for sampling continuous values, never for time).
    pub fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }

    /// The exact value of a finite `f64` whose binary expansion fits; other values are
    /// rounded to the nearest multiple of 2⁻³⁰ (used only for non-time parameters).
    pub fn from_f64(v: f64) -> Result<Q, TimeError> {
        if !v.is_finite() {
            return Err(TimeError::NotFinite(v.to_string()));
        }
        const SCALE: f64 = (1u64 << 30) as f64;
        let scaled = (v * SCALE).round();
        if scaled.abs() >= i64::MAX as f64 {
            return Err(TimeError::Overflow);
        }
        Q::new(scaled as i64, 1 << 30)
    }

    /// Parses a decimal number (`3`, `-0.25`, `1.5`) exactly; `None` if malformed.
    pub fn parse_decimal(s: &str) -> Option<Result<Q, TimeError>> {
        // An exponent (`1e3`, `1.5e-2`) scales the mantissa by a power of ten, exactly.
        let (s, exp) = match s.split_once(['e', 'E']) {
            Some((m, e)) => {
                let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                match e.parse::<i32>() {
                    Ok(x) if x.abs() <= 18 => (m, x),
                    _ => return Some(Err(TimeError::Overflow)),
                }
            }
            None => (s, 0),
        };
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || digits.ends_with('.')
        {
            return None;
        }
        let mut n: i128 = 0;
        let mut d: i128 = 1;
        for b in int.bytes().chain(frac.bytes()) {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add((b - b'0') as i128))
            {
                Some(n) if n <= i64::MAX as i128 * 10 => n,
                _ => return Some(Err(TimeError::Overflow)),
            };
        }
        for _ in 0..frac.len() {
            d = match d.checked_mul(10) {
                Some(d) if d <= i64::MAX as i128 * 10 => d,
                _ => return Some(Err(TimeError::Overflow)),
            };
        }
        let scale = 10i128.pow(exp.unsigned_abs());
        let (n, d) = if exp >= 0 {
            (n.checked_mul(scale), Some(d))
        } else {
            (Some(n), d.checked_mul(scale))
        };
        match (n, d) {
            (Some(n), Some(d)) => Some(Q::from_i128(if neg { -n } else { n }, d)),
            _ => Some(Err(TimeError::Overflow)),
        }
    }

    /// The smaller of two.
    pub fn min(self, other: Q) -> Q {
        if self <= other { self } else { other }
    }

    /// The larger of two.
    pub fn max(self, other: Q) -> Q {
        if self >= other { self } else { other }
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.n == 0
    }
}

impl From<i64> for Q {
    fn from(n: i64) -> Q {
        Q::int(n)
    }
}

impl Add for Q {
    type Output = Result<Q, TimeError>;
    fn add(self, o: Q) -> Self::Output {
        if self.d == o.d {
            let n = self.n.checked_add(o.n).ok_or(TimeError::Overflow)?;
            if self.d == 1 {
                return Ok(Q { n, d: 1 });
            }
            return Q::from_i64(n, self.d);
        }
        if let Some(r) = self.add_i64(o) {
            return Ok(r);
        }
        Q::from_i128(
            self.n as i128 * o.d as i128 + o.n as i128 * self.d as i128,
            self.d as i128 * o.d as i128,
        )
    }
}

impl Sub for Q {
    type Output = Result<Q, TimeError>;
    fn sub(self, o: Q) -> Self::Output {
        if self.d == o.d {
            let n = self.n.checked_sub(o.n).ok_or(TimeError::Overflow)?;
            if self.d == 1 {
                return Ok(Q { n, d: 1 });
            }
            return Q::from_i64(n, self.d);
        }
        if let Some(neg) = o.n.checked_neg()
            && let Some(r) = self.add_i64(Q { n: neg, d: o.d })
        {
            return Ok(r);
        }
        Q::from_i128(
            self.n as i128 * o.d as i128 - o.n as i128 * self.d as i128,
            self.d as i128 * o.d as i128,
        )
    }
}

impl Mul for Q {
    type Output = Result<Q, TimeError>;
    fn mul(self, o: Q) -> Self::Output {
        if self.d == 1 && o.d == 1 {
            return Ok(Q::int(self.n.checked_mul(o.n).ok_or(TimeError::Overflow)?));
        }
        if let Some(r) = self.mul_i64(o) {
            return Ok(r);
        }
        Q::from_i128(self.n as i128 * o.n as i128, self.d as i128 * o.d as i128)
    }
}

impl Div for Q {
    type Output = Result<Q, TimeError>;
    fn div(self, o: Q) -> Self::Output {
        if o.n == 0 {
            return Err(TimeError::DivZero);
        }
        // Multiply by the reciprocal (itself reduced) unless its denominator `|o.n|` does
        // not fit, which only `i64::MIN` can cause.
        if let Some(abs) = o.n.checked_abs() {
            let inv = Q {
                n: if o.n < 0 { -o.d } else { o.d },
                d: abs,
            };
            if let Some(r) = self.mul_i64(inv) {
                return Ok(r);
            }
        }
        Q::from_i128(self.n as i128 * o.d as i128, self.d as i128 * o.n as i128)
    }
}

impl Ord for Q {
    fn cmp(&self, o: &Q) -> Ordering {
        if self.d == o.d {
            return self.n.cmp(&o.n);
        }
        (self.n as i128 * o.d as i128).cmp(&(o.n as i128 * self.d as i128))
    }
}

impl PartialOrd for Q {
    fn partial_cmp(&self, o: &Q) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.d == 1 {
            write!(f, "{}", self.n)
        } else {
            write!(f, "{}/{}", self.n, self.d)
        }
    }
}

impl std::str::FromStr for Q {
    type Err = String;

    /// Reads what `Display` writes: `n` or `n/d`.
    fn from_str(text: &str) -> Result<Q, String> {
        let int = |t: &str| {
            t.trim()
                .parse::<i64>()
                .map_err(|e| format!("{t:?} is not an integer ({e})"))
        };
        match text.split_once('/') {
            None => Ok(Q::int(int(text)?)),
            Some((n, d)) => Q::new(int(n)?, int(d)?).map_err(|e| e.to_string()),
        }
    }
}

impl fmt::Debug for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `n / d` for literals in code and tests; panics only on a zero denominator or overflow,
/// which in a literal is a programming error.
pub fn q(n: i64, d: i64) -> Q {
    match Q::new(n, d) {
        Ok(v) => v,
        Err(e) => panic!("bad rational literal {n}/{d}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        assert_eq!((q(1, 3) + q(1, 6)).unwrap(), q(1, 2));
        assert_eq!((q(1, 3) - q(1, 2)).unwrap(), q(-1, 6));
        assert_eq!((q(2, 3) * q(3, 4)).unwrap(), q(1, 2));
        assert_eq!((q(2, 3) / q(4, 3)).unwrap(), q(1, 2));
        assert_eq!(q(4, -8), q(-1, 2));
        assert_eq!(q(-1, 2).floor(), -1);
        assert_eq!(q(-1, 2).ceil(), 0);
        assert_eq!(q(7, 2).ceil(), 4);
        assert_eq!(q(-1, 4).cycle_pos(), q(3, 4));
        assert_eq!(q(-5, 4).sam(), Q::int(-2));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let big = Q::int(i64::MAX);
        assert_eq!(big + Q::ONE, Err(TimeError::Overflow));
        assert_eq!(big * Q::int(2), Err(TimeError::Overflow));
        let tiny = q(1, i64::MAX);
        assert_eq!(tiny * q(1, 3), Err(TimeError::Overflow));
        assert_eq!(q(1, 2) / Q::ZERO, Err(TimeError::DivZero));
        assert_eq!(Q::new(1, 0), Err(TimeError::DivZero));
        assert_eq!(Q::int(i64::MIN).negated(), Err(TimeError::Overflow));
    }

    /// The 64-bit fast paths against a plain 128-bit reference, over small, large and extreme
    /// values (the results, including which overflow, must be exactly the reference's).
    #[test]
    fn fast_paths_match_the_128_bit_reference() {
        fn reduce(n: i128, d: i128) -> Result<Q, TimeError> {
            if d == 0 {
                return Err(TimeError::DivZero);
            }
            let (mut n, mut d) = if d < 0 { (-n, -d) } else { (n, d) };
            let (mut a, mut b) = (n.unsigned_abs(), d.unsigned_abs());
            while b != 0 {
                (a, b) = (b, a % b);
            }
            if a > 1 {
                n /= a as i128;
                d /= a as i128;
            }
            match (i64::try_from(n), i64::try_from(d)) {
                (Ok(n), Ok(d)) => Ok(Q { n, d }),
                _ => Err(TimeError::Overflow),
            }
        }
        let ints = [
            0,
            1,
            -1,
            2,
            3,
            -7,
            12,
            16,
            -48,
            1 << 31,
            (1 << 40) + 1,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN,
            i64::MIN + 1,
            -(1 << 62),
        ];
        let mut vals = Vec::new();
        for &n in &ints {
            for &d in &ints {
                if let Ok(v) = reduce(n as i128, d as i128) {
                    vals.push(v);
                }
            }
        }
        for &a in &vals {
            let (an, ad) = (a.n as i128, a.d as i128);
            assert_eq!(Q::new(a.n, a.d), Ok(a));
            assert_eq!(a.ceil() as i128, -((-an).div_euclid(ad)));
            for &b in &vals {
                let (bn, bd) = (b.n as i128, b.d as i128);
                // Equal denominators add the numerators in 64 bits (and always have).
                let same =
                    |n: Option<i64>| n.map_or(Err(TimeError::Overflow), |n| reduce(n as i128, ad));
                let (sum, diff) = if ad == bd {
                    (same(a.n.checked_add(b.n)), same(a.n.checked_sub(b.n)))
                } else {
                    (
                        reduce(an * bd + bn * ad, ad * bd),
                        reduce(an * bd - bn * ad, ad * bd),
                    )
                };
                assert_eq!(a + b, sum, "{a} + {b}");
                assert_eq!(a - b, diff, "{a} - {b}");
                let wide = |x: i128, y: i128| x.checked_mul(y);
                // Products of two 64-bit values always fit in 128 bits.
                assert_eq!(
                    a * b,
                    reduce(wide(an, bn).unwrap_or(0), ad * bd).map(|r| if a.n == 0 || b.n == 0 {
                        Q::ZERO
                    } else {
                        r
                    }),
                    "{a} * {b}"
                );
                if b.n != 0 {
                    assert_eq!(a / b, reduce(an * bd, ad * bn), "{a} / {b}");
                }
                if a.n != 0 {
                    assert_eq!(Q::new(b.n, a.n), reduce(bn, an));
                }
            }
        }
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(Q::parse_decimal("1.5").unwrap().unwrap(), q(3, 2));
        assert_eq!(Q::parse_decimal("-0.25").unwrap().unwrap(), q(-1, 4));
        assert_eq!(Q::parse_decimal("0.3").unwrap().unwrap(), q(3, 10));
        assert_eq!(Q::parse_decimal("12").unwrap().unwrap(), Q::int(12));
        assert_eq!(Q::parse_decimal("1e3").unwrap().unwrap(), Q::int(1000));
        assert_eq!(Q::parse_decimal("1.5e-2").unwrap().unwrap(), q(3, 200));
        assert_eq!(Q::parse_decimal("-2.5E+1").unwrap().unwrap(), Q::int(-25));
        assert!(Q::parse_decimal("1e99").unwrap().is_err());
        assert!(Q::parse_decimal("1e").is_none());
        assert!(Q::parse_decimal("e3").is_none());
        assert!(Q::parse_decimal("eb3").is_none());
        assert!(Q::parse_decimal("1.").is_none());
        assert!(Q::parse_decimal("").is_none());
        assert!(Q::parse_decimal("a").is_none());
        assert_eq!(
            Q::parse_decimal("99999999999999999999999"),
            Some(Err(TimeError::Overflow))
        );
    }

    #[test]
    fn ordering_crosses_denominators() {
        assert!(q(1, 3) < q(1, 2));
        assert!(q(-1, 3) > q(-1, 2));
        assert_eq!(q(2, 4).cmp(&q(1, 2)), Ordering::Equal);
    }
}
