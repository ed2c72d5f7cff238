//! Measurement helpers.

use khorus_bus::NoteEvent;
use khorus_synth::graph::{GraphSpec, InstrumentSpec};
use khorus_synth::ir::SynthDef;

/// A graph of one instrument built from `def` JSON, dry (no sends).
pub fn graph_of(def: &str, polyphony: usize) -> GraphSpec {
    let def: SynthDef = serde_json::from_str(def).unwrap();
    GraphSpec {
        instruments: vec![InstrumentSpec {
            name: None,
            builtin: None,
            def: Some(def),
            polyphony,
            gain: 1.0,
            pan: -1.0,
            sends: [0.0, 0.0].into(),
            controls: Default::default(),
        }],
        effects: vec![],
        ids: Default::default(),
    }
}

/// A note for instrument 1 at `t_s` for `dur_s`.
pub fn note(t_s: f64, dur_s: f64, note: f32, velocity: f32) -> NoteEvent {
    serde_json::from_str(&format!(
        r#"{{"t_ns":{},"dur_ns":{},"node":1,"note":{note},"velocity":{velocity},"role":"melody"}}"#,
        (t_s * 1e9) as u64,
        (dur_s * 1e9) as u64
    ))
    .unwrap()
}

/// Frequency from interpolated rising zero crossings.
pub fn frequency(x: &[f32], rate: f32) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..x.len() {
        if x[i - 1] <= 0.0 && x[i] > 0.0 {
            let frac = x[i - 1] as f64 / (x[i - 1] as f64 - x[i] as f64);
            crossings.push(i as f64 - 1.0 + frac);
        }
    }
    let n = crossings.len() - 1;
    n as f64 * rate as f64 / (crossings[n] - crossings[0])
}

/// Magnitude spectrum (Hann window) of `x` with bins of rate / x.len().
pub fn spectrum(x: &[f32]) -> Vec<f64> {
    let n = x.len();
    let w: Vec<f64> = (0..n)
        .map(|i| x[i] as f64 * (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos()))
        .collect();
    (0..n / 2)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            let step = std::f64::consts::TAU * k as f64 / n as f64;
            for (i, v) in w.iter().enumerate() {
                let a = step * i as f64;
                re += v * a.cos();
                im -= v * a.sin();
            }
            (re * re + im * im).sqrt()
        })
        .collect()
}

/// Root mean square.
pub fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}
