//! Renders the benchmark's reference voice (saw → SVF low-pass → ADSR) for a fixed number of
//! blocks, with khorus's engine or fundsp, so `valgrind --tool=callgrind` can count the
//! instructions of each. Instruction counts do not depend on machine load, unlike times.
//!
//! `cargo build --release -p khorus-synth --example voice_cost`
//! `valgrind --tool=callgrind target/release/examples/voice_cost khorus 16 2000`

use std::hint::black_box;

use fundsp::prelude::*;
use khorus_synth::dsp::BLOCK;
use khorus_synth::instrument::Instrument;
use khorus_synth::ir::SynthDef;

const VOICE: &str = r#"{"name":"ref","nodes":[
    {"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}},
    {"id":"f","type":"filter","mode":"lowpass","input":{"node":"o"},"cutoff":1000,"resonance":0.3},
    {"id":"e","type":"adsr","gate":{"control":"gate"},"attack":0.005,"decay":0.15,"sustain":0.3,"release":0.08},
    {"id":"out","type":"mul","inputs":[{"node":"f"},{"node":"e"}]}],"output":{"node":"out"}}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("khorus");
    let voices: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(16);
    let blocks: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(1000);
    match which {
        "khorus" => {
            let program = serde_json::from_str::<SynthDef>(VOICE)
                .unwrap()
                .compile()
                .unwrap();
            let mut inst = Instrument::new(program, voices, 48_000.0);
            for v in 0..voices {
                inst.note_on(v as u64 + 1, 40.0 + (v % 40) as f32, 0.8, 0);
            }
            let (mut out, mut right) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
            for _ in 0..blocks {
                inst.render(BLOCK, [&mut out, &mut right]);
                black_box(&out);
            }
        }
        _ => {
            let mut units: Vec<_> = (0..voices)
                .map(|v| {
                    let f = 440.0 * ((40.0 + (v % 40) as f32 - 69.0) / 12.0).exp2();
                    let mut u = (saw_hz(f) >> lowpass_hz(1000.0, 1.0))
                        * (dc(1.0) >> adsr_live(0.005, 0.15, 0.3, 0.08));
                    u.set_sample_rate(48_000.0);
                    u
                })
                .collect();
            let input = BufferVec::new(0);
            let mut output = BufferVec::new(1);
            for _ in 0..blocks {
                for u in &mut units {
                    u.process(BLOCK, &input.buffer_ref(), &mut output.buffer_mut());
                    black_box(output.channel_f32(0));
                }
            }
        }
    }
}
