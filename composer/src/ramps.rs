//! Number ramps (krach's transition): a parameter moving in a straight line — linear in
//! cycles, so a tempo ramp beside it bends it in time but not in bars — from one value to
//! another over a span of cycles.
//!
//! A ramp is sent as curve points on every beat it covers: a step to its start value at its
//! start, then a linear point per beat, the last at its end. The synth moves a linear point
//! from the point before it, so the parameter follows the line whatever the lookahead. A ramp
//! that is resumed (after a stage restarted) first steps to where the line is at the horizon.
//! Finished ramps are dropped; with none, nothing here runs.

use khorus_bus::{CurvePoint, CurveShape};

use crate::time::{Q, TimeError};
use crate::transport::Transport;

/// One parameter's ramp.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// Node id.
    pub node: u32,
    /// Parameter id.
    pub param: u32,
    /// Value at `start`.
    pub from: f64,
    /// Value at `end` and after.
    pub to: f64,
    /// Where it starts, cycles.
    pub start: Q,
    /// Where it ends, cycles.
    pub end: Q,
    /// Whether to step to the line's value at the next horizon first (a resumed ramp).
    announce: bool,
}

impl Ramp {
    /// A ramp of `node`'s `param` from `from` at `start` to `to` at `end`.
    pub fn new(node: u32, param: u32, from: f64, to: f64, start: Q, end: Q) -> Self {
        Self {
            node,
            param,
            from,
            to,
            start,
            end,
            announce: false,
        }
    }

    /// Its value at cycle position `c`.
    pub fn value_at(&self, c: Q) -> Result<f64, TimeError> {
        if c <= self.start {
            return Ok(self.from);
        }
        if c >= self.end {
            return Ok(self.to);
        }
        let part = ((c - self.start)? / (self.end - self.start)?)?.to_f64();
        Ok(self.from + (self.to - self.from) * part)
    }
}

/// The ramps in progress.
#[derive(Debug, Clone, Default)]
pub struct Ramps {
    ramps: Vec<Ramp>,
}

impl Ramps {
    /// None runs.
    pub fn is_empty(&self) -> bool {
        self.ramps.is_empty()
    }

    /// The ramps in progress.
    pub fn all(&self) -> &[Ramp] {
        &self.ramps
    }

    /// Starts `ramp`, replacing any on the same parameter: if that one is still under way
    /// where the new one starts, the new one starts from where its line is there. One that
    /// has begun before `horizon` (resumed) first steps to where its line is there.
    pub fn start(&mut self, mut ramp: Ramp, horizon: Q) {
        let key = (ramp.node, ramp.param);
        if let Some(old) = self.ramps.iter().find(|r| (r.node, r.param) == key)
            && old.start < ramp.start
            && ramp.start < old.end
            && let Ok(v) = old.value_at(ramp.start)
        {
            ramp.from = v;
        }
        self.stop(ramp.node, ramp.param);
        ramp.announce = ramp.start < horizon;
        if ramp.end > horizon {
            self.ramps.push(ramp);
        }
    }

    /// Ends the ramp on `node`'s `param`, if one runs (the parameter stays where it got to).
    pub fn stop(&mut self, node: u32, param: u32) {
        self.ramps.retain(|r| (r.node, r.param) != (node, param));
    }

    /// The points of every ramp in `[from, to)`, appended to `out`; ramps that end before
    /// `to` are then done.
    pub fn emit(
        &mut self,
        transport: &Transport,
        from: Q,
        to: Q,
        out: &mut Vec<CurvePoint>,
    ) -> Result<(), TimeError> {
        let beats = Q::int(transport.beats_per_cycle() as i64);
        for r in &mut self.ramps {
            let point = |c: Q, shape: CurveShape, r: &Ramp| -> Result<CurvePoint, TimeError> {
                Ok(CurvePoint {
                    seq: 0,
                    t_ns: transport.ns_at(c)?,
                    node: r.node,
                    param: r.param,
                    value: r.value_at(c)? as f32,
                    shape: shape as u8,
                    _pad: [0; 3],
                })
            };
            if std::mem::take(&mut r.announce) {
                out.push(point(from.max(r.start), CurveShape::Step, r)?);
            }
            // Its start, every beat inside it, and its end: those in [from, to).
            let inside = |c: Q| c >= from && c < to && c >= r.start && c <= r.end;
            let first = (from.max(r.start) * beats)?.ceil();
            let stop = (to.min(r.end) * beats)?.ceil() + 1;
            let beats_in = (first..stop).map(|b| Q::int(b) / beats);
            let mut last = None;
            for c in std::iter::once(Ok(r.start))
                .chain(beats_in)
                .chain(std::iter::once(Ok(r.end)))
            {
                let c = c?;
                if !inside(c) || last.is_some_and(|l| c <= l) {
                    continue;
                }
                let shape = if c == r.start {
                    CurveShape::Step
                } else {
                    CurveShape::Linear
                };
                out.push(point(c, shape, r)?);
                last = Some(c);
            }
        }
        self.ramps.retain(|r| r.end >= to);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    #[test]
    fn a_ramp_is_a_step_at_its_start_then_a_linear_point_on_every_beat_to_its_end() {
        let t = Transport::new(Q::int(120), 4, 0).unwrap();
        let mut ramps = Ramps::default();
        ramps.start(Ramp::new(3, 0, 1.0, 0.0, Q::ONE, Q::int(3)), Q::ZERO);
        let mut out = Vec::new();
        // In pieces that do not fall on beats: nothing lost, nothing twice.
        let cuts = [
            Q::ZERO,
            q(7, 10),
            q(13, 10),
            Q::int(2),
            q(23, 10),
            Q::int(4),
        ];
        for w in cuts.windows(2) {
            ramps.emit(&t, w[0], w[1], &mut out).unwrap();
        }
        assert!(ramps.is_empty(), "done after its end");
        let got: Vec<(u64, f32, CurveShape)> =
            out.iter().map(|p| (p.t_ns, p.value, p.shape())).collect();
        assert_eq!(got.len(), 9, "{got:?}");
        assert_eq!(got[0], (2_000_000_000, 1.0, CurveShape::Step));
        for (k, &(t_ns, v, shape)) in got.iter().enumerate().skip(1) {
            assert_eq!(t_ns, 2_000_000_000 + k as u64 * 500_000_000);
            assert!((v - (1.0 - k as f32 / 8.0)).abs() < 1e-6, "beat {k}: {v}");
            assert_eq!(shape, CurveShape::Linear);
        }
    }

    #[test]
    fn a_resumed_ramp_steps_to_its_line_first_and_a_new_one_replaces_it() {
        let t = Transport::new(Q::int(120), 4, 0).unwrap();
        let mut ramps = Ramps::default();
        // Begun at cycle 0, resumed at 3/8 (between beats).
        ramps.start(Ramp::new(1, 2, 0.0, 8.0, Q::ZERO, Q::int(2)), q(3, 8));
        let mut out = Vec::new();
        ramps.emit(&t, q(3, 8), q(5, 8), &mut out).unwrap();
        assert_eq!(out[0].shape(), CurveShape::Step);
        assert_eq!((out[0].t_ns, out[0].value), (750_000_000, 1.5));
        assert_eq!((out[1].t_ns, out[1].value), (1_000_000_000, 2.0));
        ramps.start(Ramp::new(1, 2, 9.0, 0.0, q(5, 8), Q::ONE), q(5, 8));
        assert_eq!(ramps.all().len(), 1, "one ramp per parameter");
        assert_eq!(
            ramps.all()[0].from,
            2.5,
            "from where the old line was, not 9"
        );
        ramps.stop(1, 2);
        assert!(ramps.is_empty());
    }
}
