//! khorus router: notes and signals from the bus to a PipeWire MIDI port (channel per role,
//! CC per signal, MIDI clock) and to OSC targets (timetagged bundles); OSC control back in.
//!
//! Threads: the bus thread maps notes/signals/curves ([`feed`], [`map`]) and sends OSC ([`osc`]); the
//! PipeWire thread runs the MIDI node ([`node`]) whose real-time callback is [`rt`]; an OSC
//! listener forwards `/khorus/set|tempo|hush` as bus commands.

pub mod cli;
pub mod clock;
mod counts;
mod feed;
pub mod map;
pub mod node;
pub mod osc;
pub mod rt;
pub mod seq;
pub mod stage;
