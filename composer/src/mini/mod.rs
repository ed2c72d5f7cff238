//! Mini-notation, the Tidal/Strudel core: `"a2 [c3 e3]*2 <g3 b3> ~ c4(3,8,2) {a b c}%4"`.
//!
//! [`parse`] lexes, parses and compiles a string into a [`Pattern<Value>`]. Every error
//! (lexing, parsing or compiling) is a [`SyntaxError`] with line, column and a caret line; the
//! parser never panics on any input (fuzzed, and property-tested).
//!
//! Semantics follow Tidal (`Sound.Tidal.ParseBP`), which Strudel shares: `[a b]` subdivides,
//! `<a b>` plays one step per cycle (a weighted sequence slowed by its total weight),
//! `{a b c, d e}` aligns layers to the first layer's step count (or `%n`), `a(k,n,r)` imposes a
//! euclidean structure, `?` and `|` make Tidal's random choices ([`crate::rand`]), each with
//! its own seed, `~` and a lone `-` rest.
//!
//! Also from Tidal: ranges (`0 .. 3` is `0 1 2 3`, `3 .. 0` is `3 2 1 0`, in one step; the
//! ends may be patterns, `<0 1> .. <2 4>`), chords in note patterns (`c'maj e4'min7'ii`, see
//! [`chord`]) as stacks of simultaneous notes, and words with `:` (`bd:3`, `sd:4:0.5`, `a:b`),
//! kept whole: the drum map reads their fields ([`crate::notes::drum_note`]).

pub mod chord;
pub mod lexer;
pub mod parser;

use std::fmt;
use std::sync::Arc;

use crate::combinators::{Param, cycle_choose, fastcat, stack, timecat};
use crate::notes::{midi_name, note_name};
use crate::pattern::Pattern;
use crate::syntax::SyntaxError;
use crate::time::Q;
use parser::{Arg, GroupKind, MAX_STEPS, Mod, Seq, Step, Term};

/// A mini-notation value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, exact.
    Num(Q),
    /// A note name: its MIDI number and the name as written.
    Note(i32, Arc<str>),
    /// Any other word (a sound or symbol), a sample index included (`bd:3`).
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
            Term::Atom(s) => {
                let mut values = self.atom(s, at)?;
                Ok(if values.len() == 1 {
                    values
                        .pop()
                        .map(Pattern::pure)
                        .unwrap_or_else(Pattern::silence)
                } else {
                    stack(values.into_iter().map(Pattern::pure).collect())
                })
            }
            Term::Range { from, to } => self.range(from, to),
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
                    Some(seed) => cycle_choose(pats, *seed),
                    None if pats.len() == 1 => pats.pop().unwrap_or_else(Pattern::silence),
                    None => stack(pats),
                })
            }
        }
    }

    /// An atom's values: one, or a chord's tones.
    fn atom(&self, s: &str, at: usize) -> Result<Vec<Value>, SyntaxError> {
        if let Some(parsed) = chord::parse(s) {
            let c = parsed.map_err(|e| self.err(at + e.at, e.message))?;
            return self.chord_values(&c, at);
        }
        if s.contains(':') {
            // Tidal reads `:` as part of a word: the value is the word as written.
            return Ok(vec![Value::Word(s.into())]);
        }
        Value::from_atom(s)
            .map(|v| vec![v])
            .ok_or_else(|| self.err(at, format!("number {s} is out of range")))
    }

    fn chord_values(&self, c: &chord::Chord<'_>, at: usize) -> Result<Vec<Value>, SyntaxError> {
        if let Some(root) = note_name(c.root) {
            return c
                .tones
                .iter()
                .map(|t| {
                    let m = root + t;
                    if (0..=127).contains(&m) {
                        Ok(Value::Note(m, midi_name(m).into()))
                    } else {
                        Err(self.err(at, format!("chord tone {m} is outside MIDI notes 0..=127")))
                    }
                })
                .collect();
        }
        let root = match Q::parse_decimal(c.root) {
            _ if c.root.is_empty() => Q::ZERO,
            Some(Ok(q)) => q,
            Some(Err(e)) => return Err(self.err(at, format!("chord root {}: {e}", c.root))),
            None => {
                return Err(self.err(
                    at,
                    format!(
                        "a chord's root is a note name or a number, not {:?}",
                        c.root
                    ),
                ));
            }
        };
        c.tones
            .iter()
            .map(|&t| {
                (root + Q::int(t as i64))
                    .map(Value::Num)
                    .map_err(|e| self.err(at, e.to_string()))
            })
            .collect()
    }

    /// `from .. to`: whole numbers or notes, ascending or descending, as one step. The ends
    /// are patterns: each pair of their events that meet plays the range between their values
    /// over the meeting (Tidal's `unwrap $ fromTo <$> a <*> b`). Their values are checked here,
    /// so the query only ever sees whole numbers, or notes, on both sides.
    fn range(&self, from: &Step, to: &Step) -> Result<Pattern<Value>, SyntaxError> {
        let mut ends = Vec::new();
        self.range_values(&from.term, from.at, &mut ends)?;
        self.range_values(&to.term, to.at, &mut ends)?;
        let notes = ends.first().is_some_and(|(_, note, _)| *note);
        if let Some((_, _, at)) = ends.iter().find(|(_, note, _)| *note != notes) {
            return Err(self.err(
                *at,
                "a range runs between two numbers or two note names, not one of each",
            ));
        }
        let lo = ends.iter().map(|(v, _, _)| *v).min().unwrap_or(0);
        let hi = ends.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
        if hi.abs_diff(lo) >= MAX_STEPS as u64 {
            return Err(self.err(from.at, format!("a range of more than {MAX_STEPS} steps")));
        }
        let whole = |v: &Value| match v {
            Value::Num(q) => Some(q.numer()),
            Value::Note(m, _) => Some(i64::from(*m)),
            Value::Word(_) => None,
        };
        let pairs = self
            .step(from)?
            .app_both(self.step(to)?, move |a, b| whole(a).zip(whole(b)));
        Ok(pairs.bind(move |ends| match *ends {
            Some((a, b)) => enumerate(a, b, notes),
            None => Pattern::silence(),
        }))
    }

    /// The values a range end can take, with whether each is a note and where it is written;
    /// anything but whole numbers and plain note names is refused at its place.
    fn range_values(
        &self,
        t: &Term,
        at: usize,
        out: &mut Vec<(i64, bool, usize)>,
    ) -> Result<(), SyntaxError> {
        match t {
            Term::Atom(s) => match Value::from_atom(s) {
                Some(Value::Num(q)) if q.denom() == 1 => out.push((q.numer(), false, at)),
                Some(Value::Note(m, _)) if !s.contains('\'') => out.push((i64::from(m), true, at)),
                _ => {
                    return Err(self.err(
                        at,
                        format!("a range runs between whole numbers or note names, not {s:?}"),
                    ));
                }
            },
            Term::Rest => {}
            Term::Range { from, to } => {
                self.range_values(&from.term, from.at, out)?;
                self.range_values(&to.term, to.at, out)?;
            }
            Term::Group { layers, .. } => {
                for s in layers.iter().flat_map(|l| &l.steps) {
                    self.range_values(&s.term, s.at, out)?;
                }
            }
        }
        Ok(())
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
            parts.push((step.weight, self.step(step)?));
        }
        let pat = if parts.len() == 1 && parts[0].0 == Q::ONE {
            parts.pop().map(|(_, p)| p).unwrap_or_else(Pattern::silence)
        } else {
            timecat(parts).map_err(|e| self.err(seq.at, e.to_string()))?
        };
        Ok((pat, total))
    }

    /// A step's term with its modifiers applied (its weight is the sequence's business).
    fn step(&self, step: &Step) -> Result<Pattern<Value>, SyntaxError> {
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
        Ok(p)
    }

    fn check_numeric(&self, t: &Term, at: usize) -> Result<(), SyntaxError> {
        match t {
            Term::Atom(s) => {
                if self.atom(s, at)?.iter().all(|v| v.as_q().is_some()) {
                    Ok(())
                } else {
                    Err(self.err(at, format!("expected a number, found {s:?}")))
                }
            }
            Term::Range { .. } | Term::Rest => Ok(()),
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
            Term::Atom(s) => match self.atom(s, arg.at)?.as_slice() {
                [v] => v.as_q(),
                _ => None,
            }
            .ok_or_else(|| self.err(arg.at, format!("expected a number, found {s:?}"))),
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

/// `a` to `b` (both included, descending when `b < a`) as one cycle's steps; numbers, or
/// notes when `notes`.
fn enumerate(a: i64, b: i64, notes: bool) -> Pattern<Value> {
    let value = |v: i64| {
        if notes {
            // Both ends are MIDI notes (checked when compiled), so everything between is too.
            Value::Note(v as i32, midi_name(v as i32).into())
        } else {
            Value::Num(Q::int(v))
        }
    };
    let mut pats: Vec<Pattern<Value>> = if a <= b {
        (a..=b).map(|v| Pattern::pure(value(v))).collect()
    } else {
        (b..=a).rev().map(|v| Pattern::pure(value(v))).collect()
    };
    if pats.len() == 1 {
        pats.pop().unwrap_or_else(Pattern::silence)
    } else {
        fastcat(pats)
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

    fn numbers(src: &str) -> Vec<Vec<i64>> {
        // Onset → the MIDI numbers sounding there, sorted.
        let haps = parse(src)
            .unwrap()
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap();
        let mut out: Vec<(Q, Vec<i64>)> = Vec::new();
        for h in haps {
            let at = h.whole.unwrap().begin;
            let v = h.value.as_q().unwrap().floor();
            match out.last_mut() {
                Some((t, vs)) if *t == at => vs.push(v),
                _ => out.push((at, vec![v])),
            }
        }
        out.into_iter()
            .map(|(_, mut v)| {
                v.sort();
                v
            })
            .collect()
    }

    #[test]
    fn chords_are_stacks_of_notes() {
        assert_eq!(
            show("c'maj e4'min7", 1),
            [
                "[0, 1/2) c4",
                "[0, 1/2) e4",
                "[0, 1/2) g4",
                "[1/2, 1) e4",
                "[1/2, 1) g4",
                "[1/2, 1) b4",
                "[1/2, 1) d5"
            ]
        );
        assert_eq!(numbers("c'maj"), [[60, 64, 67]]);
        assert_eq!(numbers("c'maj'ii"), [[67, 72, 76]]);
        assert_eq!(numbers("c'major7'o"), [[48, 55, 64, 71]]);
        assert_eq!(numbers("0'maj 'min"), [[0, 4, 7], [0, 3, 7]]);
        // Modifiers outside the chord act on the whole stack.
        assert_eq!(show("c'five*2", 1).len(), 4);
        let v = parse_numbers("c'maj")
            .unwrap()
            .onsets(Q::ZERO, Q::ONE, &Context::default())
            .unwrap();
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn chord_errors_are_placed() {
        let e = parse("c e4'mja").unwrap_err();
        assert_eq!((e.line, e.col), (1, 6));
        assert!(e.message.starts_with("unknown chord name \"mja\""), "{e}");
        let e = parse("c'maj'q").unwrap_err();
        assert_eq!(e.col, 7);
        let e = parse("bd'maj").unwrap_err();
        assert_eq!(e.col, 1);
        let e = parse("g9'maj13").unwrap_err();
        assert!(e.message.contains("outside MIDI"), "{e}");
        assert!(parse("a*c'maj").is_err());
    }

    #[test]
    fn ranges_fill_one_step() {
        assert_eq!(numbers("0 .. 3"), [[0], [1], [2], [3]]);
        assert_eq!(numbers("3 .. 0"), [[3], [2], [1], [0]]);
        assert_eq!(numbers("0..3"), [[0], [1], [2], [3]]);
        assert_eq!(numbers("-1 .. 1"), [[-1], [0], [1]]);
        assert_eq!(numbers("2 .. 2"), [[2]]);
        assert_eq!(
            show("0 .. 2 8", 1),
            ["[0, 1/6) 0", "[1/6, 1/3) 1", "[1/3, 1/2) 2", "[1/2, 1) 8"]
        );
        assert_eq!(
            show("c .. d", 1),
            ["[0, 1/3) c4", "[1/3, 2/3) c#4", "[2/3, 1) d4"]
        );
        assert_eq!(show("[0 .. 1]*2", 1).len(), 4);
        assert_eq!(
            parse_numbers("1 .. 3")
                .unwrap()
                .onsets(Q::ZERO, Q::ONE, &Context::default())
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn range_errors_are_placed() {
        assert_eq!(parse("0 .. x").unwrap_err().col, 6);
        assert_eq!(parse("0 .. c").unwrap_err().col, 6);
        assert_eq!(parse("0.5 .. 2").unwrap_err().col, 1);
        // `a` is a note name, 3 a number.
        assert_eq!(parse("a*2 .. 3").unwrap_err().col, 8);
        assert_eq!(parse(".. 3").unwrap_err().col, 1);
        assert_eq!(parse("0 ..").unwrap_err().col, 5);
        assert_eq!(parse("[bd sn] .. 3").unwrap_err().col, 2);
        let e = parse("0 .. 99999999").unwrap_err();
        assert!(e.message.contains("more than 4096"), "{e}");
    }

    #[test]
    fn words_with_colons_stay_whole() {
        assert_eq!(
            show("bd:3 808:4 sn bd:3x", 1),
            [
                "[0, 1/4) bd:3",
                "[1/4, 1/2) 808:4",
                "[1/2, 3/4) sn",
                "[3/4, 1) bd:3x"
            ]
        );
        assert!(parse_numbers("bd:3").is_err());
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
