//! khorus composer: patterns with TidalCycles semantics, turned into timestamped notes.
//!
//! Time is exact ([`time::Q`]); a [`pattern::Pattern`] answers a query span with haps;
//! [`combinators`] and the [`mini`]-notation build patterns; [`signal`] lets any numeric
//! argument follow the kernel's [`levels`]; [`transport`] maps cycles to `CLOCK_MONOTONIC` nanoseconds and
//! [`scheduler`] publishes notes one lookahead ahead; [`score`] holds the kernel-driven scores;
//! [`stage`] runs it all on the bus.
#![warn(missing_docs)]

pub mod cli;
pub mod combinators;
pub mod controls;
pub mod explain;
pub mod ir;
pub mod levels;
pub mod mini;
pub mod notes;
pub mod pattern;
pub mod ramps;
pub mod rand;
pub mod scheduler;
pub mod score;
pub mod signal;
pub mod span;
pub mod stage;
pub mod syntax;
pub mod time;
pub mod transport;
pub mod watch;
