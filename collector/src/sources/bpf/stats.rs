//! The kernel's own cost accounting for BPF programs (`bpf_stats`): run count and total run
//! time per program.
//!
//! Stats are enabled with `BPF_ENABLE_STATS`, which hands back a file descriptor: the kernel
//! keeps stats on while any such descriptor is open and reverts by itself when the last one
//! closes — on drop, on a panic, or if the process is killed. Unlike writing the
//! `kernel.bpf_stats_enabled` sysctl, nothing can be left changed behind us.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::query::{LinkInfo, ProgInfoIter};

/// Run-time statistics are collected while this lives (needs CAP_SYS_ADMIN to create).
#[derive(Debug)]
pub struct StatsGuard {
    _fd: OwnedFd,
}

impl StatsGuard {
    /// Turns on `BPF_STATS_RUN_TIME` for as long as the guard lives.
    pub fn enable() -> std::io::Result<Self> {
        // SAFETY: bpf_enable_stats takes a plain enum and returns a new fd or -errno.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd < 0 {
            return Err(std::io::Error::from_raw_os_error(-fd));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { _fd: fd })
    }
}

/// One program's accumulated cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStats {
    /// Kernel name of the program (at most 15 characters).
    pub name: String,
    /// Times it ran while stats were on.
    pub run_cnt: u64,
    /// Total time it ran, ns.
    pub run_time_ns: u64,
}

impl ProgramStats {
    /// Mean cost per run, ns.
    pub fn ns_per_event(&self) -> f64 {
        if self.run_cnt == 0 {
            0.0
        } else {
            self.run_time_ns as f64 / self.run_cnt as f64
        }
    }
}

/// Statistics of the programs behind `links`.
pub fn of_links<'a>(links: impl IntoIterator<Item = &'a libbpf_rs::Link>) -> Vec<ProgramStats> {
    let ids: Vec<u32> = links
        .into_iter()
        .filter_map(|l| LinkInfo::from_fd(l.as_fd()).ok().map(|i| i.prog_id))
        .collect();
    ProgInfoIter::default()
        .filter(|p| ids.contains(&p.id))
        .map(|p| ProgramStats {
            name: p.name.to_string_lossy().into_owned(),
            run_cnt: p.run_cnt,
            run_time_ns: p.run_time_ns,
        })
        .collect()
}
