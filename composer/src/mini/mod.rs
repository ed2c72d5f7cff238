//! Mini-notation, the Tidal/Strudel core: `"a2 [c3 e3]*2 <g3 b3> ~ c4(3,8,2) {a b c}%4"`.
//!
//! [`parse`] lexes, parses and compiles a string into a [`Pattern<Value>`]. Every error
//! (lexing, parsing or compiling) is a [`SyntaxError`] with line, column and a caret line; the
//! parser never panics on any input (fuzzed, and property-tested).
//!
//! Semantics follow Strudel: `[a b]` subdivides, `<a b>` plays one step per cycle (a weighted
//! sequence slowed by its total weight), `{a b c, d e}` aligns layers to the first layer's
//! step count (or `%n`), `a(k,n,r)` imposes a euclidean structure, `?` and `|` are seeded per
//! occurrence so each use makes its own choices.

pub mod lexer;
pub mod parser;

use std::fmt;
use std::sync::Arc;

use crate::combinators::{Param, randcat, stack, timecat};
use crate::notes::note_name;
use crate::pattern::Pattern;
use crate::syntax::SyntaxError;
use crate::time::Q;
use parser::{Arg, GroupKind, Mod, Seq, Term};

/// A mini-notation value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, exact.
    Num(Q),
    /// A note name: its MIDI number and the name as written.
    Note(i32, Arc<str>),
    /// Any other word (a sound or symbol).
    Word(Arc<str>),
}

impl Value {
    fn from_atom(s: &str) -> Option<Value> {
        if let Some(r) = Q::parse_decimal(s) {
            return r.ok().map(Value::Num);
        }
        Some(match note_name(s) {
            Some(m) => Value::Note(m, s.into()),
            None => Value::Word(s.into()),
        })
    }

    /// The value as a number (notes as their MIDI number), if it is one.
    pub fn as_q(&self) -> Option<Q> {
        match self {
            Value::Num(q) => Some(*q),
            Value::Note(m, _) => Some(Q::int(*m as i64)),
            Value::Word(_) => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(q) => write!(f, "{q}"),
            Value::Note(_, name) => f.write_str(name),
            Value::Word(w) => f.write_str(w),
        }
    }
}

/// Parses and compiles mini-notation.
pub fn parse(src: &str) -> Result<Pattern<Value>, SyntaxError> {
    let term = parser::parse(src)?;
    Compiler { src }.term(&term, 0)
}

/// Parses mini-notation whose values must all be numbers (arguments, masks, velocities).
pub fn parse_numbers(src: &str) -> Result<Pattern<Q>, SyntaxError> {
    let term = parser::parse(src)?;
    let c = Compiler { src };
    c.check_numeric(&term, 0)?;
    Ok(c.term(&term, 0)?.fmap(|v| v.as_q().unwrap_or(Q::ZERO)))
}

/// Parses a boolean mini-notation pattern (`"1 0 1 1"`, `"t f"`, `"x ~ x"`): zero and `f`/
/// `false` are false, every other value true.
pub fn parse_bools(src: &str) -> Result<Pattern<bool>, SyntaxError> {
    Ok(parse(src)?.fmap(|v| match v {
        Value::Num(q) => !q.is_zero(),
        Value::Word(w) => !matches!(&**w, "f" | "false"),
        Value::Note(..) => true,
    }))
}

struct Compiler<'a> {
    src: &'a str,
}

impl Compiler<'_> {
    fn err(&self, at: usize, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::at(self.src, at, msg)
    }

    fn term(&self, t: &Term, at: usize) -> Result<Pattern<Value>, SyntaxError> {
        match t {
            Term::Atom(s) => Value::from_atom(s)
                .map(Pattern::pure)
                .ok_or_else(|| self.err(at, format!("number {s} is out of range"))),
            Term::Rest => Ok(Pattern::silence()),
            Term::Group {
                kind,
                layers,
                choice,
                steps,
            } => {
                let mut pats = Vec::with_capacity(layers.len());
                let base = match (kind, steps) {
                    (GroupKind::Poly, Some(arg)) => Some(self.const_arg(arg)?),
                    (GroupKind::Poly, None) => Some(self.weight(&layers[0])?),
                    _ => None,
                };
                for layer in layers {
                    let (p, w) = self.seq(layer)?;
                    pats.push(match kind {
                        GroupKind::Sub => p,
                        GroupKind::Alt => p.slow(w),
                        GroupKind::Poly => {
                            let base = base.unwrap_or(Q::ONE);
                            if w.is_zero() {
                                p
                            } else {
                                p.fast((base / w).map_err(|e| self.err(layer.at, e.to_string()))?)
                            }
                        }
                    });
                }
                Ok(match choice {
                    Some(seed) => randcat(pats, *seed),
                    None if pats.len() == 1 => pats.pop().unwrap_or_else(Pattern::silence),
                    None => stack(pats),
                })
            }
        }
    }

    fn weight(&self, seq: &Seq) -> Result<Q, SyntaxError> {
        let mut w = Q::ZERO;
        for s in &seq.steps {
            w = (w + s.weight).map_err(|e| self.err(s.at, e.to_string()))?;
        }
        Ok(w)
    }

    fn seq(&self, seq: &Seq) -> Result<(Pattern<Value>, Q), SyntaxError> {
        let total = self.weight(seq)?;
        let mut parts = Vec::with_capacity(seq.steps.len());
        for step in &seq.steps {
            let mut p = self.term(&step.term, step.at)?;
            for m in &step.mods {
                p = match m {
                    Mod::Fast(arg) => p.fast(self.param(arg)?),
                    Mod::Slow(arg) => p.slow(self.param(arg)?),
                    Mod::Degrade(prob, seed) => {
                        p.degrade_by(prob.unwrap_or(Q::new(1, 2).unwrap_or(Q::ZERO)), *seed)
                    }
                    Mod::Euclid(k, n, r) => {
                        let r = match r {
                            Some(r) => self.seq_param(r)?,
                            None => Param::Const(Q::ZERO),
                        };
                        p.euclid(self.seq_param(k)?, self.seq_param(n)?, r)
                    }
                };
            }
            parts.push((step.weight, p));
        }
        let pat = if parts.len() == 1 && parts[0].0 == Q::ONE {
            parts.pop().map(|(_, p)| p).unwrap_or_else(Pattern::silence)
        } else {
            timecat(parts).map_err(|e| self.err(seq.at, e.to_string()))?
        };
        Ok((pat, total))
    }

    fn check_numeric(&self, t: &Term, at: usize) -> Result<(), SyntaxError> {
        match t {
            Term::Atom(s) if Q::parse_decimal(s).is_none() && note_name(s).is_none() => {
                Err(self.err(at, format!("expected a number, found {s:?}")))
            }
            Term::Atom(_) | Term::Rest => Ok(()),
            Term::Group { layers, .. } => {
                for l in layers {
                    for s in &l.steps {
                        self.check_numeric(&s.term, s.at)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn const_arg(&self, arg: &Arg) -> Result<Q, SyntaxError> {
        match &arg.term {
            Term::Atom(s) => match Value::from_atom(s).and_then(|v| v.as_q()) {
                Some(q) => Ok(q),
                None => Err(self.err(arg.at, format!("expected a number, found {s:?}"))),
            },
            _ => Err(self.err(arg.at, "expected a number")),
        }
    }

    fn param(&self, arg: &Arg) -> Result<Param, SyntaxError> {
        if let Term::Atom(_) = arg.term {
            return self.const_arg(arg).map(Param::Const);
        }
        self.check_numeric(&arg.term, arg.at)?;
        Ok(Param::Pat(
            self.term(&arg.term, arg.at)?
                .fmap(|v| v.as_q().unwrap_or(Q::ZERO)),
        ))
    }

    fn seq_param(&self, seq: &Seq) -> Result<Param, SyntaxError> {
        if let [step] = seq.steps.as_slice()
            && step.mods.is_empty()
            && let Term::Atom(_) = step.term
        {
            return self
                .const_arg(&Arg {
                    term: step.term.clone(),
                    at: step.at,
                })
                .map(Param::Const);
        }
        for s in &seq.steps {
            self.check_numeric(&s.term, s.at)?;
        }
        let (p, _) = self.seq(seq)?;
        Ok(Param::Pat(p.fmap(|v| v.as_q().unwrap_or(Q::ZERO))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Context;

    fn show(src: &str, cycles: i64) -> Vec<String> {
        parse(src)
            .unwrap()
            .onsets(Q::ZERO, Q::int(cycles), &Context::default())
            .unwrap()
            .into_iter()
            .map(|h| format!("{} {}", h.whole.unwrap(), h.value))
            .collect()
    }

    #[test]
    fn basic_sequence() {
        assert_eq!(
            show("a2 ~ [c#4 eb3] x", 1),
            [
                "[0, 1/4) a2",
                "[1/2, 5/8) c#4",
                "[5/8, 3/4) eb3",
                "[3/4, 1) x"
            ]
        );
    }

    #[test]
    fn exponents_and_negative_octaves_are_single_values() {
        assert_eq!(
            show("1e3 1.5e-2 -2.5", 1),
            ["[0, 1/3) 1000", "[1/3, 2/3) 3/200", "[2/3, 1) -5/2"]
        );
        let v = parse("c-1")
            .unwrap()
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].value.as_q(), Some(Q::ZERO), "c-1 is MIDI 0");
    }

    #[test]
    fn compile_errors_are_placed() {
        let e = parse("a*x").unwrap_err();
        assert_eq!(e.col, 3);
        let e = parse("a(3,x)").unwrap_err();
        assert_eq!(e.col, 5);
        assert!(parse_numbers("1 0 bd").is_err());
    }
}
