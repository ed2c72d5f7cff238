//! Notes and scales: note names with accidentals and octaves (`a2`, `c#4`, `eb3`), scale
//! degrees in a named scale and key, and the drum names percussion patterns use.

/// Octave assumed when a note name has none (`c` is `c4`, MIDI 60).
pub const DEFAULT_OCTAVE: i32 = 4;

/// Parses a note name to a MIDI number: letter `a`–`g`, any of `#`/`s` (sharp) or `b`/`f`
/// (flat), then an optional octave (`c4` = 60, `a4` = 69). `None` if it is not a note name.
pub fn note_name(s: &str) -> Option<i32> {
    let mut chars = s.chars().peekable();
    let base = match chars.next()?.to_ascii_lowercase() {
        'c' => 0,
        'd' => 2,
        'e' => 4,
        'f' => 5,
        'g' => 7,
        'a' => 9,
        'b' => 11,
        _ => return None,
    };
    let mut acc = 0;
    while let Some(&c) = chars.peek() {
        match c {
            '#' | 's' => acc += 1,
            'b' | 'f' => acc -= 1,
            _ => break,
        }
        chars.next();
    }
    let rest: String = chars.collect();
    let octave = if rest.is_empty() {
        DEFAULT_OCTAVE
    } else {
        let o: i32 = rest.parse().ok()?;
        if !(-1..=9).contains(&o) {
            return None;
        }
        o
    };
    let midi = (octave + 1) * 12 + base + acc;
    (0..=127).contains(&midi).then_some(midi)
}

/// The name of MIDI note `m` in the spelling [`note_name`] reads back, with sharps: 60 is
/// `c4`, 61 `c#4`, 0 `c-1`.
pub fn midi_name(m: i32) -> String {
    const NAMES: [&str; 12] = [
        "c", "c#", "d", "d#", "e", "f", "f#", "g", "g#", "a", "a#", "b",
    ];
    format!(
        "{}{}",
        NAMES[m.rem_euclid(12) as usize],
        m.div_euclid(12) - 1
    )
}

/// Scales by name, as semitone offsets from the key.
pub const SCALES: &[(&str, &[i32])] = &[
    ("major", &[0, 2, 4, 5, 7, 9, 11]),
    ("minor", &[0, 2, 3, 5, 7, 8, 10]),
    ("dorian", &[0, 2, 3, 5, 7, 9, 10]),
    ("phrygian", &[0, 1, 3, 5, 7, 8, 10]),
    ("lydian", &[0, 2, 4, 6, 7, 9, 11]),
    ("mixolydian", &[0, 2, 4, 5, 7, 9, 10]),
    ("pentatonic_minor", &[0, 3, 5, 7, 10]),
    ("pentatonic_major", &[0, 2, 4, 7, 9]),
    ("whole_tone", &[0, 2, 4, 6, 8, 10]),
    ("chromatic", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
];

/// A scale in a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// MIDI note of degree 0.
    pub root: i32,
    /// Semitone offsets of one octave.
    pub steps: &'static [i32],
}

/// Why a key or scale was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// The key is not a note name.
    #[error("unknown key {0:?} (a note name such as a, c#3, eb)")]
    Key(String),
    /// The scale is not in [`SCALES`].
    #[error("unknown scale {0:?} (known: {1})")]
    Scale(String, String),
}

impl Scale {
    /// `key` (a note name, e.g. `a` or `c3`) and a scale name (`-` or `_` separated, e.g.
    /// `pentatonic-minor`, `whole_tone`).
    pub fn new(key: &str, scale: &str) -> Result<Scale, ScaleError> {
        let root = note_name(key).ok_or_else(|| ScaleError::Key(key.to_string()))?;
        let name = scale.replace('-', "_").to_ascii_lowercase();
        let name = match name.as_str() {
            "pentatonic" => "pentatonic_minor",
            "wholetone" => "whole_tone",
            "ionian" => "major",
            "aeolian" => "minor",
            n => n,
        };
        let steps = SCALES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                let known: Vec<_> = SCALES.iter().map(|(n, _)| *n).collect();
                ScaleError::Scale(scale.to_string(), known.join(", "))
            })?;
        Ok(Scale { root, steps })
    }

    /// The MIDI note of scale degree `d` (0-based; negative goes down, wraps octaves).
    pub fn degree(&self, d: i64) -> f64 {
        let n = self.steps.len() as i64;
        let octave = d.div_euclid(n);
        let step = self.steps[d.rem_euclid(n) as usize] as i64;
        (self.root as i64 + octave * 12 + step) as f64
    }
}

/// General MIDI drum notes for the usual Tidal sound names, first the plain one, then the
/// variants a sample index picks.
pub const DRUMS: &[(&[&str], &[u8])] = &[
    // Bass Drum 1, Acoustic Bass Drum.
    (&["bd", "kick"], &[36, 35]),
    // Acoustic Snare, Electric Snare.
    (&["sd", "sn", "snare"], &[38, 40]),
    // Side Stick.
    (&["rim"], &[37]),
    // Hand Clap.
    (&["cp", "clap"], &[39]),
    // Closed Hi-Hat, Pedal Hi-Hat.
    (&["hh", "ch"], &[42, 44]),
    // Open Hi-Hat.
    (&["oh"], &[46]),
    // Low Tom, Low Floor Tom, High Floor Tom.
    (&["lt"], &[45, 41, 43]),
    // Low-Mid Tom, Hi-Mid Tom.
    (&["mt"], &[47, 48]),
    // High Tom, Hi-Mid Tom.
    (&["ht"], &[50, 48]),
    // Crash Cymbal 1, Crash Cymbal 2.
    (&["cr", "crash"], &[49, 57]),
    // Ride Cymbal 1, Ride Cymbal 2, Ride Bell.
    (&["rd", "ride"], &[51, 59, 53]),
    // Cowbell.
    (&["cb"], &[56]),
    // A plain hit: middle C.
    (&["x", "hit"], &[60]),
];

/// The General MIDI drum note for a sound name, with Tidal's sample index (`bd:3`): `bd` is
/// 36, and `name:n` picks variant `n` of the name's row in [`DRUMS`], wrapping around as
/// Tidal wraps around a sample folder (`bd:1` is 35, `bd:2` 36 again; `sn:1` is 40; `hh:1`
/// 44; `lt:1` 41, `lt:2` 43; a name with one variant ignores the index; an index that is not
/// a whole number counts as 0). Fields after the index are not the drum map's
/// ([`word_gain`]). `None` for other names, which play as a plain hit.
pub fn drum_note(word: &str) -> Option<f64> {
    let mut fields = word.split(':');
    let name = fields.next().unwrap_or(word);
    let index = fields
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let (_, notes) = DRUMS.iter().find(|(names, _)| names.contains(&name))?;
    let variant = (index % notes.len() as u64) as usize;
    Some(f64::from(notes[variant]))
}

/// A word's third field as a gain, as Strudel's `s()` reads it (`sd:4:0.5` plays at half the
/// velocity): a finite number of at least 0, else `None` (and the note keeps its velocity).
/// Later fields are kept in the word and read by nothing.
pub fn word_gain(word: &str) -> Option<f64> {
    let gain: f64 = word.split(':').nth(2)?.parse().ok()?;
    (gain.is_finite() && gain >= 0.0).then_some(gain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names() {
        assert_eq!(note_name("a4"), Some(69));
        assert_eq!(note_name("c4"), Some(60));
        assert_eq!(note_name("c"), Some(60));
        assert_eq!(note_name("a2"), Some(45));
        assert_eq!(note_name("c#4"), Some(61));
        assert_eq!(note_name("eb3"), Some(51));
        assert_eq!(note_name("bb"), Some(70));
        assert_eq!(note_name("cs2"), Some(37));
        assert_eq!(note_name("bd"), None);
        assert_eq!(note_name("x"), None);
        assert_eq!(note_name("c99"), None);
    }

    #[test]
    fn midi_names_read_back() {
        assert_eq!(midi_name(60), "c4");
        assert_eq!(midi_name(61), "c#4");
        assert_eq!(midi_name(0), "c-1");
        for m in 0..=127 {
            assert_eq!(note_name(&midi_name(m)), Some(m));
        }
    }

    #[test]
    fn drum_names_with_sample_indices() {
        assert_eq!(drum_note("bd"), Some(36.0));
        assert_eq!(drum_note("bd:0"), Some(36.0));
        assert_eq!(drum_note("bd:1"), Some(35.0));
        assert_eq!(drum_note("bd:2"), Some(36.0), "wraps like a sample folder");
        assert_eq!(drum_note("sn:1"), Some(40.0));
        assert_eq!(drum_note("hh:1"), Some(44.0));
        assert_eq!(drum_note("lt:2"), Some(43.0));
        assert_eq!(drum_note("cp:7"), Some(39.0));
        assert_eq!(drum_note("bd:99999999999999999999999"), Some(36.0));
        assert_eq!(drum_note("arpy:3"), None);
        // More fields: the first two pick the drum, the third is a gain.
        assert_eq!(drum_note("sd:1:0.5"), Some(40.0));
        assert_eq!(drum_note("bd:3:0.4:7:17"), Some(35.0));
        assert_eq!(drum_note("bd:x"), Some(36.0));
        assert_eq!(word_gain("sd:1:0.5"), Some(0.5));
        assert_eq!(word_gain("bd:3:0.4:7:17"), Some(0.4));
        assert_eq!(word_gain("bd:3"), None);
        assert_eq!(word_gain("bd:3:loud"), None);
        assert_eq!(word_gain("bd:3:-1"), None);
        assert_eq!(word_gain("bd:3:NaN"), None);
    }

    #[test]
    fn scale_degrees() {
        let s = Scale::new("a3", "pentatonic-minor").unwrap();
        let got: Vec<_> = (-1..6).map(|d| s.degree(d)).collect();
        assert_eq!(got, [55.0, 57.0, 60.0, 62.0, 64.0, 67.0, 69.0]);
        for (name, _) in SCALES {
            assert!(Scale::new("c", name).is_ok());
        }
        assert!(matches!(Scale::new("h", "major"), Err(ScaleError::Key(_))));
        assert!(matches!(
            Scale::new("c", "nope"),
            Err(ScaleError::Scale(..))
        ));
    }
}
