//! The fixed table of kernel signals: stable indices, names, units and reference maxima.
//!
//! The table is append-only: an index, once given, keeps its meaning forever, because
//! recorded traces, [`SignalFrame`](crate::SignalFrame)s and MIDI CC maps refer to signals by
//! index. New signals go at the end, below [`SIGNAL_CAPACITY`].

/// Slots reserved in a [`SignalFrame`](crate::SignalFrame); the table may grow up to this.
pub const SIGNAL_CAPACITY: usize = 32;

/// A signal's stable index into [`SIGNALS`] and into a frame's `rate`/`level` arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalId(pub u8);

impl SignalId {
    /// Programs started (`sched_process_exec`).
    pub const EXEC: Self = Self(0);
    /// Network bytes received (`netif_receive_skb`).
    pub const RX: Self = Self(1);
    /// Network bytes queued for transmit (`net_dev_queue`).
    pub const TX: Self = Self(2);
    /// Context switches (`sched_switch`).
    pub const CSW: Self = Self(3);
    /// Block bytes read (`block_rq_complete`, read ops).
    pub const IO_READ: Self = Self(4);
    /// Block bytes written (`block_rq_complete`, write ops).
    pub const IO_WRITE: Self = Self(5);
    /// TCP retransmits (`tcp_retransmit_skb`).
    pub const RETX: Self = Self(6);
    /// Hardware interrupts (`irq_handler_entry`).
    pub const IRQ: Self = Self(7);
    /// Memory pressure: % of the tick some task stalled on memory (PSI `some total`).
    pub const MEM_PRESSURE: Self = Self(8);
    /// CPU pressure: % of the tick some task waited for a CPU (PSI `some total`).
    pub const CPU_PRESSURE: Self = Self(9);
    /// I/O pressure: % of the tick some task stalled on I/O (PSI `some total`).
    pub const IO_PRESSURE: Self = Self(10);
    /// Network packets received (`netif_receive_skb`).
    pub const RX_PACKETS: Self = Self(11);
    /// Network packets queued for transmit (`net_dev_queue`).
    pub const TX_PACKETS: Self = Self(12);
    /// Block requests issued (`block_rq_issue`).
    pub const IO_OPS: Self = Self(13);

    /// The table entry, or `None` for an index past the table.
    pub fn info(self) -> Option<&'static SignalInfo> {
        SIGNALS.get(self.0 as usize)
    }

    /// Looks a signal up by its stable name (`"exec"`, `"io_write"`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        SIGNALS
            .iter()
            .position(|s| s.name == name)
            .map(|i| Self(i as u8))
    }

    /// The index as a `usize`, for arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the table says about one signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalInfo {
    /// Stable `subsystem_signal`-style name, used in JSON, OSC and configs.
    pub name: &'static str,
    /// Unit of the raw rate published in `SignalFrame::rate`.
    pub unit: &'static str,
    /// Raw rate that normalises to level 1.0 by default (log scale; khor's references).
    pub reference_max: f32,
    /// What the kernel event or file behind it is.
    pub source: &'static str,
}

/// The signal table, indexed by [`SignalId`]. Append-only.
pub const SIGNALS: &[SignalInfo] = &[
    SignalInfo {
        name: "exec",
        unit: "exec/s",
        reference_max: 250.0,
        source: "tp_btf/sched_process_exec",
    },
    SignalInfo {
        name: "rx",
        unit: "KiB/s",
        reference_max: 50_000.0,
        source: "tp_btf/netif_receive_skb",
    },
    SignalInfo {
        name: "tx",
        unit: "KiB/s",
        reference_max: 50_000.0,
        source: "tp_btf/net_dev_queue",
    },
    SignalInfo {
        name: "csw",
        unit: "switch/s",
        reference_max: 120_000.0,
        source: "tp_btf/sched_switch",
    },
    SignalInfo {
        name: "io_read",
        unit: "KiB/s",
        reference_max: 80_000.0,
        source: "tp_btf/block_rq_complete",
    },
    SignalInfo {
        name: "io_write",
        unit: "KiB/s",
        reference_max: 80_000.0,
        source: "tp_btf/block_rq_complete",
    },
    SignalInfo {
        name: "retx",
        unit: "retx/s",
        reference_max: 50.0,
        source: "tp_btf/tcp_retransmit_skb",
    },
    SignalInfo {
        name: "irq",
        unit: "irq/s",
        reference_max: 200_000.0,
        source: "tp_btf/irq_handler_entry",
    },
    SignalInfo {
        name: "mem_pressure",
        unit: "%",
        reference_max: 100.0,
        source: "/proc/pressure/memory",
    },
    SignalInfo {
        name: "cpu_pressure",
        unit: "%",
        reference_max: 100.0,
        source: "/proc/pressure/cpu",
    },
    SignalInfo {
        name: "io_pressure",
        unit: "%",
        reference_max: 100.0,
        source: "/proc/pressure/io",
    },
    SignalInfo {
        name: "rx_packets",
        unit: "packet/s",
        reference_max: 50_000.0,
        source: "tp_btf/netif_receive_skb",
    },
    SignalInfo {
        name: "tx_packets",
        unit: "packet/s",
        reference_max: 50_000.0,
        source: "tp_btf/net_dev_queue",
    },
    SignalInfo {
        name: "io_ops",
        unit: "op/s",
        reference_max: 5_000.0,
        source: "tp_btf/block_rq_issue",
    },
];

/// Number of signals in the table today.
pub const SIGNAL_COUNT: usize = SIGNALS.len();

const _: () = assert!(SIGNAL_COUNT <= SIGNAL_CAPACITY);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, s) in SIGNALS.iter().enumerate() {
            assert_eq!(
                SignalId::from_name(s.name),
                Some(SignalId(i as u8)),
                "{}",
                s.name
            );
            assert!(s.reference_max > 0.0);
        }
        assert_eq!(SignalId::from_name("nope"), None);
    }

    #[test]
    fn stable_indices_never_move() {
        // Guards the append-only rule: traces and CC maps depend on these numbers.
        let names: Vec<_> = SIGNALS.iter().map(|s| s.name).collect();
        assert_eq!(
            names[..11],
            [
                "exec",
                "rx",
                "tx",
                "csw",
                "io_read",
                "io_write",
                "retx",
                "irq",
                "mem_pressure",
                "cpu_pressure",
                "io_pressure"
            ]
        );
    }
}
