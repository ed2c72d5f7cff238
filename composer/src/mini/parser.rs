//! Mini-notation parser: tokens to a small syntax tree that keeps every node's place, so the
//! compiler can report errors at the right column too.
//!
//! Grammar (whitespace separates steps):
//! ```text
//! layers := seq (',' seq)* | seq ('|' seq)*
//! seq    := (step | '_' [N] | '!' | '!'N | '.')*
//! step   := part ['..' part]
//! part   := term ('*' arg | '/' arg | '?' [N] | '@' [N] | '(' seq ',' seq [',' seq] ')')*
//! term   := atom | '~' | '-' | '[' layers ']' | '<' layers '>' | '{' layers '}' ['%' arg]
//! atom   := word | number
//! ```
//!
//! As in Tidal: a range `a .. b` is one step (`0 .. 3 8` is `[0 1 2 3] 8`) and its ends are
//! parts, so patterns (`<0 1> .. <2 4>`); `@N` and `_N` lengthen a step by `N - 1`, a bare `@`
//! or `_` by one, all of them adding up (`a@3 _` is `a@4`, `a _2` is `a@2`); `?` and `|`
//! take seeds 0, 1, 2, … in the order they are met, `|` after its alternatives. Words include
//! chords (`c'maj'ii`) and anything with `:` (`bd:3`); the compiler takes those apart.
//!
//! ```text
//! arg    := number | word | '[' layers ']' | '<' layers '>'
//! ```

use super::lexer::{Tok, Token, lex};
use crate::syntax::SyntaxError;
use crate::time::Q;

/// Nesting limit: deeper input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 48;
/// Limit on steps after replication, so `a!999999` cannot exhaust memory.
pub const MAX_STEPS: usize = 4096;

/// Which brackets a group had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// `[ ]` (and the top level): subdivision.
    Sub,
    /// `< >`: one step per cycle.
    Alt,
    /// `{ }`: polymeter.
    Poly,
}

/// A term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A word or number as written.
    Atom(String),
    /// `~`.
    Rest,
    /// `from .. to`: every whole number (or note) between the two, both included, in one step;
    /// each end is a part (a term and its modifiers), so a pattern.
    Range {
        /// The first end.
        from: Box<Step>,
        /// The second end.
        to: Box<Step>,
    },
    /// A bracketed group.
    Group {
        /// The brackets.
        kind: GroupKind,
        /// Its layers (one unless `,` or `|` were used).
        layers: Vec<Seq>,
        /// `|`: pick one layer per cycle at random, with this seed.
        choice: Option<u32>,
        /// `{…}%n`: steps per cycle.
        steps: Option<Box<Arg>>,
    },
}

/// A step modifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Mod {
    /// `*n`.
    Fast(Arg),
    /// `/n`.
    Slow(Arg),
    /// `?` or `?p`, with its seed.
    Degrade(Option<Q>, u32),
    /// `(k,n)` or `(k,n,r)`.
    Euclid(Seq, Seq, Option<Seq>),
}

/// A modifier argument: a term with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The term.
    pub term: Term,
    /// Byte offset.
    pub at: usize,
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What plays.
    pub term: Term,
    /// Byte offset of the term.
    pub at: usize,
    /// Relative duration (`@`, `_`).
    pub weight: Q,
    /// Modifiers, in order.
    pub mods: Vec<Mod>,
}

/// A sequence of steps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seq {
    /// The steps.
    pub steps: Vec<Step>,
    /// Byte offset of the sequence.
    pub at: usize,
}

/// Parses mini-notation to the top-level term (a `[ ]` group).
pub fn parse(src: &str) -> Result<Term, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
        seeds: 0,
        steps: 0,
    };
    let (layers, choice) = p.layers(None)?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(p.err_at(t.at, "unexpected closing bracket"));
    }
    Ok(Term::Group {
        kind: GroupKind::Sub,
        layers,
        choice,
        steps: None,
    })
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    seeds: u32,
    steps: usize,
}

fn closer_name(t: &Tok) -> &'static str {
    match t {
        Tok::RBracket => "']'",
        Tok::RAngle => "'>'",
        Tok::RBrace => "'}'",
        _ => "')'",
    }
}

/// The token starting `rest`, for messages: a word or number as written, else its first
/// character.
fn describe(rest: &str) -> String {
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '#' | '.' | '-' | '\'' | ':')))
        .unwrap_or(rest.len())
        .max(rest.chars().next().map_or(0, char::len_utf8));
    format!("{:?}", &rest[..len])
}

impl Parser<'_> {
    fn err_at(&self, at: usize, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::at(self.src, at, msg)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.at)
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    /// Tidal's `newSeed`: 0 first, then one more each time.
    fn next_seed(&mut self) -> u32 {
        let seed = self.seeds;
        self.seeds = self.seeds.saturating_add(1);
        seed
    }

    /// Layers up to (not including) `closer`; `None` means the end of input.
    fn layers(&mut self, closer: Option<&Tok>) -> Result<(Vec<Seq>, Option<u32>), SyntaxError> {
        let mut layers = vec![self.seq(closer)?];
        let mut sep: Option<Tok> = None;
        while let Some(t) = self.peek().cloned() {
            if t.tok != Tok::Comma && t.tok != Tok::Pipe {
                break;
            }
            if sep.as_ref().is_some_and(|s| *s != t.tok) {
                return Err(self.err_at(t.at, "cannot mix ',' and '|' in one group; use brackets"));
            }
            sep = Some(t.tok.clone());
            self.pos += 1;
            layers.push(self.seq(closer)?);
        }
        let choice = (sep == Some(Tok::Pipe)).then(|| self.next_seed());
        Ok((layers, choice))
    }

    fn seq(&mut self, closer: Option<&Tok>) -> Result<Seq, SyntaxError> {
        let at = self.here();
        let mut steps: Vec<Step> = Vec::new();
        let mut groups: Vec<(usize, Vec<Step>)> = Vec::new();
        while let Some(t) = self.peek().cloned() {
            match &t.tok {
                Tok::Comma | Tok::Pipe => break,
                tok if Some(tok) == closer => break,
                tok @ (Tok::RBracket | Tok::RAngle | Tok::RBrace | Tok::RParen) => {
                    let msg = match closer {
                        Some(c) => {
                            format!("expected {} but found {}", closer_name(c), closer_name(tok))
                        }
                        None => format!("unmatched {}", closer_name(tok)),
                    };
                    return Err(self.err_at(t.at, msg));
                }
                Tok::Underscore => {
                    self.pos += 1;
                    let by = self.elongation("'_'", t.at)?;
                    let Some(last) = steps.last_mut() else {
                        return Err(self.err_at(t.at, "'_' has no step before it to extend"));
                    };
                    last.weight = self.lengthen(last.weight, by)?;
                }
                Tok::Bang => {
                    self.pos += 1;
                    let Some(last) = steps.last().cloned() else {
                        return Err(self.err_at(t.at, "'!' has no step before it to repeat"));
                    };
                    let copies = match self.peek() {
                        Some(Token {
                            tok: Tok::Num(n),
                            spaced: false,
                            at,
                        }) => {
                            let (n, at) = (n.clone(), *at);
                            self.pos += 1;
                            match n.parse::<usize>() {
                                Ok(k) if k >= 1 => k - 1,
                                _ => {
                                    return Err(
                                        self.err_at(at, "'!' takes a whole number of at least 1")
                                    );
                                }
                            }
                        }
                        _ => 1,
                    };
                    self.count_steps(copies, t.at)?;
                    steps.extend(std::iter::repeat_n(last, copies));
                }
                Tok::Range => {
                    return Err(self.err_at(
                        t.at,
                        "'..' needs the range's first end right before it (0 .. 3)",
                    ));
                }
                Tok::Dot => {
                    self.pos += 1;
                    if steps.is_empty() {
                        return Err(self.err_at(t.at, "empty group before '.'"));
                    }
                    groups.push((at, std::mem::take(&mut steps)));
                }
                _ => {
                    // Steps are separated by spaces: `a*2a` or `1e` is a typo, not two steps.
                    let joined = self.pos > 0
                        && matches!(
                            self.toks[self.pos - 1].tok,
                            Tok::Word(_) | Tok::Num(_) | Tok::Rest
                        );
                    if !t.spaced && joined {
                        return Err(self.err_at(
                            t.at,
                            format!(
                                "unexpected {} right after the step before it; separate steps \
                                 with a space",
                                describe(&self.src[t.at..])
                            ),
                        ));
                    }
                    let step = self.step()?;
                    self.count_steps(1, t.at)?;
                    steps.push(step);
                }
            }
        }
        if !groups.is_empty() {
            if steps.is_empty() {
                return Err(self.err_at(self.here(), "empty group after '.'"));
            }
            groups.push((at, steps));
            steps = groups
                .into_iter()
                .map(|(gat, g)| Step {
                    term: Term::Group {
                        kind: GroupKind::Sub,
                        layers: vec![Seq { steps: g, at: gat }],
                        choice: None,
                        steps: None,
                    },
                    at: gat,
                    weight: Q::ONE,
                    mods: Vec::new(),
                })
                .collect();
        }
        Ok(Seq { steps, at })
    }

    fn count_steps(&mut self, n: usize, at: usize) -> Result<(), SyntaxError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err(self.err_at(at, format!("more than {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn number_after(&mut self, what: &str) -> Result<(Q, usize), SyntaxError> {
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Num(n),
                at,
                ..
            }) => {
                self.pos += 1;
                match Q::parse_decimal(&n) {
                    Some(Ok(v)) => Ok((v, at)),
                    Some(Err(e)) => Err(self.err_at(at, format!("{n}: {e}"))),
                    None => Err(self.err_at(at, format!("malformed number {n:?}"))),
                }
            }
            _ => Err(self.err_at(self.here(), format!("expected a number after {what}"))),
        }
    }

    /// What the `@` or `_` at `mark` adds to a step's length: `N - 1` for a number `N` right
    /// after it (no space between), else 1; with the place to blame if the length goes wrong.
    fn elongation(&mut self, what: &str, mark: usize) -> Result<(Q, usize), SyntaxError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Num(_),
                spaced: false,
                ..
            }) => {
                let (n, at) = self.number_after(what)?;
                let by = (n - Q::ONE).map_err(|e| self.err_at(at, e.to_string()))?;
                Ok((by, at))
            }
            _ => Ok((Q::ONE, mark)),
        }
    }

    /// `weight` lengthened by an [`Parser::elongation`]; a step keeps a positive length.
    fn lengthen(&self, weight: Q, (by, at): (Q, usize)) -> Result<Q, SyntaxError> {
        let w = (weight + by).map_err(|e| self.err_at(at, e.to_string()))?;
        if w <= Q::ZERO {
            return Err(self.err_at(at, "a step's length ('@', '_') must be positive"));
        }
        Ok(w)
    }

    fn step(&mut self) -> Result<Step, SyntaxError> {
        let from = self.part()?;
        let Some(Token {
            tok: Tok::Range,
            at: range_at,
            ..
        }) = self.peek().cloned()
        else {
            return Ok(from);
        };
        if from.weight != Q::ONE {
            return Err(self.err_at(
                range_at,
                "a range's length goes after its second end (0 .. 3@2)",
            ));
        }
        self.pos += 1;
        if !matches!(
            self.peek().map(|t| &t.tok),
            Some(Tok::Num(_) | Tok::Word(_) | Tok::LBracket | Tok::LAngle | Tok::LBrace)
        ) {
            return Err(self.err_at(self.here(), "expected a number or note name after '..'"));
        }
        let mut to = self.part()?;
        let weight = std::mem::replace(&mut to.weight, Q::ONE);
        Ok(Step {
            at: from.at,
            term: Term::Range {
                from: Box::new(from),
                to: Box::new(to),
            },
            weight,
            mods: Vec::new(),
        })
    }

    /// A term and its modifiers.
    fn part(&mut self) -> Result<Step, SyntaxError> {
        let at = self.here();
        let term = self.term()?;
        let mut step = Step {
            term,
            at,
            weight: Q::ONE,
            mods: Vec::new(),
        };
        while let Some(t) = self.peek().cloned() {
            match t.tok {
                Tok::Star | Tok::Slash => {
                    self.pos += 1;
                    let arg = self.arg()?;
                    step.mods.push(if t.tok == Tok::Star {
                        Mod::Fast(arg)
                    } else {
                        Mod::Slow(arg)
                    });
                }
                Tok::Question => {
                    self.pos += 1;
                    let p = match self.peek() {
                        Some(Token {
                            tok: Tok::Num(_),
                            spaced: false,
                            ..
                        }) => {
                            let (p, pat) = self.number_after("'?'")?;
                            if p < Q::ZERO || p > Q::ONE {
                                return Err(self.err_at(pat, "'?' probability must be within 0..1"));
                            }
                            Some(p)
                        }
                        _ => None,
                    };
                    let seed = self.next_seed();
                    step.mods.push(Mod::Degrade(p, seed));
                }
                Tok::At => {
                    self.pos += 1;
                    let by = self.elongation("'@'", t.at)?;
                    step.weight = self.lengthen(step.weight, by)?;
                }
                Tok::LParen => {
                    self.pos += 1;
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(self.err_at(t.at, format!("nested deeper than {MAX_DEPTH}")));
                    }
                    let close = Tok::RParen;
                    let k = self.euclid_arg(&close)?;
                    if !self.eat(&Tok::Comma) {
                        return Err(
                            self.err_at(self.here(), "expected ',' in (pulses,steps[,rotation])")
                        );
                    }
                    let n = self.euclid_arg(&close)?;
                    let r = if self.eat(&Tok::Comma) {
                        Some(self.euclid_arg(&close)?)
                    } else {
                        None
                    };
                    if !self.eat(&close) {
                        return Err(self.err_at(
                            self.here(),
                            format!("expected ')' to close '(' at {}", self.place(t.at)),
                        ));
                    }
                    self.depth -= 1;
                    step.mods.push(Mod::Euclid(k, n, r));
                }
                _ => break,
            }
        }
        Ok(step)
    }

    fn euclid_arg(&mut self, close: &Tok) -> Result<Seq, SyntaxError> {
        let seq = self.seq(Some(close))?;
        if seq.steps.is_empty() {
            return Err(self.err_at(self.here(), "empty euclid argument"));
        }
        Ok(seq)
    }

    fn place(&self, at: usize) -> String {
        let e = SyntaxError::at(self.src, at, "");
        format!("{}:{}", e.line, e.col)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek().is_some_and(|t| t.tok == *tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn arg(&mut self) -> Result<Arg, SyntaxError> {
        let at = self.here();
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Num(_) | Tok::Word(_) | Tok::LBracket | Tok::LAngle) => Ok(Arg {
                term: self.term()?,
                at,
            }),
            _ => Err(self.err_at(at, "expected a number or a bracketed pattern")),
        }
    }

    fn term(&mut self) -> Result<Term, SyntaxError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.err_at(self.src.len(), "unexpected end of pattern"));
        };
        let (kind, closer) = match &t.tok {
            Tok::Word(w) | Tok::Num(w) => {
                self.pos += 1;
                return Ok(Term::Atom(w.clone()));
            }
            Tok::Rest => {
                self.pos += 1;
                return Ok(Term::Rest);
            }
            Tok::LBracket => (GroupKind::Sub, Tok::RBracket),
            Tok::LAngle => (GroupKind::Alt, Tok::RAngle),
            Tok::LBrace => (GroupKind::Poly, Tok::RBrace),
            other => {
                let what = match other {
                    Tok::Star | Tok::Slash | Tok::At | Tok::Question | Tok::Percent => {
                        "a modifier needs a step before it"
                    }
                    _ => "unexpected symbol",
                };
                return Err(self.err_at(t.at, what));
            }
        };
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(t.at, format!("brackets nested deeper than {MAX_DEPTH}")));
        }
        let (layers, choice) = self.layers(Some(&closer))?;
        if !self.eat(&closer) {
            return Err(self.err_at(
                self.here(),
                format!(
                    "expected {} to close the bracket at {}",
                    closer_name(&closer),
                    self.place(t.at)
                ),
            ));
        }
        self.depth -= 1;
        let steps = if kind == GroupKind::Poly && self.eat(&Tok::Percent) {
            Some(Box::new(self.arg()?))
        } else {
            None
        };
        Ok(Term::Group {
            kind,
            layers,
            choice,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_place_and_caret() {
        let e = parse("a [b c").unwrap_err();
        assert_eq!((e.line, e.col), (1, 7));
        assert!(
            e.message.contains("']'") && e.message.contains("1:3"),
            "{e}"
        );
        let e = parse("a ]").unwrap_err();
        assert_eq!(e.col, 3);
        let e = parse("_ a").unwrap_err();
        assert_eq!(e.col, 1);
        let e = parse("a [b, c | d]").unwrap_err();
        assert_eq!(e.col, 9);
        let e = parse("a*").unwrap_err();
        assert_eq!(e.col, 3);
        assert!(parse(&"[".repeat(100)).is_err());
        assert!(parse("a!99999").is_err());
        assert!(parse("a@0").is_err());
    }

    #[test]
    fn steps_run_together_are_an_error_at_the_second() {
        let e = parse("a*2a*2").unwrap_err();
        assert_eq!(
            e.to_string().lines().next(),
            Some(
                "1:4: unexpected \"a\" right after the step before it; separate steps with a \
                 space"
            )
        );
        let e = parse("bd ~sn").unwrap_err();
        assert_eq!((e.line, e.col), (1, 5));
        let e = parse("a!3b").unwrap_err();
        assert_eq!((e.line, e.col), (1, 4));
        // Brackets and modifiers still attach without spaces.
        assert!(parse("[a b]*2 <c d>!2 e(3,8)").is_ok());
    }

    #[test]
    fn replicate_and_elongate() {
        let Term::Group { layers, .. } = parse("a!3 b _ _ c ! d@1.5").unwrap() else {
            panic!("not a group")
        };
        let steps = &layers[0].steps;
        let names: Vec<_> = steps
            .iter()
            .map(|s| match &s.term {
                Term::Atom(a) => format!("{a}@{}", s.weight),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(names, ["a@1", "a@1", "a@1", "b@3", "c@1", "c@1", "d@3/2"]);
    }
}
