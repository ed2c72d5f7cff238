//! Kernel-driven scores: khor's four presets (ambient, percussive, arp, drone) rebuilt as
//! patterns whose parameters are signal expressions.
//!
//! Each score is a set of slots written in the same IR the bus commands use, so a score is
//! nothing a user could not send by hand. The mappings keep khor's intent: exec drives note
//! probability and accents, rx gates the melody, tx the arpeggio, csw percussive clicks, io
//! the filter cutoff, retx off-scale glitch stabs, irq ultra-short high hats; everything but
//! the drone goes silent below an activity floor. Roles map to channels 1 melody, 2 bass,
//! 3 chords, 10 percussion.

use khorus_bus::commands::composer::{
    ControlParam, ControlSpec, ControlValue, ScoreParams, Simple, SlotSpec, Source, Target,
    Transform,
};
use khorus_bus::{CurveShape, Role, SignalFrame};

use crate::ir::{self, IrError};
use crate::levels::Signals;
use crate::scheduler::{Scheduler, Voice};
use crate::time::Q;
use crate::transport::{Transport, cps_from_bpm};

/// Parameter id the scores send the filter cutoff (Hz) on, until control publishes its table.
pub const PARAM_CUTOFF: u32 = 1;

/// Activity below which the scores (except drone) stay silent.
pub const ACTIVITY_FLOOR: &str = "0.05";

/// The arp score's chord progression (scale degrees), one chord a cycle.
const CHORDS: &str = "<[0,2,4] [3,5,7] [4,6,8] [2,4,6]>";
/// The arp score's arpeggio: each chord of [`CHORDS`] with its octave root, on the same
/// cycles.
const ARP_CHORDS: &str = "<[0 2 4 7]*4 [3 5 7 10]*4 [4 6 8 11]*4 [2 4 6 9]*4>";

/// The scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Slow pads, sparse melody, soft bass.
    Ambient,
    /// Euclidean kicks, snares, csw clicks.
    Percussive,
    /// Arpeggiated chord tones gated by network transmit.
    Arp,
    /// Sustained root and fifth, always sounding.
    Drone,
}

/// A score's resolved parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Key (note name).
    pub key: String,
    /// Scale name.
    pub scale: String,
    /// Tempo.
    pub bpm: Q,
    /// Density 0..1 (exact, so expressions built from it stay exact).
    pub density: Q,
}

impl Score {
    /// All scores.
    pub const ALL: [Score; 4] = [Score::Ambient, Score::Percussive, Score::Arp, Score::Drone];

    /// By name.
    pub fn from_name(s: &str) -> Option<Score> {
        Some(match s {
            "ambient" => Score::Ambient,
            "percussive" => Score::Percussive,
            "arp" => Score::Arp,
            "drone" => Score::Drone,
            _ => return None,
        })
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Score::Ambient => "ambient",
            Score::Percussive => "percussive",
            Score::Arp => "arp",
            Score::Drone => "drone",
        }
    }

    /// The defaults khor used for this preset.
    pub fn defaults(self) -> Params {
        let (key, scale, bpm) = match self {
            Score::Ambient => ("a3", "pentatonic_minor", 72),
            Score::Percussive => ("d3", "dorian", 112),
            Score::Arp => ("c3", "minor", 124),
            Score::Drone => ("e2", "phrygian", 60),
        };
        Params {
            key: key.into(),
            scale: scale.into(),
            bpm: Q::int(bpm),
            density: Q::new(1, 2).unwrap_or(Q::ZERO),
        }
    }

    /// Defaults overridden by `p`, validated.
    pub fn params(self, p: &ScoreParams) -> Result<Params, IrError> {
        let mut out = self.defaults();
        let bad = |field: &str, m: String| IrError {
            field: field.into(),
            message: m,
        };
        if let Some(k) = &p.key {
            out.key = k.clone();
        }
        if let Some(s) = &p.scale {
            out.scale = s.clone();
        }
        crate::notes::Scale::new(&out.key, &out.scale).map_err(|e| bad("params", e.to_string()))?;
        if let Some(b) = p.bpm {
            out.bpm = Q::from_f64(b).map_err(|e| bad("params.bpm", e.to_string()))?;
            cps_from_bpm(out.bpm, 4).map_err(|e| bad("params.bpm", e.to_string()))?;
        }
        if let Some(d) = p.density {
            if !(0.0..=1.0).contains(&d) {
                return Err(bad("params.density", format!("{d} is outside 0..=1")));
            }
            // Thousandths: plenty for a density and keeps the expressions' numbers small.
            out.density = Q::new((d * 1000.0).round() as i64, 1000)
                .map_err(|e| bad("params.density", e.to_string()))?;
        }
        Ok(out)
    }

    /// The score's slots (`score/<voice>`) as bus IR.
    pub fn specs(self, p: &Params) -> Vec<(String, SlotSpec)> {
        let d = decimal(p.density);
        let scale = Transform::Scale {
            key: p.key.clone(),
            scale: p.scale.clone(),
        };
        let floor = Transform::Gate(format!("activity > {ACTIVITY_FLOOR}"));
        let notes = |role: Role| Target::Notes {
            node: 0,
            role,
            channel: None,
        };
        let vel = |e: &str| ControlSpec {
            param: ControlParam::Velocity,
            value: ControlValue::Expr(e.into()),
        };
        let legato = |v: &str| ControlSpec {
            param: ControlParam::Legato,
            value: ControlValue::Mini(v.into()),
        };
        let mini = |s: &str| Source::Mini(s.into());
        let spec = |source, transforms, controls, target| SlotSpec {
            source,
            transforms,
            controls,
            target,
            quantum: None,
        };
        let cutoff = spec(
            Source::Expr {
                expr: "range(io, 80, 9000)".into(),
                per_cycle: 8,
            },
            vec![],
            vec![],
            Target::Curve {
                node: 0,
                param: PARAM_CUTOFF,
                shape: CurveShape::Linear,
            },
        );
        // retx: chromatic stabs deliberately off the scale (semitones above the key's root).
        let glitch = spec(
            mini("[1 6 11 8]"),
            vec![
                Transform::Add(format!(
                    "{}",
                    crate::notes::note_name(&p.key).unwrap_or(48) + 12
                )),
                Transform::Gate("retx > 0.08".into()),
                Transform::DegradeBy("1 - retx".into()),
                floor.clone(),
            ],
            vec![vel("range(retx, 0.5, 1)"), legato("0.2")],
            notes(Role::Percussion),
        );
        // irq: very short hats, high up, thinner as irq falls.
        let hats = spec(
            mini("hh*16"),
            vec![
                Transform::Add("36".into()),
                Transform::DegradeBy("1 - irq".into()),
                floor.clone(),
            ],
            vec![vel("range(irq, 0.15, 0.45)"), legato("0.05")],
            notes(Role::Percussion),
        );
        let mut out: Vec<(&str, SlotSpec)> = match self {
            Score::Ambient => vec![
                (
                    "pad",
                    spec(
                        mini("<[0,2,4] [3,5,7] [4,6,8] [2,4,6]>"),
                        vec![scale.clone(), Transform::Slow("2".into()), floor.clone()],
                        vec![vel("range(exec, 0.25, 0.6)")],
                        notes(Role::Chords),
                    ),
                ),
                (
                    "melody",
                    spec(
                        mini("[7 ~ 9 11] [14 ~ 11 ~] <[9 7] [12 11]> ~"),
                        vec![
                            scale.clone(),
                            Transform::Gate("rx > 0.02".into()),
                            Transform::DegradeBy(format!("1 - clamp(exec + {d}, 0, 1)")),
                            floor.clone(),
                        ],
                        vec![vel("range(rx, 0.3, 0.7)")],
                        notes(Role::Melody),
                    ),
                ),
                (
                    "bass",
                    spec(
                        mini("<0 -3 -2 -4>"),
                        vec![scale.clone(), Transform::Add("-12".into()), floor.clone()],
                        vec![vel("0.6")],
                        notes(Role::Bass),
                    ),
                ),
                ("glitch", glitch),
                ("hats", hats),
                ("cutoff", cutoff),
            ],
            Score::Percussive => vec![
                (
                    "kick",
                    spec(
                        mini("bd(<3 5>,8,<0 2>)"),
                        vec![floor.clone()],
                        vec![vel("range(exec, 0.7, 1)")],
                        notes(Role::Percussion),
                    ),
                ),
                (
                    "snare",
                    spec(
                        mini("~ sd ~ sd"),
                        vec![
                            Transform::Every {
                                n: 4,
                                then: Simple::Ply("2".into()),
                            },
                            floor.clone(),
                        ],
                        vec![vel("0.8")],
                        notes(Role::Percussion),
                    ),
                ),
                (
                    "clicks",
                    spec(
                        mini("rim*16"),
                        vec![
                            Transform::DegradeBy(format!("1 - csw * {d} * 2")),
                            floor.clone(),
                        ],
                        vec![vel("range(csw, 0.2, 0.6)"), legato("0.1")],
                        notes(Role::Percussion),
                    ),
                ),
                (
                    "bass",
                    spec(
                        mini("0(3,8) <2 4>(2,8,4)"),
                        vec![
                            scale.clone(),
                            Transform::Add("-12".into()),
                            Transform::DegradeBy("1 - clamp(exec * 2 + 0.3, 0, 1)".into()),
                            floor.clone(),
                        ],
                        vec![vel("0.7"), legato("0.5")],
                        notes(Role::Bass),
                    ),
                ),
                ("glitch", glitch),
                ("hats", hats),
                ("cutoff", cutoff),
            ],
            Score::Arp => vec![
                (
                    "arp",
                    spec(
                        // Each chord's tones and its octave root, four times over the
                        // cycle the chord (and the bass) sounds: the harmonic rhythm of the
                        // chords part, one chord a cycle.
                        mini(ARP_CHORDS),
                        vec![
                            scale.clone(),
                            Transform::Every {
                                n: 4,
                                then: Simple::Rev,
                            },
                            Transform::DegradeBy(format!("1 - clamp(tx * 2 + {d} - 0.3, 0, 1)")),
                            floor.clone(),
                        ],
                        vec![vel("range(exec, 0.45, 0.95)"), legato("0.7")],
                        notes(Role::Melody),
                    ),
                ),
                (
                    "chords",
                    spec(
                        mini(CHORDS),
                        vec![scale.clone(), floor.clone()],
                        vec![vel("0.35"), legato("0.9")],
                        notes(Role::Chords),
                    ),
                ),
                (
                    "bass",
                    spec(
                        mini("<0 3 4 2>"),
                        vec![scale.clone(), Transform::Add("-12".into()), floor.clone()],
                        vec![vel("0.65")],
                        notes(Role::Bass),
                    ),
                ),
                ("glitch", glitch),
                ("hats", hats),
                ("cutoff", cutoff),
            ],
            Score::Drone => vec![
                // No activity floor: the drone always sounds; activity only colours it.
                (
                    "root",
                    spec(
                        mini("[0,4]"),
                        vec![scale.clone(), Transform::Slow("4".into())],
                        vec![vel("range(mem, 0.4, 0.8)")],
                        notes(Role::Bass),
                    ),
                ),
                (
                    "pad",
                    spec(
                        mini("<[0,2,4] [0,3,5] [-1,2,4]>"),
                        vec![
                            scale.clone(),
                            Transform::Add("12".into()),
                            Transform::Slow("2".into()),
                        ],
                        vec![vel("range(exec, 0.2, 0.5)")],
                        notes(Role::Chords),
                    ),
                ),
                ("glitch", glitch),
                ("cutoff", cutoff),
            ],
        };
        out.drain(..)
            .map(|(n, s)| (format!("score/{n}"), s))
            .collect()
    }

    /// The score's compiled voices.
    pub fn voices(self, p: &Params) -> Result<Vec<(String, Voice)>, IrError> {
        self.specs(p)
            .into_iter()
            .map(|(n, s)| ir::compile(&s).map(|(v, _)| (n, v)))
            .collect()
    }
}

/// An exact decimal rendering of a density in thousandths (for expression text).
fn decimal(q: Q) -> String {
    let thousandths = (q * Q::int(1000)).map(|v| v.floor()).unwrap_or(0);
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

/// Plays `score` over a recorded trace, exactly as the live stage would if the frames
/// arrived at their recorded times: cycle 0 at the first frame, the scheduler advanced at
/// every frame. Same trace + same score ⇒ the same notes, byte for byte.
pub fn replay(
    frames: &[SignalFrame],
    score: Score,
    params: &Params,
    lookahead_ns: u64,
) -> Result<Vec<khorus_bus::NoteEvent>, ReplayError> {
    let Some(first) = frames.first() else {
        return Ok(Vec::new());
    };
    let transport =
        Transport::new(params.bpm, 4, first.t_ns).map_err(|e| ReplayError::Score(e.to_string()))?;
    let mut sched = Scheduler::new(transport, lookahead_ns);
    for (name, voice) in score
        .voices(params)
        .map_err(|e| ReplayError::Score(e.to_string()))?
    {
        sched.set_slot(&name, Some(voice), Q::ONE)?;
    }
    let mut signals = Signals::default();
    let mut notes = Vec::new();
    for f in frames {
        signals.update(f);
        let batch = sched.advance(f.t_ns, &signals)?;
        if let Some((slot, e)) = batch.errors.first() {
            return Err(ReplayError::Slot(slot.clone(), e.clone()));
        }
        notes.extend(batch.notes);
    }
    Ok(notes)
}

/// Why a replay failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    /// The score did not compile.
    #[error("score: {0}")]
    Score(String),
    /// Time arithmetic failed.
    #[error(transparent)]
    Time(#[from] crate::time::TimeError),
    /// A slot's query failed.
    #[error("slot {0}: {1}")]
    Slot(String, crate::time::TimeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_score_compiles_with_every_scale() {
        for score in Score::ALL {
            for (scale, _) in crate::notes::SCALES {
                let p = score
                    .params(&ScoreParams {
                        scale: Some(scale.to_string()),
                        ..Default::default()
                    })
                    .unwrap();
                let voices = score
                    .voices(&p)
                    .unwrap_or_else(|e| panic!("{}: {e}", score.name()));
                assert!(voices.len() >= 4);
            }
        }
    }

    #[test]
    fn bad_params_are_refused() {
        let bad = ScoreParams {
            density: Some(2.0),
            ..Default::default()
        };
        assert!(Score::Arp.params(&bad).is_err());
        let bad = ScoreParams {
            key: Some("h".into()),
            ..Default::default()
        };
        assert!(Score::Arp.params(&bad).is_err());
    }

    #[test]
    fn the_arp_plays_the_chord_that_is_sounding() {
        let mut busy = SignalFrame::default();
        for i in 0..khorus_bus::signals::SIGNAL_COUNT {
            busy.set(khorus_bus::SignalId(i as u8), 1000.0, 1.0);
        }
        // 124 bpm, 4 beats a cycle: a cycle is ~1.94 s; 20 s is over ten cycles.
        let frames: Vec<_> = (0..400u64)
            .map(|i| {
                let mut f = busy;
                f.t_ns = 1_000_000_000 + i * 50_000_000;
                f
            })
            .collect();
        let notes = replay(&frames, Score::Arp, &Score::Arp.defaults(), 50_000_000).unwrap();
        let chords: Vec<_> = notes.iter().filter(|n| n.role() == Role::Chords).collect();
        let arp: Vec<_> = notes.iter().filter(|n| n.role() == Role::Melody).collect();
        assert!(
            chords.len() >= 30 && arp.len() >= 100,
            "{} {}",
            chords.len(),
            arp.len()
        );
        let mut checked_chords = std::collections::BTreeSet::new();
        for a in &arp {
            // The chord sounding: the latest chord onset at or before the arp note.
            let onset = chords
                .iter()
                .map(|c| c.t_ns)
                .filter(|&t| t <= a.t_ns)
                .max()
                .expect("a chord sounds from the first cycle");
            let tones: Vec<i32> = chords
                .iter()
                .filter(|c| c.t_ns == onset)
                .map(|c| c.note as i32 % 12)
                .collect();
            assert!(
                tones.contains(&(a.note as i32 % 12)),
                "arp note {} at {} is not in the chord {tones:?} sounding since {onset}",
                a.note,
                a.t_ns
            );
            checked_chords.insert(onset);
        }
        assert!(checked_chords.len() >= 8, "{checked_chords:?}");
    }

    #[test]
    fn silent_below_the_floor_except_drone() {
        let mut quiet = SignalFrame::default();
        quiet.set(khorus_bus::SignalId::EXEC, 0.0, 0.01);
        let frames: Vec<_> = (0..200u64)
            .map(|i| {
                let mut f = quiet;
                f.t_ns = 1_000_000_000 + i * 50_000_000;
                f
            })
            .collect();
        for score in Score::ALL {
            let notes = replay(&frames, score, &score.defaults(), 50_000_000).unwrap();
            assert_eq!(notes.is_empty(), score != Score::Drone, "{}", score.name());
        }
    }
}
