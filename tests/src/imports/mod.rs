//! Import cycles between the modules of one crate (issue 28). Two modules that import each
//! other can only be read, changed and tested together; a cycle usually means an item lives
//! away from the concept that owns it. The compiler allows cycles, so this finds them.
//!
//! Reading the sources is enough: every `use crate::…`, inline `crate::…` path and `super::…`
//! path of each file under `src/` is a dependency of the file's module on the module the path
//! names. Imports of a module's ancestors or descendants do not count; a module and everything
//! below it counts as one among its siblings (see `graph.rs`). Test code imports freely and is
//! left out: `mod tests` blocks and files, and whatever is under `#[cfg(test)]`.

mod graph;
mod lex;
mod refs;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use graph::{Graph, Module};

/// Where an import is written: a file (as the crate directory, then its path in the crate) and
/// a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// `composer/src/pattern.rs`.
    pub file: String,
    /// The line of the import.
    pub line: u32,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Modules of one crate that import each other in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The crate, as its directory is named.
    pub krate: String,
    /// The modules in import order (`["pattern", "signal"]`: pattern imports signal, signal
    /// imports pattern); the root is `crate`.
    pub modules: Vec<String>,
    /// For each module, where it imports the next (the last, the first).
    pub sites: Vec<Vec<Site>>,
}

impl fmt::Display for Cycle {
    /// `composer: pattern -> signal -> pattern`, then one line per import with its sites.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.krate, self.modules.join(" -> "))?;
        if let Some(first) = self.modules.first() {
            write!(f, " -> {first}")?;
        }
        for (i, sites) in self.sites.iter().enumerate() {
            let to = &self.modules[(i + 1) % self.modules.len()];
            let at: Vec<String> = sites.iter().map(Site::to_string).collect();
            write!(f, "\n    {} -> {to}: {}", self.modules[i], at.join(", "))?;
        }
        Ok(())
    }
}

/// The module a file under a crate's directory holds: `src/a/b.rs` and `src/a/b/mod.rs` are
/// `a::b`, `src/lib.rs` and `src/main.rs` the root. `None` for anything else, `src/bin/`
/// included: each file there is a crate of its own.
fn module_of(path: &Path) -> Option<Module> {
    let rest = path.strip_prefix("src").ok()?;
    if rest.extension()? != "rs" || rest.starts_with("bin") {
        return None;
    }
    let mut module: Module = rest
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if module.last().is_some_and(|s| s == "mod") {
        module.pop();
    } else if module == ["lib"] || module == ["main"] {
        module.clear();
    }
    Some(module)
}

fn display(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// The cycles among the modules of crate `name`, given its files as (path in the crate
/// directory, text) pairs: `("src/pattern.rs", "…")`.
pub fn crate_cycles(name: &str, files: impl IntoIterator<Item = (PathBuf, String)>) -> Vec<Cycle> {
    let scanned: Vec<(Module, String, refs::FileRefs)> = files
        .into_iter()
        .filter_map(|(path, text)| {
            let module = module_of(&path)?;
            let refs = refs::scan(&module, &text);
            Some((module, format!("{name}/{}", path.display()), refs))
        })
        .collect();
    // Test modules: named `tests`, or declared for tests only by their parent; and below them.
    let declared_for_tests: Vec<Module> = scanned
        .iter()
        .flat_map(|(module, _, refs)| {
            refs.test_children.iter().map(move |child| {
                let mut m = module.clone();
                m.push(child.clone());
                m
            })
        })
        .collect();
    let is_test = |module: &Module| {
        module.iter().any(|s| s == "tests")
            || declared_for_tests.iter().any(|t| module.starts_with(t))
    };
    let kept: Vec<&(Module, String, refs::FileRefs)> =
        scanned.iter().filter(|(m, _, _)| !is_test(m)).collect();
    let mut graph = Graph::new(kept.iter().map(|(m, _, _)| m.clone()));
    for (module, file, refs) in kept {
        for r in &refs.refs {
            let site = Site {
                file: file.clone(),
                line: r.line,
            };
            graph.import(module, &r.path, site);
        }
    }
    graph
        .cycles()
        .into_iter()
        .map(|modules| {
            let sites = (0..modules.len())
                .map(|i| {
                    let to = &modules[(i + 1) % modules.len()];
                    graph.sites(&modules[i], to)
                })
                .collect();
            Cycle {
                krate: name.to_owned(),
                modules: modules.iter().map(display).collect(),
                sites,
            }
        })
        .collect()
}

/// The cycles in every crate of the workspace whose root manifest is in `root`.
pub fn workspace_cycles(root: &Path) -> anyhow::Result<Vec<Cycle>> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("failed to read {}", manifest.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("failed to parse {}", manifest.display()))?;
    let Some(members) = table
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
    else {
        bail!("{} has no workspace.members", manifest.display());
    };
    let mut cycles = Vec::new();
    for member in members {
        let Some(member) = member.as_str() else {
            bail!("{}: a member that is not a string", manifest.display());
        };
        if member.contains(['*', '?', '[']) {
            bail!(
                "{}: member {member:?} is a glob; list members by name",
                manifest.display()
            );
        }
        let dir = root.join(member);
        let mut files = Vec::new();
        for path in rust_files(&dir.join("src"))? {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let in_crate = path.strip_prefix(&dir).unwrap_or(&path).to_path_buf();
            files.push((in_crate, text));
        }
        cycles.extend(crate_cycles(member, files));
    }
    Ok(cycles)
}

/// Every `.rs` file under `dir`, sorted so that reports come out the same every time.
fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("failed to list {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("failed to list {}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycles(files: &[(&str, &str)]) -> Vec<String> {
        let files = files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string()));
        crate_cycles("demo", files)
            .iter()
            .map(Cycle::to_string)
            .collect()
    }

    #[test]
    fn files_map_to_modules() {
        let of = |p: &str| module_of(Path::new(p)).map(|m| display(&m));
        assert_eq!(of("src/lib.rs").as_deref(), Some("crate"));
        assert_eq!(of("src/main.rs").as_deref(), Some("crate"));
        assert_eq!(of("src/a/b.rs").as_deref(), Some("a::b"));
        assert_eq!(of("src/a/b/mod.rs").as_deref(), Some("a::b"));
        assert_eq!(of("src/bin/tool.rs"), None);
        assert_eq!(of("benches/x.rs"), None);
    }

    #[test]
    fn two_modules_importing_each_other_are_a_cycle_with_every_import_located() {
        let found = cycles(&[
            ("src/lib.rs", "pub mod pattern;\npub mod signal;\n"),
            (
                "src/pattern.rs",
                "//! Patterns.\nuse crate::signal::Signals;\n",
            ),
            (
                "src/signal.rs",
                "use crate::{pattern::Pattern, time::Q};\n\nfn f() -> crate::pattern::Hap { todo!() }\n",
            ),
        ]);
        assert_eq!(
            found,
            ["demo: pattern -> signal -> pattern\n    \
              pattern -> signal: demo/src/pattern.rs:2\n    \
              signal -> pattern: demo/src/signal.rs:1, demo/src/signal.rs:3"]
        );
    }

    #[test]
    fn super_to_a_sibling_is_an_import() {
        let found = cycles(&[
            ("src/graph/mod.rs", "mod build;\nmod edit;\n"),
            ("src/graph/build.rs", "use super::edit::key;\n"),
            ("src/graph/edit.rs", "fn f() { super::build::graph(); }\n"),
        ]);
        assert_eq!(
            found,
            ["demo: graph::build -> graph::edit -> graph::build\n    \
              graph::build -> graph::edit: demo/src/graph/build.rs:1\n    \
              graph::edit -> graph::build: demo/src/graph/edit.rs:1"]
        );
    }

    #[test]
    fn a_module_and_a_sibling_of_its_parent_importing_each_other_are_a_cycle() {
        let found = cycles(&[
            (
                "src/graph/mod.rs",
                "mod build;\nmod spec;\npub use spec::Spec;\n",
            ),
            ("src/graph/spec.rs", "pub struct Spec;\n"),
            ("src/graph/build.rs", "use crate::edit::key;\n"),
            ("src/edit.rs", "use crate::graph::Spec;\n"),
        ]);
        assert_eq!(
            found,
            ["demo: edit -> graph -> edit\n    \
              edit -> graph: demo/src/edit.rs:1\n    \
              graph -> edit: demo/src/graph/build.rs:1"]
        );
    }

    #[test]
    fn a_parent_re_exporting_its_children_is_no_cycle() {
        let found = cycles(&[
            (
                "src/synth/mod.rs",
                "pub mod engine;\npub mod effect;\npub use engine::{Engine, DEFAULT_BPM};\n\
                 pub use self::effect::Effect;\nuse crate::synth::engine::Voice;\n",
            ),
            (
                "src/synth/engine.rs",
                "use super::Thing;\nuse super::effect::Effect;\n",
            ),
            ("src/synth/effect.rs", "use crate::synth::Thing;\n"),
        ]);
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn a_re_export_does_not_hide_a_cycle_through_the_re_exporting_module() {
        // `effect` takes `engine`'s item through `rt`'s re-export: a dependency on `rt`,
        // which depends on `engine`.
        let found = cycles(&[
            (
                "src/lib.rs",
                "pub mod effect;\npub mod engine;\npub mod rt;\n",
            ),
            ("src/rt.rs", "pub use crate::engine::DEFAULT_BPM;\n"),
            ("src/engine.rs", "use crate::effect::Effect;\n"),
            ("src/effect.rs", "use crate::rt::DEFAULT_BPM;\n"),
        ]);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("demo: effect -> rt -> engine -> effect\n"));
    }

    #[test]
    fn test_modules_and_test_files_import_freely() {
        let found = cycles(&[
            ("src/lib.rs", "pub mod a;\npub mod b;\n"),
            (
                "src/a.rs",
                "use crate::b::B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
            ),
            (
                "src/b.rs",
                "#[cfg(test)]\nmod fixtures;\nmod tests {\n    use crate::a::A;\n}\n\
                 #[cfg(test)]\nfn helper() { crate::a::x(); }\n",
            ),
            ("src/b/tests.rs", "use crate::a::A;\n"),
            ("src/b/fixtures.rs", "use crate::a::A;\n"),
            ("src/b/fixtures/deep.rs", "use crate::a::A;\n"),
        ]);
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn comments_and_strings_import_nothing() {
        let found = cycles(&[
            ("src/a.rs", "use crate::b::B;\n"),
            (
                "src/b.rs",
                "/// See [`crate::a::A`].\nconst S: &str = \"use crate::a::A;\";\n",
            ),
        ]);
        assert!(found.is_empty(), "{found:#?}");
    }
}
