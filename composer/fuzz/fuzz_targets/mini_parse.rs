//! Fuzzes the mini-notation parser and compiler, and queries what compiles: no input may
//! panic; errors must carry a 1-based line:col and a caret line.
#![no_main]

use khorus_composer::mini;
use khorus_composer::pattern::Context;
use khorus_composer::signal::parse_expr;
use khorus_composer::time::Q;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match mini::parse(src) {
        Ok(p) => {
            // Overflow is an error value; a panic here is a bug.
            let _ = p.query_span(Q::ZERO, Q::int(2), &Context::default());
        }
        Err(e) => {
            assert!(e.line >= 1 && e.col >= 1);
            assert!(e.to_string().contains('^'));
        }
    }
    if let Err(e) = parse_expr(src) {
        assert!(e.line >= 1 && e.col >= 1);
    }
});
