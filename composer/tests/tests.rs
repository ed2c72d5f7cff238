//! The composer's integration tests: one binary, one module per topic.

mod conformance;
mod e2e;
mod properties;
mod replay;
mod schedule;
mod tidal;
mod util;
