//! Syntax errors shared by the mini-notation and signal-expression parsers: every error
//! names its line and column and shows the offending line with a caret under the place.

use std::fmt;

/// A parse (or compile) error at a place in the source text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// The source line the error is on, cut to at most [`CONTEXT_CHARS`] characters either
    /// side of the place (a cut end is marked `…`), for the caret display.
    pub source_line: String,
    /// 0-based character offset of the place within `source_line`, where the caret goes.
    pub caret: usize,
}

/// Characters of source shown either side of an error's place: a long pattern gets a window
/// around the place, never the whole input.
pub const CONTEXT_CHARS: usize = 60;

impl SyntaxError {
    /// An error at byte offset `at` of `src`.
    pub fn at(src: &str, at: usize, message: impl Into<String>) -> Self {
        let at = at.min(src.len());
        // Byte offsets always come from char boundaries the lexer produced; clamp defensively.
        let at = (0..=at)
            .rev()
            .find(|&i| src.is_char_boundary(i))
            .unwrap_or(0);
        let before = &src[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = src[line_start..at].chars().count() + 1;
        let whole_line = src[line_start..].lines().next().unwrap_or("");
        let from = (col - 1).saturating_sub(CONTEXT_CHARS);
        let mut source_line = String::new();
        let mut caret = col - 1 - from;
        if from > 0 {
            source_line.push('…');
            caret += 1;
        }
        let mut chars = whole_line.chars().skip(from);
        source_line.extend(chars.by_ref().take(col - from + CONTEXT_CHARS));
        if chars.next().is_some() {
            source_line.push('…');
        }
        SyntaxError {
            line,
            col,
            message: message.into(),
            source_line,
            caret,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}: {}", self.line, self.col, self.message)?;
        writeln!(f, "  {}", self.source_line)?;
        write!(f, "  {}^", " ".repeat(self.caret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let e = SyntaxError::at("a b\nc [d", 6, "unclosed '['");
        assert_eq!((e.line, e.col), (2, 3));
        assert_eq!(e.to_string(), "2:3: unclosed '['\n  c [d\n    ^");
    }

    #[test]
    fn long_sources_show_a_window_around_the_place() {
        let src = format!("{}X{}", "a ".repeat(5000), "b ".repeat(5000));
        let e = SyntaxError::at(&src, 10_000, "here");
        assert_eq!(e.col, 10_001);
        let window = format!("…{}X{}…", "a ".repeat(30), "b ".repeat(30));
        assert_eq!(
            e.to_string(),
            format!("1:10001: here\n  {window}\n  {}^", " ".repeat(61))
        );
        // Near the start: no mark at the left, the caret at its column.
        let e = SyntaxError::at(&src, 2, "near");
        assert_eq!(e.source_line, format!("{}…", &src[..63]));
        assert_eq!(e.to_string().lines().last(), Some("    ^"));
        // At the very end.
        let e = SyntaxError::at(&src, src.len(), "end");
        assert_eq!(e.source_line, format!("…{}", &src[src.len() - 60..]));
        assert_eq!(e.caret, 61);
    }
}
