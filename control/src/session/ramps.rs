//! Ramps: numbers moving to their new values over bars (krach's `transition(bars=8)`).
//!
//! A batch with [`Change::Over`](khorus_bus::commands::control::Change::Over) (or a session
//! loaded `--over`) ramps every number it changes that can move smoothly: an instrument's
//! gain, pan and number controls, an effect's settings (return, room, feedback…), a send
//! level (`from->to`, a route there before and after), and the tempo. The session keeps each
//! ramp in progress ([`Ramp`]: what, from, to, bars, and the cycle the composer started it
//! at), so `khorus session --json` shows it and a restarted stage resumes it where it is. While a ramp runs the
//! synth's graph holds the ramp's start value (the composer's curve points move it), so a graph
//! edit elsewhere leaves the moving number alone. A later change to the number ends its ramp.
//! A send level is not a parameter curve points can reach: control hands the synth its ramp
//! in time (from the cycle's instant over the span's, on the published transport). Mute, and
//! a route added or removed, still jump.

use serde::{Deserialize, Serialize};

use super::{ControlValue, Kind, Session};

/// Bars a ramp may span.
pub const BARS: std::ops::RangeInclusive<u32> = 1..=1024;

/// `bars` if a ramp may span it (0: no ramp).
pub fn check_bars(bars: u32) -> Result<u32, String> {
    if bars != 0 && !BARS.contains(&bars) {
        return Err(format!(
            "{bars} bars is outside {}..={}",
            BARS.start(),
            BARS.end()
        ));
    }
    Ok(bars)
}

/// A number on its way to the session's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// `tempo`, or `node.param`.
    pub what: String,
    /// Its value at the start.
    pub from: f64,
    /// Its value at the end: the session's. (The session keeps its ramps sorted by `what`.)
    pub to: f64,
    /// Bars (cycles) it takes.
    pub bars: u32,
    /// The cycle it starts at (exact, `n/d`), as the composer placed it; unset until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

impl Ramp {
    /// Where it starts, as a float (None until placed, or unreadable).
    pub fn start_cycle(&self) -> Option<f64> {
        let text = self.start.as_deref()?;
        let q: khorus_composer::time::Q = text.parse().ok()?;
        Some(q.to_f64())
    }

    /// Its value at cycle position `c` (its start value before it is placed).
    pub fn value_at(&self, c: f64) -> f64 {
        let Some(start) = self.start_cycle() else {
            return self.from;
        };
        let x = ((c - start) / self.bars as f64).clamp(0.0, 1.0);
        self.from + (self.to - self.from) * x
    }

    /// Whether it has ended by cycle position `c`.
    pub fn done_by(&self, c: f64) -> bool {
        self.start_cycle()
            .is_some_and(|s| s + self.bars as f64 <= c)
    }

    /// The node and parameter it moves (`node.param`).
    pub fn param(&self) -> Option<(&str, &str)> {
        self.what.split_once('.')
    }

    /// The route whose level it moves (`from->to`).
    pub fn route(&self) -> Option<(&str, &str)> {
        self.what.split_once("->")
    }
}

impl Session {
    /// The number a ramp's `what` names, if the session holds one there that can ramp.
    pub fn rampable(&self, what: &str) -> Option<f64> {
        if what == "tempo" {
            return self.bpm();
        }
        if let Some((from, to)) = what.split_once("->") {
            let r = self.routes.iter().find(|r| r.from == from && r.to == to)?;
            return Some(r.level);
        }
        let (node, param) = what.split_once('.')?;
        let n = self.nodes.get(node)?;
        match (n.kind(), param) {
            (Kind::Instrument, "gain") => Some(n.gain),
            (Kind::Instrument, "pan") => Some(n.pan),
            (kind, p) => match n.controls.get(p) {
                Some(ControlValue::Number(x)) => Some(*x),
                Some(_) => None,
                // An effect's setting never set is at its default.
                None if kind == Kind::Effect => n.setting_default(p),
                None => None,
            },
        }
    }

    /// The tempo it plays at: its own, else its score's.
    pub fn bpm(&self) -> Option<f64> {
        if let Some(t) = self.tempo {
            return Some(t.bpm);
        }
        let choice = self.score.as_ref()?;
        let score = khorus_composer::score::Score::from_name(&choice.name)?;
        let params = khorus_bus::commands::composer::ScoreParams {
            key: choice.params.get("key").cloned(),
            scale: choice.params.get("scale").cloned(),
            bpm: choice.params.get("bpm").and_then(|b| b.parse().ok()),
            density: None,
            routes: None,
        };
        Some(score.params(&params).ok()?.bpm.to_f64())
    }

    /// The ramp on `what`, if one runs.
    pub fn ramp_of(&self, what: &str) -> Option<&Ramp> {
        self.ramps.iter().find(|r| r.what == what)
    }

    /// After a batch (or a loaded session) made `self` from `old`: ramps whose number
    /// changed (or went) end, and with `over` bars every rampable number that differs from
    /// `old` ramps there.
    pub fn settle_ramps(&mut self, old: &Session, over: u32) {
        let kept: Vec<Ramp> = std::mem::take(&mut self.ramps)
            .into_iter()
            .filter(|r| self.rampable(&r.what) == Some(r.to))
            .collect();
        self.ramps = kept;
        if over == 0 {
            return;
        }
        let mut whats = vec!["tempo".to_string()];
        whats.extend(self.routes.iter().map(|r| format!("{}->{}", r.from, r.to)));
        for (name, node) in &self.nodes {
            let mix = match node.kind() {
                Kind::Instrument => &["gain", "pan"][..],
                Kind::Effect => &[],
            };
            for p in mix
                .iter()
                .map(|p| p.to_string())
                .chain(node.controls.keys().cloned())
            {
                whats.push(format!("{name}.{p}"));
            }
        }
        for what in whats {
            let (Some(from), Some(to)) = (old.rampable(&what), self.rampable(&what)) else {
                continue;
            };
            // A score's own tempo is the score's to set (it jumps with it).
            if what == "tempo" && self.tempo.is_none() {
                continue;
            }
            if from == to {
                continue;
            }
            self.ramps.retain(|r| r.what != what);
            self.ramps.push(Ramp {
                what,
                from,
                to,
                bars: over,
                start: None,
            });
        }
        self.ramps.sort_by(|a, b| a.what.cmp(&b.what));
    }

    /// Records a ramp in progress (a session file's, or [`Session::to_changes`]'s).
    pub(super) fn add_ramp(&mut self, ramp: Ramp) -> Result<(), String> {
        let Ramp {
            what,
            from,
            to,
            bars,
            start,
        } = &ramp;
        let value = self.rampable(what).ok_or_else(|| {
            format!(
                "{what}: not a number that ramps (tempo, an instrument's gain, pan or number \
                 control, an effect's setting, or a route's level: from->to)"
            )
        })?;
        if value != *to {
            return Err(format!(
                "{what}: the ramp ends at {to} but the value is {value}"
            ));
        }
        if !from.is_finite() {
            return Err(format!("{what}: ramp from {from}"));
        }
        if !BARS.contains(bars) {
            return Err(format!(
                "{what}: {bars} bars is outside {}..={}",
                BARS.start(),
                BARS.end()
            ));
        }
        if let Some(s) = start
            && s.parse::<khorus_composer::time::Q>().is_err()
        {
            return Err(format!(
                "{what}: ramp start {s:?} is not a cycle (n or n/d)"
            ));
        }
        self.ramps.retain(|r| r.what != *what);
        self.ramps.push(ramp);
        self.ramps.sort_by(|a, b| a.what.cmp(&b.what));
        Ok(())
    }
}
