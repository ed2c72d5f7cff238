//! The generated skeleton of `bpf/empty.bpf.c`: an empty `sched_switch` program, the
//! measuring floor for per-program costs in the benchmarks.

// Generated code follows libbpf-cargo's conventions, not ours.
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/empty.skel.rs"));
}
pub use skel::*;
