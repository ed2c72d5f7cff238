//! Commands and replies of any size (up to [`MAX_COMMAND_BYTES`]) over fixed 32 KiB
//! request-response slots.
//!
//! Every request and reply on a command service is one frame: a message that fits in one
//! slot travels whole; a larger one travels in parts of [`PART_BYTES`], one request per part
//! (each answered with an `Ack`, so a refusal stops the sender early), and a large reply is
//! fetched part by part with `More` requests. The slots stay fixed: growable ones would make
//! iceoryx2 reserve ~9.5 MB per connection (measured), and every stage holds several; a large
//! session costs round trips instead, one per 16 KiB.
//!
//! This module is the frames and the two stores that hold parts in flight; `command.rs` moves
//! them. Everything here is pure and never panics on any input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, MAX_COMMAND_BYTES};

/// Bytes of a message carried by one part (the slot holds a part and its header).
pub const PART_BYTES: usize = 16 * 1024;

/// A transfer not advanced for this long is dropped (its sender gave up or died).
pub const STALE: Duration = Duration::from_secs(30);

/// Transfers in flight one server holds at once, each way.
pub const MAX_TRANSFERS: usize = 8;

/// One frame on a command service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole message (a request, or a reply).
    Whole(&'a [u8]),
    /// Part `index` of transfer `xfer`, a message of `len` bytes.
    Part {
        /// The transfer (chosen by its sender).
        xfer: u64,
        /// Which part, from 0.
        index: u32,
        /// The whole message's length.
        len: u32,
        /// This part's bytes.
        bytes: &'a [u8],
    },
    /// A request part arrived; send the next.
    Ack,
    /// Asks for part `index` of the reply transfer `xfer`.
    More {
        /// The reply's transfer.
        xfer: u64,
        /// Which part.
        index: u32,
    },
}

const WHOLE: u8 = 0;
const PART: u8 = 1;
const ACK: u8 = 2;
const MORE: u8 = 3;

impl<'a> Frame<'a> {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Frame::Whole(b) => [&[WHOLE][..], b].concat(),
            Frame::Part {
                xfer,
                index,
                len,
                bytes,
            } => {
                let mut out = Vec::with_capacity(17 + bytes.len());
                out.push(PART);
                out.extend_from_slice(&xfer.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
                out
            }
            Frame::Ack => vec![ACK],
            Frame::More { xfer, index } => {
                let mut out = vec![MORE];
                out.extend_from_slice(&xfer.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                out
            }
        }
    }

    /// Reads a frame; anything else is [`CodecError::Malformed`].
    pub fn decode(b: &'a [u8]) -> Result<Frame<'a>, CodecError> {
        let bad = |detail: &str| CodecError::Malformed {
            len: b.len(),
            detail: detail.into(),
        };
        let u64_at = |i: usize| {
            b.get(i..i + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
        };
        match b.first() {
            Some(&WHOLE) => Ok(Frame::Whole(&b[1..])),
            Some(&PART) => match (u64_at(1), u32_at(9), u32_at(13)) {
                (Some(xfer), Some(index), Some(len)) => Ok(Frame::Part {
                    xfer,
                    index,
                    len,
                    bytes: &b[17..],
                }),
                _ => Err(bad("a part's header is cut short")),
            },
            Some(&ACK) if b.len() == 1 => Ok(Frame::Ack),
            Some(&MORE) if b.len() == 13 => match (u64_at(1), u32_at(9)) {
                (Some(xfer), Some(index)) => Ok(Frame::More { xfer, index }),
                _ => Err(bad("a request for more is cut short")),
            },
            Some(t) => Err(bad(&format!("unknown frame {t}"))),
            None => Err(bad("an empty frame")),
        }
    }
}

/// The frames that carry `msg`: one whole frame, or its parts (transfer `xfer`).
pub fn frames(msg: &[u8], xfer: u64) -> Vec<Vec<u8>> {
    if msg.len() <= PART_BYTES {
        return vec![Frame::Whole(msg).encode()];
    }
    msg.chunks(PART_BYTES)
        .enumerate()
        .map(|(i, bytes)| {
            Frame::Part {
                xfer,
                index: i as u32,
                len: msg.len() as u32,
                bytes,
            }
            .encode()
        })
        .collect()
}

fn parts_of(len: usize) -> usize {
    len.div_ceil(PART_BYTES)
}

fn too_large(len: usize) -> CodecError {
    CodecError::TooLarge {
        len,
        limit: MAX_COMMAND_BYTES,
    }
}

/// What became of a request part.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// More parts are to come.
    Partial,
    /// The message is complete.
    Complete(Vec<u8>),
}

#[derive(Debug)]
struct Assembly {
    bytes: Vec<u8>,
    next: u32,
    len: usize,
    touched: Instant,
}

/// A server's requests arriving in parts.
#[derive(Debug, Default)]
pub struct Incoming {
    open: BTreeMap<u64, Assembly>,
}

impl Incoming {
    /// Takes part `index` of transfer `xfer` (a message of `len` bytes). Parts come in order;
    /// anything else (a part out of order, a length over the limit, a length that changed, too
    /// many transfers at once) drops the transfer and is refused.
    pub fn part(
        &mut self,
        xfer: u64,
        index: u32,
        len: u32,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Arrival, CodecError> {
        let len = len as usize;
        let malformed = |detail: String| CodecError::Malformed { len, detail };
        self.open
            .retain(|_, a| now.duration_since(a.touched) < STALE);
        if index == 0 {
            if len > MAX_COMMAND_BYTES {
                return Err(too_large(len));
            }
            if self.open.len() >= MAX_TRANSFERS {
                return Err(malformed(format!(
                    "{MAX_TRANSFERS} large commands are already arriving; send again later"
                )));
            }
            self.open.insert(
                xfer,
                Assembly {
                    bytes: Vec::with_capacity(len),
                    next: 0,
                    len,
                    touched: now,
                },
            );
        }
        let Some(a) = self.open.get_mut(&xfer) else {
            return Err(malformed(format!("part {index} of a transfer not started")));
        };
        let expected = PART_BYTES.min(a.len - a.bytes.len());
        if a.next != index || a.len != len || bytes.len() != expected {
            self.open.remove(&xfer);
            return Err(malformed(format!(
                "part {index} ({} bytes) out of order or of the wrong size",
                bytes.len()
            )));
        }
        a.bytes.extend_from_slice(bytes);
        a.next += 1;
        a.touched = now;
        if a.bytes.len() < a.len {
            return Ok(Arrival::Partial);
        }
        Ok(self
            .open
            .remove(&xfer)
            .map_or(Arrival::Partial, |a| Arrival::Complete(a.bytes)))
    }

    /// Transfers in flight.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    touched: Instant,
}

/// A server's large replies waiting to be fetched part by part.
#[derive(Debug, Default)]
pub struct Outgoing {
    next_xfer: u64,
    open: BTreeMap<u64, Pending>,
}

impl Outgoing {
    /// The first frame of `reply`: whole, or its part 0 (the rest kept for `More`).
    pub fn first(&mut self, reply: Vec<u8>, now: Instant) -> Vec<u8> {
        if reply.len() <= PART_BYTES {
            return Frame::Whole(&reply).encode();
        }
        self.open
            .retain(|_, p| now.duration_since(p.touched) < STALE);
        while self.open.len() >= MAX_TRANSFERS {
            // The oldest reply nobody fetched makes room.
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, p)| p.touched)
                .map(|(k, _)| *k);
            oldest.map(|k| self.open.remove(&k));
        }
        self.next_xfer += 1;
        let xfer = self.next_xfer;
        let frame = part_frame(xfer, &reply, 0);
        self.open.insert(
            xfer,
            Pending {
                bytes: reply,
                touched: now,
            },
        );
        frame
    }

    /// Part `index` of reply `xfer`; the last one fetched lets the reply go.
    pub fn more(&mut self, xfer: u64, index: u32, now: Instant) -> Result<Vec<u8>, CodecError> {
        let Some(p) = self.open.get_mut(&xfer) else {
            return Err(CodecError::Malformed {
                len: 0,
                detail: format!(
                    "no reply {xfer} waits to be fetched (it was fetched, or it is stale)"
                ),
            });
        };
        if index as usize >= parts_of(p.bytes.len()) {
            return Err(CodecError::Malformed {
                len: p.bytes.len(),
                detail: format!("reply {xfer} has no part {index}"),
            });
        }
        p.touched = now;
        let frame = part_frame(xfer, &p.bytes, index);
        if index as usize + 1 == parts_of(p.bytes.len()) {
            self.open.remove(&xfer);
        }
        Ok(frame)
    }

    /// Replies waiting.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

fn part_frame(xfer: u64, msg: &[u8], index: u32) -> Vec<u8> {
    let start = index as usize * PART_BYTES;
    let end = (start + PART_BYTES).min(msg.len());
    Frame::Part {
        xfer,
        index,
        len: msg.len() as u32,
        bytes: &msg[start..end],
    }
    .encode()
}

/// A client's reply arriving in parts.
#[derive(Debug)]
pub struct Reassembly {
    xfer: u64,
    len: usize,
    bytes: Vec<u8>,
}

impl Reassembly {
    /// Starts from part 0 of a reply (`len` bytes, within the limit).
    pub fn start(xfer: u64, len: u32, first: &[u8]) -> Result<Self, CodecError> {
        let len = len as usize;
        if len > MAX_COMMAND_BYTES {
            return Err(too_large(len));
        }
        let mut r = Reassembly {
            xfer,
            len,
            bytes: Vec::with_capacity(len),
        };
        r.push(first)?;
        Ok(r)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let expected = PART_BYTES.min(self.len - self.bytes.len());
        if bytes.len() != expected {
            return Err(CodecError::Malformed {
                len: self.len,
                detail: format!("a reply part of {} bytes, {expected} expected", bytes.len()),
            });
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// The `More` frame that asks for the next part, or `None` when the reply is complete.
    pub fn next_request(&self) -> Option<Vec<u8>> {
        (self.bytes.len() < self.len).then(|| {
            Frame::More {
                xfer: self.xfer,
                index: (self.bytes.len() / PART_BYTES) as u32,
            }
            .encode()
        })
    }

    /// Takes the next part's frame.
    pub fn take(&mut self, frame: Frame<'_>) -> Result<(), CodecError> {
        let want = (self.bytes.len() / PART_BYTES) as u32;
        match frame {
            Frame::Part {
                xfer,
                index,
                len,
                bytes,
            } if xfer == self.xfer && index == want && len as usize == self.len => self.push(bytes),
            _ => Err(CodecError::Malformed {
                len: self.len,
                detail: format!("expected part {want} of reply {}", self.xfer),
            }),
        }
    }

    /// The whole reply.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_small_message_is_one_whole_frame() {
        let m = message(PART_BYTES);
        let f = frames(&m, 1);
        assert_eq!(f.len(), 1);
        assert_eq!(Frame::decode(&f[0]).unwrap(), Frame::Whole(&m));
    }

    #[test]
    fn a_large_request_arrives_whole_through_its_parts() {
        let m = message(3 * PART_BYTES + 5);
        let now = Instant::now();
        let mut incoming = Incoming::default();
        let f = frames(&m, 42);
        assert_eq!(f.len(), 4);
        let mut got = None;
        for (i, frame) in f.iter().enumerate() {
            let Frame::Part {
                xfer,
                index,
                len,
                bytes,
            } = Frame::decode(frame).unwrap()
            else {
                panic!("a part")
            };
            match incoming.part(xfer, index, len, bytes, now).unwrap() {
                Arrival::Partial => assert!(i < 3),
                Arrival::Complete(b) => got = Some(b),
            }
        }
        assert_eq!(got.unwrap(), m);
        assert!(incoming.is_empty());
    }

    #[test]
    fn parts_out_of_order_over_the_limit_or_unstarted_are_refused() {
        let now = Instant::now();
        let mut incoming = Incoming::default();
        let e = incoming
            .part(1, 0, (MAX_COMMAND_BYTES + 1) as u32, &[0; PART_BYTES], now)
            .unwrap_err();
        assert!(matches!(e, CodecError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains(&MAX_COMMAND_BYTES.to_string()));
        let e = incoming
            .part(2, 1, 40_000, &[0; PART_BYTES], now)
            .unwrap_err();
        assert!(e.to_string().contains("not started"), "{e}");
        incoming.part(3, 0, 40_000, &[0; PART_BYTES], now).unwrap();
        let e = incoming
            .part(3, 2, 40_000, &[0; PART_BYTES], now)
            .unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        assert!(incoming.is_empty(), "a broken transfer is dropped");
        // A stale one goes; room is bounded.
        for x in 0..MAX_TRANSFERS as u64 {
            incoming.part(x, 0, 40_000, &[0; PART_BYTES], now).unwrap();
        }
        assert!(incoming.part(99, 0, 40_000, &[0; PART_BYTES], now).is_err());
        let later = now + STALE;
        incoming
            .part(99, 0, 40_000, &[0; PART_BYTES], later)
            .unwrap();
        assert_eq!(incoming.len(), 1);
    }

    #[test]
    fn a_large_reply_is_fetched_part_by_part_and_then_let_go() {
        let m = message(2 * PART_BYTES + 1);
        let now = Instant::now();
        let mut out = Outgoing::default();
        let first = out.first(m.clone(), now);
        let Frame::Part {
            xfer, len, bytes, ..
        } = Frame::decode(&first).unwrap()
        else {
            panic!("a part")
        };
        let mut r = Reassembly::start(xfer, len, bytes).unwrap();
        while let Some(req) = r.next_request() {
            let Frame::More { xfer, index } = Frame::decode(&req).unwrap() else {
                panic!("more")
            };
            let part = out.more(xfer, index, now).unwrap();
            r.take(Frame::decode(&part).unwrap()).unwrap();
        }
        assert_eq!(r.finish(), m);
        assert!(out.is_empty());
        assert!(out.more(xfer, 0, now).is_err(), "fetched replies are gone");
        // A small reply is whole.
        assert_eq!(out.first(vec![1, 2], now), Frame::Whole(&[1, 2]).encode());
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Frame::decode(&b);
        }

        #[test]
        fn frames_round_trip(xfer in any::<u64>(), index in any::<u32>(), len in any::<u32>(),
                             bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for f in [
                Frame::Whole(&bytes),
                Frame::Part { xfer, index, len, bytes: &bytes },
                Frame::Ack,
                Frame::More { xfer, index },
            ] {
                let enc = f.encode();
                prop_assert_eq!(Frame::decode(&enc).unwrap(), f);
            }
        }
    }
}
