//! The one codec for commands: serde types encoded with bincode 2.
//!
//! Decoding has a hard size limit (checked before decoding and enforced by bincode while it
//! allocates), rejects trailing bytes, and never panics on any input.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest encoded command or reply accepted, in bytes (a large one travels in parts: see
/// [`crate::transfer`]).
pub const MAX_COMMAND_BYTES: usize = 16 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_COMMAND_BYTES>()
}

/// Why a command could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The message is larger than [`MAX_COMMAND_BYTES`].
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed message ({len} bytes): {detail}")]
    Malformed {
        /// Size of the message.
        len: usize,
        /// bincode's description.
        detail: String,
    },
    /// A valid message was followed by more bytes.
    #[error("malformed message: {extra} unexpected bytes after offset {offset}")]
    TrailingBytes {
        /// Where the valid message ended.
        offset: usize,
        /// How many bytes followed.
        extra: usize,
    },
    /// The value could not be encoded (too large, or not representable).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Encodes `value`, refusing results over [`MAX_COMMAND_BYTES`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX_COMMAND_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_COMMAND_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes a `T` that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_COMMAND_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_COMMAND_BYTES,
        });
    }
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config()).map_err(|e| {
            CodecError::Malformed {
                len: bytes.len(),
                detail: e.to_string(),
            }
        })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            offset: used,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Common, CommonReply, Reply, ReplyError};
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Sample {
        Unit,
        Tempo {
            bpm: f64,
        },
        Pattern {
            slot: String,
            steps: Vec<(u32, i64)>,
        },
        Nested(Option<Box<Sample>>),
    }

    fn sample() -> impl Strategy<Value = Sample> {
        let leaf = prop_oneof![
            Just(Sample::Unit),
            any::<f64>()
                .prop_filter("NaN != NaN", |v| !v.is_nan())
                .prop_map(|bpm| Sample::Tempo { bpm }),
            (
                ".{0,40}",
                proptest::collection::vec(any::<(u32, i64)>(), 0..50)
            )
                .prop_map(|(slot, steps)| Sample::Pattern { slot, steps }),
        ];
        leaf.prop_recursive(4, 16, 1, |inner| {
            proptest::option::of(inner).prop_map(|s| Sample::Nested(s.map(Box::new)))
        })
    }

    proptest! {
        #[test]
        fn round_trips(value in sample()) {
            let bytes = encode(&value).unwrap();
            prop_assert!(bytes.len() <= MAX_COMMAND_BYTES);
            prop_assert_eq!(decode::<Sample>(&bytes).unwrap(), value);
        }

        #[test]
        fn commands_round_trip(nonce in any::<u64>(), text in ".{0,200}") {
            for cmd in [Common::Ping { nonce }, Common::Status, Common::Shutdown] {
                let bytes = encode(&cmd).unwrap();
                prop_assert_eq!(decode::<Common>(&bytes).unwrap(), cmd);
            }
            let reply: Reply<CommonReply> = Err(ReplyError::invalid(text));
            let bytes = encode(&reply).unwrap();
            prop_assert_eq!(decode::<Reply<CommonReply>>(&bytes).unwrap(), reply);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            // Any outcome but a panic is fine; an Ok must have consumed every byte.
            if let Ok(v) = decode::<Sample>(&bytes) {
                prop_assert_eq!(encode(&v).unwrap().len(), bytes.len());
            }
            let _ = decode::<Common>(&bytes);
            let _ = decode::<Reply<CommonReply>>(&bytes);
        }

        #[test]
        fn truncation_is_an_error(value in sample(), cut in 1usize..64) {
            let bytes = encode(&value).unwrap();
            if cut <= bytes.len() {
                prop_assert!(decode::<Sample>(&bytes[..bytes.len() - cut]).is_err());
            }
        }
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let big = vec![0u8; MAX_COMMAND_BYTES + 1];
        assert_eq!(
            decode::<Sample>(&big),
            Err(CodecError::TooLarge {
                len: MAX_COMMAND_BYTES + 1,
                limit: MAX_COMMAND_BYTES
            })
        );
    }

    #[test]
    fn huge_length_prefix_does_not_allocate_unbounded() {
        // A string claiming to be u64::MAX bytes long: bincode's limit must refuse it.
        let mut bytes = vec![2u8]; // variant Pattern
        bytes.push(253); // varint marker for u64
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Sample::Unit).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(CodecError::TrailingBytes {
                offset: 1,
                extra: 1
            })
        );
    }

    #[test]
    fn the_largest_hand_over_of_notes_fits_a_command() {
        use crate::commands::composer::{ComposerReply, SOUNDING_MAX};
        use crate::commands::synth::SynthCommand;
        // Every field at its widest encoding.
        let note = crate::NoteEvent {
            seq: u64::MAX,
            t_ns: u64::MAX,
            dur_ns: u64::MAX,
            node: u32::MAX,
            note: 127.0,
            velocity: 1.0,
            channel: 16,
            role: crate::Role::Percussion as u8,
            _pad: [0; 2],
        };
        let notes = vec![note; SOUNDING_MAX];
        let reply: Reply<ComposerReply> = Ok(ComposerReply::Notes(notes.clone()));
        let bytes = encode(&reply).expect("a full reply fits");
        assert_eq!(decode::<Reply<ComposerReply>>(&bytes).unwrap(), reply);
        let resume = SynthCommand::Resume { notes };
        let bytes = encode(&resume).expect("a full resume fits");
        assert_eq!(decode::<SynthCommand>(&bytes).unwrap(), resume);
    }
}
