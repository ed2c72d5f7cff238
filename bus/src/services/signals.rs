//! `khorus/signals`: one [`SignalFrame`] per collector tick.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;
use crate::signals::{SIGNAL_CAPACITY, SIGNALS, SignalId};

/// Which source made a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SignalSource {
    /// BPF programs in the kernel (the default).
    Bpf = 0,
    /// Unprivileged procfs counters (fallback).
    Procfs = 1,
    /// A recorded trace played back.
    Replay = 2,
    /// A seeded deterministic generator.
    Synthetic = 3,
    /// Published by hand (`khorus inject`).
    Inject = 4,
}

impl SignalSource {
    /// Decodes the wire byte; unknown values read as `Inject` (never trusted for logic).
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Bpf,
            1 => Self::Procfs,
            2 => Self::Replay,
            3 => Self::Synthetic,
            _ => Self::Inject,
        }
    }

    /// Lower-case name, as status and the CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bpf => "bpf",
            Self::Procfs => "procfs",
            Self::Replay => "replay",
            Self::Synthetic => "synthetic",
            Self::Inject => "inject",
        }
    }
}

/// One measurement of every kernel signal over one collector tick.
#[derive(Debug, Clone, Copy, PartialEq, ZeroCopySend, Serialize, Deserialize)]
#[serde(into = "FrameJson", try_from = "FrameJson")]
#[type_name("khorus::SignalFrame/v1")]
#[repr(C)]
pub struct SignalFrame {
    /// Per-publisher sequence number, set by [`Publisher::publish`](crate::Publisher::publish).
    pub seq: u64,
    /// Monotonic time at the end of the measured interval, ns.
    pub t_ns: u64,
    /// Length of the measured interval, ns (the real elapsed time, not the nominal tick).
    pub dt_ns: u64,
    /// Raw rate per signal in the unit of [`SIGNALS`] (`exec/s`, `KiB/s`, `%` …), by [`SignalId`].
    pub rate: [f32; SIGNAL_CAPACITY],
    /// Normalised, smoothed level per signal, 0.0 ..= 1.0, by [`SignalId`].
    pub level: [f32; SIGNAL_CAPACITY],
    /// Bit `i` set: signal `i` was measured in this frame (a missing PSI file clears its bit).
    pub available: u32,
    /// [`SignalSource`] as a byte.
    pub source: u8,
    /// Padding, zero.
    pub _pad: [u8; 3],
}

impl Default for SignalFrame {
    fn default() -> Self {
        Self {
            seq: 0,
            t_ns: 0,
            dt_ns: 0,
            rate: [0.0; SIGNAL_CAPACITY],
            level: [0.0; SIGNAL_CAPACITY],
            available: 0,
            source: SignalSource::Inject as u8,
            _pad: [0; 3],
        }
    }
}

impl SignalFrame {
    /// Sets one signal's raw rate and level and marks it available.
    pub fn set(&mut self, id: SignalId, rate: f32, level: f32) {
        let i = id.index();
        if i < SIGNAL_CAPACITY {
            self.rate[i] = rate;
            self.level[i] = level;
            self.available |= 1 << i;
        }
    }

    /// Whether signal `id` was measured in this frame.
    pub fn is_available(&self, id: SignalId) -> bool {
        id.index() < SIGNAL_CAPACITY && self.available & (1 << id.index()) != 0
    }

    /// The source that made this frame.
    pub fn source(&self) -> SignalSource {
        SignalSource::from_u8(self.source)
    }
}

// Frames come every 5–1000 ms; 256 covers a reader stalled for over a second at the
// fastest tick. History 1 lets a late subscriber start from the latest frame.
topic!(SignalFrame, "khorus/signals", buffer: 256, history: 1, publishers: 4, subscribers: 16);

/// A signal's pair of numbers in JSON.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalJson {
    rate: f32,
    level: f32,
}

/// The JSON form of a frame: signals by name, in table order, only those available.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameJson {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t_ns: u64,
    #[serde(default)]
    dt_ns: u64,
    #[serde(default = "inject")]
    source: SignalSource,
    #[serde(with = "super::pairs_as_map")]
    signals: Vec<(String, SignalJson)>,
}

fn inject() -> SignalSource {
    SignalSource::Inject
}

impl From<SignalFrame> for FrameJson {
    fn from(f: SignalFrame) -> Self {
        let signals = SIGNALS
            .iter()
            .enumerate()
            .filter(|(i, _)| f.available & (1 << i) != 0)
            .map(|(i, s)| {
                let v = SignalJson {
                    rate: f.rate[i],
                    level: f.level[i],
                };
                (s.name.to_string(), v)
            })
            .collect();
        Self {
            seq: f.seq,
            t_ns: f.t_ns,
            dt_ns: f.dt_ns,
            source: f.source(),
            signals,
        }
    }
}

impl TryFrom<FrameJson> for SignalFrame {
    type Error = String;
    fn try_from(j: FrameJson) -> Result<Self, String> {
        let mut f = SignalFrame {
            seq: j.seq,
            t_ns: j.t_ns,
            dt_ns: j.dt_ns,
            source: j.source as u8,
            ..Default::default()
        };
        for (name, v) in j.signals {
            let id = SignalId::from_name(&name).ok_or_else(|| {
                let known: Vec<_> = SIGNALS.iter().map(|s| s.name).collect();
                format!("unknown signal {name:?} (known: {})", known.join(", "))
            })?;
            if !v.rate.is_finite() || !v.level.is_finite() {
                return Err(format!("signal {name:?}: rate and level must be finite"));
            }
            f.set(id, v.rate, v.level.clamp(0.0, 1.0));
        }
        Ok(f)
    }
}
