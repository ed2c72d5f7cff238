//! ns per voice-sample of the reference voice — saw → state-variable low-pass → ADSR — at 1,
//! 16 and 256 voices, khorus's engine next to the same voice built with fundsp, in the same
//! run. Prints the ratio and how many voices one core sustains at 48 kHz.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use fundsp::prelude::*;
use khorus_synth::dsp::BLOCK;
use khorus_synth::instrument::Instrument;
use khorus_synth::ir::SynthDef;

const RATE: f32 = 48_000.0;

const VOICE: &str = r#"{"name":"ref","nodes":[
    {"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}},
    {"id":"f","type":"filter","mode":"lowpass","input":{"node":"o"},"cutoff":1000,"resonance":0.3},
    {"id":"e","type":"adsr","gate":{"control":"gate"},"attack":0.005,"decay":0.15,"sustain":0.3,"release":0.08},
    {"id":"out","type":"mul","inputs":[{"node":"f"},{"node":"e"}]}],"output":{"node":"out"}}"#;

fn khorus_instrument(voices: usize) -> Instrument {
    let program = serde_json::from_str::<SynthDef>(VOICE)
        .unwrap()
        .compile()
        .unwrap();
    let mut inst = Instrument::new(program, voices, RATE);
    for v in 0..voices {
        inst.note_on(v as u64 + 1, 40.0 + (v % 40) as f32, 0.8, 0);
    }
    inst
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut results = Vec::new();
    for voices in [1usize, 16, 256] {
        let mut group = c.benchmark_group("voice_saw_svf_adsr");
        group.throughput(Throughput::Elements((voices * BLOCK) as u64));

        let mut inst = khorus_instrument(voices);
        let (mut out, mut right) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        group.bench_with_input(BenchmarkId::new("khorus", voices), &voices, |b, _| {
            b.iter(|| {
                inst.render(BLOCK, [&mut out, &mut right]);
                black_box(&out);
            })
        });

        let mut fvoices: Vec<_> = (0..voices)
            .map(|v| {
                let f = 440.0 * ((40.0 + (v % 40) as f32 - 69.0) / 12.0).exp2();
                let mut unit = (saw_hz(f) >> lowpass_hz(1000.0, 1.0))
                    * (dc(1.0) >> adsr_live(0.005, 0.15, 0.3, 0.08));
                unit.set_sample_rate(RATE as f64);
                unit
            })
            .collect();
        let input = BufferVec::new(0);
        let mut output = BufferVec::new(1);
        let mut mix = [0.0f32; BLOCK];
        group.bench_with_input(BenchmarkId::new("fundsp", voices), &voices, |b, _| {
            b.iter(|| {
                mix.iter_mut().for_each(|x| *x = 0.0);
                for v in &mut fvoices {
                    v.process(BLOCK, &input.buffer_ref(), &mut output.buffer_mut());
                    for (m, s) in mix.iter_mut().zip(output.channel_f32(0)) {
                        *m += s;
                    }
                }
                black_box(&mix);
            })
        });
        group.finish();

        // The summary line: khorus and fundsp measured in alternation, round after round, so a
        // change in the machine's load hits both alike; medians over the rounds (the VM is
        // noisy: the ratio is the figure to trust).
        let measure = |f: &mut dyn FnMut()| {
            let iters = std::cmp::max(20_000 / voices, 20);
            let start = std::time::Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / (iters * voices * BLOCK) as f64
        };
        let mut rounds = Vec::new();
        for _ in 0..31 {
            let ours = measure(&mut || {
                inst.render(BLOCK, [&mut out, &mut right]);
                black_box(&out);
            });
            let theirs = measure(&mut || {
                for v in &mut fvoices {
                    v.process(BLOCK, &input.buffer_ref(), &mut output.buffer_mut());
                    black_box(output.channel_f32(0));
                }
            });
            rounds.push((ours, theirs, ours / theirs));
        }
        let median = |k: fn(&(f64, f64, f64)) -> f64| {
            let mut xs: Vec<f64> = rounds.iter().map(k).collect();
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        let (ours, theirs, ratio) = (median(|r| r.0), median(|r| r.1), median(|r| r.2));
        results.push((voices, ours, theirs, ratio));
    }
    c.final_summary();
    println!(
        "\nns per voice-sample (saw → SVF low-pass → ADSR), same run: medians of 31 alternating rounds"
    );
    println!(
        "{:>7} {:>10} {:>10} {:>14} {:>16}",
        "voices", "khorus", "fundsp", "khorus/fundsp", "voices per core"
    );
    for (v, ours, theirs, ratio) in results {
        println!(
            "{v:>7} {ours:>10.2} {theirs:>10.2} {ratio:>14.2} {:>16.0}",
            1e9 / (ours * RATE as f64)
        );
    }
}
