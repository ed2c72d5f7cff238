//! The audio thread's cost of the synth graph's features, each next to its baseline in the
//! same run: the callback that applies a graph edit (transplanting the kept nodes, starting
//! the crossfade) against an ordinary callback; the callback with 16 stems against none; and
//! the per-sample cost of every stateful primitive of the vocabulary next to the built-in
//! delay effect's line (per sample and a block at a time) and its stereo reverb; the `tanh`
//! step's vector `tanh` next to libm's.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::{NoteEvent, StageKind, StageStatus};
use khorus_synth::command::Controller;
use khorus_synth::dsp::env::{Adsr, Stage};
use khorus_synth::dsp::fx::{Delay, Limiter, Reverb};
use khorus_synth::dsp::kernel::ARGS;
use khorus_synth::dsp::{BLOCK, LANES, Lanes, Sig};
use khorus_synth::graph::GraphSpec;
use khorus_synth::prim::KernelKind;
use khorus_synth::rt::{self, Clock, Incoming, Renderer, RtStats};
use khorus_synth::stems::{MAX_STEMS, StemSource};

const RATE: f32 = 48_000.0;
/// Frames per callback (a 5.3 ms quantum).
const CALLBACK: usize = 256;

/// The built-in patch with 16 sixteen held notes on the pad and the bass, rendered for a while.
fn playing() -> (Controller, Renderer, Clock) {
    let engine = GraphSpec::default().build(RATE).unwrap();
    let (mut c, mut r) = Controller::new(engine, Arc::new(RtStats::default()), 8192);
    for k in 0..16u32 {
        let n: NoteEvent = serde_json::from_str(&format!(
            r#"{{"t_ns":0,"dur_ns":60000000000,"node":{},"note":{},"velocity":0.8,"role":"melody"}}"#,
            1 + 2 * (k % 2),
            40 + k
        ))
        .unwrap();
        c.push(Incoming::Note(n));
    }
    let mut clock = Clock { buffer_start_ns: 0 };
    for _ in 0..40 {
        r.fill(clock, CALLBACK);
        clock.buffer_start_ns += 5_333_333;
    }
    (c, r, clock)
}

/// The edit: the pad and bass kept (16 voices carried), the other six instruments removed, a
/// new lead added, the effects kept with new settings.
const EDITED: &str = r#"{"instruments":[{"builtin":"pad","polyphony":32},
    {"builtin":"lead","name":"lead2","polyphony":8},{"builtin":"bass","polyphony":32}],
    "effects":[{"type":"delay","name":"delay","feedback":0.5},{"type":"reverb","name":"reverb"}]}"#;

fn edits(c: &mut Criterion) {
    let mut group = c.benchmark_group("graph_edit_callback");
    group.throughput(Throughput::Elements(CALLBACK as u64));
    for edit in [false, true] {
        let name = if edit { "applying_an_edit" } else { "ordinary" };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (mut c, r, clock) = playing();
                    if edit {
                        let load = SynthCommand::LoadGraph {
                            json: EDITED.into(),
                            fade_ms: 60,
                        };
                        c.handle(load, || StageStatus::new(StageKind::Synth))
                            .unwrap();
                    }
                    (c, r, clock)
                },
                |(c, mut r, clock)| {
                    black_box(r.fill(clock, CALLBACK));
                    (c, r)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn stems(c: &mut Criterion) {
    let mut group = c.benchmark_group("stems_callback");
    group.throughput(Throughput::Elements(CALLBACK as u64));
    for with in [0usize, MAX_STEMS] {
        // Sixteen instruments (the built-ins twice), one note each.
        let list: Vec<String> = (0..16)
            .map(|i| {
                let b = [
                    "pad", "lead", "bass", "chords", "kick", "click", "hat", "glitch",
                ][i % 8];
                format!(r#"{{"builtin":"{b}","name":"n{i}","polyphony":4}}"#)
            })
            .collect();
        let mut engine =
            GraphSpec::from_json(&format!(r#"{{"instruments":[{}]}}"#, list.join(",")))
                .unwrap()
                .build(RATE)
                .unwrap();
        engine.set_stems((0..with).map(|i| (i, StemSource::Instrument(i))).collect());
        for i in 0..16u32 {
            engine.schedule(khorus_synth::engine::Note {
                frame: 0,
                dur_frames: u64::MAX / 4,
                node: i + 1,
                note: 48.0 + i as f32,
                velocity: 0.7,
                role: khorus_bus::Role::Melody,
            });
        }
        let (_feeder, mut r) = rt::link(engine, Arc::new(RtStats::default()), 8192);
        let mut clock = Clock { buffer_start_ns: 0 };
        group.bench_with_input(BenchmarkId::new("stems", with), &with, |b, _| {
            b.iter(|| {
                black_box(r.fill(clock, CALLBACK));
                clock.buffer_start_ns += 5_333_333;
            })
        });
    }
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitive_per_sample");
    group.throughput(Throughput::Elements(BLOCK as u64));
    let input: Vec<f32> = (0..BLOCK).map(|i| (i as f32 * 0.1).sin()).collect();
    let mut out = [0.0f32; BLOCK];
    // The reference: the built-in delay effect's line (one channel), per sample.
    let mut line = Delay::new(4.0, RATE);
    group.bench_function("builtin_delay_line", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(&input) {
                *o = line.tick(x, 0.25, 0.4, 4000.0);
            }
            black_box(&out);
        })
    });
    // The built-in reverb effect: both channels, a block.
    let mut reverb = Reverb::new(RATE);
    let (mut wet_l, mut wet_r) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    group.bench_function("builtin_reverb_stereo", |b| {
        b.iter(|| {
            wet_l.copy_from_slice(&input);
            wet_r.copy_from_slice(&input);
            reverb.process(&mut wet_l, &mut wet_r, 0.7, 0.5);
            black_box((&wet_l, &wet_r));
        })
    });
    // The same line a block at a time, as the built-in delay runs at a settled time.
    let mut line = Delay::new(4.0, RATE);
    group.bench_function("builtin_delay_block", |b| {
        b.iter(|| {
            out.copy_from_slice(&input);
            line.process(&mut out, 0.25, 0.4, 4000.0);
            black_box(&out);
        })
    });
    // The master limiter on a stereo block below its ceiling (the usual case): per sample,
    // and the block form the engine runs.
    let mut limiter = Limiter::new(0.89, 0.08, RATE);
    let (mut lim_l, mut lim_r) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    group.bench_function("limiter_tick", |b| {
        b.iter(|| {
            for ((l, r), &x) in lim_l.iter_mut().zip(&mut lim_r).zip(&input) {
                (*l, *r) = limiter.tick(x * 0.5, x * -0.4);
            }
            black_box((&lim_l, &lim_r));
        })
    });
    group.bench_function("limiter_block", |b| {
        b.iter(|| {
            for ((l, r), &x) in lim_l.iter_mut().zip(&mut lim_r).zip(&input) {
                (*l, *r) = (x * 0.5, x * -0.4);
            }
            limiter.process(&mut lim_l, &mut lim_r);
            black_box((&lim_l, &lim_r));
        })
    });
    for &kind in KernelKind::ALL {
        let mut k = kind.build(RATE, 1.0);
        let args: [Sig<'_>; ARGS] = std::array::from_fn(|i| match kind.args().get(i) {
            Some(a) if a.name == "input" || a.name == "gate" || a.name == "trigger" => {
                Sig::Varying(&input)
            }
            Some(a) => Sig::Steady(a.default.unwrap_or(1.0)),
            None => Sig::Steady(0.0),
        });
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                k.process(&args, &mut out[..]);
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The `tanh` step over a lane block (64 samples × 8 voices, as a pack runs it): libm's
/// `tanhf` per value against `wide`'s vector `tanh`, which the step uses.
fn saturation(c: &mut Criterion) {
    let mut group = c.benchmark_group("tanh_lane_block");
    group.throughput(Throughput::Elements((BLOCK * LANES) as u64));
    let input: Vec<Lanes> = (0..BLOCK)
        .map(|i| std::array::from_fn(|l| ((i * LANES + l) as f32 * 0.37).sin() * 3.0))
        .collect();
    let mut out = vec![[0.0f32; LANES]; BLOCK];
    group.bench_function("libm", |b| {
        b.iter(|| {
            for (o, x) in out.iter_mut().zip(&input) {
                for l in 0..LANES {
                    o[l] = (x[l] * 1.5).tanh();
                }
            }
            black_box(&out);
        })
    });
    // What the synth's `tanh` step does.
    group.bench_function("wide_f32x8", |b| {
        b.iter(|| {
            for (o, x) in out.iter_mut().zip(&input) {
                *o = (wide::f32x8::from(*x) * wide::f32x8::splat(1.5))
                    .tanh()
                    .to_array();
            }
            black_box(&out);
        })
    });
    group.finish();
}

/// An envelope's decay over a block (the stage a held note spends longest in): the
/// recursion as a level (`v = s + (v - s)·c`: subtract, multiply, add on the chain each
/// sample) against the envelope, which moves its offset from the sustain level (a multiply).
fn envelope(c: &mut Criterion) {
    let mut group = c.benchmark_group("adsr_decay_block");
    group.throughput(Throughput::Elements(BLOCK as u64));
    let (attack, decay, sustain, release) = (0.0005, 30.0, 0.5, 0.1);
    let coeff = (-4.6f32 / (decay * RATE)).exp();
    let mut out = [0.0f32; BLOCK];
    let mut level = 1.0f32;
    group.bench_function("level_recursion", |b| {
        b.iter(|| {
            for o in out.iter_mut() {
                level = sustain + (level - sustain) * coeff;
                if (level - sustain).abs() < khorus_synth::dsp::env::SILENT {
                    level = 1.0;
                }
                *o = level;
            }
            black_box(&out);
        })
    });
    group.bench_function("adsr", |b| {
        b.iter_batched_ref(
            || {
                let mut e = Adsr::new(RATE);
                while e.stage() != Stage::Decay {
                    e.tick(1.0, attack, decay, sustain, release);
                }
                e
            },
            |e| {
                e.process(
                    [1.0, attack, decay, sustain, release].map(Sig::Steady),
                    &mut out[..],
                );
                black_box(&out);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    edits(&mut c);
    stems(&mut c);
    kernels(&mut c);
    saturation(&mut c);
    envelope(&mut c);
    c.final_summary();
}
