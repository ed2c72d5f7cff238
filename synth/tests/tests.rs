//! Synth tests: offline renders measured for pitch, timing, aliasing, clicks and determinism;
//! commands (Set by name, graph swaps) measured through the real-time path; graph edits node by
//! node compared sample for sample; that path under an
//! allocation detector; and the PipeWire node on a private daemon.

// The allocation detector wraps the system allocator for this test binary.
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

mod commands;
mod edits;
mod offline;
mod pipewire;
mod realtime;
mod robustness;
mod routes;
mod util;
mod vocabulary;
