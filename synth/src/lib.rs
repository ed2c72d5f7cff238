//! khorus synth: polyphonic instruments and effects rendered as a native PipeWire node.
//!
//! [`ir`] defines synths as data and compiles them; [`voice`] runs them polyphonically;
//! [`engine`] mixes instruments through the effect buses and the master limiter, starting
//! notes at exact frames; [`render`] drives the engine offline into a WAV file.
#![warn(missing_docs)]

pub mod builtin;
pub mod dsp;
pub mod engine;
pub mod ir;
pub mod node;
pub mod render;
pub mod rt;
pub mod stage;
pub mod voice;
