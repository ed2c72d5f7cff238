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

/// General MIDI drum notes for the usual Tidal sound names; other words are a plain hit.
pub fn drum_note(word: &str) -> Option<f64> {
    Some(match word {
        "bd" | "kick" => 36.0,
        "sd" | "sn" | "snare" => 38.0,
        "rim" => 37.0,
        "cp" | "clap" => 39.0,
        "hh" | "ch" => 42.0,
        "oh" => 46.0,
        "lt" => 45.0,
        "mt" => 47.0,
        "ht" => 50.0,
        "cr" | "crash" => 49.0,
        "rd" | "ride" => 51.0,
        "cb" => 56.0,
        "x" | "hit" => 60.0,
        _ => return None,
    })
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
