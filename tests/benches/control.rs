//! What `khorus up` costs and how fast it heals, measured on the real binaries (run it with
//! release builds: `cargo build --release --bins && cargo bench -p khorus-tests --bench
//! control`), on a private PipeWire stack:
//!
//! - restart latency per stage (exit → ready again, as control measures it) over 20 kills
//!   each, interleaved: p50, p95, max;
//! - control's own CPU while the default session plays;
//! - every process's CPU (% of one core) and PSS over 60 s of the default session;
//! - what a status costs control when asked for again and again (a `--watch`, a polling web
//!   page), beside what reading `/proc` afresh for it costs, in the same run.
//!
//! Not a timed test: it prints figures (for BENCHMARKS.md) and asserts nothing about them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use khorus_tests::control::{ALL, Up, kill9, wait_back};
use khorus_tests::{PipeWireStack, percentile};

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of all of `pid`'s threads, ns.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// What a fresh status reading of `pid` reads: every thread's schedstat and status, and the
/// PSS.
fn read_afresh(pid: u32) -> u64 {
    let mut n = cpu_ns(pid);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            n += std::fs::read_to_string(t.path().join("status")).map_or(0, |s| s.len() as u64);
        }
    }
    n + pss_kib(pid)
}

fn pause(d: Duration) {
    // A benchmark's measuring window, not synchronisation.
    std::thread::sleep(d);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing else useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let window: u64 = std::env::var("KHORUS_BENCH_WINDOW_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let kills: usize = std::env::var("KHORUS_BENCH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let Some(stack) = PipeWireStack::start() else {
        eprintln!("no PipeWire: nothing measured");
        return;
    };
    let mut up = Up::start(stack.env(), "bench", None);
    up.wait_ready(&ALL);
    // Warm up: the default session (ambient score) settles.
    pause(Duration::from_secs(5));

    // Footprint of the default session.
    let mut pids: Vec<(String, u32)> = vec![("control".into(), up.control_pid())];
    for stage in ALL {
        pids.push((stage.name().into(), up.pid_of(stage)));
    }
    let t0 = Instant::now();
    let before: Vec<u64> = pids.iter().map(|(_, p)| cpu_ns(*p)).collect();
    pause(Duration::from_secs(window));
    let dt = t0.elapsed().as_secs_f64();
    println!("footprint of the default session over {window} s (CPU % of one core, PSS):");
    println!("| process | CPU % | PSS MiB |");
    println!("|---|---:|---:|");
    let (mut cpu_total, mut pss_total) = (0.0, 0.0);
    for ((name, pid), b) in pids.iter().zip(&before) {
        let cpu = (cpu_ns(*pid) - b) as f64 / 1e9 / dt * 100.0;
        let pss = pss_kib(*pid) as f64 / 1024.0;
        cpu_total += cpu;
        pss_total += pss;
        println!("| {name} | {cpu:.3} | {pss:.1} |");
    }
    println!("| total | {cpu_total:.3} | {pss_total:.1} |");

    // Status asked for again and again: control's CPU per request, beside the /proc reads
    // one fresh reading of the four stages takes (here, in this process).
    let requests = 200;
    let bus = khorus_bus::Bus::open("bench-status", &up.bus.config).unwrap();
    let mut control = bus
        .command_client::<khorus_bus::commands::Control>()
        .unwrap();
    let ask = khorus_bus::commands::control::ControlCommand::Stages;
    let before = cpu_ns(up.control_pid());
    for _ in 0..requests {
        control.call(&ask, Duration::from_secs(5)).unwrap();
    }
    let per_request = (cpu_ns(up.control_pid()) - before) as f64 / requests as f64 / 1e3;
    let stages: Vec<u32> = pids.iter().skip(1).map(|(_, p)| *p).collect();
    // This thread's CPU time, as control's is measured.
    let mine = || -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let t = mine();
    let mut sink = 0;
    for _ in 0..requests {
        for &p in &stages {
            sink += read_afresh(p);
        }
    }
    std::hint::black_box(sink);
    let afresh = (mine() - t) as f64 / requests as f64 / 1e3;
    println!("\nstatus asked {requests} times in a row (µs):");
    println!("| control's CPU per request | reading /proc afresh for the four stages |");
    println!("|---:|---:|");
    println!("| {per_request:.0} | {afresh:.0} |");

    // Restart latency.
    let mut latencies: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for _ in 0..kills {
        for stage in ALL {
            let pid = up.pid_of(stage);
            kill9(pid);
            let back = wait_back(&mut up, stage, pid);
            if let Some(ms) = back.last_restart_ms {
                latencies.entry(stage.name()).or_default().push(ms);
            }
            // Let it settle (and report status) before the next kill.
            pause(Duration::from_millis(300));
        }
    }
    println!("\nrestart latency, exit → ready (ms), {kills} kills per stage:");
    println!("| stage | p50 | p95 | max |");
    println!("|---|---:|---:|---:|");
    for stage in ALL {
        let mut v = latencies.remove(stage.name()).unwrap_or_default();
        v.sort_unstable();
        if v.is_empty() {
            continue;
        }
        println!(
            "| {} | {} | {} | {} |",
            stage.name(),
            percentile(&v, 0.5),
            percentile(&v, 0.95),
            v[v.len() - 1]
        );
    }
}
