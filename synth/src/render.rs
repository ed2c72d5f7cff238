//! Offline rendering: the same engine, driven by a note list instead of the audio callback,
//! written to a WAV file. Deterministic: the same graph and notes give the same samples.

use std::path::Path;

use khorus_bus::NoteEvent;
use serde::{Deserialize, Serialize};

use crate::builtin;
use crate::engine::{Engine, Note};
use crate::ir::{DefError, SynthDef};
use crate::voice::Instrument;

/// One instrument of a graph file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// Its name in the graph, which `Set` commands use (default: the definition's or the
    /// built-in's name). Names are unique within a graph.
    #[serde(default)]
    pub name: Option<String>,
    /// A built-in instrument by name…
    #[serde(default)]
    pub builtin: Option<String>,
    /// …or a definition.
    #[serde(default)]
    pub def: Option<SynthDef>,
    /// Voices (default 32).
    #[serde(default = "default_polyphony")]
    pub polyphony: usize,
    /// Output gain.
    #[serde(default = "one")]
    pub gain: f32,
    /// Pan -1..1.
    #[serde(default)]
    pub pan: f32,
    /// Send levels to the delay and the reverb.
    #[serde(default)]
    pub sends: [f32; 2],
}

fn default_polyphony() -> usize {
    32
}
fn one() -> f32 {
    1.0
}

/// A graph file: instruments in node order (note `node` n plays instrument n - 1; node 0 picks
/// by role from the built-in patch layout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// The instruments (none: the built-in patch).
    #[serde(default)]
    pub instruments: Vec<InstrumentSpec>,
}

/// Why a graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The text is not a graph file (serde's message names the line, column and field).
    #[error("invalid graph JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An instrument names no definition, or an unknown built-in.
    #[error("instrument {index}: {message}")]
    Instrument {
        /// Its position.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A definition is invalid.
    #[error("instrument {index}: {source}")]
    Def {
        /// Its position.
        index: usize,
        /// The definition's error.
        source: DefError,
    },
}

impl GraphSpec {
    /// Parses a graph file's JSON.
    pub fn from_json(json: &str) -> Result<Self, GraphError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Builds an engine for this graph (the built-in patch when it has no instruments).
    pub fn build(&self, rate: f32) -> Result<Engine, GraphError> {
        if self.instruments.is_empty() {
            return Ok(Engine::with_builtins(rate, 32));
        }
        let mut instruments = Vec::new();
        for (index, spec) in self.instruments.iter().enumerate() {
            let def = match (&spec.builtin, &spec.def) {
                (Some(name), None) => builtin::def(name).ok_or_else(|| GraphError::Instrument {
                    index,
                    message: format!(
                        "unknown built-in {name:?} (known: {})",
                        builtin::names().collect::<Vec<_>>().join(", ")
                    ),
                })?,
                (None, Some(def)) => def.clone(),
                _ => {
                    return Err(GraphError::Instrument {
                        index,
                        message: "give exactly one of \"builtin\" or \"def\"".into(),
                    });
                }
            };
            let program = def
                .compile()
                .map_err(|source| GraphError::Def { index, source })?;
            let name = spec.name.as_deref().unwrap_or(&def.name);
            if let Some(first) = instruments
                .iter()
                .position(|i: &Instrument| i.name() == name)
            {
                return Err(GraphError::Instrument {
                    index,
                    message: format!(
                        "name {name:?} is already used by instrument {first}; give one of them \"name\""
                    ),
                });
            }
            if !(spec.gain.is_finite()
                && spec.pan.is_finite()
                && spec.sends.iter().all(|s| s.is_finite()))
            {
                return Err(GraphError::Instrument {
                    index,
                    message: "gain, pan and sends must be finite".into(),
                });
            }
            let mut inst = Instrument::new(program, spec.polyphony, rate);
            inst.set_name(name);
            inst.gain.jump(spec.gain.clamp(0.0, 4.0));
            inst.pan.jump(spec.pan.clamp(-1.0, 1.0));
            inst.sends = spec.sends.map(|s| s.clamp(0.0, 1.0));
            instruments.push(inst);
        }
        Ok(Engine::new(rate, instruments))
    }
}

/// Converts a bus note to an engine note: `t_ns` (relative to `origin_ns`) to a frame.
pub fn note_at(n: &NoteEvent, origin_ns: u64, rate: f32) -> Note {
    let to_frames = |ns: u64| ((ns as u128 * rate as u128 + 500_000_000) / 1_000_000_000) as u64;
    Note {
        frame: to_frames(n.t_ns.saturating_sub(origin_ns)),
        dur_frames: to_frames(n.dur_ns),
        node: n.node,
        note: n.note,
        velocity: n.velocity,
        role: n.role(),
    }
}

/// Renders `seconds` of `notes` (times relative to `origin_ns`) through `engine`.
pub fn render(
    engine: &mut Engine,
    notes: &[NoteEvent],
    origin_ns: u64,
    seconds: f32,
) -> (Vec<f32>, Vec<f32>) {
    for n in notes {
        let note = note_at(n, origin_ns, engine.rate());
        engine.schedule(note);
    }
    let frames = (seconds.max(0.0) * engine.rate()) as usize;
    let mut left = vec![0.0; frames];
    let mut right = vec![0.0; frames];
    engine.render(&mut left, &mut right);
    (left, right)
}

/// Writes 32-bit float stereo WAV.
pub fn write_wav(path: &Path, rate: u32, left: &[f32], right: &[f32]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for (l, r) in left.iter().zip(right) {
        w.write_sample(*l)?;
        w.write_sample(*r)?;
    }
    w.finalize()
}
