//! What goes where: the `[router]` configuration and the pure mapping from bus samples to
//! MIDI events — channel per role, note/velocity quantisation, and controller changes per
//! signal sent on change and rate-limited.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use khorus_bus::{CurvePoint, NoteEvent, Role, SignalFrame, SignalId};
use serde::Deserialize;

use crate::rt::Incoming;

/// MIDI channel (1-based) per role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    /// Lead / melody.
    pub melody: u8,
    /// Bass.
    pub bass: u8,
    /// Chords and pads.
    pub chords: u8,
    /// Percussion.
    pub percussion: u8,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            melody: 1,
            bass: 2,
            chords: 3,
            percussion: 10,
        }
    }
}

/// The `[router]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// `node.name` of the MIDI node.
    pub name: String,
    /// Channel per role.
    pub channels: Channels,
    /// Controller per signal name (`exec`, `rx`, …, `io` = the larger of io_read/io_write) and
    /// `cutoff` (the composer's filter-cutoff curve). Absent names send nothing.
    pub cc: BTreeMap<String, u8>,
    /// Channel (1-based) the controllers are sent on.
    pub cc_channel: u8,
    /// Least time between two changes of one controller, ms.
    pub cc_interval_ms: u64,
    /// The curve (node, param) that drives `cutoff`, in Hz.
    pub cutoff_node: u32,
    /// See `cutoff_node`.
    pub cutoff_param: u32,
    /// Send MIDI clock (24 per quarter note) with start/stop, following the transport.
    pub midi_clock: bool,
    /// OSC targets (`host:port`).
    pub osc: Vec<String>,
    /// `/khorus/signal` messages per second per target (0 = none).
    pub osc_signal_hz: f64,
    /// `/khorus/metrics` messages per second per target (0 = none).
    pub osc_metrics_hz: f64,
    /// UDP port for OSC control in (0 = off).
    pub osc_in: u16,
    /// Address the OSC listener binds to (loopback unless you mean otherwise).
    pub osc_in_bind: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        let cc = [
            ("exec", 20),
            ("rx", 21),
            ("tx", 22),
            ("csw", 23),
            ("io", 24),
            ("retx", 25),
            ("irq", 26),
            ("mem_pressure", 27),
            ("cpu_pressure", 28),
            ("io_pressure", 29),
            ("cutoff", 74),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            name: "khorus-router".into(),
            channels: Channels::default(),
            cc,
            cc_channel: 1,
            cc_interval_ms: 20,
            cutoff_node: 0,
            cutoff_param: 1,
            midi_clock: false,
            osc: Vec::new(),
            osc_signal_hz: 10.0,
            osc_metrics_hz: 1.0,
            osc_in: 0,
            osc_in_bind: "127.0.0.1".into(),
        }
    }
}

/// Where a controller's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CcSource {
    /// A signal's level.
    Signal(SignalId),
    /// The larger of io_read and io_write.
    Io,
    /// The filter-cutoff curve.
    Cutoff,
}

impl CcSource {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "io" => Some(Self::Io),
            "cutoff" => Some(Self::Cutoff),
            _ => SignalId::from_name(name).map(Self::Signal),
        }
    }
}

impl RouterConfig {
    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        let ch = &self.channels;
        for (key, v) in [
            ("channels.melody", ch.melody),
            ("channels.bass", ch.bass),
            ("channels.chords", ch.chords),
            ("channels.percussion", ch.percussion),
            ("cc_channel", self.cc_channel),
        ] {
            if !(1..=16).contains(&v) {
                return Err(format!("router.{key} = {v}: a MIDI channel is 1 ..= 16"));
            }
        }
        for (name, &cc) in &self.cc {
            if CcSource::parse(name).is_none() {
                return Err(format!(
                    "router.cc.{name}: not a signal name, `io` or `cutoff`"
                ));
            }
            if cc > 119 {
                return Err(format!(
                    "router.cc.{name} = {cc}: controllers 120 ..= 127 are channel mode messages"
                ));
            }
        }
        for (key, v) in [
            ("osc_signal_hz", self.osc_signal_hz),
            ("osc_metrics_hz", self.osc_metrics_hz),
        ] {
            if !(0.0..=1000.0).contains(&v) {
                return Err(format!("router.{key} = {v}: 0 ..= 1000"));
            }
        }
        for t in &self.osc {
            parse_target(t).map_err(|e| format!("router.osc: {e}"))?;
        }
        if self.osc_in_bind.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "router.osc_in_bind = {:?}: not an IP address",
                self.osc_in_bind
            ));
        }
        Ok(())
    }

    /// Bit n set: channel n+1 is one a role plays on (swept at start and stop).
    pub fn channel_mask(&self) -> u16 {
        let c = &self.channels;
        [c.melody, c.bass, c.chords, c.percussion, self.cc_channel]
            .into_iter()
            .fold(0, |m, ch| m | 1 << (ch.clamp(1, 16) - 1))
    }
}

/// Resolves `host:port` (a name such as `localhost` is looked up).
pub fn parse_target(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e} (expected host:port)"))?
        .next()
        .ok_or_else(|| format!("{s:?}: no address"))
}

/// A note as MIDI: 0-based channel, note number, velocity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiNote {
    /// 0 ..= 15.
    pub channel: u8,
    /// 0 ..= 127.
    pub note: u8,
    /// 1 ..= 127.
    pub velocity: u8,
}

impl MidiNote {
    /// The ring item that plays it at `t_ns` for `dur_ns`.
    pub fn at(self, t_ns: u64, dur_ns: u64) -> Incoming {
        Incoming::Note {
            t_ns,
            dur_ns,
            channel: self.channel,
            note: self.note,
            velocity: self.velocity,
        }
    }
}

/// The mapping state of the bus thread.
#[derive(Debug)]
pub struct Mapper {
    channels: [u8; 4],
    ccs: Vec<(CcSource, u8)>,
    cc_channel: u8,
    interval_ns: u64,
    cutoff: (u32, u32),
    /// Per controller: last value sent and when.
    sent: [Option<(u8, u64)>; 128],
    /// Per controller: the value waiting for its interval to pass.
    waiting: [Option<u8>; 128],
}

impl Mapper {
    /// A mapper for a validated configuration.
    pub fn new(cfg: &RouterConfig) -> Self {
        let c = &cfg.channels;
        Self {
            channels: [c.melody, c.bass, c.chords, c.percussion].map(|ch| ch.clamp(1, 16) - 1),
            ccs: cfg
                .cc
                .iter()
                .filter_map(|(k, &v)| Some((CcSource::parse(k)?, v.min(119))))
                .collect(),
            cc_channel: cfg.cc_channel.clamp(1, 16) - 1,
            interval_ns: cfg.cc_interval_ms.saturating_mul(1_000_000),
            cutoff: (cfg.cutoff_node, cfg.cutoff_param),
            sent: [None; 128],
            waiting: [None; 128],
        }
    }

    /// The MIDI form of a note: the role's channel (the note's own for `Other`), the nearest
    /// note number, velocity scaled to 1 ..= 127. `None` for a pitch outside 0 ..= 127 or NaN.
    pub fn note(&self, ev: &NoteEvent) -> Option<MidiNote> {
        let channel = match ev.role() {
            Role::Melody => self.channels[0],
            Role::Bass => self.channels[1],
            Role::Chords => self.channels[2],
            Role::Percussion => self.channels[3],
            Role::Other => ev.channel.clamp(1, 16) - 1,
        };
        let n = ev.note.round();
        if !(0.0..=127.0).contains(&n) {
            return None;
        }
        let v = if ev.velocity.is_finite() {
            (ev.velocity.clamp(0.0, 1.0) * 127.0).round() as u8
        } else {
            0
        };
        Some(MidiNote {
            channel,
            note: n as u8,
            velocity: v.max(1),
        })
    }

    fn offer(&mut self, cc: u8, value: u8, now_ns: u64, out: &mut Vec<Incoming>) {
        let i = cc as usize;
        match self.sent[i] {
            Some((v, _)) if v == value => self.waiting[i] = None,
            Some((_, at)) if now_ns.saturating_sub(at) < self.interval_ns => {
                self.waiting[i] = Some(value)
            }
            _ => {
                self.sent[i] = Some((value, now_ns));
                self.waiting[i] = None;
                out.push(Incoming::Cc {
                    channel: self.cc_channel,
                    cc,
                    value,
                });
            }
        }
    }

    /// Controller changes for a signal frame at `now_ns`: only controllers whose 7-bit value
    /// changed, at most one per `cc_interval_ms` each (a held-back value goes out later, by
    /// [`Mapper::flush`] or the next frame).
    pub fn signals(&mut self, frame: &SignalFrame, now_ns: u64, out: &mut Vec<Incoming>) {
        let level = |id: SignalId| -> Option<f32> {
            (frame.available & (1 << id.index()) != 0).then(|| frame.level[id.index()])
        };
        for k in 0..self.ccs.len() {
            let (source, cc) = self.ccs[k];
            let v = match source {
                CcSource::Signal(id) => level(id),
                CcSource::Io => match (level(SignalId::IO_READ), level(SignalId::IO_WRITE)) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                CcSource::Cutoff => None,
            };
            if let Some(v) = v {
                self.offer(cc, to_7bit(v), now_ns, out);
            }
        }
    }

    /// The controller change for a curve point, when it is the cutoff curve (Hz, mapped
    /// logarithmically from 20 Hz ..= 20 kHz onto 0 ..= 127).
    pub fn curve(&mut self, c: &CurvePoint, now_ns: u64, out: &mut Vec<Incoming>) {
        if (c.node, c.param) != self.cutoff || !c.value.is_finite() {
            return;
        }
        let Some(&(_, cc)) = self.ccs.iter().find(|(s, _)| *s == CcSource::Cutoff) else {
            return;
        };
        let x = (c.value.clamp(20.0, 20_000.0) / 20.0).ln() / 1000f32.ln();
        self.offer(cc, to_7bit(x), now_ns, out);
    }

    /// Sends held-back values whose interval has passed.
    pub fn flush(&mut self, now_ns: u64, out: &mut Vec<Incoming>) {
        for cc in 0..128u8 {
            if let Some(v) = self.waiting[cc as usize] {
                self.offer(cc, v, now_ns, out);
            }
        }
    }

    /// Whether some value is held back (the caller should call [`Mapper::flush`] soon).
    pub fn has_waiting(&self) -> bool {
        self.waiting.iter().any(Option::is_some)
    }
}

fn to_7bit(v: f32) -> u8 {
    if v.is_finite() {
        (v.clamp(0.0, 1.0) * 127.0).round() as u8
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(levels: &[(SignalId, f32)]) -> SignalFrame {
        let mut f = SignalFrame::default();
        for &(id, v) in levels {
            f.level[id.index()] = v;
            f.available |= 1 << id.index();
        }
        f
    }

    fn ccs(out: &[Incoming]) -> Vec<(u8, u8)> {
        out.iter()
            .filter_map(|i| match *i {
                Incoming::Cc { cc, value, .. } => Some((cc, value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn roles_choose_channels_and_values_are_quantised() {
        let m = Mapper::new(&RouterConfig::default());
        let mut ev = NoteEvent {
            note: 60.4,
            velocity: 0.5,
            role: Role::Percussion as u8,
            ..NoteEvent::default()
        };
        assert_eq!(
            m.note(&ev),
            Some(MidiNote {
                channel: 9,
                note: 60,
                velocity: 64
            })
        );
        ev.role = Role::Other as u8;
        ev.channel = 7;
        ev.velocity = 0.0;
        assert_eq!(m.note(&ev).map(|n| (n.channel, n.velocity)), Some((6, 1)));
        ev.note = f32::NAN;
        assert_eq!(m.note(&ev), None);
        ev.note = 128.0;
        assert_eq!(m.note(&ev), None);
    }

    #[test]
    fn controllers_are_sent_on_change_and_rate_limited() {
        let mut m = Mapper::new(&RouterConfig::default());
        let mut out = Vec::new();
        m.signals(&frame(&[(SignalId::EXEC, 0.5)]), 0, &mut out);
        assert_eq!(ccs(&out), vec![(20, 64)]);
        out.clear();
        // Same value: nothing. A change within 20 ms: held back, then flushed.
        m.signals(&frame(&[(SignalId::EXEC, 0.5)]), 5_000_000, &mut out);
        m.signals(&frame(&[(SignalId::EXEC, 1.0)]), 10_000_000, &mut out);
        assert!(out.is_empty());
        assert!(m.has_waiting());
        m.flush(15_000_000, &mut out);
        assert!(out.is_empty());
        m.flush(21_000_000, &mut out);
        assert_eq!(ccs(&out), vec![(20, 127)]);
        assert!(!m.has_waiting());
    }

    #[test]
    fn io_is_the_larger_of_read_and_write_and_cutoff_follows_its_curve() {
        let mut m = Mapper::new(&RouterConfig::default());
        let mut out = Vec::new();
        m.signals(
            &frame(&[(SignalId::IO_READ, 0.25), (SignalId::IO_WRITE, 0.75)]),
            0,
            &mut out,
        );
        assert!(ccs(&out).contains(&(24, 95)), "{out:?}");
        out.clear();
        let c = CurvePoint {
            node: 0,
            param: 1,
            value: 20_000.0,
            ..CurvePoint::default()
        };
        m.curve(&c, 0, &mut out);
        m.curve(&CurvePoint { param: 2, ..c }, 0, &mut out);
        assert_eq!(ccs(&out), vec![(74, 127)]);
    }

    #[test]
    fn the_example_config_states_the_defaults() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/khorus.toml"
        ))
        .unwrap();
        let c: RouterConfig = khorus_bus::settings::parse_section(&text, "router").unwrap();
        assert_eq!(c, RouterConfig::default());
        let e =
            khorus_bus::settings::parse_section::<RouterConfig>("[router]\nbogus = 1", "router")
                .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let mut c = RouterConfig::default();
        c.channels.bass = 17;
        assert!(c.validate().unwrap_err().contains("channels.bass"));
        let mut c = RouterConfig::default();
        c.cc.insert("nope".into(), 30);
        assert!(c.validate().unwrap_err().contains("router.cc.nope"));
        let mut c = RouterConfig::default();
        c.cc.insert("exec".into(), 123);
        assert!(c.validate().unwrap_err().contains("120"));
        let mut c = RouterConfig::default();
        c.osc.push("nowhere".into());
        assert!(c.validate().unwrap_err().contains("router.osc"));
        assert_eq!(RouterConfig::default().validate(), Ok(()));
        assert_eq!(RouterConfig::default().channel_mask(), 0b10_0000_0111);
    }
}
