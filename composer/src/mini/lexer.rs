//! Mini-notation tokens. The lexer records each token's byte range and whether whitespace
//! came before it, because adjacency matters (`a!3` replicates, `a ! b` repeats `a`; `a?0.3`
//! sets a probability; `a _2` elongates, `a _ 2` is a step "2"). A chord (`e4'min7'ii`) is one
//! word, and so is anything with `:` in it, as in Tidal (`bd:3`, `808:4`, `a:b`,
//! `sd:4:1.4`); the compiler takes them apart. A `-` that starts no number is a rest, as in
//! Tidal (`a - b` is `a ~ b`; `-1` stays a number).

use crate::notes::note_name;
use crate::syntax::SyntaxError;

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word: a note name (`c#4`), a sound (`bd`), a symbol (`x`).
    Word(String),
    /// A number as written (`3`, `-1`, `0.25`).
    Num(String),
    /// `~`
    Rest,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `<`
    LAngle,
    /// `>`
    RAngle,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `|`
    Pipe,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `!`
    Bang,
    /// `@`
    At,
    /// `_`
    Underscore,
    /// `?`
    Question,
    /// `%`
    Percent,
    /// `.` (Tidal's group separator)
    Dot,
    /// `..` (a range, `0 .. 3`)
    Range,
}

/// A token with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Byte offset of its first character.
    pub at: usize,
    /// Whether whitespace preceded it.
    pub spaced: bool,
}

/// Longest input accepted, so a hostile command cannot make the parser work for long.
pub const MAX_SOURCE: usize = 8192;

/// Whether `ch` at byte `i` continues the word `word` (what it has so far): a chord part (`'`
/// then a letter or digit), a `:` (Tidal's words take it anywhere after their first
/// character), or, once the word has a `:`, a `.` or `-` before a digit (`sd:4:1.4`,
/// `bd:3:-2`).
fn joins_word(src: &str, word: &str, i: usize, ch: char) -> bool {
    let next = src[i + ch.len_utf8()..].chars().next();
    match ch {
        '\'' => next.is_some_and(|n| n.is_ascii_alphanumeric()),
        ':' => !word.is_empty(),
        '.' | '-' => word.contains(':') && next.is_some_and(|n| n.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `rest` (what follows a `-`) makes it a minus sign: a digit, or `.` and a digit.
fn starts_number(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        Some(d) if d.is_ascii_digit() => true,
        Some('.') => chars.next().is_some_and(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// Refuses a `:` right before a bracket (Strudel's lists, `[a b]:3` or `a:[b c]`), which
/// Tidal's mini-notation does not have either.
fn check_colon(src: &str, i: usize) -> Result<(), SyntaxError> {
    let after = src[i + 1..].chars().next();
    let before = src[..i].chars().next_back();
    match (before, after) {
        (_, Some('[' | '<' | '{')) | (Some(']' | '>' | '}'), _) => Err(SyntaxError::at(
            src,
            i,
            "':' before a bracket is Strudel's list syntax, which Tidal and khorus do not have; \
             ':' joins the fields of one word (bd:3, sd:4:0.5)",
        )),
        _ => Ok(()),
    }
}

/// Splits `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    if src.len() > MAX_SOURCE {
        return Err(SyntaxError::at(
            src,
            MAX_SOURCE,
            format!("pattern longer than {MAX_SOURCE} bytes"),
        ));
    }
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    let mut spaced = true;
    while let Some(&(at, c)) = it.peek() {
        if c.is_whitespace() {
            spaced = true;
            it.next();
            continue;
        }
        if c == '.' && src[at + 1..].starts_with('.') {
            it.next();
            it.next();
            out.push(Token {
                tok: Tok::Range,
                at,
                spaced,
            });
            spaced = false;
            continue;
        }
        let simple = match c {
            '~' => Some(Tok::Rest),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '<' => Some(Tok::LAngle),
            '>' => Some(Tok::RAngle),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '|' => Some(Tok::Pipe),
            '*' => Some(Tok::Star),
            '/' => Some(Tok::Slash),
            '!' => Some(Tok::Bang),
            '@' => Some(Tok::At),
            '_' => Some(Tok::Underscore),
            '?' => Some(Tok::Question),
            '%' => Some(Tok::Percent),
            '.' => Some(Tok::Dot),
            _ => None,
        };
        let tok = if let Some(t) = simple {
            it.next();
            t
        } else if c.is_ascii_alphabetic() || joins_word(src, "", at, c) {
            let mut end = at;
            while let Some(&(i, ch)) = it.peek() {
                // A note name takes a negative octave: `c-1` is MIDI 0, one token.
                let negative_octave = ch == '-'
                    && src[i + 1..].starts_with(|n: char| n.is_ascii_digit())
                    && note_name(&src[at..end]).is_some()
                    && !src[at..end].contains(|c: char| c.is_ascii_digit());
                if ch == ':' {
                    check_colon(src, i)?;
                }
                if ch.is_ascii_alphanumeric()
                    || ch == '#'
                    || negative_octave
                    || joins_word(src, &src[at..end], i, ch)
                {
                    end = i + ch.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            Tok::Word(src[at..end].to_string())
        } else if c == '-' && !starts_number(&src[at + 1..]) {
            // Tidal: a '-' that starts no number is a rest.
            it.next();
            Tok::Rest
        } else if c.is_ascii_digit() || c == '-' {
            it.next();
            let mut end = at + 1;
            let mut seen_dot = false;
            while let Some(&(i, ch)) = it.peek() {
                let digit_after_dot = ch == '.'
                    && !seen_dot
                    && src[i + 1..]
                        .chars()
                        .next()
                        .is_some_and(|n| n.is_ascii_digit());
                if ch.is_ascii_digit() || digit_after_dot {
                    seen_dot |= ch == '.';
                    end = i + 1;
                    it.next();
                } else {
                    break;
                }
            }
            // An exponent: `1e3`, `1.5e-2`, `2E+1`.
            let rest = &src[end..];
            if end > at + usize::from(c == '-')
                && let Some(exp) = rest.strip_prefix(['e', 'E'])
            {
                let signed = exp.strip_prefix(['-', '+']).unwrap_or(exp);
                let digits = signed.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    let len = 1 + (exp.len() - signed.len()) + digits;
                    end += len;
                    while it.peek().is_some_and(|&(i, _)| i < end) {
                        it.next();
                    }
                }
            }
            // A number rooting a chord (`0'maj`) or naming samples (`808:4`) is a word.
            let joined = src[end..]
                .chars()
                .next()
                .is_some_and(|ch| joins_word(src, &src[at..end], end, ch));
            if joined {
                while let Some(&(i, ch)) = it.peek() {
                    if ch == ':' {
                        check_colon(src, i)?;
                    }
                    if i < end {
                        it.next();
                    } else if ch.is_ascii_alphanumeric()
                        || ch == '#'
                        || joins_word(src, &src[at..end], i, ch)
                    {
                        end = i + ch.len_utf8();
                        it.next();
                    } else {
                        break;
                    }
                }
                Tok::Word(src[at..end].to_string())
            } else {
                Tok::Num(src[at..end].to_string())
            }
        } else {
            if c == ':' {
                check_colon(src, at)?;
            }
            let msg = match c {
                '\'' => "a chord needs a name after the quote (c'maj)".to_string(),
                ':' => "':' joins the fields of one word (bd:3); a word starts with a letter or \
                        digit"
                    .to_string(),
                '^' => "'^' is not mini-notation khorus reads: Strudel marks steps with it, \
                        Tidal reads a control bus (^name)"
                    .to_string(),
                _ => format!("unexpected character {c:?}"),
            };
            return Err(SyntaxError::at(src, at, msg));
        };
        out.push(Token { tok, at, spaced });
        spaced = false;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_adjacency() {
        let t = lex("c#4 a!3 ~ -1.5?0.3").unwrap();
        let kinds: Vec<_> = t.iter().map(|t| (t.tok.clone(), t.spaced)).collect();
        assert_eq!(
            kinds,
            vec![
                (Tok::Word("c#4".into()), true),
                (Tok::Word("a".into()), true),
                (Tok::Bang, false),
                (Tok::Num("3".into()), false),
                (Tok::Rest, true),
                (Tok::Num("-1.5".into()), true),
                (Tok::Question, false),
                (Tok::Num("0.3".into()), false),
            ]
        );
    }

    #[test]
    fn an_overlong_pattern_error_shows_a_window_not_the_input() {
        let src = "a ".repeat(35_000);
        let e = lex(&src).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("1:8193: pattern longer than 8192 bytes\n  …a a"),
            "{text}"
        );
        assert!(text.len() < 300, "{} bytes: {text}", text.len());
        let caret = text.lines().last().unwrap_or("");
        assert_eq!(caret, format!("  {}^", " ".repeat(61)));
    }

    fn words(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_with_exponents_and_signs_are_one_token() {
        assert_eq!(
            words("1e3 -2.5 1.5e-2 2E+1"),
            [
                Tok::Num("1e3".into()),
                Tok::Num("-2.5".into()),
                Tok::Num("1.5e-2".into()),
                Tok::Num("2E+1".into()),
            ]
        );
        // No digit after the `e`: not an exponent.
        assert_eq!(words("1e"), [Tok::Num("1".into()), Tok::Word("e".into())]);
    }

    #[test]
    fn note_names_with_negative_octaves_are_one_token() {
        assert_eq!(
            words("c-1 eb-1 a-1"),
            [
                Tok::Word("c-1".into()),
                Tok::Word("eb-1".into()),
                Tok::Word("a-1".into()),
            ]
        );
        // Not a note name, or an octave already given: the '-' starts a number.
        assert_eq!(
            words("bd-1"),
            [Tok::Word("bd".into()), Tok::Num("-1".into())]
        );
    }

    #[test]
    fn chords_and_sample_indices_are_one_word() {
        let w = |s: &str| Tok::Word(s.into());
        assert_eq!(
            words("c'maj e4'min7'ii 0'maj 'm9'o bd:3 808:4 c#-1'5"),
            [
                w("c'maj"),
                w("e4'min7'ii"),
                w("0'maj"),
                w("'m9'o"),
                w("bd:3"),
                w("808:4"),
                w("c#-1'5"),
            ]
        );
        // Modifiers still attach after them.
        assert_eq!(
            words("bd:3*2"),
            [w("bd:3"), Tok::Star, Tok::Num("2".into())]
        );
        let e = lex("c' d").unwrap_err();
        assert_eq!(e.col, 2);
        assert!(e.message.contains("chord needs a name"), "{e}");
        // Tidal's words take ':' anywhere after their first character.
        assert_eq!(
            words("bd:x a:b: sd:4:1.4"),
            [w("bd:x"), w("a:b:"), w("sd:4:1.4")]
        );
        let e = lex("a :3").unwrap_err();
        assert_eq!(e.col, 3);
        assert!(e.message.contains("starts with a letter or digit"), "{e}");
    }

    #[test]
    fn ranges_with_and_without_spaces() {
        let n = |s: &str| Tok::Num(s.into());
        assert_eq!(words("0 .. 3"), [n("0"), Tok::Range, n("3")]);
        assert_eq!(words("0..3"), [n("0"), Tok::Range, n("3")]);
        assert_eq!(words("1.5..3"), [n("1.5"), Tok::Range, n("3")]);
        assert_eq!(
            words("a . b"),
            [Tok::Word("a".into()), Tok::Dot, Tok::Word("b".into())]
        );
    }

    #[test]
    fn bad_characters_are_placed() {
        let e = lex("a b $").unwrap_err();
        assert_eq!((e.line, e.col), (1, 5));
        // A '-' that starts no number is a rest, as in Tidal.
        assert_eq!(
            words("a - -1 -.5 -"),
            [
                Tok::Word("a".into()),
                Tok::Rest,
                Tok::Num("-1".into()),
                Tok::Num("-.5".into()),
                Tok::Rest
            ]
        );
    }
}
