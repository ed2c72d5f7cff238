//! Built-in instruments for the musical roles, so kernel scores sound good with no synth code:
//! pad and lead for melody, bass, chord pad, and a percussion kit (kick, click, hi-hat,
//! glitch). Each is an ordinary [`SynthDef`], written as JSON like a user's would be.

use crate::ir::SynthDef;

/// (name, definition JSON)
const DEFS: &[(&str, &str)] = &[
    (
        "pad",
        r#"{"name":"pad",
      "controls":[{"name":"cutoff","default":2400,"min":80,"max":12000},{"name":"resonance","default":0.2,"min":0,"max":1}],
      "nodes":[
        {"id":"detune","type":"mul","inputs":[{"control":"freq"},1.006]},
        {"id":"o1","type":"osc","wave":"saw","freq":{"control":"freq"}},
        {"id":"o2","type":"osc","wave":"saw","freq":{"node":"detune"}},
        {"id":"mix","type":"add","inputs":[{"node":"o1"},{"node":"o2"}]},
        {"id":"flt","type":"filter","mode":"lowpass","input":{"node":"mix"},"cutoff":{"control":"cutoff"},"resonance":{"control":"resonance"}},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.08,"decay":0.4,"sustain":0.7,"release":0.6},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.18]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "lead",
        r#"{"name":"lead",
      "controls":[{"name":"cutoff","default":3000,"min":80,"max":12000}],
      "nodes":[
        {"id":"o","type":"osc","wave":"pulse","freq":{"control":"freq"},"width":0.35},
        {"id":"flt","type":"filter","mode":"lowpass","input":{"node":"o"},"cutoff":{"control":"cutoff"},"resonance":0.3},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.005,"decay":0.2,"sustain":0.5,"release":0.15},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.25]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "bass",
        r#"{"name":"bass",
      "controls":[{"name":"cutoff","default":600,"min":40,"max":6000}],
      "nodes":[
        {"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.004,"decay":0.18,"sustain":0.4,"release":0.08},
        {"id":"sweep","type":"mul","inputs":[{"node":"env"},{"control":"cutoff"},2]},
        {"id":"cut","type":"add","inputs":[{"node":"sweep"},{"control":"cutoff"}]},
        {"id":"flt","type":"filter","mode":"lowpass","input":{"node":"o"},"cutoff":{"node":"cut"},"resonance":0.55},
        {"id":"sat","type":"tanh","input":{"node":"flt"},"drive":1.5},
        {"id":"out","type":"mul","inputs":[{"node":"sat"},{"node":"env"},{"control":"vel"},0.35]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "chords",
        r#"{"name":"chords",
      "controls":[{"name":"cutoff","default":1800,"min":80,"max":12000}],
      "nodes":[
        {"id":"t","type":"osc","wave":"triangle","freq":{"control":"freq"}},
        {"id":"s","type":"osc","wave":"saw","freq":{"control":"freq"}},
        {"id":"s2","type":"mul","inputs":[{"node":"s"},0.3]},
        {"id":"mix","type":"add","inputs":[{"node":"t"},{"node":"s2"}]},
        {"id":"flt","type":"filter","mode":"lowpass","input":{"node":"mix"},"cutoff":{"control":"cutoff"}},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.15,"decay":0.5,"sustain":0.6,"release":0.9},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.15]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "kick",
        r#"{"name":"kick",
      "nodes":[
        {"id":"penv","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.06,"sustain":0,"release":0.05},
        {"id":"bend","type":"mul","inputs":[{"node":"penv"},180]},
        {"id":"f","type":"add","inputs":[{"node":"bend"},48]},
        {"id":"o","type":"osc","wave":"sine","freq":{"node":"f"}},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.001,"decay":0.35,"sustain":0,"release":0.1},
        {"id":"out","type":"mul","inputs":[{"node":"o"},{"node":"env"},{"control":"vel"},0.8]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "click",
        r#"{"name":"click",
      "nodes":[
        {"id":"n","type":"noise"},
        {"id":"flt","type":"filter","mode":"bandpass","input":{"node":"n"},"cutoff":2500,"resonance":0.5},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.02,"sustain":0,"release":0.02},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.6]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "hat",
        r#"{"name":"hat",
      "nodes":[
        {"id":"n","type":"noise"},
        {"id":"flt","type":"filter","mode":"highpass","input":{"node":"n"},"cutoff":7500,"resonance":0.2},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.03,"sustain":0,"release":0.03},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.3]}],
      "output":{"node":"out"}}"#,
    ),
    (
        "glitch",
        r#"{"name":"glitch",
      "nodes":[
        {"id":"o","type":"osc","wave":"pulse","freq":{"control":"freq"},"width":0.1},
        {"id":"n","type":"noise","pink":true},
        {"id":"mix","type":"add","inputs":[{"node":"o"},{"node":"n"}]},
        {"id":"flt","type":"filter","mode":"bandpass","input":{"node":"mix"},"cutoff":{"control":"freq"},"resonance":0.8},
        {"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.0005,"decay":0.06,"sustain":0,"release":0.04},
        {"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.4]}],
      "output":{"node":"out"}}"#,
    ),
];

/// How the built-in patch mixes each instrument: (name, send to the delay, send to the
/// reverb, pan) — the built-in patch is an ordinary graph made from this
/// ([`crate::graph::GraphSpec::builtin_patch`]).
pub const MIX: &[(&str, f32, f32, f32)] = &[
    ("pad", 0.15, 0.45, 0.0),
    ("lead", 0.25, 0.25, 0.15),
    ("bass", 0.0, 0.08, 0.0),
    ("chords", 0.15, 0.45, 0.0),
    ("kick", 0.0, 0.08, 0.0),
    ("click", 0.3, 0.2, -0.3),
    ("hat", 0.0, 0.08, 0.35),
    ("glitch", 0.3, 0.2, 0.0),
];

/// Instrument indices of the built-in patch (the order of [`names`]): a note for node 0
/// picks one of these by its role.
pub mod patch {
    /// Pad (melody).
    pub const PAD: usize = 0;
    /// Lead.
    pub const LEAD: usize = 1;
    /// Bass.
    pub const BASS: usize = 2;
    /// Chords.
    pub const CHORDS: usize = 3;
    /// Kick.
    pub const KICK: usize = 4;
    /// Click.
    pub const CLICK: usize = 5;
    /// Hi-hat.
    pub const HAT: usize = 6;
    /// Glitch.
    pub const GLITCH: usize = 7;
}

/// Names of the built-in instruments.
pub fn names() -> impl Iterator<Item = &'static str> {
    DEFS.iter().map(|(n, _)| *n)
}

/// A built-in definition by name.
pub fn def(name: &str) -> Option<SynthDef> {
    let (_, json) = DEFS.iter().find(|(n, _)| *n == name)?;
    Some(serde_json::from_str(json).expect("built-in definitions are valid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_and_the_indices_follow_the_definitions() {
        let names: Vec<&str> = names().collect();
        let mixed: Vec<&str> = MIX.iter().map(|m| m.0).collect();
        assert_eq!(names, mixed);
        assert_eq!(names[patch::BASS], "bass");
        assert_eq!(names[patch::GLITCH], "glitch");
    }

    #[test]
    fn every_builtin_compiles() {
        for name in names() {
            def(name)
                .unwrap()
                .compile()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
