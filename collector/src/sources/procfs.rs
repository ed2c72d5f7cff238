//! Unprivileged counters from procfs: the fallback when BPF is not permitted.
//!
//! | signal | file | note |
//! |---|---|---|
//! | exec | `/proc/stat` `processes` | forks and thread creations, not execs: equal only when programs are spawned with fork+exec and no threads start |
//! | csw | `/proc/stat` `ctxt` | |
//! | irq | `/proc/interrupts` | numbered lines only (what `irq_handler_entry` sees; not LOC, RES …) |
//! | rx, tx (+packets) | `/proc/net/dev` | all interfaces of this network namespace |
//! | io_read, io_write, io_ops | `/proc/diskstats` | whole physical disks (those with `/sys/block/*/device`) |
//! | retx | `/proc/net/snmp` `Tcp: RetransSegs` | this network namespace |
//! | pressures | `/proc/pressure/*` | as with BPF |

use std::path::Path;

use khorus_bus::signals::{SIGNAL_COUNT, SignalId};

use super::psi::Psi;
use super::{Counters, Reading};
use crate::sample::SourceKind;

/// Reads the procfs counters.
#[derive(Debug, Default)]
pub struct Procfs {
    psi: Psi,
}

fn read(path: &str, read_errors: &mut u64) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(_) => {
            *read_errors += 1;
            None
        }
    }
}

impl Counters for Procfs {
    fn kind(&self) -> SourceKind {
        SourceKind::Procfs
    }

    fn read(&mut self, now_ns: u64, read_errors: &mut u64) -> Reading {
        let mut r: Reading = [None; SIGNAL_COUNT];
        if let Some(stat) = read("/proc/stat", read_errors) {
            r[SignalId::CSW.index()] = stat_field(&stat, "ctxt");
            r[SignalId::EXEC.index()] = stat_field(&stat, "processes");
        }
        if let Some(t) = read("/proc/interrupts", read_errors) {
            r[SignalId::IRQ.index()] = Some(numbered_interrupts(&t));
        }
        if let Some(t) = read("/proc/net/dev", read_errors) {
            let n = net_dev(&t);
            r[SignalId::RX.index()] = Some(n[0]);
            r[SignalId::RX_PACKETS.index()] = Some(n[1]);
            r[SignalId::TX.index()] = Some(n[2]);
            r[SignalId::TX_PACKETS.index()] = Some(n[3]);
        }
        if let Some(t) = read("/proc/diskstats", read_errors) {
            let d = diskstats(&t, |name| {
                Path::new("/sys/block").join(name).join("device").exists()
            });
            r[SignalId::IO_READ.index()] = Some(d[0]);
            r[SignalId::IO_WRITE.index()] = Some(d[1]);
            r[SignalId::IO_OPS.index()] = Some(d[2]);
        }
        if let Some(t) = read("/proc/net/snmp", read_errors) {
            r[SignalId::RETX.index()] = snmp(&t, "Tcp:", "RetransSegs");
        }
        self.psi.read_into(now_ns, &mut r, read_errors);
        r
    }
}

/// A `name value` line of /proc/stat.
pub fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(name))
            .then(|| f.next()?.parse().ok())
            .flatten()
    })
}

/// Sum of all per-CPU counts on the numbered lines of /proc/interrupts.
pub fn numbered_interrupts(text: &str) -> u64 {
    let cpus = text
        .lines()
        .next()
        .map_or(0, |h| h.split_whitespace().count());
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let (label, rest) = l.trim_start().split_once(':')?;
            label.parse::<u32>().ok()?;
            Some(
                rest.split_whitespace()
                    .take(cpus)
                    .map_while(|v| v.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .sum()
}

/// [rx bytes, rx packets, tx bytes, tx packets] summed over interfaces.
pub fn net_dev(text: &str) -> [u64; 4] {
    let mut sum = [0u64; 4];
    for line in text.lines().skip(2) {
        let Some((_, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 10 {
            for (s, v) in sum.iter_mut().zip([f[0], f[1], f[8], f[9]]) {
                *s += v;
            }
        }
    }
    sum
}

/// [read bytes, written bytes, ops] over whole disks accepted by `is_disk`.
pub fn diskstats(text: &str, is_disk: impl Fn(&str) -> bool) -> [u64; 3] {
    let mut sum = [0u64; 3];
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || !is_disk(f[2]) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        sum[0] += n(5) * 512;
        sum[1] += n(9) * 512;
        sum[2] += n(3) + n(7);
    }
    sum
}

/// A named counter of /proc/net/snmp (a header line and a values line per protocol).
pub fn snmp(text: &str, proto: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(proto));
    let header = lines.next()?;
    let values = lines.next()?;
    let idx = header.split_whitespace().position(|h| h == name)?;
    values.split_whitespace().nth(idx)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  1 2 3\nintr 999 1 2\nctxt 4242\nbtime 1\nprocesses 77\n";
        assert_eq!(stat_field(stat, "ctxt"), Some(4242));
        assert_eq!(stat_field(stat, "processes"), Some(77));
        let irq = "           CPU0       CPU1\n  0:         10          5   IO-APIC   2-edge      timer\n 24:          1          2   PCI-MSI 1-edge virtio\nLOC:     100000     100000   Local timer interrupts\nERR:          0\n";
        assert_eq!(numbered_interrupts(irq), 18);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 50 1 0 0 0 0 0 0 70 3 0 0 0 0 0 0\n";
        assert_eq!(net_dev(dev), [150, 3, 170, 5]);
        let disk = " 254       0 vda 10 0 8 5 20 0 16 7 0 0 0\n 254       1 vda1 10 0 8 5 20 0 16 7 0 0 0\n";
        assert_eq!(diskstats(disk, |n| n == "vda"), [8 * 512, 16 * 512, 30]);
        let snmp_text = "Tcp: RtoAlgorithm RtoMin RetransSegs InErrs\nTcp: 1 200 37 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(snmp(snmp_text, "Tcp:", "RetransSegs"), Some(37));
    }

    #[test]
    fn reads_this_machine() {
        let mut errors = 0;
        let r = Procfs::default().read(0, &mut errors);
        assert_eq!(errors, 0);
        for id in [
            SignalId::CSW,
            SignalId::EXEC,
            SignalId::IRQ,
            SignalId::RX,
            SignalId::RETX,
        ] {
            assert!(r[id.index()].is_some(), "{id:?}");
        }
        assert!(r[SignalId::CSW.index()].unwrap() > 0);
    }
}
