//! khorus synth: polyphonic instruments and effects rendered as a native PipeWire node.
//!
//! [`ir`] defines synths as data and compiles them; [`voice`] runs them polyphonically (a
//! block of voices at a time, in packs of SIMD lanes);
//! [`engine`] mixes instruments through the effect buses and the master limiter, starting
//! notes at exact frames; [`render`] drives the engine offline into a WAV file (written by
//! [`wav`]). [`rt`] is the
//! audio callback's side (rings in, crossfaded graph swaps), [`command`] the bus thread's
//! (commands resolved by name via [`params`]), [`stage`] wires both to the bus and PipeWire,
//! and [`client`] sends commands to a running synth.
#![warn(missing_docs)]

pub mod builtin;
pub mod cli;
pub mod client;
pub mod command;
mod compile;
pub mod dsp;
pub mod edit;
pub mod effect;
pub mod engine;
pub mod graph;
pub mod ids;
pub mod instrument;
pub mod ir;
pub mod node;
mod pack;
pub mod params;
pub mod prim;
pub mod render;
pub mod rt;
pub mod schema;
pub mod stage;
pub mod stems;
pub mod voice;
pub mod wav;
