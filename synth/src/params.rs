//! Parameters by name: the table of a graph's instruments (then effects) and their parameters that the bus
//! thread keeps once the engine itself has gone to the audio thread, so a `Set` is resolved
//! to numbers, checked and clamped before anything is sent to the callback.

use crate::engine::{Engine, param};
use crate::schema::table;

/// One settable parameter.
#[derive(Debug, Clone, PartialEq)]
struct Param {
    name: String,
    min: f32,
    max: f32,
}

/// An instrument's name and parameters, in engine order.
#[derive(Debug, Clone, PartialEq)]
struct InstrumentParams {
    name: String,
    /// `gain`, `pan`, then the definition's controls: index = engine parameter number.
    params: Vec<Param>,
}

/// The names of a graph's instruments and parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamTable {
    instruments: Vec<InstrumentParams>,
}

/// A `Set` resolved to engine numbers, its value clamped to the parameter's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    /// Instrument index.
    pub inst: usize,
    /// Parameter number ([`param`]).
    pub param: usize,
    /// The value to apply.
    pub value: f32,
}

/// Why a `Set` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetError {
    /// No instrument has this name.
    #[error("no instrument or effect named {node:?} (nodes: {known})")]
    UnknownNode {
        /// The name asked for.
        node: String,
        /// The graph's instrument names, comma-separated.
        known: String,
    },
    /// The instrument has no such parameter.
    #[error("{node:?} has no parameter {param:?} (parameters: {known})")]
    UnknownParam {
        /// The instrument.
        node: String,
        /// The name asked for.
        param: String,
        /// Its parameter names, comma-separated.
        known: String,
    },
    /// NaN or an infinity.
    #[error("{node}.{param}: value {value} is not a finite number")]
    NotFinite {
        /// The instrument.
        node: String,
        /// The parameter.
        param: String,
        /// The value given.
        value: f32,
    },
}

impl ParamTable {
    /// The table of `engine`'s graph.
    pub fn of(engine: &Engine) -> Self {
        let instruments = engine
            .instruments()
            .iter()
            .map(|inst| {
                let mut params: Vec<Param> = table::INSTRUMENT
                    .iter()
                    .map(|p| Param {
                        name: p.name.into(),
                        min: p.min,
                        max: p.max,
                    })
                    .collect();
                debug_assert_eq!(params.len(), param::FIRST_CONTROL);
                params.extend(inst.controls().iter().map(|c| Param {
                    name: c.name.clone(),
                    min: c.min,
                    max: c.max,
                }));
                InstrumentParams {
                    name: inst.name().to_string(),
                    params,
                }
            })
            .chain(engine.effects().iter().map(|e| {
                InstrumentParams {
                    name: e.name.clone(),
                    params: e
                        .params()
                        .into_iter()
                        .map(|(name, min, max)| Param { name, min, max })
                        .collect(),
                }
            }))
            .collect();
        Self { instruments }
    }

    /// The instruments' names, in node order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.instruments.iter().map(|i| i.name.as_str())
    }

    /// Resolves `node.param = value`: the instrument and parameter by name, the value
    /// clamped to the parameter's range.
    pub fn resolve(&self, node: &str, param: &str, value: f32) -> Result<Resolved, SetError> {
        let (inst, index) = self.locate(node, param)?;
        if !value.is_finite() {
            return Err(SetError::NotFinite {
                node: node.to_string(),
                param: param.to_string(),
                value,
            });
        }
        let p = &self.instruments[inst].params[index];
        Ok(Resolved {
            inst,
            param: index,
            value: value.clamp(p.min, p.max),
        })
    }

    /// The node index of `node`.
    pub fn node(&self, node: &str) -> Result<usize, SetError> {
        self.instruments
            .iter()
            .position(|i| i.name == node)
            .ok_or_else(|| SetError::UnknownNode {
                node: node.to_string(),
                known: join(self.instruments.iter().map(|i| i.name.as_str())),
            })
    }

    /// The node index and parameter number of `node.param`.
    pub fn locate(&self, node: &str, param: &str) -> Result<(usize, usize), SetError> {
        let Some(inst) = self.instruments.iter().position(|i| i.name == node) else {
            return Err(SetError::UnknownNode {
                node: node.to_string(),
                known: join(self.instruments.iter().map(|i| i.name.as_str())),
            });
        };
        let entry = &self.instruments[inst];
        let Some(index) = entry.params.iter().position(|p| p.name == param) else {
            return Err(SetError::UnknownParam {
                node: node.to_string(),
                param: param.to_string(),
                known: join(entry.params.iter().map(|p| p.name.as_str())),
            });
        };
        Ok((inst, index))
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_instruments_are_found_by_name_and_values_clamped() {
        let table = ParamTable::of(
            &crate::graph::GraphSpec::builtin_patch(2)
                .build(48_000.0)
                .unwrap(),
        );
        let r = table.resolve("bass", "cutoff", 1e9).unwrap();
        assert_eq!(
            r,
            Resolved {
                inst: crate::builtin::patch::BASS,
                param: param::FIRST_CONTROL,
                value: 6000.0
            }
        );
        assert_eq!(table.resolve("hat", "pan", -7.0).unwrap().value, -1.0);
        assert_eq!(
            table.resolve("pad", "gain", 0.5).unwrap().param,
            param::GAIN
        );
        for name in [
            "pad", "lead", "bass", "chords", "kick", "click", "hat", "glitch",
        ] {
            assert!(table.resolve(name, "gain", 1.0).is_ok(), "{name}");
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let table = ParamTable::of(
            &crate::graph::GraphSpec::builtin_patch(2)
                .build(48_000.0)
                .unwrap(),
        );
        let e = table.resolve("piano", "gain", 1.0).unwrap_err().to_string();
        assert!(e.contains("\"piano\"") && e.contains("pad, lead"), "{e}");
        let e = table
            .resolve("kick", "cutoff", 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"kick\"") && e.contains("\"cutoff\""), "{e}");
        let e = table
            .resolve("pad", "cutoff", f32::NAN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pad.cutoff") && e.contains("NaN"), "{e}");
    }
}
