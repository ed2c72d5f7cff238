//! Kernel signals inside patterns: signal expressions (`1 - exec`, `1 + 3*csw`,
//! `retx > 0.08`, `range(io, 0.2, 0.9)`) that any numeric pattern argument may be, evaluated
//! against the quantised snapshot of [`crate::levels`] — and Tidal's continuous patterns of
//! time (`sine`, `saw`, `tri`, `square`, `rand`, …; see [`Wave`]), so a curve can sweep
//! without the kernel (`range(sine, 200, 2000)`).
//!
//! Expressions evaluate in exact rationals on quantised levels, so a replayed trace gives
//! bit-identical choices: no float rounding decides whether a note plays.

use std::sync::Arc;

use khorus_bus::SignalId;

use crate::levels::Signals;
use crate::pattern::Pattern;
use crate::syntax::SyntaxError;
use crate::time::{Q, TimeError};

/// Whether `name` is a signal an expression may read (a table name or an alias such as `io`
/// or `activity`).
pub fn is_signal_name(name: &str) -> bool {
    SignalId::from_name(name).is_some() || alias(name).is_some()
}

/// Names that are not in the bus's signal table but mean something to a musician.
fn alias(name: &str) -> Option<Expr> {
    let sig = |n: &str| SignalId::from_name(n).map(Expr::Sig);
    let max = |a: Expr, b: Expr| Expr::Call(Func::Max, vec![a, b]);
    Some(match name {
        "io" => max(sig("io_read")?, sig("io_write")?),
        "mem" => sig("mem_pressure")?,
        "cpu" => sig("cpu_pressure")?,
        // Overall activity: the busiest of the event-rate signals; scores go quiet below a floor.
        "activity" => ["exec", "rx", "tx", "csw", "io_read", "io_write", "irq"]
            .iter()
            .filter_map(|n| sig(n))
            .reduce(max)?,
        _ => return None,
    })
}

/// Functions a signal expression may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `min(a, b)`.
    Min,
    /// `max(a, b)`.
    Max,
    /// `clamp(x, lo, hi)`.
    Clamp,
    /// `range(x, lo, hi)` = `lo + x·(hi − lo)`: maps a 0..1 level onto a range.
    Range,
    /// `pow(x, n)` with a constant integer `n` (a curve that stays exact).
    Pow,
}

impl Func {
    fn from_name(s: &str) -> Option<(Func, usize)> {
        Some(match s {
            "min" => (Func::Min, 2),
            "max" => (Func::Max, 2),
            "clamp" => (Func::Clamp, 3),
            "range" => (Func::Range, 3),
            "pow" => (Func::Pow, 2),
            _ => return None,
        })
    }
}

/// Tidal's continuous patterns, functions of cycle time `t` read at the start of each query
/// (Tidal's `sig`): unipolar (0..1) and, with a `2`, bipolar (-1..1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    /// `(sin(2πt) + 1) / 2`.
    Sine,
    /// `sine` a quarter cycle later.
    Cosine,
    /// `t mod 1`, rising.
    Saw,
    /// `1 - saw`, falling.
    Isaw,
    /// `saw` then `isaw`, each in half a cycle.
    Tri,
    /// 0 for the first half of each cycle, 1 for the second.
    Square,
    /// Tidal's random number at `t` ([`crate::rand::time_to_rand`]).
    Rand,
}

impl Wave {
    fn from_name(s: &str) -> Option<(Wave, bool)> {
        let (name, bipolar) = match s.strip_suffix('2') {
            Some(n) => (n, true),
            None => (s, false),
        };
        let w = match name {
            "sine" => Wave::Sine,
            "cosine" => Wave::Cosine,
            "saw" => Wave::Saw,
            "isaw" => Wave::Isaw,
            "tri" => Wave::Tri,
            "square" => Wave::Square,
            "rand" if !bipolar => Wave::Rand,
            _ => return None,
        };
        Some((w, bipolar))
    }

    /// The unipolar value at `t`.
    fn at(self, t: Q) -> Result<Q, TimeError> {
        let pos = t.cycle_pos();
        Ok(match self {
            Wave::Sine => sine(t)?,
            Wave::Cosine => sine((t - Q::new(1, 4)?)?)?,
            Wave::Saw => pos,
            Wave::Isaw => (Q::ONE - pos)?,
            Wave::Tri => {
                let half = Q::new(1, 2)?;
                if pos < half {
                    (pos * Q::int(2))?
                } else {
                    (Q::int(2) - (pos * Q::int(2))?)?
                }
            }
            Wave::Square => {
                if pos < Q::new(1, 2)? {
                    Q::ZERO
                } else {
                    Q::ONE
                }
            }
            Wave::Rand => Q::from_f64(crate::rand::time_to_rand(t))?,
        })
    }
}

/// `(sin(2πt) + 1) / 2`, from the cycle position (so large `t` loses no precision).
fn sine(t: Q) -> Result<Q, TimeError> {
    Q::from_f64(((std::f64::consts::TAU * t.cycle_pos().to_f64()).sin() + 1.0) / 2.0)
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` or `·`
    Mul,
    /// `/`
    Div,
    /// `>` (1 or 0)
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
}

/// A parsed signal expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(Q),
    /// A signal's level.
    Sig(SignalId),
    /// Negation.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
    /// A continuous pattern of time; bipolar when `true`.
    Wave(Wave, bool),
}

impl Expr {
    /// Evaluates at cycle time `t` against a snapshot, exactly (waves are rounded to
    /// 2^-30 once, the same way every time).
    pub fn eval(&self, t: Q, s: &Signals) -> Result<Q, TimeError> {
        Ok(match self {
            Expr::Num(v) => *v,
            Expr::Sig(id) => s.level(*id),
            Expr::Wave(w, bipolar) => {
                let v = w.at(t)?;
                if *bipolar {
                    ((v * Q::int(2))? - Q::ONE)?
                } else {
                    v
                }
            }
            Expr::Neg(e) => e.eval(t, s)?.negated()?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(t, s)?, b.eval(t, s)?);
                let truth = |c: bool| if c { Q::ONE } else { Q::ZERO };
                match op {
                    Op::Add => (a + b)?,
                    Op::Sub => (a - b)?,
                    Op::Mul => (a * b)?,
                    Op::Div => (a / b)?,
                    Op::Gt => truth(a > b),
                    Op::Lt => truth(a < b),
                    Op::Ge => truth(a >= b),
                    Op::Le => truth(a <= b),
                }
            }
            Expr::Call(f, args) => {
                // At most three arguments (the parser checks each function's arity): on the
                // stack, as this runs for every event a signal shapes, every tick.
                let mut v = [Q::ZERO; 3];
                for (slot, a) in v.iter_mut().zip(args) {
                    *slot = a.eval(t, s)?;
                }
                match f {
                    Func::Min => v[0].min(v[1]),
                    Func::Max => v[0].max(v[1]),
                    Func::Clamp => v[0].max(v[1]).min(v[2]),
                    Func::Range => (v[1] + (v[0] * (v[2] - v[1])?)?)?,
                    Func::Pow => {
                        let mut r = Q::ONE;
                        for _ in 0..v[1].floor().unsigned_abs() {
                            r = (r * v[0])?;
                        }
                        if v[1] < Q::ZERO { (Q::ONE / r)? } else { r }
                    }
                }
            }
        })
    }

    /// Whether the expression reads no signal and no time (a constant).
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Num(_) => true,
            Expr::Sig(_) | Expr::Wave(..) => false,
            Expr::Neg(e) => e.is_constant(),
            Expr::Bin(_, a, b) => a.is_constant() && b.is_constant(),
            Expr::Call(_, args) => args.iter().all(Expr::is_constant),
        }
    }

    /// The expression as a continuous pattern, sampled wherever it is queried.
    pub fn pattern(self) -> Pattern<Q> {
        let e = Arc::new(self);
        Pattern::signal(move |t, ctx| e.eval(t, &ctx.signals))
    }
}

/// Parses a signal expression.
pub fn parse_expr(src: &str) -> Result<Expr, SyntaxError> {
    let mut p = ExprParser {
        src,
        pos: 0,
        depth: 0,
    };
    let e = p.cmp()?;
    p.skip_ws();
    if p.pos < src.len() {
        return Err(p.err("unexpected text after the expression"));
    }
    Ok(e)
}

/// Nesting limit, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct ExprParser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl ExprParser<'_> {
    fn err(&self, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::at(self.src, self.pos, msg)
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn cmp(&mut self) -> Result<Expr, SyntaxError> {
        let a = self.sum()?;
        for (tok, op) in [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)] {
            if self.eat(tok) {
                let b = self.sum()?;
                return Ok(Expr::Bin(op, Box::new(a), Box::new(b)));
            }
        }
        Ok(a)
    }

    fn sum(&mut self) -> Result<Expr, SyntaxError> {
        let mut a = self.prod()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(a);
            };
            let b = self.prod()?;
            a = Expr::Bin(op, Box::new(a), Box::new(b));
        }
    }

    fn prod(&mut self) -> Result<Expr, SyntaxError> {
        let mut a = self.unary()?;
        loop {
            let op = if self.eat("*") || self.eat("·") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else {
                return Ok(a);
            };
            let b = self.unary()?;
            a = Expr::Bin(op, Box::new(a), Box::new(b));
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        let r = if self.eat("-") {
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else {
            self.atom()
        };
        self.depth -= 1;
        r
    }

    fn atom(&mut self) -> Result<Expr, SyntaxError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let e = self.cmp()?;
                if !self.eat(")") {
                    return Err(self.err("expected ')'"));
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
                    self.pos += 1;
                }
                match Q::parse_decimal(&self.src[start..self.pos]) {
                    Some(Ok(v)) => Ok(Expr::Num(v)),
                    Some(Err(e)) => Err(SyntaxError::at(self.src, start, e.to_string())),
                    None => Err(SyntaxError::at(self.src, start, "malformed number")),
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                let name = &self.src[start..self.pos];
                if let Some((f, arity)) = Func::from_name(name) {
                    return self.call(start, f, arity);
                }
                if let Some((w, bipolar)) = Wave::from_name(name) {
                    return Ok(Expr::Wave(w, bipolar));
                }
                if let Some(id) = SignalId::from_name(name) {
                    return Ok(Expr::Sig(id));
                }
                alias(name).ok_or_else(|| {
                    SyntaxError::at(
                        self.src,
                        start,
                        format!("unknown signal or function {name:?}"),
                    )
                })
            }
            Some(c) => Err(self.err(format!("unexpected {c:?}"))),
            None => Err(self.err("expected a number, a signal or '('")),
        }
    }

    fn call(&mut self, start: usize, f: Func, arity: usize) -> Result<Expr, SyntaxError> {
        if !self.eat("(") {
            return Err(self.err("expected '(' after a function name"));
        }
        let mut args = vec![self.cmp()?];
        while self.eat(",") {
            args.push(self.cmp()?);
        }
        if !self.eat(")") {
            return Err(self.err("expected ',' or ')'"));
        }
        if args.len() != arity {
            return Err(SyntaxError::at(
                self.src,
                start,
                format!("expects {arity} arguments, got {}", args.len()),
            ));
        }
        if f == Func::Pow && !args[1].is_constant() {
            return Err(SyntaxError::at(
                self.src,
                start,
                "pow's exponent must be a constant",
            ));
        }
        if f == Func::Pow
            && let Ok(n) = args[1].eval(Q::ZERO, &Signals::default())
            && (n.denom() != 1 || n.numer().abs() > 16)
        {
            return Err(SyntaxError::at(
                self.src,
                start,
                "pow's exponent must be an integer in -16..=16",
            ));
        }
        Ok(Expr::Call(f, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    fn sigs(pairs: &[(&str, f32)]) -> Signals {
        let mut s = Signals::default();
        for (n, v) in pairs {
            s.set(SignalId::from_name(n).unwrap(), *v);
        }
        s
    }

    #[test]
    fn expressions_evaluate_exactly() {
        let s = sigs(&[("exec", 0.25), ("csw", 0.5), ("retx", 0.1)]);
        let ev = |src: &str| parse_expr(src).unwrap().eval(Q::ZERO, &s).unwrap();
        assert_eq!(ev("1 - exec"), q(3, 4));
        assert_eq!(ev("1 + 3*csw"), q(5, 2));
        assert_eq!(ev("1 + 3·csw"), q(5, 2));
        assert_eq!(ev("retx > 0.08"), Q::ONE);
        assert_eq!(ev("retx > 0.2"), Q::ZERO);
        assert_eq!(ev("range(csw, 2, 4)"), Q::int(3));
        assert_eq!(ev("pow(csw, 2)"), q(1, 4));
        assert_eq!(ev("-(1/3)"), q(-1, 3));
        assert!(parse_expr("2 * 3").unwrap().is_constant());
        assert!(!parse_expr("io").unwrap().is_constant());
    }

    #[test]
    fn tidals_continuous_patterns_are_functions_of_time() {
        let s = Signals::default();
        let at = |src: &str, t: Q| parse_expr(src).unwrap().eval(t, &s).unwrap();
        assert_eq!(at("sine", Q::ZERO), q(1, 2));
        assert_eq!(at("sine", q(1, 4)), Q::ONE);
        assert_eq!(at("sine", q(13, 4)), Q::ONE, "one cycle is one period");
        assert_eq!(at("sine", q(3, 4)), Q::ZERO);
        assert_eq!(at("cosine", Q::ZERO), Q::ZERO);
        assert_eq!(at("cosine", q(1, 2)), Q::ONE);
        assert_eq!(at("sine2", q(3, 4)), Q::int(-1));
        assert_eq!(at("saw", q(7, 4)), q(3, 4));
        assert_eq!(at("isaw", q(7, 4)), q(1, 4));
        assert_eq!(at("saw2", q(1, 4)), q(-1, 2));
        assert_eq!(at("tri", q(1, 4)), q(1, 2));
        assert_eq!(at("tri", q(1, 2)), Q::ONE);
        assert_eq!(at("tri", q(3, 4)), q(1, 2));
        assert_eq!(at("square", q(1, 4)), Q::ZERO);
        assert_eq!(at("square", q(3, 4)), Q::ONE);
        assert_eq!(at("square2", q(1, 4)), Q::int(-1));
        // Tidal's rand at cycle 1 (0.5177721455693245), rounded to 2^-30.
        assert_eq!(at("rand", Q::ONE), Q::from_f64(0.5177721455693245).unwrap());
        assert_eq!(at("range(sine, 200, 2000)", q(1, 4)), Q::int(2000));
        assert!(!parse_expr("range(sine, 1, 2)").unwrap().is_constant());
        assert!(
            parse_expr("rand2").is_err(),
            "rand has no bipolar form in Tidal"
        );
        // Sampled by a pattern at each query's start.
        let p = parse_expr("saw").unwrap().pattern().segment(4);
        let v: Vec<Q> = p
            .query_span(Q::ZERO, Q::ONE, &Default::default())
            .unwrap()
            .into_iter()
            .map(|h| h.value)
            .collect();
        assert_eq!(v, [Q::ZERO, q(1, 4), q(1, 2), q(3, 4)]);
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse_expr("1 + nope").unwrap_err();
        assert_eq!((e.line, e.col), (1, 5));
        assert!(e.message.contains("nope"));
        let e = parse_expr("min(1)").unwrap_err();
        assert!(e.message.contains("2 arguments"), "{e}");
        assert!(parse_expr("(1").is_err());
        assert!(parse_expr(&"(".repeat(1000)).is_err());
        assert!(parse_expr("pow(exec, io)").is_err());
    }
}
