//! Chord names in note patterns, as Tidal writes them: `c'maj`, `e4'min7'ii`, `0'dom7'5`,
//! `c'major7'o`, `c'min9'd2`. A chord is a stack: its tones sound together.
//!
//! The atom is `root'name['modifier]*`. The root is a note name (`c`, `e4`, `cs3`), a number,
//! or nothing (`'maj` is rooted at 0, Tidal's relative chord). Modifiers apply left to right,
//! as Tidal documents them:
//! - a number `n`: how many tones. Fewer drops the last ones; more works through the list
//!   again an octave up (`c'min9'8` = 0 3 7 10 14 12 15 19).
//! - `i`, `ii`, … or `iN`: inversions; each raises the lowest tone an octave.
//! - `o`: open voicing; the 1st and 3rd tones drop an octave (chords of 3 or more tones).
//! - `dN`: drop N; the Nth highest tone drops an octave (`d1` is the top tone).
//!
//! Octaves follow this codebase, not Tidal: `c` is `c4`, MIDI 60 (Tidal calls it `c5`, note
//! 0, which SuperDirt also plays as MIDI 60), so `c'maj` is 60 64 67 in both.

/// Tidal's chord table (`chordTable`): every accepted name, then semitones above the root in
/// Tidal's order (the order matters for the tone-count and open modifiers). Tidal's own
/// quirks are kept so patterns sound as they do in Tidal: `dom9`, `dom11` and `dom13` have
/// no seventh, and `nineSharp5` / `minor9sharp5` are `[0,1,13]` / `[0,1,14]`.
pub const CHORDS: &[(&[&str], &[i32])] = &[
    // Major chords.
    (&["major", "maj", "M"], &[0, 4, 7]),
    (&["aug", "plus", "sharp5"], &[0, 4, 8]),
    (&["six", "6"], &[0, 4, 7, 9]),
    (&["sixNine", "six9", "sixby9", "6by9"], &[0, 4, 7, 9, 14]),
    (&["major7", "maj7"], &[0, 4, 7, 11]),
    (&["major9", "maj9"], &[0, 4, 7, 11, 14]),
    (&["add9"], &[0, 4, 7, 14]),
    (&["major11", "maj11"], &[0, 4, 7, 11, 14, 17]),
    (&["add11"], &[0, 4, 7, 17]),
    (&["major13", "maj13"], &[0, 4, 7, 11, 14, 21]),
    (&["add13"], &[0, 4, 7, 21]),
    // Dominant chords.
    (&["dom7"], &[0, 4, 7, 10]),
    (&["dom9"], &[0, 4, 7, 14]),
    (&["dom11"], &[0, 4, 7, 17]),
    (&["dom13"], &[0, 4, 7, 21]),
    (&["sevenFlat5", "7f5"], &[0, 4, 6, 10]),
    (&["sevenSharp5", "7s5"], &[0, 4, 8, 10]),
    (&["sevenFlat9", "7f9"], &[0, 4, 7, 10, 13]),
    (&["nine"], &[0, 4, 7, 10, 14]),
    (&["eleven", "11"], &[0, 4, 7, 10, 14, 17]),
    (&["thirteen", "13"], &[0, 4, 7, 10, 14, 17, 21]),
    // Minor chords.
    (&["minor", "min", "m"], &[0, 3, 7]),
    (&["diminished", "dim"], &[0, 3, 6]),
    (&["minorSharp5", "msharp5", "mS5"], &[0, 3, 8]),
    (&["minor6", "min6", "m6"], &[0, 3, 7, 9]),
    (
        &[
            "minorSixNine",
            "minor69",
            "min69",
            "minSixNine",
            "m69",
            "mSixNine",
            "m6by9",
        ],
        &[0, 3, 9, 7, 14],
    ),
    (
        &["minor7flat5", "min7flat5", "m7flat5", "m7f5"],
        &[0, 3, 6, 10],
    ),
    (&["minorMajor7", "minMaj7", "mmaj7"], &[0, 3, 7, 11]),
    (&["diminished7", "dim7"], &[0, 3, 6, 9]),
    (&["minor7", "min7", "m7"], &[0, 3, 7, 10]),
    (
        &["minor7sharp5", "min7sharp5", "m7sharp5", "m7s5"],
        &[0, 3, 8, 10],
    ),
    (
        &["minor7flat9", "min7flat9", "m7flat9", "m7f9"],
        &[0, 3, 7, 10, 13],
    ),
    (
        &["minor7sharp9", "min7sharp9", "m7sharp9", "m7s9"],
        &[0, 3, 7, 10, 14],
    ),
    (&["minor9", "min9", "m9"], &[0, 3, 7, 10, 14]),
    (&["minor11", "min11", "m11"], &[0, 3, 7, 10, 14, 17]),
    (&["minor13", "min13", "m13"], &[0, 3, 7, 10, 14, 17, 21]),
    // Other chords.
    (&["one", "1"], &[0]),
    (&["five", "5"], &[0, 7]),
    (&["sus2"], &[0, 2, 7]),
    (&["sus4"], &[0, 5, 7]),
    (&["sevenSus2", "7sus2"], &[0, 2, 7, 10]),
    (&["sevenSus4", "7sus4"], &[0, 5, 7, 10]),
    (&["nineSus4", "ninesus4", "9sus4"], &[0, 5, 7, 10, 14]),
    // Questionable chords, as Tidal has them.
    (&["sevenFlat10", "7f10"], &[0, 4, 7, 10, 15]),
    (&["nineSharp5", "9sharp5", "9s5"], &[0, 1, 13]),
    (
        &[
            "minor9sharp5",
            "minor9s5",
            "min9sharp5",
            "min9s5",
            "m9sharp5",
            "m9s5",
        ],
        &[0, 1, 14],
    ),
    (&["sevenSharp5flat9", "7s5f9"], &[0, 4, 8, 10, 13]),
    (&["minor7sharp5flat9", "m7sharp5flat9"], &[0, 3, 8, 10, 13]),
    (&["elevenSharp", "11s"], &[0, 4, 7, 10, 14, 18]),
    (
        &["minor11sharp", "m11sharp", "m11s"],
        &[0, 3, 7, 10, 14, 18],
    ),
];

/// Most tones a chord may have, and most inversions, so `c'maj'99999` cannot make work.
pub const MAX_TONES: usize = 64;

/// The semitones of a chord name (case matters: `M` is major, `m` minor).
pub fn intervals(name: &str) -> Option<&'static [i32]> {
    CHORDS
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, tones)| *tones)
}

/// Why a chord atom was refused, at a byte offset within the atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChordError {
    /// Byte offset within the atom.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

fn err(at: usize, message: impl Into<String>) -> ChordError {
    ChordError {
        at,
        message: message.into(),
    }
}

/// A chord atom taken apart: the root as written and the tones in semitones above it, after
/// the modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chord<'a> {
    /// The root as written (empty for a relative chord such as `'maj`).
    pub root: &'a str,
    /// Semitones above the root, one per tone (negative after `o` or `d`).
    pub tones: Vec<i32>,
}

/// Parses `root'name['modifier]*`. `None` if the atom has no `'`.
pub fn parse(atom: &str) -> Option<Result<Chord<'_>, ChordError>> {
    let (root, rest) = atom.split_once('\'')?;
    Some(parse_parts(root, rest))
}

fn parse_parts<'a>(root: &'a str, rest: &str) -> Result<Chord<'a>, ChordError> {
    let mut at = root.len() + 1;
    let mut parts = rest.split('\'');
    let name = parts.next().unwrap_or("");
    let mut tones = match intervals(name) {
        Some(t) => t.to_vec(),
        None => {
            let hint = CHORDS
                .iter()
                .flat_map(|(names, _)| names.iter())
                .find(|n| n.eq_ignore_ascii_case(name))
                .map(|n| format!("; did you mean {n:?}?"))
                .unwrap_or_else(|| " (Tidal's chordList: maj, min, dom7, min7, sus4, …)".into());
            return Err(err(at, format!("unknown chord name {name:?}{hint}")));
        }
    };
    at += name.len() + 1;
    for m in parts {
        tones = modify(tones, m).map_err(|message| err(at, message))?;
        at += m.len() + 1;
    }
    Ok(Chord { root, tones })
}

/// A whole number of at most [`MAX_TONES`].
fn small(digits: &str, what: &str) -> Result<usize, String> {
    match digits.parse::<usize>() {
        Ok(n) if (1..=MAX_TONES).contains(&n) => Ok(n),
        _ => Err(format!(
            "{what} must be a whole number from 1 to {MAX_TONES}"
        )),
    }
}

fn modify(mut tones: Vec<i32>, m: &str) -> Result<Vec<i32>, String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if m.is_empty() {
        return Err("empty chord modifier".into());
    } else if digits(m) {
        let n = small(m, "the number of tones")?;
        let base = tones.clone();
        tones = (0..n)
            .map(|k| base[k % base.len()] + 12 * (k / base.len()) as i32)
            .collect();
    } else if m.bytes().all(|b| b == b'i') || m.strip_prefix('i').is_some_and(digits) {
        let n = if m.len() > 1 && m.as_bytes()[1] != b'i' {
            small(&m[1..], "an inversion")?
        } else {
            small(&m.len().to_string(), "an inversion")?
        };
        for _ in 0..n {
            let (lowest, _) = tones
                .iter()
                .enumerate()
                .min_by_key(|&(_, t)| *t)
                .ok_or("an empty chord cannot be inverted")?;
            let t = tones.remove(lowest);
            tones.push(t + 12);
        }
    } else if m == "o" {
        if tones.len() > 2 {
            tones[0] -= 12;
            tones[2] -= 12;
        }
    } else if let Some(n) = m.strip_prefix('d').filter(|n| digits(n)) {
        let n = small(n, "a drop")?;
        if n > tones.len() {
            return Err(format!(
                "drop {n} needs at least {n} tones; this chord has {}",
                tones.len()
            ));
        }
        let mut order: Vec<usize> = (0..tones.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tones[i]));
        let t = tones.remove(order[n - 1]);
        tones.insert(0, t - 12);
    } else {
        return Err(format!(
            "unknown chord modifier {m:?} (a number of tones, 'i'/'ii'/'iN' to invert, 'o' \
             open, 'dN' drop)"
        ));
    }
    Ok(tones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones(atom: &str) -> Vec<i32> {
        parse(atom).unwrap().unwrap().tones
    }

    fn error(atom: &str) -> ChordError {
        parse(atom).unwrap().unwrap_err()
    }

    #[test]
    fn names_and_aliases_from_tidals_table() {
        assert_eq!(tones("c'maj"), [0, 4, 7]);
        assert_eq!(tones("c'M"), [0, 4, 7]);
        assert_eq!(tones("c'm"), [0, 3, 7]);
        assert_eq!(tones("c'minor7"), [0, 3, 7, 10]);
        assert_eq!(tones("c'dom7"), [0, 4, 7, 10]);
        assert_eq!(tones("c'min9"), [0, 3, 7, 10, 14]);
        assert_eq!(tones("c'7sus4"), [0, 5, 7, 10]);
        assert_eq!(tones("c'6by9"), [0, 4, 7, 9, 14]);
        assert_eq!(
            tones("c'5"),
            [0, 7],
            "a number right after the root is a name"
        );
        assert_eq!(tones("c'1"), [0]);
        for (names, t) in CHORDS {
            for n in *names {
                assert_eq!(intervals(n), Some(*t), "{n} is listed twice");
            }
        }
        let c = parse("e4'min7").unwrap().unwrap();
        assert_eq!(c.root, "e4");
        assert_eq!(parse("'maj").unwrap().unwrap().root, "");
        assert!(parse("bd").is_none());
    }

    #[test]
    fn tone_count_as_tidal_documents() {
        // Tidal's docs: c'min9 has [0,3,7,10,14]; 8 tones are [0,3,7,10,14,12,15,19].
        assert_eq!(tones("c'min9'8"), [0, 3, 7, 10, 14, 12, 15, 19]);
        assert_eq!(tones("c'min9'4"), [0, 3, 7, 10]);
        assert_eq!(tones("c'maj'5"), [0, 4, 7, 12, 16]);
        assert_eq!(tones("c'maj'7"), [0, 4, 7, 12, 16, 19, 24]);
    }

    #[test]
    fn inversions_raise_the_lowest_tones() {
        assert_eq!(tones("c'maj'i"), [4, 7, 12]);
        assert_eq!(tones("c'maj'ii"), [7, 12, 16]);
        assert_eq!(tones("c'maj'i2"), [7, 12, 16]);
        assert_eq!(tones("c'maj'iii"), [12, 16, 19]);
        assert_eq!(tones("c'major7'ii"), [7, 11, 12, 16]);
        // Modifiers apply in order: 6 tones, then the first inversion.
        assert_eq!(tones("c'maj'5'i"), [4, 7, 12, 16, 12]);
    }

    #[test]
    fn open_and_drop_voicings() {
        // Open: the 1st and 3rd tones an octave down.
        assert_eq!(tones("c'major7'o"), [-12, 4, -5, 11]);
        assert_eq!(tones("c'five'o"), [0, 7], "two tones stay as they are");
        // Drop N: the Nth highest tone an octave down.
        assert_eq!(tones("c'major7'd1"), [-1, 0, 4, 7]);
        assert_eq!(tones("c'major7'd2"), [-5, 0, 4, 11]);
        assert_eq!(tones("c'min9'd3"), [-5, 0, 3, 10, 14]);
    }

    #[test]
    fn errors_name_the_offending_part() {
        let e = error("c'mja");
        assert_eq!(e.at, 2);
        assert!(e.message.starts_with("unknown chord name \"mja\""), "{e:?}");
        assert!(error("c'Maj7").message.contains("did you mean \"maj7\""));
        let e = error("e4'min7'x");
        assert_eq!(e.at, 8);
        assert!(e.message.contains("unknown chord modifier \"x\""), "{e:?}");
        assert_eq!(error("c'maj'd4").at, 6);
        assert_eq!(error("c'maj'0").at, 6);
        assert!(
            error("c'maj'99999999999999999999")
                .message
                .contains("1 to 64")
        );
        assert!(error("c'maj'i65").message.contains("inversion"));
    }
}
