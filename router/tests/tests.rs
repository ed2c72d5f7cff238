//! Router tests: the MIDI callback path under an allocation detector; the real router against
//! a real `pw-mididump` on a private PipeWire daemon; OSC out to liblo's `oscdump` and OSC in
//! from `oscsend` forwarded to the real composer.

// The allocation detector wraps the system allocator for this test binary.
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

mod midi;
mod osc;
mod realtime;
mod util;
