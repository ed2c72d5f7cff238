//! The generated skeleton of `bpf/counters.bpf.c` (libbpf-cargo, built by `build.rs`): typed
//! handles on its programs and maps, and the shared structs (`types::khorus_counters`,
//! `types::khorus_counter`, `types::khorus_filter`) taken from the object's BTF.

// Generated code follows libbpf-cargo's conventions, not ours.
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/counters.skel.rs"));
}
pub use skel::*;
