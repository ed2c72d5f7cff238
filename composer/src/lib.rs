//! khorus composer: patterns with TidalCycles semantics, turned into timestamped notes.
#![warn(missing_docs)]
