//! `khorus-composer`: the composer stage's command line.

fn main() {}
