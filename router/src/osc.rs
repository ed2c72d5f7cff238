//! OSC out (rosc): notes as bundles timetagged with the note's own time, signals and raw
//! rates as plain messages; OSC in: `/khorus/set ,ssf`, `/khorus/tempo ,f`, `/khorus/hush ,s`
//! decoded into commands, everything else refused with a reason.

use khorus_bus::{SIGNALS, SignalFrame};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::map::MidiNote;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Maps the monotonic clock onto NTP time (the wall clock), with an offset measured from
/// paired clock readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpClock {
    /// Realtime minus monotonic, ns.
    offset_ns: i128,
}

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids are always available.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl NtpClock {
    /// Measures the offset: of several (monotonic, realtime, monotonic) triples, the one with
    /// the tightest bracket, its realtime against the bracket's midpoint.
    pub fn measure() -> Self {
        let mut best = (i128::MAX, 0i128);
        for _ in 0..16 {
            let a = read(libc::CLOCK_MONOTONIC);
            let r = read(libc::CLOCK_REALTIME);
            let b = read(libc::CLOCK_MONOTONIC);
            if b - a < best.0 {
                best = (b - a, r - (a + b) / 2);
            }
        }
        Self { offset_ns: best.1 }
    }

    /// A clock with a known offset (realtime − monotonic, ns).
    pub fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// The NTP time of monotonic `t_ns`.
    pub fn ntp(&self, t_ns: u64) -> OscTime {
        to_ntp(t_ns as i128 + self.offset_ns)
    }
}

/// NTP time of Unix time `unix_ns` (seconds since 1900, 32-bit binary fraction).
pub fn to_ntp(unix_ns: i128) -> OscTime {
    let unix_ns = unix_ns.max(0) as u128;
    let secs = unix_ns / 1_000_000_000;
    let frac = ((unix_ns % 1_000_000_000) << 32) / 1_000_000_000;
    OscTime {
        seconds: (secs as u64 + NTP_UNIX_OFFSET) as u32,
        fractional: frac as u32,
    }
}

/// Unix ns of an NTP time (for tests and tools).
pub fn from_ntp(t: OscTime) -> i128 {
    let secs = t.seconds as i128 - NTP_UNIX_OFFSET as i128;
    secs * 1_000_000_000 + ((t.fractional as i128 * 1_000_000_000) >> 32)
}

/// The OSC "immediately" timetag.
pub const IMMEDIATE: OscTime = OscTime {
    seconds: 0,
    fractional: 1,
};

fn encode(packet: &OscPacket) -> Vec<u8> {
    // Encoding into a Vec cannot fail (rosc's own note); an empty packet is never sent.
    rosc::encoder::encode(packet).unwrap_or_default()
}

/// `/khorus/note ,iiff` (1-based channel, note, velocity 0 ..= 1, duration s) in a bundle
/// timetagged with the note's time.
pub fn note_bundle(n: MidiNote, velocity: f32, dur_s: f32, at: OscTime) -> Vec<u8> {
    encode(&OscPacket::Bundle(OscBundle {
        timetag: at,
        content: vec![OscPacket::Message(OscMessage {
            addr: "/khorus/note".into(),
            args: vec![
                OscType::Int(n.channel as i32 + 1),
                OscType::Int(n.note as i32),
                OscType::Float(velocity),
                OscType::Float(dur_s),
            ],
        })],
    }))
}

fn per_signal(frame: &SignalFrame, addr: &str, value: impl Fn(usize) -> f32) -> Vec<u8> {
    let content = SIGNALS
        .iter()
        .enumerate()
        .filter(|(i, _)| frame.available & (1 << i) != 0)
        .map(|(i, s)| {
            OscPacket::Message(OscMessage {
                addr: addr.into(),
                args: vec![OscType::String(s.name.into()), OscType::Float(value(i))],
            })
        })
        .collect();
    encode(&OscPacket::Bundle(OscBundle {
        timetag: IMMEDIATE,
        content,
    }))
}

/// `/khorus/signal ,sf` (name, level 0 ..= 1) for every measured signal, in one bundle.
pub fn signal_bundle(frame: &SignalFrame) -> Vec<u8> {
    per_signal(frame, "/khorus/signal", |i| frame.level[i])
}

/// `/khorus/metrics ,sf` (name, raw rate in the signal's unit) for every measured signal.
pub fn metrics_bundle(frame: &SignalFrame) -> Vec<u8> {
    per_signal(frame, "/khorus/metrics", |i| frame.rate[i])
}

/// A control message from an OSC client.
#[derive(Debug, Clone, PartialEq)]
pub enum OscCommand {
    /// `/khorus/set ,ssf`: node, param, value → the synth.
    Set {
        /// Node name.
        node: String,
        /// Parameter name.
        param: String,
        /// Value.
        value: f32,
    },
    /// `/khorus/tempo ,f`: bpm → the composer.
    Tempo(f64),
    /// `/khorus/hush ,s`: a slot, or every slot for `""`/`"all"` → the composer.
    Hush(Option<String>),
}

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OscInError {
    /// Not OSC at all.
    #[error("malformed OSC packet: {0}")]
    Malformed(String),
    /// An address we do not serve.
    #[error("unknown address {0}")]
    Address(String),
    /// Right address, wrong arguments.
    #[error("{addr} expects {expected}, got {got}")]
    Args {
        /// The address.
        addr: String,
        /// The type tags it takes.
        expected: &'static str,
        /// What came.
        got: String,
    },
}

fn tags(args: &[OscType]) -> String {
    let tag = |a: &OscType| match a {
        OscType::Int(_) => 'i',
        OscType::Float(_) => 'f',
        OscType::String(_) => 's',
        OscType::Double(_) => 'd',
        OscType::Long(_) => 'h',
        OscType::Bool(true) => 'T',
        OscType::Bool(false) => 'F',
        _ => '?',
    };
    format!(",{}", args.iter().map(tag).collect::<String>())
}

fn number(a: &OscType) -> Option<f64> {
    match *a {
        OscType::Float(v) => Some(v as f64),
        OscType::Double(v) => Some(v),
        OscType::Int(v) => Some(v as f64),
        OscType::Long(v) => Some(v as f64),
        _ => None,
    }
}

fn message(m: OscMessage) -> Result<OscCommand, OscInError> {
    let bad = |expected| OscInError::Args {
        addr: m.addr.clone(),
        expected,
        got: tags(&m.args),
    };
    match m.addr.as_str() {
        "/khorus/set" => match m.args.as_slice() {
            [OscType::String(node), OscType::String(param), v] => {
                let value = number(v).filter(|v| v.is_finite()).ok_or(bad(",ssf"))?;
                Ok(OscCommand::Set {
                    node: node.clone(),
                    param: param.clone(),
                    value: value as f32,
                })
            }
            _ => Err(bad(",ssf")),
        },
        "/khorus/tempo" => match m.args.as_slice() {
            [v] => {
                let bpm = number(v)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or(bad(",f (bpm > 0)"))?;
                Ok(OscCommand::Tempo(bpm))
            }
            _ => Err(bad(",f (bpm > 0)")),
        },
        "/khorus/hush" => match m.args.as_slice() {
            [] => Ok(OscCommand::Hush(None)),
            [OscType::String(s)] if s.is_empty() || s == "all" => Ok(OscCommand::Hush(None)),
            [OscType::String(s)] => Ok(OscCommand::Hush(Some(s.clone()))),
            _ => Err(bad(",s")),
        },
        other => Err(OscInError::Address(other.into())),
    }
}

/// Decodes one UDP datagram into the commands it carries (a bundle may carry several; they
/// are all valid or the whole packet is refused).
pub fn decode(datagram: &[u8]) -> Result<Vec<OscCommand>, OscInError> {
    let (_, packet) =
        rosc::decoder::decode_udp(datagram).map_err(|e| OscInError::Malformed(format!("{e:?}")))?;
    let mut out = Vec::new();
    let mut stack = vec![packet];
    while let Some(p) = stack.pop() {
        match p {
            OscPacket::Message(m) => out.push(message(m)?),
            OscPacket::Bundle(b) => stack.extend(b.content.into_iter().rev()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(addr: &str, args: Vec<OscType>) -> Vec<u8> {
        encode(&OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        }))
    }

    #[test]
    fn ntp_conversion_is_exact_to_the_nanosecond_scale() {
        let t = to_ntp(1_700_000_000_250_000_000);
        assert_eq!(t.seconds as u64, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(t.fractional, 1 << 30);
        let back = from_ntp(t);
        assert!((back - 1_700_000_000_250_000_000).abs() <= 1);
        let c = NtpClock::measure();
        let real = read(libc::CLOCK_REALTIME);
        let mono = read(libc::CLOCK_MONOTONIC);
        let mapped = from_ntp(c.ntp(mono as u64));
        assert!((mapped - real).abs() < 5_000_000, "{}", mapped - real);
    }

    #[test]
    fn notes_are_bundles_with_the_notes_timetag() {
        let at = to_ntp(1_000_000_000_000_000_000);
        let bytes = note_bundle(
            MidiNote {
                channel: 9,
                note: 36,
                velocity: 100,
            },
            0.75,
            0.25,
            at,
        );
        let (_, p) = rosc::decoder::decode_udp(&bytes).unwrap();
        let OscPacket::Bundle(b) = p else {
            panic!("not a bundle")
        };
        assert_eq!(b.timetag, at);
        let OscPacket::Message(m) = &b.content[0] else {
            panic!()
        };
        assert_eq!(m.addr, "/khorus/note");
        assert_eq!(
            m.args,
            vec![
                OscType::Int(10),
                OscType::Int(36),
                OscType::Float(0.75),
                OscType::Float(0.25)
            ]
        );
    }

    #[test]
    fn control_messages_decode_and_bad_ones_say_why() {
        let set = msg(
            "/khorus/set",
            vec!["pad".into(), "gain".into(), OscType::Float(0.5)],
        );
        assert_eq!(
            decode(&set),
            Ok(vec![OscCommand::Set {
                node: "pad".into(),
                param: "gain".into(),
                value: 0.5
            }])
        );
        assert_eq!(
            decode(&msg("/khorus/tempo", vec![OscType::Int(90)])),
            Ok(vec![OscCommand::Tempo(90.0)])
        );
        assert_eq!(
            decode(&msg("/khorus/hush", vec!["all".into()])),
            Ok(vec![OscCommand::Hush(None)])
        );
        assert_eq!(
            decode(&msg("/khorus/hush", vec!["drums".into()])),
            Ok(vec![OscCommand::Hush(Some("drums".into()))])
        );
        let e = decode(&msg("/khorus/tempo", vec![OscType::Float(f32::NAN)])).unwrap_err();
        assert_eq!(e.to_string(), "/khorus/tempo expects ,f (bpm > 0), got ,f");
        let e = decode(&msg("/khorus/set", vec!["pad".into()])).unwrap_err();
        assert_eq!(e.to_string(), "/khorus/set expects ,ssf, got ,s");
        assert!(matches!(
            decode(&msg("/x", vec![])),
            Err(OscInError::Address(_))
        ));
        assert!(matches!(decode(b"garbage!"), Err(OscInError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_valid_packets_never_panic(i in 0usize..64, b in any::<u8>()) {
            let mut p = msg("/khorus/set", vec!["pad".into(), "gain".into(), OscType::Float(0.5)]);
            let i = i % p.len();
            p[i] = b;
            let _ = decode(&p);
        }
    }
}
