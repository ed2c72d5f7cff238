//! The graph file's schema — what `khorus-synth --graph FILE`, `LoadGraph` and control's
//! plan speak: instruments (a built-in or a definition, polyphony, gain, pan, sends, control
//! values), effect nodes (delay, reverb, or a definition that reads `"input"`) with routes to
//! later effects, and control's id table (`spec.rs`) — how a graph is checked and built into
//! an [`Engine`](crate::engine::Engine) (`build.rs`), and how it is changed node by node
//! (`edit.rs`). Every default and range comes from [`crate::schema::table`].

mod build;
mod edit;
mod spec;

pub use spec::{EffectSpec, GraphError, GraphSpec, IdSpec, InstrumentSpec, Sends};
