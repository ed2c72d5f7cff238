//! Criterion: what ramps over bars cost the scheduler, side by side in one run — a tick
//! (100 ms of a 16-step sequence at ~120 bpm) at a constant tempo, during a tempo ramp (each
//! onset's time through the logarithm instead of exact rationals), and with 64 parameter
//! ramps beside it (a curve point per ramp per beat).

use criterion::{Criterion, criterion_group, criterion_main};
use khorus_bus::Role;
use khorus_bus::commands::composer::Target;
use khorus_composer::controls::to_notes;
use khorus_composer::levels::Signals;
use khorus_composer::mini;
use khorus_composer::ramps::Ramp;
use khorus_composer::scheduler::{Scheduler, Voice};
use khorus_composer::time::Q;
use khorus_composer::transport::Transport;
use std::hint::black_box;

const TICK_NS: u64 = 100_000_000;

/// A scheduler playing a 16-step sequence, with a tempo ramp and `ramps` parameter ramps
/// over a million bars (so they last the whole measurement).
fn scheduler(tempo_ramp: bool, ramps: u32) -> Scheduler {
    let transport = Transport::new(Q::int(120), 4, 0).unwrap();
    let mut s = Scheduler::new(transport, 50_000_000);
    let voice = Voice {
        pattern: to_notes(
            mini::parse("c3 d3 e3 f3 g3 a3 b3 c4 d4 e4 f4 g4 a4 b4 c5 d5").unwrap(),
            None,
        ),
        target: Target::Notes {
            node: 1,
            role: Role::Melody,
            channel: None,
        },
    };
    s.set_slot("m", Some(voice), Q::ONE).unwrap();
    if tempo_ramp {
        s.ramp_cps(Q::new(1, 4).unwrap(), Q::int(1_000_000))
            .unwrap();
    }
    for r in 0..ramps {
        s.start_ramp(Ramp::new(2, r, 0.0, 1.0, Q::ZERO, Q::int(1_000_000)));
    }
    s
}

fn bench(c: &mut Criterion) {
    let signals = Signals::default();
    let mut group = c.benchmark_group("scheduler_tick_100ms");
    for (name, tempo, ramps) in [
        ("constant_tempo", false, 0),
        ("tempo_ramp", true, 0),
        ("tempo_ramp_and_64_param_ramps", true, 64),
    ] {
        group.bench_function(name, |b| {
            let mut s = scheduler(tempo, ramps);
            let mut now = 0;
            b.iter(|| {
                now += TICK_NS;
                black_box(s.advance(now, &signals).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
