//! The wire format of a PipeWire MIDI buffer: one SPA sequence pod of MIDI controls, each
//! stamped with its frame offset in the cycle. Written in place into the buffer PipeWire
//! hands the callback — no allocation — and read back by the tests.
//!
//! Layout (native-endian `u32`s, every pod padded to 8 bytes):
//! `[size, SPA_TYPE_Sequence] [unit = 0, pad = 0]` then per event
//! `[offset, SPA_CONTROL_Midi] [n, SPA_TYPE_Bytes] bytes… padding`.

use pipewire::spa::sys;

const HEADER: usize = 16;

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

fn put(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes a sequence of MIDI events into a byte buffer.
#[derive(Debug)]
pub struct SeqWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    last_offset: u32,
}

impl<'a> SeqWriter<'a> {
    /// Starts an empty sequence; `None` when `buf` cannot hold even that (16 bytes).
    pub fn new(buf: &'a mut [u8]) -> Option<Self> {
        if buf.len() < HEADER {
            return None;
        }
        put(buf, 4, sys::SPA_TYPE_Sequence);
        put(buf, 8, 0);
        put(buf, 12, 0);
        let mut w = Self {
            buf,
            len: HEADER,
            last_offset: 0,
        };
        w.seal();
        Some(w)
    }

    fn seal(&mut self) {
        let body = (self.len - 8) as u32;
        put(self.buf, 0, body);
    }

    /// Room for one more event of `n` bytes.
    pub fn fits(&self, n: usize) -> bool {
        self.fits_many(1, n)
    }

    /// Room for `count` more events of `n` bytes each.
    pub fn fits_many(&self, count: usize, n: usize) -> bool {
        self.len + count * (16 + pad8(n)) <= self.buf.len()
    }

    /// Appends `bytes` at frame `offset` (clamped so offsets never go backwards). Returns
    /// false, writing nothing, when the buffer is full.
    pub fn push(&mut self, offset: u32, bytes: &[u8]) -> bool {
        if !self.fits(bytes.len()) {
            return false;
        }
        let offset = offset.max(self.last_offset);
        self.last_offset = offset;
        let at = self.len;
        put(self.buf, at, offset);
        put(self.buf, at + 4, sys::SPA_CONTROL_Midi);
        put(self.buf, at + 8, bytes.len() as u32);
        put(self.buf, at + 12, sys::SPA_TYPE_Bytes);
        self.buf[at + 16..at + 16 + bytes.len()].copy_from_slice(bytes);
        self.buf[at + 16 + bytes.len()..at + 16 + pad8(bytes.len())].fill(0);
        self.len = at + 16 + pad8(bytes.len());
        self.seal();
        true
    }

    /// Bytes used (the chunk size to report).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event was written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER
    }
}

/// One event read back from a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqEvent {
    /// Frame offset in the cycle.
    pub offset: u32,
    /// The MIDI bytes.
    pub bytes: Vec<u8>,
}

/// Why a buffer is not a MIDI sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MIDI sequence at byte {offset}: {what}")]
pub struct SeqError {
    /// Where reading stopped.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Reads the MIDI events of a sequence (controls of other types are skipped).
pub fn read(buf: &[u8]) -> Result<Vec<SeqEvent>, SeqError> {
    let err = |offset, what| SeqError { offset, what };
    let size = get(buf, 0).ok_or(err(0, "truncated header"))? as usize;
    if get(buf, 4) != Some(sys::SPA_TYPE_Sequence) {
        return Err(err(4, "pod type is not Sequence"));
    }
    let end = size
        .checked_add(8)
        .filter(|&e| e <= buf.len() && e >= HEADER)
        .ok_or(err(0, "size exceeds the buffer"))?;
    let mut at = HEADER;
    let mut out = Vec::new();
    while at < end {
        let offset = get(buf, at).ok_or(err(at, "truncated control"))?;
        let kind = get(buf, at + 4).ok_or(err(at + 4, "truncated control"))?;
        let n = get(buf, at + 8).ok_or(err(at + 8, "truncated value"))? as usize;
        let body = at + 16;
        let next = body
            .checked_add(pad8(n))
            .filter(|&e| e <= end)
            .ok_or(err(at + 8, "value exceeds the sequence"))?;
        if kind == sys::SPA_CONTROL_Midi {
            if get(buf, at + 12) != Some(sys::SPA_TYPE_Bytes) {
                return Err(err(at + 12, "MIDI value is not Bytes"));
            }
            out.push(SeqEvent {
                offset,
                bytes: buf[body..body + n].to_vec(),
            });
        }
        at = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_padding_and_monotonic_offsets() {
        let mut buf = [0xAAu8; 256];
        let mut w = SeqWriter::new(&mut buf).unwrap();
        assert!(w.is_empty());
        assert!(w.push(5, &[0x90, 60, 100]));
        assert!(w.push(3, &[0xF8]));
        assert!(w.push(700, &[0xB0, 123, 0]));
        let len = w.len();
        assert_eq!(len, 16 + 3 * 24);
        let events = read(&buf[..len]).unwrap();
        assert_eq!(
            events,
            vec![
                SeqEvent {
                    offset: 5,
                    bytes: vec![0x90, 60, 100]
                },
                SeqEvent {
                    offset: 5,
                    bytes: vec![0xF8]
                },
                SeqEvent {
                    offset: 700,
                    bytes: vec![0xB0, 123, 0]
                },
            ]
        );
    }

    #[test]
    fn a_full_buffer_refuses_without_corrupting() {
        let mut buf = [0u8; 16 + 24 + 10];
        let mut w = SeqWriter::new(&mut buf).unwrap();
        assert!(w.push(0, &[0x90, 1, 2]));
        assert!(!w.push(1, &[0x80, 1, 0]));
        let len = w.len();
        assert_eq!(read(&buf[..len]).unwrap().len(), 1);
        assert!(SeqWriter::new(&mut [0u8; 8]).is_none());
    }

    #[test]
    fn garbage_is_an_error_naming_the_offset() {
        assert_eq!(read(&[]).unwrap_err().offset, 0);
        let mut buf = [0u8; 64];
        let mut w = SeqWriter::new(&mut buf).unwrap();
        w.push(0, &[0x90, 1, 2]);
        buf[24..28].copy_from_slice(&1000u32.to_ne_bytes());
        let e = read(&buf).unwrap_err();
        assert_eq!(e.offset, 24, "{e}");
    }
}
