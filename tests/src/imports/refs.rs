//! What one file names in its own crate: every path of a `use` tree and every inline path that
//! starts at `crate::` or climbs with `super::`, made absolute from the crate root, with its
//! line. Test code is left out — a `mod tests` block, an item under `#[cfg(test)]` — and the
//! child modules declared for tests only are listed so their files can be left out too.

use super::lex::{Kind, Token, tokens};

/// A path into the crate, absolute from its root (`["pattern", "Pattern"]`), and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ref {
    pub path: Vec<String>,
    pub line: u32,
}

/// What the scanner takes from one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FileRefs {
    pub refs: Vec<Ref>,
    /// Child modules declared for tests only (`#[cfg(test)] mod x;`, `mod tests;`).
    pub test_children: Vec<String>,
}

/// The references of `text`, the source of the file of module `module` (empty for the root).
pub(super) fn scan(module: &[String], text: &str) -> FileRefs {
    let mut scanner = Scanner {
        toks: tokens(text),
        i: 0,
        depth: 0,
        module,
        inline: Vec::new(),
        out: FileRefs::default(),
    };
    scanner.run();
    scanner.out
}

struct Scanner<'a> {
    toks: Vec<Token>,
    i: usize,
    /// Brace depth at `i`.
    depth: usize,
    module: &'a [String],
    /// Inline `mod x { … }` blocks open at `i`, with the depth outside each: `super::` inside
    /// one climbs from it, not from the file's module.
    inline: Vec<(String, usize)>,
    out: FileRefs,
}

impl Scanner<'_> {
    fn kind(&self, at: usize) -> Option<&Kind> {
        self.toks.get(at).map(|t| &t.kind)
    }

    fn ident(&self, at: usize) -> Option<&str> {
        match self.kind(at) {
            Some(Kind::Ident(name)) => Some(name),
            _ => None,
        }
    }

    fn is(&self, at: usize, c: char) -> bool {
        self.kind(at) == Some(&Kind::Punct(c))
    }

    fn run(&mut self) {
        while self.i < self.toks.len() {
            let i = self.i;
            if let Some(after) = self.cfg_test_attribute(i) {
                self.skip_test_item(after);
                continue;
            }
            match self.ident(i) {
                Some("mod") => self.module_item(),
                Some("use") if !self.is(i + 1, '<') => self.use_item(),
                Some("crate") if !(i > 0 && self.is(i - 1, '$')) => self.inline_path(),
                Some("super") => self.inline_path(),
                _ => {
                    if self.is(i, '{') {
                        self.depth += 1;
                    } else if self.is(i, '}') {
                        self.depth = self.depth.saturating_sub(1);
                        while self.inline.last().is_some_and(|&(_, d)| d == self.depth) {
                            self.inline.pop();
                        }
                    }
                    self.i += 1;
                }
            }
        }
    }

    /// If `#[cfg(test)]` starts at `at`, the index after it.
    fn cfg_test_attribute(&self, at: usize) -> Option<usize> {
        let shape = (self.is(at, '#') && self.is(at + 1, '[') && self.is(at + 3, '('))
            && self.ident(at + 2) == Some("cfg")
            && self.ident(at + 4) == Some("test")
            && self.is(at + 5, ')')
            && self.is(at + 6, ']');
        shape.then_some(at + 7)
    }

    /// Index after the bracket, brace or parenthesis group that opens at `at`.
    fn group_end(&self, at: usize) -> usize {
        let mut depth = 0usize;
        for j in at..self.toks.len() {
            match self.kind(j) {
                Some(Kind::Punct('(' | '[' | '{')) => depth += 1,
                Some(Kind::Punct(')' | ']' | '}')) => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
        }
        self.toks.len()
    }

    /// Skips the item a `#[cfg(test)]` ended at `at` applies to (further attributes included),
    /// noting a child module it declares.
    fn skip_test_item(&mut self, mut at: usize) {
        while self.is(at, '#') && self.is(at + 1, '[') {
            at = self.group_end(at + 1);
        }
        let mut j = at;
        while j < self.toks.len() {
            if self.ident(j) == Some("mod")
                && self.is(j + 2, ';')
                && let Some(name) = self.ident(j + 1)
            {
                self.out.test_children.push(name.to_owned());
            }
            match self.kind(j) {
                Some(Kind::Punct(';')) => {
                    j += 1;
                    break;
                }
                Some(Kind::Punct('{')) => {
                    j = self.group_end(j);
                    break;
                }
                Some(Kind::Punct('(' | '[')) => j = self.group_end(j),
                _ => j += 1,
            }
        }
        self.i = j;
    }

    /// `mod x;` or `mod x { … }` at `i`; a module named `tests` is test code either way.
    fn module_item(&mut self) {
        let i = self.i;
        let Some(name) = self.ident(i + 1).map(str::to_owned) else {
            self.i += 1;
            return;
        };
        if self.is(i + 2, ';') {
            if name == "tests" {
                self.out.test_children.push(name);
            }
            self.i = i + 3;
        } else if self.is(i + 2, '{') && name == "tests" {
            self.i = self.group_end(i + 2);
        } else if self.is(i + 2, '{') {
            self.inline.push((name, self.depth));
            self.depth += 1;
            self.i = i + 3;
        } else {
            self.i += 1;
        }
    }

    /// A `use` item at `i`: every leaf of its tree.
    fn use_item(&mut self) {
        self.i += 1;
        let mut leaves = Vec::new();
        self.use_tree(&mut Vec::new(), &mut leaves);
        for (path, line) in leaves {
            self.record(path, line);
        }
    }

    /// One use tree at `i` under `prefix`: `a::b`, `a::b as c`, `a::*`, `a::{…}`; its leaves go
    /// to `leaves` with the line of their last segment.
    fn use_tree(&mut self, prefix: &mut Vec<String>, leaves: &mut Vec<(Vec<String>, u32)>) {
        let base = prefix.len();
        loop {
            let line = self.toks.get(self.i).map_or(0, |t| t.line);
            match self.kind(self.i).cloned() {
                Some(Kind::PathSep) => self.i += 1,
                Some(Kind::Ident(name)) => {
                    prefix.push(name);
                    self.i += 1;
                    if self.kind(self.i) == Some(&Kind::PathSep) {
                        continue;
                    }
                    if self.ident(self.i) == Some("as") {
                        self.i += 2;
                    }
                    leaves.push((prefix.clone(), line));
                    break;
                }
                Some(Kind::Punct('*')) => {
                    self.i += 1;
                    leaves.push((prefix.clone(), line));
                    break;
                }
                Some(Kind::Punct('{')) => {
                    self.i += 1;
                    while self.i < self.toks.len() && !self.is(self.i, '}') {
                        let before = self.i;
                        self.use_tree(prefix, leaves);
                        if self.is(self.i, ',') {
                            self.i += 1;
                        } else if self.i == before {
                            break;
                        }
                    }
                    self.i += 1;
                    break;
                }
                _ => break,
            }
        }
        prefix.truncate(base);
    }

    /// An inline path starting at `i` with `crate` or `super`.
    fn inline_path(&mut self) {
        let line = self.toks[self.i].line;
        let mut path = vec![self.ident(self.i).unwrap_or_default().to_owned()];
        self.i += 1;
        while self.kind(self.i) == Some(&Kind::PathSep) {
            let Some(name) = self.ident(self.i + 1) else {
                break;
            };
            path.push(name.to_owned());
            self.i += 2;
        }
        if path.len() > 1 {
            self.record(path, line);
        }
    }

    /// Keeps `path` if it names something in this crate, made absolute.
    fn record(&mut self, path: Vec<String>, line: u32) {
        let mut here: Vec<String> = self.module.to_vec();
        here.extend(self.inline.iter().map(|(name, _)| name.clone()));
        let mut segments = path.into_iter().peekable();
        let mut absolute = match segments.peek().map(String::as_str) {
            Some("crate") => {
                segments.next();
                Vec::new()
            }
            Some("self") => {
                segments.next();
                here
            }
            Some("super") => {
                while segments.next_if(|s| s == "super").is_some() {
                    if here.pop().is_none() {
                        return;
                    }
                }
                here
            }
            // An external crate, or a name already in scope.
            _ => return,
        };
        absolute.extend(segments.filter(|s| s != "self"));
        self.out.refs.push(Ref {
            path: absolute,
            line,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(module: &[&str], text: &str) -> Vec<(String, u32)> {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        scan(&module, text)
            .refs
            .into_iter()
            .map(|r| (r.path.join("::"), r.line))
            .collect()
    }

    #[test]
    fn every_leaf_of_a_use_tree_is_a_path() {
        let found = paths(
            &[],
            "use crate::a::{b::C, d::{self, E as F},\n    *};\npub(crate) use crate::g;",
        );
        assert_eq!(
            found,
            [
                ("a::b::C".into(), 1),
                ("a::d".into(), 1),
                ("a::d::E".into(), 1),
                ("a".into(), 2),
                ("g".into(), 3),
            ]
        );
    }

    #[test]
    fn inline_paths_count_but_not_macro_crate_visibility_or_other_crates() {
        let text = "pub(crate) fn f() -> crate::a::B<u8> { crate::c::d::<u8>(); $crate::e::F; \
                    std::mem::take(x); use std::fmt; }";
        assert_eq!(paths(&[], text), [("a::B".into(), 1), ("c::d".into(), 1)]);
    }

    #[test]
    fn super_climbs_from_the_file_or_the_inline_module_it_is_written_in() {
        let text = "use super::x::Y;\nmod inner { use super::Z; fn f() { super::super::w(); } }\n\
                    fn g() { super::v(); }";
        assert_eq!(
            paths(&["a", "b"], text),
            [
                ("a::x::Y".into(), 1),
                ("a::b::Z".into(), 2),
                ("a::w".into(), 2),
                ("a::v".into(), 3),
            ]
        );
    }

    #[test]
    fn test_code_is_left_out_and_test_only_children_are_listed() {
        let text = "use crate::kept;\n\
                    #[cfg(test)] use crate::q;\n\
                    #[cfg(test)]\n#[allow(dead_code)]\nfn helper() -> [u8; 2] { crate::w(); [0; 2] }\n\
                    #[cfg(test)] mod fixtures;\n\
                    mod tests;\n\
                    #[cfg(test)]\nmod tests { use crate::z; }\n\
                    mod tests { use crate::z2; }\n\
                    fn after() { crate::also_kept(); }";
        let found = scan(&[], text);
        let kept: Vec<String> = found.refs.iter().map(|r| r.path.join("::")).collect();
        assert_eq!(kept, ["kept", "also_kept"]);
        assert_eq!(found.test_children, ["fixtures", "tests"]);
    }

    #[test]
    fn precise_capture_is_not_a_use_item() {
        assert_eq!(
            paths(&[], "fn f<'a>() -> impl Sized + use<'a> { crate::a::g() }"),
            [("a::g".into(), 1)]
        );
    }
}
