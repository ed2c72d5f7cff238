//! Synth tests: offline renders measured for pitch, timing, aliasing, clicks and determinism;
//! the real-time path under an allocation detector; and the PipeWire node on a private daemon.

mod offline;
mod util;
