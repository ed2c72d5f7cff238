//! Compiles the command IR ([`SlotSpec`]) into a [`Voice`], validating everything first: a
//! refusal names the field (`transforms[2].fast`) and, for text, the line:column with a caret.
//! The compiled pattern is also test-queried over one cycle, so arithmetic overflow is caught
//! before the slot changes.

use khorus_bus::commands::composer::{
    ControlParam, ControlValue, Simple, SlotSpec, Source, Target, Transform,
};

use crate::combinators::Param;
use crate::controls::{Control, Controls, to_notes};
use crate::mini;
use crate::notes::Scale;
use crate::pattern::{Context, Pattern};
use crate::scheduler::Voice;
use crate::signal::parse_expr;
use crate::syntax::SyntaxError;
use crate::time::Q;

/// Why a slot spec was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct IrError {
    /// Which field (`source`, `transforms[1].fast`, `controls[0]`, …).
    pub field: String,
    /// What is wrong (syntax errors include line:col and a caret line).
    pub message: String,
}

fn err(field: impl Into<String>, message: impl ToString) -> IrError {
    IrError {
        field: field.into(),
        message: message.to_string(),
    }
}

fn syntax(field: &str, e: SyntaxError) -> IrError {
    err(field, e)
}

/// The random stream Tidal's own `degradeBy` and `sometimesBy` read (see [`crate::rand`]):
/// the same transform makes the same choices as in Tidal, in every slot.
const TIDAL_SEED: u32 = 0;

/// A numeric argument: a constant or a live signal expression.
pub fn param(field: &str, arg: &str) -> Result<Param, IrError> {
    let e = parse_expr(arg).map_err(|e| syntax(field, e))?;
    if e.is_constant() {
        let v = e
            .eval(Q::ZERO, &Default::default())
            .map_err(|x| err(field, x))?;
        Ok(Param::Const(v))
    } else {
        Ok(Param::Pat(e.pattern()))
    }
}

fn const_q(field: &str, arg: &str) -> Result<Q, IrError> {
    match param(field, arg)? {
        Param::Const(v) => Ok(v),
        Param::Pat(_) => Err(err(field, "must be a constant")),
    }
}

fn simple(field: &str, s: &Simple, p: Pattern<Controls>) -> Result<Pattern<Controls>, IrError> {
    let f = |name: &str| format!("{field}.{name}");
    Ok(match s {
        Simple::Fast(a) => p.fast(param(&f("fast"), a)?),
        Simple::Slow(a) => p.slow(param(&f("slow"), a)?),
        Simple::Early(a) => p.early(param(&f("early"), a)?),
        Simple::Late(a) => p.late(param(&f("late"), a)?),
        Simple::Rev => p.rev(),
        Simple::Ply(a) => p.ply(param(&f("ply"), a)?),
        Simple::Add(a) => p.add_note(param(&f("add"), a)?.pattern()),
        Simple::DegradeBy(a) => p.degrade_by(param(&f("degrade_by"), a)?, TIDAL_SEED),
    })
}

/// Compiles and validates a slot spec; returns the voice and the change quantum.
pub fn compile(spec: &SlotSpec) -> Result<(Voice, Q), IrError> {
    let scales: Vec<_> = spec
        .transforms
        .iter()
        .filter_map(|t| match t {
            Transform::Scale { key, scale } => Some((key, scale)),
            _ => None,
        })
        .collect();
    if scales.len() > 1 {
        return Err(err("transforms", "at most one scale"));
    }
    let scale = match scales.first() {
        Some((k, s)) => Some(Scale::new(k, s).map_err(|e| err("transforms.scale", e))?),
        None => None,
    };
    let mut p: Pattern<Controls> = match &spec.source {
        // A curve's points are numbers: words and note names are refused where they are.
        Source::Mini(src) if matches!(spec.target, Target::Curve { .. }) => {
            mini::parse_numbers(src)
                .map_err(|e| syntax("source", e))?
                .fmap(|q| Controls::note(q.to_f64()))
        }
        Source::Mini(src) => to_notes(mini::parse(src).map_err(|e| syntax("source", e))?, scale),
        Source::Expr { expr, per_cycle } => {
            if !(1..=1024).contains(per_cycle) {
                return Err(err("source.per_cycle", "must be 1..=1024"));
            }
            let e = parse_expr(expr).map_err(|e| syntax("source", e))?;
            e.pattern()
                .segment(Q::int(*per_cycle as i64))
                .fmap(|v| Controls::note(v.to_f64()))
        }
    };
    for (i, t) in spec.transforms.iter().enumerate() {
        let field = |name: &str| format!("transforms[{i}].{name}");
        p = match t {
            Transform::Fast(a) => p.fast(param(&field("fast"), a)?),
            Transform::Slow(a) => p.slow(param(&field("slow"), a)?),
            Transform::Over(a) => p.over(param(&field("over"), a)?),
            Transform::Early(a) => p.early(param(&field("early"), a)?),
            Transform::Late(a) => p.late(param(&field("late"), a)?),
            Transform::Rev => p.rev(),
            Transform::Palindrome => p.palindrome(),
            Transform::Ply(a) => p.ply(param(&field("ply"), a)?),
            Transform::DegradeBy(a) => p.degrade_by(param(&field("degrade_by"), a)?, TIDAL_SEED),
            Transform::Every { n, then } => {
                if *n < 1 {
                    return Err(err(field("every.n"), "must be at least 1"));
                }
                let inner = simple(&field("every"), then, p.clone())?;
                p.every(*n, |_| inner)
            }
            Transform::SometimesBy { prob, then } => {
                let prob = param(&field("sometimes_by.prob"), prob)?;
                let mut failed = None;
                let out = p.sometimes_by(prob, TIDAL_SEED, |q| {
                    match simple(&field("sometimes_by"), then, q.clone()) {
                        Ok(x) => x,
                        Err(e) => {
                            failed = Some(e);
                            q
                        }
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                out
            }
            Transform::Euclid {
                pulses,
                steps,
                rotation,
            } => p.euclid(
                param(&field("euclid.pulses"), pulses)?,
                param(&field("euclid.steps"), steps)?,
                param(&field("euclid.rotation"), rotation)?,
            ),
            Transform::Swing { amount, per_cycle } => {
                let n = const_q(&field("swing.per_cycle"), per_cycle)?;
                if n <= Q::ZERO {
                    return Err(err(field("swing.per_cycle"), "must be positive"));
                }
                p.swing_by(const_q(&field("swing.amount"), amount)?, n)
            }
            Transform::Mask(m) => {
                p.mask(mini::parse_bools(m).map_err(|e| syntax(&field("mask"), e))?)
            }
            Transform::Struct(m) => {
                p.struct_(mini::parse_bools(m).map_err(|e| syntax(&field("struct"), e))?)
            }
            Transform::Gate(expr) => {
                let e = parse_expr(expr).map_err(|e| syntax(&field("gate"), e))?;
                p.mask(e.pattern().above(Q::ZERO))
            }
            Transform::Segment(a) => p.segment(param(&field("segment"), a)?),
            Transform::Range { lo, hi } => {
                let lo = const_q(&field("range.lo"), lo)?.to_f64();
                let hi = const_q(&field("range.hi"), hi)?.to_f64();
                p.fmap(move |c| {
                    let mut c = c.clone();
                    c.note = c.note.map(|v| lo + v * (hi - lo));
                    c
                })
            }
            Transform::Scale { .. } => p,
            Transform::Add(a) => p.add_note(param(&field("add"), a)?.pattern()),
            Transform::Repeat(n) => {
                if !(1..=4096).contains(n) {
                    return Err(err(field("repeat"), "must be 1..=4096"));
                }
                p.repeat(*n as usize)
            }
        };
    }
    for (i, c) in spec.controls.iter().enumerate() {
        let field = format!("controls[{i}]");
        let values: Pattern<Q> = match &c.value {
            ControlValue::Mini(src) => mini::parse_numbers(src).map_err(|e| syntax(&field, e))?,
            ControlValue::Expr(src) => parse_expr(src).map_err(|e| syntax(&field, e))?.pattern(),
        };
        let control = match c.param {
            ControlParam::Velocity => Control::Velocity,
            ControlParam::Legato => Control::Legato,
            ControlParam::Param(id) => Control::Param(id),
        };
        p = p.set(control, values);
    }
    if let Target::Notes {
        channel: Some(ch), ..
    } = spec.target
        && !(1..=16).contains(&ch)
    {
        return Err(err("target.channel", "must be 1..=16"));
    }
    let quantum = match &spec.quantum {
        Some(q) => const_q("quantum", q)?,
        None => Q::ONE,
    };
    if quantum <= Q::ZERO {
        return Err(err("quantum", "must be positive"));
    }
    p.query_span(Q::ZERO, Q::ONE, &Context::default())
        .map_err(|e| err("pattern", format!("cannot be played: {e}")))?;
    Ok((
        Voice {
            pattern: p,
            target: spec.target,
        },
        quantum,
    ))
}
