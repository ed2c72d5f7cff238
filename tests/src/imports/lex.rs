//! Rust source as the import scanner needs it: identifiers, `::` and single punctuation, each
//! with its line, and nothing from comments, strings or character literals — a doc example or a
//! test's source text that says `crate::x` imports nothing.

/// What a token is; only the distinctions the scanner makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// An identifier or keyword (`use`, `crate`, `super`, a name); raw `r#x` keeps its `r#`.
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation, one character at a time.
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: Kind,
    pub line: u32,
}

/// Tokens of `text`. Numbers are dropped; an unterminated comment or literal ends the text.
pub(super) fn tokens(text: &str) -> Vec<Token> {
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut i = 0;
    // Skips to `end` (exclusive), counting the newlines passed.
    let advance = |i: &mut usize, end: usize, line: &mut u32| {
        let end = end.min(s.len());
        *line += s[*i..end].iter().filter(|&&c| c == '\n').count() as u32;
        *i = end;
    };
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |n| i + n);
            advance(&mut i, end, &mut line);
        } else if c == '/' && next == Some('*') {
            let end = block_comment_end(&s, i);
            advance(&mut i, end, &mut line);
        } else if let Some(end) = string_end(&s, i) {
            advance(&mut i, end, &mut line);
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{..}') or a lifetime ('a): only the former
            // has a closing quote right after its first character or escape.
            if next == Some('\\') {
                // The escaped character may itself be a quote ('\'').
                let end = s[(i + 3).min(s.len())..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(s.len(), |n| i + 3 + n + 1);
                advance(&mut i, end, &mut line);
            } else if s.get(i + 2) == Some(&'\'') {
                let end = i + 3;
                advance(&mut i, end, &mut line);
            } else {
                i += 1;
            }
        } else if c == 'r' && next == Some('#') && s.get(i + 2).is_some_and(|&c| is_ident_start(c))
        {
            let end = ident_end(&s, i + 2);
            let name: String = s[i..end].iter().collect();
            out.push(Token {
                kind: Kind::Ident(name),
                line,
            });
            i = end;
        } else if is_ident_start(c) {
            let end = ident_end(&s, i);
            let name: String = s[i..end].iter().collect();
            out.push(Token {
                kind: Kind::Ident(name),
                line,
            });
            i = end;
        } else if c.is_ascii_digit() {
            i = ident_end(&s, i);
        } else if c == ':' && next == Some(':') {
            out.push(Token {
                kind: Kind::PathSep,
                line,
            });
            i += 2;
        } else if c.is_whitespace() {
            line += u32::from(c == '\n');
            i += 1;
        } else {
            out.push(Token {
                kind: Kind::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_end(s: &[char], from: usize) -> usize {
    s[from..]
        .iter()
        .position(|&c| !(c == '_' || c.is_alphanumeric()))
        .map_or(s.len(), |n| from + n)
}

/// End (exclusive) of the block comment starting at `i`; block comments nest.
fn block_comment_end(s: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i + 1 < s.len() {
        match (s[i], s[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// End (exclusive) of the string literal starting at `i` — `"…"`, `b"…"`, `c"…"` or a raw
/// `r#"…"#` of any of those — or `None` if none starts there.
fn string_end(s: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(s[j], 'b' | 'c') {
        j += 1;
    }
    if s.get(j) == Some(&'r') {
        let hashes = s[j + 1..].iter().take_while(|&&c| c == '#').count();
        let open = j + 1 + hashes;
        if s.get(open) != Some(&'"') {
            return None;
        }
        let mut k = open + 1;
        while k < s.len() {
            if s[k] == '"'
                && s[k + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == '#')
                    .count()
                    == hashes
            {
                return Some(k + 1 + hashes);
            }
            k += 1;
        }
        return Some(s.len());
    }
    if s.get(j) != Some(&'"') {
        return None;
    }
    let mut k = j + 1;
    while k < s.len() {
        match s[k] {
            '\\' => k += 2,
            '"' => return Some(k + 1),
            _ => k += 1,
        }
    }
    Some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(text: &str) -> Vec<(String, u32)> {
        tokens(text)
            .into_iter()
            .filter_map(|t| match t.kind {
                Kind::Ident(name) => Some((name, t.line)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_and_chars_hide_what_they_contain() {
        let text = r##"a // crate::x
/* crate /* nested */ y */ b "crate::s \" t" r#"crate "q""# br"z" 'c' '\'' c"w" d"##;
        let names: Vec<String> = idents(text).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "d"]);
    }

    #[test]
    fn lifetimes_are_not_char_literals() {
        let names: Vec<String> = idents("fn f<'a>(x: &'a str) -> Foo<'a> { x }")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["fn", "f", "a", "x", "a", "str", "Foo", "a", "x"]);
    }

    #[test]
    fn lines_count_newlines_inside_comments_and_strings() {
        let found = idents("a\n/* \n */ b \"\n\n\" c\n  d");
        assert_eq!(
            found,
            [
                ("a".into(), 1),
                ("b".into(), 3),
                ("c".into(), 5),
                ("d".into(), 6)
            ]
        );
    }

    #[test]
    fn path_separators_are_one_token() {
        let kinds: Vec<Kind> = tokens("crate::a").into_iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Ident("crate".into()),
                Kind::PathSep,
                Kind::Ident("a".into())
            ]
        );
    }
}
