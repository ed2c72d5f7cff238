//! No crate of the workspace has modules that import each other in a cycle (issue 28). It
//! reads the sources and starts nothing, but it is a topic of the workspace's one test binary
//! like the others; the scanner and its own tests are `khorus_tests::imports`.

use std::path::Path;

use khorus_tests::imports::workspace_cycles;

#[test]
fn no_crate_has_modules_that_import_each_other_in_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace");
    let cycles = workspace_cycles(root).expect("the workspace's sources are readable");
    let report: Vec<String> = cycles.iter().map(ToString::to_string).collect();
    assert!(
        cycles.is_empty(),
        "{} import cycle(s); move the shared item to the module that owns its concept:\n{}",
        cycles.len(),
        report.join("\n")
    );
}
