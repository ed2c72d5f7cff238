//! `khorus/notes`: [`NoteEvent`]s, stamped ahead of time with the instant they must sound.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// The musical role of a note; the router maps roles to MIDI channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Role {
    /// Lead / melody (MIDI channel 1 by default).
    Melody = 0,
    /// Bass (channel 2).
    Bass = 1,
    /// Chords and pads (channel 3).
    Chords = 2,
    /// Percussion (channel 10).
    Percussion = 3,
    /// Anything else; the note's own channel is used.
    Other = 4,
}

impl Role {
    /// Decodes the wire byte; unknown values read as `Other`.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Melody,
            1 => Self::Bass,
            2 => Self::Chords,
            3 => Self::Percussion,
            _ => Self::Other,
        }
    }

    /// Lower-case name, as the CLI and JSON write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Melody => "melody",
            Self::Bass => "bass",
            Self::Chords => "chords",
            Self::Percussion => "percussion",
            Self::Other => "other",
        }
    }

    /// The default MIDI channel (1-based) for this role.
    pub fn default_channel(self) -> u8 {
        match self {
            Self::Melody | Self::Other => 1,
            Self::Bass => 2,
            Self::Chords => 3,
            Self::Percussion => 10,
        }
    }
}

/// One note to sound at a given instant.
#[derive(Debug, Default, Clone, Copy, PartialEq, ZeroCopySend, Serialize, Deserialize)]
#[serde(into = "NoteJson", try_from = "NoteJson")]
#[type_name("khorus::NoteEvent/v1")]
#[repr(C)]
pub struct NoteEvent {
    /// Per-publisher sequence number, set by [`Publisher::publish`](crate::Publisher::publish).
    pub seq: u64,
    /// Monotonic time at which the note must sound, ns.
    pub t_ns: u64,
    /// How long the note is held before its release, ns.
    pub dur_ns: u64,
    /// Target instrument node (numeric id assigned by control; 0 = the role's default).
    pub node: u32,
    /// Pitch as a MIDI note number; fractions are microtonal (69.0 = A4 = 440 Hz).
    pub note: f32,
    /// Velocity, 0.0 ..= 1.0.
    pub velocity: f32,
    /// MIDI channel, 1 ..= 16.
    pub channel: u8,
    /// [`Role`] as a byte.
    pub role: u8,
    /// Padding, zero.
    pub _pad: [u8; 2],
}

impl NoteEvent {
    /// The note's role.
    pub fn role(&self) -> Role {
        Role::from_u8(self.role)
    }

    /// The one readable form of a note, as every tool prints it (`khorus tap notes`,
    /// `khorus-composer --print`, `khorus-router --print`); `now_ns` gives how far ahead it is.
    pub fn line(&self, now_ns: u64) -> String {
        format!(
            "#{} t={:.6} (in {:+.1}ms) note={:.2} ({}) vel={:.2} dur={:.1}ms ch={} role={} node={}",
            self.seq,
            crate::clock::ns_to_s(self.t_ns),
            (self.t_ns as f64 - now_ns as f64) / 1e6,
            self.note,
            note_name(self.note),
            self.velocity,
            self.dur_ns as f64 / 1e6,
            self.channel,
            self.role().name(),
            self.node
        )
    }
}

const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// A MIDI note number's name (`69` → `A4`, `0` → `C-1`).
pub fn note_name(note: f32) -> String {
    let n = note.round() as i32;
    let name = NOTE_NAMES[n.rem_euclid(12) as usize];
    format!("{name}{}", n.div_euclid(12) - 1)
}

// Notes come in bursts one lookahead ahead; 1024 is several seconds of dense music.
topic!(NoteEvent, "khorus/notes", buffer: 1024, history: 0, publishers: 4, subscribers: 8);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteJson {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t_ns: u64,
    dur_ns: u64,
    #[serde(default)]
    node: u32,
    note: f32,
    velocity: f32,
    #[serde(default)]
    channel: Option<u8>,
    role: Role,
}

impl From<NoteEvent> for NoteJson {
    fn from(n: NoteEvent) -> Self {
        Self {
            seq: n.seq,
            t_ns: n.t_ns,
            dur_ns: n.dur_ns,
            node: n.node,
            note: n.note,
            velocity: n.velocity,
            channel: Some(n.channel),
            role: n.role(),
        }
    }
}

impl TryFrom<NoteJson> for NoteEvent {
    type Error = String;
    fn try_from(j: NoteJson) -> Result<Self, String> {
        if !(0.0..=127.0).contains(&j.note) {
            return Err(format!("note {} is outside MIDI 0..=127", j.note));
        }
        if !(0.0..=1.0).contains(&j.velocity) {
            return Err(format!("velocity {} is outside 0..=1", j.velocity));
        }
        let channel = j.channel.unwrap_or(j.role.default_channel());
        if !(1..=16).contains(&channel) {
            return Err(format!("channel {channel} is outside 1..=16"));
        }
        Ok(Self {
            seq: j.seq,
            t_ns: j.t_ns,
            dur_ns: j.dur_ns,
            node: j.node,
            note: j.note,
            velocity: j.velocity,
            channel,
            role: j.role as u8,
            _pad: [0; 2],
        })
    }
}
