//! 32-bit float WAV files, written as a stream: the header first with placeholder sizes, then
//! samples as they are rendered, then the sizes patched in.
//!
//! The `fmt ` chunk is the 18-byte `WAVEFORMATEX` with `WAVE_FORMAT_IEEE_FLOAT` and `cbSize`
//! 0, followed by a `fact` chunk, as the RIFF spec asks of non-PCM formats. hound writes float
//! as `WAVE_FORMAT_EXTENSIBLE` instead, which SoX 14.4 reads but warns about ("wave header
//! missing extended part of fmt chunk": after the extensible part it looks for the
//! `cbSize` of the float subformat too); this layout every reader takes silently.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// `WAVE_FORMAT_IEEE_FLOAT`.
const FORMAT_IEEE_FLOAT: u16 = 3;
/// Bytes before the samples: RIFF header 12, `fmt ` 8 + 18, `fact` 8 + 4, `data` header 8.
pub const HEADER_BYTES: u64 = 58;
/// Bytes of samples a WAV file holds at most (its RIFF size is a `u32`).
pub const MAX_DATA_BYTES: u64 = u32::MAX as u64 - (HEADER_BYTES - 8);

/// Why a WAV file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// More samples than the format's 32-bit sizes can count.
    #[error(
        "{frames} frames of {channels} channels are more than a WAV file holds \
         ({MAX_DATA_BYTES} bytes of samples, {} frames)",
        max_frames(*channels)
    )]
    TooLong {
        /// Frames asked for.
        frames: u64,
        /// Channels.
        channels: u16,
    },
}

/// The most frames of `channels` 32-bit channels a WAV file holds.
pub fn max_frames(channels: u16) -> u64 {
    MAX_DATA_BYTES / (4 * u64::from(channels.max(1)))
}

/// A float WAV file being written.
#[derive(Debug)]
pub struct FloatWavWriter<W: Write + Seek> {
    out: W,
    channels: u16,
    data_bytes: u64,
}

impl FloatWavWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: &Path, rate: u32, channels: u16) -> Result<Self, WavError> {
        Self::new(BufWriter::new(File::create(path)?), rate, channels)
    }
}

impl<W: Write + Seek> FloatWavWriter<W> {
    /// Writes the header of a `channels`-channel file at `rate` Hz to `out`.
    pub fn new(mut out: W, rate: u32, channels: u16) -> Result<Self, WavError> {
        let block_align = 4 * u32::from(channels);
        let mut h = Vec::with_capacity(HEADER_BYTES as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&0u32.to_le_bytes()); // patched by finish
        h.extend_from_slice(b"WAVE");
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&18u32.to_le_bytes());
        h.extend_from_slice(&FORMAT_IEEE_FLOAT.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&rate.saturating_mul(block_align).to_le_bytes());
        h.extend_from_slice(&(block_align as u16).to_le_bytes());
        h.extend_from_slice(&32u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize: no extension
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // frames, patched by finish
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes()); // patched by finish
        debug_assert_eq!(h.len() as u64, HEADER_BYTES);
        out.write_all(&h)?;
        Ok(Self {
            out,
            channels,
            data_bytes: 0,
        })
    }

    /// Appends frames of two channels (`left` and `right`, the same length).
    pub fn write_stereo(&mut self, left: &[f32], right: &[f32]) -> Result<(), WavError> {
        let frames = left.len().min(right.len()) as u64;
        if self.data_bytes + 8 * frames > MAX_DATA_BYTES {
            return Err(WavError::TooLong {
                frames: self.data_bytes / 8 + frames,
                channels: 2,
            });
        }
        for (l, r) in left.iter().zip(right) {
            self.out.write_all(&l.to_le_bytes())?;
            self.out.write_all(&r.to_le_bytes())?;
        }
        self.data_bytes += 8 * frames;
        Ok(())
    }

    /// Patches the sizes into the header and flushes; returns the writer.
    pub fn finish(mut self) -> Result<W, WavError> {
        let data = self.data_bytes as u32; // write_stereo keeps it within MAX_DATA_BYTES
        let frames = (self.data_bytes / (4 * u64::from(self.channels.max(1)))) as u32;
        let riff = (HEADER_BYTES - 8) as u32 + data;
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&riff.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(46))?;
        self.out.write_all(&frames.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(54))?;
        self.out.write_all(&data.to_le_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_le_bytes([b[i], b[i + 1]])
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    #[test]
    fn header_is_waveformatex_ieee_float_with_a_fact_chunk() {
        let mut w = FloatWavWriter::new(Cursor::new(Vec::new()), 48_000, 2).expect("header");
        w.write_stereo(&[0.5, -0.25, 1.0], &[0.0, 0.125, -1.0])
            .expect("samples");
        let b = w.finish().expect("finished").into_inner();
        assert_eq!(b.len(), 58 + 24);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(u32_at(&b, 4), b.len() as u32 - 8);
        assert_eq!(&b[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(&b, 16), 18, "fmt chunk size: WAVEFORMATEX");
        assert_eq!(u16_at(&b, 20), 3, "WAVE_FORMAT_IEEE_FLOAT");
        assert_eq!(u16_at(&b, 22), 2, "channels");
        assert_eq!(u32_at(&b, 24), 48_000, "rate");
        assert_eq!(u32_at(&b, 28), 48_000 * 8, "bytes per second");
        assert_eq!(u16_at(&b, 32), 8, "block align");
        assert_eq!(u16_at(&b, 34), 32, "bits per sample");
        assert_eq!(u16_at(&b, 36), 0, "cbSize");
        assert_eq!(&b[38..42], b"fact");
        assert_eq!(u32_at(&b, 42), 4);
        assert_eq!(u32_at(&b, 46), 3, "frames");
        assert_eq!(&b[50..54], b"data");
        assert_eq!(u32_at(&b, 54), 24);
        let first: Vec<f32> = b[58..]
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(first, [0.5, 0.0, -0.25, 0.125, 1.0, -1.0]);
    }

    #[test]
    fn hound_reads_it_back() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("t.wav");
        let mut w = FloatWavWriter::create(&path, 44_100, 2).expect("created");
        w.write_stereo(&[0.1, 0.2], &[-0.1, -0.2]).expect("samples");
        w.finish().expect("finished");
        let mut r = hound::WavReader::open(&path).expect("readable");
        assert_eq!(r.spec().sample_format, hound::SampleFormat::Float);
        assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 44_100));
        let s: Vec<f32> = r.samples::<f32>().map(|s| s.expect("a sample")).collect();
        assert_eq!(s, [0.1, -0.1, 0.2, -0.2]);
    }
}
