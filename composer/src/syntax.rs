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
    /// The source line the error is on (for the caret display).
    pub source_line: String,
}

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
        let source_line = src[line_start..].lines().next().unwrap_or("").to_string();
        SyntaxError {
            line,
            col,
            message: message.into(),
            source_line,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}: {}", self.line, self.col, self.message)?;
        writeln!(f, "  {}", self.source_line)?;
        write!(f, "  {}^", " ".repeat(self.col.saturating_sub(1)))
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
}
