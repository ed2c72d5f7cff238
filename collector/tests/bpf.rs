//! Each BPF signal counts real kernel activity that the test makes happen.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use khorus_bus::clock;
use khorus_bus::signals::SignalId;
use khorus_tests::Child;

use crate::util::{count, measure, serial, start};

#[test]
fn exec_counts_every_spawned_process() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &["--tick-ms", "20"]) else {
        return;
    };
    let (frames, t0) = measure(&mut run, || {
        for _ in 0..300 {
            let status = Command::new("/bin/true").status().unwrap();
            assert!(status.success());
        }
    });
    let execs = count(&frames, SignalId::EXEC, t0).round();
    assert!(
        execs >= 300.0,
        "{execs} execs counted for 300 spawned processes"
    );
}

/// Two threads passing a byte back and forth `n` times.
pub fn ping_pong(n: usize) {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        for _ in 0..n {
            b.read_exact(&mut byte).unwrap();
            b.write_all(&byte).unwrap();
        }
    });
    let mut byte = [7u8; 1];
    for _ in 0..n {
        a.write_all(&byte).unwrap();
        a.read_exact(&mut byte).unwrap();
    }
    peer.join().unwrap();
}

#[test]
fn csw_counts_both_sides_of_a_ping_pong() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &[]) else {
        return;
    };
    let n = 20_000;
    let (frames, t0) = measure(&mut run, || ping_pong(n));
    let switches = count(&frames, SignalId::CSW, t0).round();
    assert!(
        switches >= 2.0 * n as f64,
        "{switches} switches for {n} round trips"
    );
}

#[test]
fn rx_and_tx_count_loopback_bytes() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &[]) else {
        return;
    };
    let k: usize = 8 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (frames, t0) = measure(&mut run, || {
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut total = 0;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                total += n;
            }
        });
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&vec![0x5a; k]).unwrap();
        drop(s);
        assert_eq!(reader.join().unwrap(), k);
    });
    let rx = count(&frames, SignalId::RX, t0);
    let tx = count(&frames, SignalId::TX, t0);
    assert!(rx >= k as f64, "rx {rx} bytes for {k} sent");
    assert!(tx >= k as f64, "tx {tx} bytes for {k} sent");
    assert!(count(&frames, SignalId::RX_PACKETS, t0) >= 1.0);
}

/// A 4 KiB-aligned buffer, as O_DIRECT requires.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let buf = vec![0xa5u8; len + 4096];
    let offset = buf.as_ptr().align_offset(4096);
    (buf, offset)
}

#[test]
fn io_counts_direct_writes_that_reach_the_disk() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &[]) else {
        return;
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("direct.bin");
    let total: usize = 64 << 20;
    let chunk: usize = 1 << 20;
    let (buf, off) = aligned(chunk);
    let (frames, _) = measure(&mut run, || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .expect("O_DIRECT open (the test directory must be on a block device)");
        for _ in 0..total / chunk {
            f.write_all(&buf[off..off + chunk]).unwrap();
        }
        f.sync_all().unwrap();
    });
    // Lower bounds, so every frame received since the workload began counts: a frame is
    // stamped just before its counters are read, and a collector preempted in between (a
    // loaded machine) reads the first writes into a frame stamped before `t0` — once, the
    // first megabyte went missing that way.
    let written = count(&frames, SignalId::IO_WRITE, 0);
    assert!(
        written >= total as f64,
        "{written} bytes written for {total}"
    );
    // Every O_DIRECT write is synchronous, so each is at least one block request.
    let ops = count(&frames, SignalId::IO_OPS, 0).round();
    assert!(
        ops >= (total / chunk) as f64,
        "{ops} block requests for {} writes",
        total / chunk
    );
}

/// Sum of the numbered lines of /proc/interrupts.
fn proc_irqs() -> u64 {
    khorus_collector::sources::procfs::numbered_interrupts(
        &std::fs::read_to_string("/proc/interrupts").unwrap(),
    )
}

#[test]
fn irq_agrees_with_proc_interrupts() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &["--tick-ms", "10"]) else {
        return;
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    run.skip_pending();
    // Align the /proc/interrupts snapshots with frame boundaries.
    let first = run.frames_until(0)[0];
    let before = proc_irqs();
    let t0 = first.t_ns;
    let until = Instant::now() + Duration::from_secs(2);
    let mut i = 0;
    while Instant::now() < until {
        // Disk flushes raise device interrupts on any machine with a disk.
        std::fs::write(dir.path().join(format!("f{}", i % 8)), vec![1u8; 1 << 16]).unwrap();
        std::fs::File::open(dir.path().join(format!("f{}", i % 8)))
            .unwrap()
            .sync_all()
            .unwrap();
        i += 1;
    }
    let frames = run.frames_until(clock::now_ns());
    let after = proc_irqs();
    let last = frames.last().unwrap().t_ns;
    let bpf = count(&frames, SignalId::IRQ, t0);
    let procfs = (after - before) as f64;
    assert!(bpf > 0.0, "no interrupts counted in 2 s of disk flushes");
    let tolerance = 0.05 * procfs + 20.0;
    assert!(
        (bpf - procfs).abs() <= tolerance,
        "BPF {bpf} vs /proc/interrupts {procfs} over {} ms",
        (last - t0) / 1_000_000
    );
}

#[test]
fn steady_switch_load_never_reads_zero() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &["--tick-ms", "20"]) else {
        return;
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let load = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            ping_pong(500);
        }
    });
    run.skip_pending();
    let mut zeros = 0;
    for _ in 0..50 {
        let f = run
            .frames
            .receive_until(Instant::now() + Duration::from_secs(5))
            .unwrap()
            .expect("a frame");
        if f.rate[SignalId::CSW.index()] == 0.0 {
            zeros += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(
        zeros, 0,
        "{zeros} of 50 frames read zero switches under steady load"
    );
}

/// Sums of csw and exec over the same window from a BPF and a procfs collector.
#[test]
fn bpf_and_procfs_agree_on_csw_and_exec() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("khorus.toml");
    // procfs cannot leave the collector out, so neither may BPF for a fair comparison.
    std::fs::write(&config, "[collector.filter]\nexclude_self = false\n").unwrap();
    let cfg = config.to_str().unwrap();
    let Some(mut bpf) = start("bpf", &["--config", cfg, "--tick-ms", "20"]) else {
        return;
    };
    let mut procfs = start("procfs", &["--config", cfg, "--tick-ms", "20"]).unwrap();
    bpf.skip_pending();
    procfs.skip_pending();
    // procfs counts forks *and thread creations* as "processes": create no thread in the
    // window, only processes (one fork + one exec each) and switches from a thread made
    // before it.
    let (mut a_end, mut b_end) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while b_end.read_exact(&mut byte).is_ok() && byte[0] != 0 {
            b_end.write_all(&byte).unwrap();
        }
    });
    let t0 = clock::now_ns();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        Command::new("/bin/true").status().unwrap();
        for _ in 0..200 {
            a_end.write_all(&[1]).unwrap();
            a_end.read_exact(&mut [0u8; 1]).unwrap();
        }
    }
    let t1 = clock::now_ns();
    a_end.write_all(&[0]).unwrap();
    echo.join().unwrap();
    let a = bpf.frames_until(t1);
    let b = procfs.frames_until(t1);
    for id in [SignalId::CSW, SignalId::EXEC] {
        let x = count(&a, id, t0);
        let y = count(&b, id, t0);
        let diff = (x - y).abs() / x.max(y);
        assert!(
            diff <= 0.05,
            "{id:?}: BPF {x} vs procfs {y} ({:.1} % apart)",
            diff * 100.0
        );
    }
}

/// A network namespace with a veth pair, removed on drop.
struct Netns {
    name: String,
    veth: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Netns {
    fn drop(&mut self) {
        Command::new("ip")
            .args(["link", "del", &self.veth])
            .output()
            .ok();
        Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
            .ok();
    }
}

/// RetransSegs of the root network namespace plus `netns` (BPF sees every namespace; each
/// namespace has its own SNMP counters).
fn retrans_segs(netns: &str) -> u64 {
    let root = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat", "/proc/net/snmp"])
        .output()
        .unwrap();
    let inner = String::from_utf8_lossy(&out.stdout);
    [root.as_str(), &*inner]
        .iter()
        .map(|t| khorus_collector::sources::procfs::snmp(t, "Tcp:", "RetransSegs").unwrap())
        .sum()
}

#[test]
fn retx_counts_real_retransmits_and_agrees_with_snmp() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &[]) else {
        return;
    };
    let id = std::process::id() % 60_000;
    let ns = Netns {
        name: format!("khorus-retx-{id}"),
        veth: format!("kra{id}"),
    };
    let peer = format!("krb{id}");
    let net = format!("10.{}.{}", 200 + id % 50, (id / 50) % 250);
    let (here, there) = (format!("{net}.1"), format!("{net}.2"));
    ip(&["netns", "add", &ns.name]);
    ip(&[
        "link", "add", &ns.veth, "type", "veth", "peer", "name", &peer,
    ]);
    ip(&["link", "set", &peer, "netns", &ns.name]);
    ip(&["addr", "add", &format!("{here}/30"), "dev", &ns.veth]);
    ip(&["link", "set", &ns.veth, "up"]);
    ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        &format!("{there}/30"),
        "dev",
        &peer,
    ]);
    ip(&["-n", &ns.name, "link", "set", &peer, "up"]);
    ip(&["-n", &ns.name, "link", "set", "lo", "up"]);

    // The sink is the test peer binary, built with the workspace.
    let sink_bin = khorus_tests::bin("khorus-bus-peer");
    let mut sink = Command::new("ip");
    sink.args(["netns", "exec", &ns.name])
        .arg(&sink_bin)
        .args(["tcp-sink", &format!("{there}:7777")]);
    let sink = Child::spawn(sink);
    sink.wait_line(false, Duration::from_secs(10), |l| l == "ready");

    let snmp_before = retrans_segs(&ns.name);
    let (frames, t0) = measure(&mut run, || {
        let stream = TcpStream::connect((there.as_str(), 7777)).unwrap();
        let writer = std::thread::spawn(move || {
            let mut s = stream;
            let chunk = vec![1u8; 16 << 10];
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        // The stimulus: let the flow run, cut the link long enough for several
        // retransmission timeouts (RTO ≥ 200 ms), then restore it so the retransmits are
        // delivered. These sleeps shape the traffic; they synchronise nothing.
        std::thread::sleep(Duration::from_millis(300));
        ip(&["-n", &ns.name, "link", "set", &peer, "down"]);
        std::thread::sleep(Duration::from_millis(1500));
        ip(&["-n", &ns.name, "link", "set", &peer, "up"]);
        writer.join().unwrap();
    });
    let snmp = (retrans_segs(&ns.name) - snmp_before) as f64;
    let bpf = count(&frames, SignalId::RETX, t0).round();
    drop(sink);
    assert!(snmp >= 1.0, "the link cut caused no retransmits");
    assert!(bpf >= 1.0, "BPF counted no retransmits (snmp saw {snmp})");
    let tolerance = 0.05 * snmp + 2.0;
    assert!(
        (bpf - snmp).abs() <= tolerance,
        "BPF {bpf} vs RetransSegs {snmp}"
    );
}
