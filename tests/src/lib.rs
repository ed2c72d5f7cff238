//! Helpers for khorus's end-to-end tests and benchmarks: real processes behind RAII guards,
//! isolated buses, condition waits with deadlines, and a private PipeWire daemon; and the
//! workspace's import-cycle check ([`imports`]).
//!
//! Nothing here mocks anything: the tests start the real binaries on a real iceoryx2 bus and a
//! real PipeWire daemon.

pub mod control;
pub mod imports;
pub mod pipewire;
pub mod process;
pub mod scale;

pub use pipewire::PipeWireStack;
pub use process::{Child, bin, wait_for};

/// The value at fraction `p` (0..=1) of `sorted`, nearest rank (benchmarks' p50, p95).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

use khorus_bus::BusConfig;

/// A bus of the test's own, removed (shared memory and records) when dropped.
#[derive(Debug)]
pub struct TestBus {
    /// The bus's settings; pass `config.env()` to child processes.
    pub config: BusConfig,
}

impl TestBus {
    /// A fresh isolated bus; `tag` shows up in its prefix to help debugging.
    pub fn new(tag: &str) -> Self {
        Self {
            config: BusConfig::isolated(tag),
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        self.config.remove_all_resources();
    }
}
