//! What a change costs as the session grows, on the real binaries (release builds: `cargo
//! build --release --bins && cargo bench -p khorus-tests --bench session`), on a private
//! PipeWire stack: sessions of 16 and 256 nodes with definitions of 104 primitives each
//! (`khorus_tests::scale`), built with one batch; then, for each, the time from a one-node
//! change sent to control to its reply — which comes after both stages acknowledged it — for
//! four kinds of change (a pattern: the composer; a number: the synth's `Set`; a send level:
//! the synth's `Send`; a route added or removed: a graph change, sent back to back and then
//! 150 ms apart, since a graph change waits for the previous one's 60 ms crossfade), p50 and
//! p95 over `KHORUS_BENCH_CHANGES` (default 20) each;
//! and the time `session load` takes for the 256-node session.
//!
//! Not a timed test: it prints figures (for BENCHMARKS.md) and asserts nothing about them.

use std::time::{Duration, Instant};

use khorus_bus::commands::control::{Change, ControlCommand, PatternSpec, Value};
use khorus_tests::control::{ALL, Up};
use khorus_tests::scale::{nodes, pattern};
use khorus_tests::{PipeWireStack, percentile};

const T: Duration = Duration::from_secs(120);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let changes: usize = std::env::var("KHORUS_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let Some(stack) = PipeWireStack::start() else {
        eprintln!("no PipeWire: nothing measured");
        return;
    };
    println!("| nodes | change | p50 ms | p95 ms |");
    println!("|---:|---|---:|---:|");
    for n in [16, 256] {
        let mut up = Up::start(stack.env(), &format!("bench-s{n}"), None);
        up.wait_ready(&ALL);
        let bus = khorus_bus::Bus::open("bench-session", &up.bus.config).unwrap();
        let mut control = bus
            .command_client::<khorus_bus::commands::Control>()
            .unwrap();
        let mut batch = vec![Change::Score {
            name: "none".into(),
            params: Vec::new(),
        }];
        batch.extend(nodes(0, n));
        control.call(&ControlCommand::Batch(batch), T).unwrap();
        // A route into the delay added, then removed again: a graph change each (k from 1).
        let new_route = move |k: usize| {
            let from = format!("n{}", ((k - 1) / 2) % n);
            match k % 2 {
                1 => Change::Route {
                    from,
                    to: "delay".into(),
                    level: 0.2,
                },
                _ => Change::Unroute {
                    from,
                    to: "delay".into(),
                },
            }
        };
        let kinds: [(&str, &dyn Fn(usize) -> Change); 5] = [
            ("play (composer)", &|k| Change::Play {
                node: format!("n{}", k % n),
                param: None,
                pattern: Some(PatternSpec::mini(pattern((k * 7) % 256), None)),
            }),
            ("set cutoff (synth Set)", &|k| Change::Set {
                node: format!("n{}", k % n),
                param: "cutoff".into(),
                value: Value::Number(500.0 + k as f64),
            }),
            ("route level (synth Send)", &|k| Change::Route {
                from: format!("n{}", (k * 4) % n),
                to: "reverb".into(),
                level: 0.2 + (k % 7) as f32 / 100.0,
            }),
            ("route added or removed (graph)", &new_route),
            ("route added or removed, 150 ms apart", &new_route),
        ];
        for (label, change) in kinds {
            let mut ms = Vec::with_capacity(changes);
            for k in 0..changes {
                if label.contains("apart") {
                    // The previous change's crossfade ends: a pause of the measurement, not
                    // synchronisation.
                    std::thread::sleep(Duration::from_millis(150));
                }
                let cmd = ControlCommand::Batch(vec![change(k + 1)]);
                let t = Instant::now();
                control.call(&cmd, T).unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "| {n} | {label} | {:.1} | {:.1} |",
                percentile(&ms, 0.5),
                percentile(&ms, 0.95)
            );
        }
        if n == 256 {
            let json = up.session();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("s.json");
            std::fs::write(&file, &json).unwrap();
            let mut loads = Vec::new();
            for _ in 0..3 {
                up.ok(&["session", "reset"]);
                let t = Instant::now();
                up.ok(&["session", "load", file.to_str().unwrap()]);
                loads.push(t.elapsed().as_secs_f64());
            }
            loads.sort_by(f64::total_cmp);
            println!(
                "\n`session load` of the {n}-node session ({} KiB): {:.2} s median of 3 (CLI process included)",
                json.len() / 1024,
                loads[1]
            );
        }
    }
}
