//! `khorus-collector`: the collector stage command line.

fn main() {}
