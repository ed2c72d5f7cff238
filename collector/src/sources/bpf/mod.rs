//! The BPF source: loads `bpf/counters.bpf.c`, attaches its tp_btf programs, and reads the
//! per-CPU cumulative counters they increment — mapped into this process, so a tick reads
//! memory, not the map through a syscall. Pressure comes from PSI files as everywhere.

pub mod counters;
pub mod empty;
pub mod stats;

use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use khorus_bus::signals::{SIGNAL_COUNT, SignalId};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use self::counters::types::{khorus_counter, khorus_counters};
use self::counters::{CountersSkel, CountersSkelBuilder};
use super::psi::Psi;
use super::{Counters, Reading};
use crate::config::FilterConfig;
use crate::sample::SourceKind;

/// Why BPF could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// libbpf refused to open, load or configure the object.
    #[error("failed to {action}: {source}")]
    Libbpf {
        /// What we were doing.
        action: &'static str,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// The cgroup filter directory could not be opened.
    #[error("failed to open cgroup {path}: {source}")]
    Cgroup {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a single program could be attached.
    #[error("no BPF program could be attached: {0}")]
    NothingAttached(String),
}

/// Which counter slot feeds which signal.
const SLOT_SIGNALS: &[(khorus_counter, SignalId)] = &[
    (khorus_counter::KHORUS_EXEC, SignalId::EXEC),
    (khorus_counter::KHORUS_CSW, SignalId::CSW),
    (khorus_counter::KHORUS_TX_BYTES, SignalId::TX),
    (khorus_counter::KHORUS_TX_PACKETS, SignalId::TX_PACKETS),
    (khorus_counter::KHORUS_RX_BYTES, SignalId::RX),
    (khorus_counter::KHORUS_RX_PACKETS, SignalId::RX_PACKETS),
    (khorus_counter::KHORUS_IO_READ_BYTES, SignalId::IO_READ),
    (khorus_counter::KHORUS_IO_WRITE_BYTES, SignalId::IO_WRITE),
    (khorus_counter::KHORUS_IO_OPS, SignalId::IO_OPS),
    (khorus_counter::KHORUS_RETX, SignalId::RETX),
    (khorus_counter::KHORUS_IRQ, SignalId::IRQ),
];

/// Which slots each program writes: a slot is measured only if its program attached.
fn slots_of(program: &str) -> &'static [khorus_counter] {
    match program {
        "khorus_sched_switch" => &[khorus_counter::KHORUS_CSW],
        "khorus_sched_process_exec" => &[khorus_counter::KHORUS_EXEC],
        "khorus_net_dev_queue" => &[
            khorus_counter::KHORUS_TX_BYTES,
            khorus_counter::KHORUS_TX_PACKETS,
        ],
        "khorus_netif_receive_skb" => &[
            khorus_counter::KHORUS_RX_BYTES,
            khorus_counter::KHORUS_RX_PACKETS,
        ],
        "khorus_block_rq_issue" => &[khorus_counter::KHORUS_IO_OPS],
        "khorus_block_rq_complete" => &[
            khorus_counter::KHORUS_IO_READ_BYTES,
            khorus_counter::KHORUS_IO_WRITE_BYTES,
        ],
        "khorus_tcp_retransmit_skb" | "khorus_tcp_retransmit_skb_err" => {
            &[khorus_counter::KHORUS_RETX]
        }
        "khorus_irq_handler_entry" => &[khorus_counter::KHORUS_IRQ],
        _ => &[],
    }
}

/// libbpf's own messages, as debug logs (`-vv`).
fn libbpf_log(level: libbpf_rs::PrintLevel, msg: String) {
    tracing::debug!(target: "libbpf", "{level:?}: {}", msg.trim_end());
}

/// Loaded and attached BPF counters.
pub struct BpfCounters {
    /// Owns the programs and maps (the links and the mapping need them alive).
    _skel: CountersSkel<'static>,
    links: Vec<Link>,
    /// Names of the programs that attached.
    attached: Vec<String>,
    /// The counters map, mapped into this process.
    mapped: Mapped,
    psi: Psi,
}

/// The counters array (one [`khorus_counters`] per possible CPU) mapped read-only into this
/// process: the programs' increments are plain memory here, read without a syscall.
struct Mapped {
    base: std::ptr::NonNull<u64>,
    len: usize,
    cpus: usize,
}

const SLOTS: usize = std::mem::size_of::<khorus_counters>() / 8;

impl Mapped {
    fn new(fd: std::os::fd::BorrowedFd<'_>, cpus: usize) -> std::io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = (cpus * std::mem::size_of::<khorus_counters>()).div_ceil(page) * page;
        // SAFETY: a fresh shared read-only mapping of the map's fd (an mmapable BPF array of
        // `cpus` elements, page-aligned data); nothing else in this process aliases it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(ptr.cast::<u64>())
            .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Self { base, len, cpus })
    }

    /// The counters summed over every CPU.
    fn totals(&self) -> khorus_counters {
        let mut total = khorus_counters::default();
        for cpu in 0..self.cpus {
            for (slot, sum) in total.value.iter_mut().enumerate() {
                // SAFETY: `cpu * SLOTS + slot` is inside the `cpus` elements mapped; the
                // kernel writes these aligned u64s concurrently, hence volatile (an aligned
                // 8-byte load is never torn on the platforms BPF runs on).
                *sum += unsafe { self.base.add(cpu * SLOTS + slot).read_volatile() };
            }
        }
        total
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

impl std::fmt::Debug for BpfCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfCounters")
            .field("attached", &self.attached)
            .finish()
    }
}

impl BpfCounters {
    /// Opens, configures, loads and attaches the counter programs.
    pub fn load(filter: &FilterConfig) -> Result<Self, BpfError> {
        // libbpf prints to stderr by itself; its lines go to the debug log instead, and a
        // failure reaches the user once, explained (see `privileges::bpf_unavailable`).
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_log)));
        // The skeleton borrows its object storage for its whole life; the collector loads it
        // once per process, so the storage simply lives as long as the process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = CountersSkelBuilder::default()
            .open(storage)
            .map_err(|source| BpfError::Libbpf {
                action: "open the BPF object",
                source,
            })?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.filter.self_tgid = std::process::id();
            rodata.filter.exclude_self = filter.exclude_self as u8;
            rodata.filter.use_allow = !filter.tgid_allow.is_empty() as u8;
            rodata.filter.use_deny = !filter.tgid_deny.is_empty() as u8;
            rodata.filter.use_cgroup = filter.cgroup.is_some() as u8;
        }
        // One counters element per possible CPU (the programs index it by CPU).
        let cpus = libbpf_rs::num_possible_cpus().map_err(|source| BpfError::Libbpf {
            action: "count the possible CPUs",
            source,
        })?;
        open.maps
            .counters
            .set_max_entries(cpus as u32)
            .map_err(|source| BpfError::Libbpf {
                action: "size the counters map",
                source,
            })?;
        // Exactly one retransmit program loads: the one matching the kernel's tracepoint.
        let with_err = tracepoint_arity("tcp_retransmit_skb").is_some_and(|n| n >= 3);
        open.progs.khorus_tcp_retransmit_skb.set_autoload(!with_err);
        open.progs
            .khorus_tcp_retransmit_skb_err
            .set_autoload(with_err);
        let skel = open.load().map_err(|source| BpfError::Libbpf {
            action: "load the BPF programs",
            source,
        })?;
        let mapped =
            Mapped::new(skel.maps.counters.as_fd(), cpus).map_err(|e| BpfError::Libbpf {
                action: "map the counters",
                source: libbpf_rs::Error::from(e),
            })?;
        for (map, tgids) in [
            (&skel.maps.tgid_allow, &filter.tgid_allow),
            (&skel.maps.tgid_deny, &filter.tgid_deny),
        ] {
            for tgid in tgids {
                map.update(&tgid.to_ne_bytes(), &[1u8], MapFlags::ANY)
                    .map_err(|source| BpfError::Libbpf {
                        action: "fill a tgid filter",
                        source,
                    })?;
            }
        }
        if let Some(path) = &filter.cgroup {
            let dir = File::open(path).map_err(|source| BpfError::Cgroup {
                path: path.display().to_string(),
                source,
            })?;
            let fd = dir.as_raw_fd() as u32;
            skel.maps
                .cgroup_filter
                .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| BpfError::Libbpf {
                    action: "set the cgroup filter",
                    source,
                })?;
        }
        let mut links = Vec::new();
        let mut attached = Vec::new();
        let mut failures = Vec::new();
        let p = &skel.progs;
        let programs = [
            &p.khorus_sched_switch,
            &p.khorus_sched_process_exec,
            &p.khorus_net_dev_queue,
            &p.khorus_netif_receive_skb,
            &p.khorus_block_rq_issue,
            &p.khorus_block_rq_complete,
            if with_err {
                &p.khorus_tcp_retransmit_skb_err
            } else {
                &p.khorus_tcp_retransmit_skb
            },
            &p.khorus_irq_handler_entry,
        ];
        for prog in programs {
            let name = prog.name().to_string_lossy().into_owned();
            match prog.attach() {
                Ok(link) => {
                    links.push(link);
                    attached.push(name);
                }
                Err(e) => {
                    tracing::warn!("BPF program {name} did not attach: {e}");
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
        if attached.is_empty() {
            return Err(BpfError::NothingAttached(failures.join("; ")));
        }
        Ok(Self {
            _skel: skel,
            links,
            attached,
            mapped,
            psi: Psi::default(),
        })
    }

    /// Programs attached.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Cost of each attached program so far (meaningful while a
    /// [`StatsGuard`](stats::StatsGuard) is alive).
    pub fn program_stats(&self) -> Vec<stats::ProgramStats> {
        stats::of_links(&self.links)
    }

    /// The per-CPU counters summed, read from the mapped array (no syscall).
    pub fn totals(&self) -> khorus_counters {
        self.mapped.totals()
    }
}

/// Number of arguments of tracepoint `name` in the running kernel (from its BTF), not
/// counting the leading context pointer.
pub fn tracepoint_arity(name: &str) -> Option<usize> {
    use libbpf_rs::btf::{Btf, BtfType, types::FuncProto};
    let btf = Btf::from_vmlinux().ok()?;
    let typedef: BtfType<'_> = btf.type_by_name(&format!("btf_trace_{name}"))?;
    // typedef → pointer → function prototype (void *__data, args…)
    let proto = typedef.next_type()?.next_type()?;
    let proto = FuncProto::try_from(proto).ok()?;
    proto.len().checked_sub(1)
}

impl Counters for BpfCounters {
    fn kind(&self) -> SourceKind {
        SourceKind::Bpf
    }

    fn read(&mut self, now_ns: u64, read_errors: &mut u64) -> Reading {
        let mut r: Reading = [None; SIGNAL_COUNT];
        let total = self.totals();
        for (slot, id) in SLOT_SIGNALS {
            if self.attached.iter().any(|p| slots_of(p).contains(slot)) {
                r[id.index()] = Some(total.value[slot.0 as usize]);
            }
        }
        self.psi.read_into(now_ns, &mut r, read_errors);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_slot_has_a_program() {
        let programs = [
            "khorus_sched_switch",
            "khorus_sched_process_exec",
            "khorus_net_dev_queue",
            "khorus_netif_receive_skb",
            "khorus_block_rq_issue",
            "khorus_block_rq_complete",
            "khorus_tcp_retransmit_skb",
            "khorus_irq_handler_entry",
        ];
        for (slot, id) in SLOT_SIGNALS {
            assert!(
                programs.iter().any(|p| slots_of(p).contains(slot)),
                "{id:?}"
            );
        }
        assert_eq!(
            slots_of("khorus_tcp_retransmit_skb_err"),
            slots_of("khorus_tcp_retransmit_skb")
        );
    }

    #[test]
    fn the_running_kernel_has_every_tracepoint() {
        for (tp, args) in [
            ("sched_switch", 4),
            ("tcp_retransmit_skb", 2),
            ("block_rq_complete", 3),
        ] {
            if let Some(n) = tracepoint_arity(tp) {
                assert!(n >= args, "{tp} has {n} arguments");
            }
        }
    }
}
