//! Criterion: one-cycle queries, the scheduler's inner loop. Targets: ≤ 5 µs for a 16-step
//! note sequence (krach's engine takes ≈ 22 µs), and a stacked euclid/degrade/every pattern.

use criterion::{Criterion, criterion_group, criterion_main};
use khorus_composer::mini;
use khorus_composer::pattern::Context;
use khorus_composer::time::Q;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let ctx = Context::default();
    let seq16 = mini::parse("c3 d3 e3 f3 g3 a3 b3 c4 d4 e4 f4 g4 a4 b4 c5 d5").unwrap();
    c.bench_function("query_16_step_sequence_1_cycle", |b| {
        let mut cycle = 0i64;
        b.iter(|| {
            cycle += 1;
            let haps = seq16
                .query_span(Q::int(cycle), Q::int(cycle + 1), &ctx)
                .unwrap();
            black_box(haps)
        })
    });
    let stacked = mini::parse("[bd(3,8,2), hh*8?, ~ sd, <c3 e3>(5,8)]")
        .unwrap()
        .every(3, |p| p.rev())
        .degrade_by(Q::new(1, 4).unwrap(), 9);
    c.bench_function("query_stacked_euclid_degrade_every_1_cycle", |b| {
        let mut cycle = 0i64;
        b.iter(|| {
            cycle += 1;
            let haps = stacked
                .query_span(Q::int(cycle), Q::int(cycle + 1), &ctx)
                .unwrap();
            black_box(haps)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
