//! Offline rendering: the same engine, driven by a note list instead of the audio callback,
//! written to a WAV file. Deterministic: the same graph and notes give the same samples.

use std::path::Path;

use khorus_bus::NoteEvent;

use crate::engine::{Engine, Note};
use crate::wav::{self, FloatWavWriter, WavError};

/// The longest offline render, s (a day).
pub const MAX_SECONDS: f32 = 86_400.0;

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

/// Frames [`render_to_wav`] renders at a time: its memory stays the same whatever the length.
pub const RENDER_BLOCK: usize = 4096;

/// Frames in `seconds` at `rate` (what [`render`] and [`render_to_wav`] produce).
pub fn frames_in(seconds: f32, rate: f32) -> u64 {
    (seconds.max(0.0) * rate) as u64
}

fn schedule_all(engine: &mut Engine, notes: &[NoteEvent], origin_ns: u64) {
    for n in notes {
        let note = note_at(n, origin_ns, engine.rate());
        engine.schedule(note);
    }
}

/// Renders `seconds` of `notes` (times relative to `origin_ns`) through `engine`, in memory
/// (for tests and short takes; [`render_to_wav`] streams to a file).
pub fn render(
    engine: &mut Engine,
    notes: &[NoteEvent],
    origin_ns: u64,
    seconds: f32,
) -> (Vec<f32>, Vec<f32>) {
    schedule_all(engine, notes, origin_ns);
    let frames = frames_in(seconds, engine.rate()) as usize;
    let mut left = vec![0.0; frames];
    let mut right = vec![0.0; frames];
    engine.render(&mut left, &mut right);
    (left, right)
}

/// Frames in `seconds` at `rate`, if a stereo WAV file holds them.
pub fn wav_frames(seconds: f32, rate: f32) -> Result<u64, WavError> {
    let frames = frames_in(seconds, rate);
    if frames > wav::max_frames(2) {
        return Err(WavError::TooLong {
            frames,
            channels: 2,
        });
    }
    Ok(frames)
}

/// Renders `seconds` of `notes` (times relative to `origin_ns`) through `engine` into a
/// 32-bit float stereo WAV file at the engine's rate, [`RENDER_BLOCK`] frames at a time, so
/// a day-long render needs no more memory than a second. The samples equal [`render`]'s.
/// Returns the frames written; a length the file cannot hold is refused before rendering.
pub fn render_to_wav(
    engine: &mut Engine,
    notes: &[NoteEvent],
    origin_ns: u64,
    seconds: f32,
    path: &Path,
) -> Result<u64, WavError> {
    let total = wav_frames(seconds, engine.rate())?;
    schedule_all(engine, notes, origin_ns);
    let mut w = FloatWavWriter::create(path, engine.rate() as u32, 2)?;
    let mut left = vec![0.0; RENDER_BLOCK];
    let mut right = vec![0.0; RENDER_BLOCK];
    let mut done = 0;
    while done < total {
        let n = (total - done).min(RENDER_BLOCK as u64) as usize;
        engine.render(&mut left[..n], &mut right[..n]);
        w.write_stereo(&left[..n], &right[..n])?;
        done += n as u64;
    }
    w.finish()?;
    Ok(total)
}

/// Writes 32-bit float stereo WAV.
pub fn write_wav(path: &Path, rate: u32, left: &[f32], right: &[f32]) -> Result<(), WavError> {
    let mut w = FloatWavWriter::create(path, rate, 2)?;
    w.write_stereo(left, right)?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphSpec;

    #[test]
    fn build_refuses_a_rate_outside_the_range() {
        for rate in [
            0.0,
            1.0,
            7_999.0,
            192_001.0,
            f32::NAN,
            f32::INFINITY,
            -48_000.0,
        ] {
            let e = GraphSpec::default().build(rate).expect_err("refused");
            assert_eq!(
                e.to_string(),
                format!("sample rate {rate} Hz is outside 8000..=192000 Hz")
            );
        }
        assert!(GraphSpec::default().build(8_000.0).is_ok());
        assert!(GraphSpec::default().build(192_000.0).is_ok());
    }

    fn notes() -> Vec<NoteEvent> {
        // Notes across block boundaries (4096 frames = 85 ms at 48 kHz), one held past the end.
        (0..12u64)
            .map(|i| {
                serde_json::from_str(&format!(
                    r#"{{"t_ns":{},"dur_ns":{},"node":0,"note":{},"velocity":0.8,"role":"{}"}}"#,
                    i * 70_000_000 + 1_000,
                    if i == 11 { 2_000_000_000 } else { 90_000_000 },
                    48 + i * 3,
                    ["melody", "bass", "chords", "percussion"][i as usize % 4]
                ))
                .expect("a note")
            })
            .collect()
    }

    #[test]
    fn a_length_no_wav_file_holds_is_refused_before_rendering() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("long.wav");
        let mut engine = GraphSpec::default().build(48_000.0).expect("an engine");
        let e = render_to_wav(&mut engine, &[], 0, MAX_SECONDS, &path).expect_err("too long");
        assert_eq!(
            e.to_string(),
            "4147200000 frames of 2 channels are more than a WAV file holds \
             (4294967245 bytes of samples, 536870905 frames)"
        );
        assert!(!path.exists(), "refused before the file was created");
        assert_eq!(wav_frames(11_184.0, 48_000.0).ok(), Some(536_832_000));
    }

    #[test]
    fn streamed_render_equals_the_in_memory_render_sample_for_sample() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("take.wav");
        // Not a whole number of blocks, several blocks long.
        let seconds = 1.013;
        let mut engine = GraphSpec::default().build(48_000.0).expect("an engine");
        let frames = render_to_wav(&mut engine, &notes(), 0, seconds, &path).expect("written");
        let mut engine = GraphSpec::default().build(48_000.0).expect("an engine");
        let (l, r) = render(&mut engine, &notes(), 0, seconds);
        assert_eq!(frames, l.len() as u64);
        assert!(frames > 10 * RENDER_BLOCK as u64 && !frames.is_multiple_of(RENDER_BLOCK as u64));
        let mut reader = hound::WavReader::open(&path).expect("a WAV file");
        let spec = reader.spec();
        assert_eq!(spec.sample_format, hound::SampleFormat::Float);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 48_000, 32)
        );
        let samples: Vec<f32> = reader
            .samples::<f32>()
            .map(|s| s.expect("a sample"))
            .collect();
        let expected: Vec<f32> = l.iter().zip(&r).flat_map(|(l, r)| [*l, *r]).collect();
        assert!(expected.iter().any(|s| s.abs() > 0.01), "the notes sound");
        assert_eq!(samples.len(), expected.len());
        for (i, (a, b)) in samples.iter().zip(&expected).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "sample {i}");
        }
    }
}
