//! End-to-end tests of the collector: the real `khorus-collector` binary, real BPF on the
//! running kernel, a real bus. Run as root (CI does); with `KHORUS_REQUIRE_BPF=1` a kernel or
//! user that cannot load BPF fails these tests instead of skipping them.

mod util;

mod bpf;
mod filters;
mod privileges;
mod replay;
mod status;
mod tick;
