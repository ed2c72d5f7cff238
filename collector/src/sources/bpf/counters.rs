//! Skeleton of bpf/counters.bpf.c.
#[allow(
    clippy::all,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/counters.skel.rs"));
}
pub use skel::*;
