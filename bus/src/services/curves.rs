//! `khorus/curves`: automation breakpoints for instrument and effect parameters.

use iceoryx2::prelude::ZeroCopySend;
use serde::{Deserialize, Serialize};

use crate::pubsub::topic;

/// How a parameter moves from the previous breakpoint to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum CurveShape {
    /// Jump to the value at `t_ns`.
    Step = 0,
    /// Straight line from the previous point.
    Linear = 1,
    /// Exponential (constant ratio per second; for frequencies and gains).
    Exponential = 2,
    /// Smooth (raised-cosine) from the previous point.
    Smooth = 3,
}

impl CurveShape {
    /// Decodes the wire byte; unknown values read as `Step`.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Linear,
            2 => Self::Exponential,
            3 => Self::Smooth,
            _ => Self::Step,
        }
    }
}

/// One breakpoint of a parameter's automation curve.
#[derive(Debug, Default, Clone, Copy, PartialEq, ZeroCopySend, Serialize, Deserialize)]
#[serde(into = "CurveJson", try_from = "CurveJson")]
#[type_name("khorus::CurvePoint/v1")]
#[repr(C)]
pub struct CurvePoint {
    /// Per-publisher sequence number, set by [`Publisher::publish`](crate::Publisher::publish).
    pub seq: u64,
    /// Monotonic time at which the parameter reaches `value`, ns.
    pub t_ns: u64,
    /// Node whose parameter moves (id assigned by control).
    pub node: u32,
    /// Parameter of that node (id assigned by control).
    pub param: u32,
    /// The value reached at `t_ns`, in the parameter's own unit.
    pub value: f32,
    /// [`CurveShape`] as a byte.
    pub shape: u8,
    /// Padding, zero.
    pub _pad: [u8; 3],
}

impl CurvePoint {
    /// The interpolation shape.
    pub fn shape(&self) -> CurveShape {
        CurveShape::from_u8(self.shape)
    }
}

// Control patterns emit several points per event; room for a dense second.
topic!(CurvePoint, "khorus/curves", buffer: 4096, history: 0, publishers: 4, subscribers: 8);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurveJson {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t_ns: u64,
    node: u32,
    param: u32,
    value: f32,
    shape: CurveShape,
}

impl From<CurvePoint> for CurveJson {
    fn from(c: CurvePoint) -> Self {
        Self {
            seq: c.seq,
            t_ns: c.t_ns,
            node: c.node,
            param: c.param,
            value: c.value,
            shape: c.shape(),
        }
    }
}

impl TryFrom<CurveJson> for CurvePoint {
    type Error = String;
    fn try_from(j: CurveJson) -> Result<Self, String> {
        if !j.value.is_finite() {
            return Err(format!("value {} is not finite", j.value));
        }
        Ok(Self {
            seq: j.seq,
            t_ns: j.t_ns,
            node: j.node,
            param: j.param,
            value: j.value,
            shape: j.shape as u8,
            _pad: [0; 3],
        })
    }
}
