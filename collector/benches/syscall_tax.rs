//! What the collector costs the rest of the machine.
//!
//! 1. `getppid` latency with the collector's BPF programs attached vs not, in the same run
//!    (criterion, plus an interleaved A/B of 15 rounds for a noise-resistant ratio). No khorus
//!    hook is on the syscall path, so the ratio should be ~1.00; a syscall tracepoint would
//!    cost every syscall on the machine.
//! 2. Per-program cost from the kernel's own accounting (`BPF_ENABLE_STATS`, reverted by the
//!    kernel when the guard's fd closes) under a mixed load: switches, execs, loopback TCP and
//!    UDP, disk writes.
//!
//! Needs CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN for stats): run as root.

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::Criterion;
use khorus_collector::config::FilterConfig;
use khorus_collector::sources::bpf::BpfCounters;
use khorus_collector::sources::bpf::empty::{EmptySkel, EmptySkelBuilder};
use khorus_collector::sources::bpf::stats::{self, StatsGuard};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

fn getppid() -> i32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

fn load() -> BpfCounters {
    BpfCounters::load(&FilterConfig::default())
        .expect("loading the BPF programs (run the benchmark as root)")
}

/// Loads and attaches the empty programs, one per hook (the bpf_stats floors), in the
/// collector's hook order: sched_switch, exec, net_dev_queue, netif_receive_skb,
/// block_rq_issue, block_rq_complete, irq.
fn empty_programs() -> (EmptySkel<'static>, Vec<libbpf_rs::Link>) {
    let storage = Box::leak(Box::new(std::mem::MaybeUninit::uninit()));
    let skel = EmptySkelBuilder::default()
        .open(storage)
        .unwrap()
        .load()
        .unwrap();
    let p = &skel.progs;
    let links = [
        &p.khorus_empty_switch,
        &p.empty_exec,
        &p.empty_dev_queue,
        &p.empty_rx_skb,
        &p.empty_rq_issue,
        &p.empty_rq_complete,
        &p.empty_irq,
    ]
    .iter()
    .map(|prog| prog.attach().unwrap())
    .collect();
    (skel, links)
}

/// Mean ns per getppid over `n` calls.
fn time_getppid(n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(getppid());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn mixed_load() {
    // Context switches.
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        for _ in 0..20_000 {
            b.read_exact(&mut byte).unwrap();
            b.write_all(&byte).unwrap();
        }
    });
    for _ in 0..20_000 {
        a.write_all(&[1]).unwrap();
        a.read_exact(&mut [0u8; 1]).unwrap();
    }
    echo.join().unwrap();
    // Execs.
    for _ in 0..1000 {
        std::process::Command::new("/bin/true").status().unwrap();
    }
    // Loopback TCP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        std::io::copy(&mut s, &mut std::io::sink()).unwrap()
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(&vec![0u8; 16 << 20]).unwrap();
    drop(s);
    sink.join().unwrap();
    // Loopback TCP moves 64 KiB per packet (a few hundred events, measured cold and noisy):
    // 5000 small UDP datagrams as well, so the network hooks run often enough to be measured
    // warm like the others.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..5000 {
        tx.send(&[9u8; 64]).unwrap();
        rx.recv(&mut buf).unwrap();
    }
    // Disk writes: 16 × 1 MiB, then 2000 small synced writes, so the block hooks run often
    // enough to be measured warm like the others.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for i in 0..16 {
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        std::fs::File::open(&path).unwrap().sync_all().unwrap();
    }
    let mut small = std::fs::File::create(dir.path().join("small")).unwrap();
    for _ in 0..2000 {
        small.write_all(&[3u8; 4096]).unwrap();
        small.sync_data().unwrap();
    }
}

const ROUNDS: usize = 41;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let mut group = c.benchmark_group("getppid");
    group.bench_function("collector_detached", |b| b.iter(|| black_box(getppid())));
    let attached = load();
    group.bench_function("collector_attached", |b| b.iter(|| black_box(getppid())));
    drop(attached);
    group.finish();

    // Interleaved A/B: the same process alternates detached and attached rounds, so drift in
    // the machine's speed hits both sides alike.
    let mut ratios = Vec::new();
    let (mut off_sum, mut on_sum) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        let off = time_getppid(1_000_000);
        let bpf = load();
        let on = time_getppid(1_000_000);
        drop(bpf);
        ratios.push(on / off);
        off_sum += off;
        on_sum += on;
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\ngetppid interleaved A/B ({ROUNDS} rounds of 1M calls): detached {:.1} ns, attached {:.1} ns, median ratio attached/detached = {:.3}",
        off_sum / ROUNDS as f64,
        on_sum / ROUNDS as f64,
        ratios[ROUNDS / 2]
    );

    let stats = StatsGuard::enable().expect("BPF_ENABLE_STATS (needs CAP_SYS_ADMIN)");
    // Programs on one hook run one after the other, in the order they were attached, and the
    // first pays for what the event's path left cold (with the collector first, its exec
    // program measured 100-120 ns and the empty one after it 24; attached the other way round,
    // 60 and 75). So the load runs twice, each side first once, and each side's figure is
    // the mean of its two passes.
    let [(ours_first, empty_second), (ours_second, empty_first)] =
        [true, false].map(|collector_first| {
            let (bpf, floor, floor_links) = if collector_first {
                let bpf = load();
                let (floor, links) = empty_programs();
                (bpf, floor, links)
            } else {
                let (floor, links) = empty_programs();
                (load(), floor, links)
            };
            mixed_load();
            let pass = (bpf.program_stats(), stats::of_links(&floor_links));
            drop(floor_links);
            drop(floor);
            drop(bpf);
            pass
        });
    println!("\nper-program cost under a mixed load (kernel bpf_stats), next to an empty program");
    println!("on the same hook under the same load; two passes, each attached first in one");
    println!(
        "{:<20} {:>8} {:>16} {:>16} {:>10} {:>12} {:>8}",
        "program", "runs", "ns/ev 1st, 2nd", "empty 1st, 2nd", "ns/event", "empty ns/ev", "above"
    );
    // The collector attaches in this order (all attach on this kernel); the empty programs
    // in the same order without the retransmit hook.
    let hooks = [
        ("sched_switch", Some(0)),
        ("sched_process_exec", Some(1)),
        ("net_dev_queue", Some(2)),
        ("netif_receive_skb", Some(3)),
        ("block_rq_issue", Some(4)),
        ("block_rq_complete", Some(5)),
        ("tcp_retransmit_skb", None),
        ("irq_handler_entry", Some(6)),
    ];
    for (i, (hook, floor)) in hooks.into_iter().enumerate() {
        let (a, b) = (&ours_first[i], &ours_second[i]);
        let runs = a.run_cnt + b.run_cnt;
        let ours = (a.ns_per_event() + b.ns_per_event()) / 2.0;
        match floor.and_then(|k| Some((empty_first.get(k)?, empty_second.get(k)?))) {
            Some((ef, es)) => {
                let empty = (ef.ns_per_event() + es.ns_per_event()) / 2.0;
                println!(
                    "{:<20} {:>8} {:>7.1}, {:>6.1} {:>7.1}, {:>6.1} {:>10.1} {:>12.1} {:>8.1}",
                    hook,
                    runs,
                    a.ns_per_event(),
                    b.ns_per_event(),
                    ef.ns_per_event(),
                    es.ns_per_event(),
                    ours,
                    empty,
                    ours - empty
                )
            }
            None => println!(
                "{:<20} {:>8} {:>16} {:>16} {:>10.1}",
                hook, runs, "", "", ours
            ),
        }
    }
    drop(stats);
    c.final_summary();
}
