//! What each kernel signal does in a score, read from the score's own slot specs (so the
//! explanation cannot drift from what plays): every signal expression in a slot's source,
//! transforms and controls is listed under the signals it reads.

use std::collections::BTreeMap;

use khorus_bus::commands::composer::{
    ControlParam, ControlValue, Simple, SlotSpec, Source, Target, Transform,
};

use crate::score::{Params, Score};
use crate::signal::is_signal_name;

/// Signals in the order a table lists them: overall activity first, then the kernel's.
const ORDER: &[&str] = &[
    "activity", "exec", "rx", "tx", "csw", "io", "io_read", "io_write", "io_ops", "retx", "irq",
    "mem", "cpu",
];

/// What each signal drives in `score`: (signal, uses), in table order.
pub fn explain(score: Score, p: &Params) -> Vec<(String, Vec<String>)> {
    let mut by_signal: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (slot, spec) in score.specs(p) {
        for (expr, what) in uses(slot.trim_start_matches("score/"), &spec) {
            for sig in signals_in(&expr) {
                by_signal
                    .entry(sig)
                    .or_default()
                    .push(format!("{what}: {expr}"));
            }
        }
    }
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len());
    let mut rows: Vec<_> = by_signal.into_iter().collect();
    rows.sort_by_key(|(s, _)| (rank(s), s.clone()));
    rows
}

/// The explanation as a plain-text table.
pub fn table(score: Score, p: &Params) -> String {
    let rows = explain(score, p);
    let width = rows.iter().map(|(s, _)| s.len()).max().unwrap_or(6).max(6);
    let mut out = format!(
        "score {}: what each kernel signal drives\n{:width$}  drives\n",
        score.name(),
        "signal"
    );
    for (signal, uses) in rows {
        for (i, u) in uses.iter().enumerate() {
            let name = if i == 0 { signal.as_str() } else { "" };
            out.push_str(&format!("{name:width$}  {u}\n"));
        }
    }
    out
}

/// Every expression in `spec` with what it does, in words.
fn uses(slot: &str, spec: &SlotSpec) -> Vec<(String, String)> {
    let part = match spec.target {
        Target::Notes { role, .. } => format!("{slot} ({})", role.name()),
        Target::Curve { .. } => format!("{slot} curve"),
    };
    let mut out = Vec::new();
    if let Source::Expr { expr, .. } = &spec.source {
        out.push((expr.clone(), format!("sets the {part}")));
    }
    let simple = |s: &Simple| -> Option<(String, &'static str)> {
        match s {
            Simple::Fast(a) | Simple::Slow(a) => Some((a.clone(), "speed")),
            Simple::Early(a) | Simple::Late(a) => Some((a.clone(), "shift")),
            Simple::Ply(a) => Some((a.clone(), "repeats")),
            Simple::Add(a) => Some((a.clone(), "transposes")),
            Simple::DegradeBy(a) => Some((a.clone(), "thins (drop probability)")),
            Simple::Rev => None,
        }
    };
    for t in &spec.transforms {
        let (expr, what): (String, &str) = match t {
            Transform::Gate(e) => (e.clone(), "gates (plays only while true)"),
            Transform::DegradeBy(e) => (e.clone(), "thins (drop probability)"),
            Transform::Fast(e) | Transform::Slow(e) => (e.clone(), "speed"),
            Transform::Early(e) | Transform::Late(e) => (e.clone(), "shift"),
            Transform::Ply(e) => (e.clone(), "repeats"),
            Transform::Add(e) => (e.clone(), "transposes"),
            Transform::Segment(e) => (e.clone(), "segments"),
            Transform::Over(e) => (e.clone(), "layers"),
            Transform::SometimesBy { prob, .. } => (prob.clone(), "how often a variation plays"),
            Transform::Every { then, .. } => match simple(then) {
                Some(u) => u,
                None => continue,
            },
            Transform::Euclid {
                pulses,
                steps,
                rotation,
            } => (format!("({pulses},{steps},{rotation})"), "rhythm"),
            Transform::Swing { amount, .. } => (amount.clone(), "swing"),
            Transform::Range { lo, hi } => (format!("{lo}..{hi}"), "range"),
            Transform::Mask(e) | Transform::Struct(e) => (e.clone(), "rhythm"),
            Transform::Rev | Transform::Palindrome | Transform::Scale { .. } => continue,
            Transform::Repeat(_) => continue,
        };
        out.push((expr, format!("{what} the {part}")));
    }
    for c in &spec.controls {
        let ControlValue::Expr(e) = &c.value else {
            continue;
        };
        let param = match c.param {
            ControlParam::Velocity => "velocity".to_string(),
            ControlParam::Legato => "legato".to_string(),
            ControlParam::Param(id) => format!("parameter {id}"),
        };
        out.push((e.clone(), format!("{param} of the {part}")));
    }
    out
}

/// The signal names `expr` reads, each once, in order of appearance.
fn signals_in(expr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if is_signal_name(word) && !out.iter().any(|w| w == word) {
            out.push(word.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arp_table_comes_from_its_slots() {
        let rows = explain(Score::Arp, &Score::Arp.defaults());
        let get = |s: &str| {
            rows.iter()
                .find(|(n, _)| n == s)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        };
        assert_eq!(rows[0].0, "activity");
        assert!(
            get("activity").contains(
                &"gates (plays only while true) the arp (melody): activity > 0.05".to_string()
            ),
            "{:?}",
            get("activity")
        );
        assert_eq!(
            get("tx"),
            ["thins (drop probability) the arp (melody): 1 - clamp(tx * 2 + 0.500 - 0.3, 0, 1)"]
        );
        assert_eq!(get("io"), ["sets the cutoff curve: range(io, 80, 9000)"]);
        assert!(
            get("exec")
                .contains(&"velocity of the arp (melody): range(exec, 0.45, 0.95)".to_string())
        );
        let text = table(Score::Arp, &Score::Arp.defaults());
        assert!(
            text.starts_with(
                "score arp: what each kernel signal drives\nsignal    drives\nactivity  "
            ),
            "{text}"
        );
    }

    #[test]
    fn every_score_is_explained_and_the_drone_itself_has_no_floor() {
        for score in Score::ALL {
            assert!(
                !explain(score, &score.defaults()).is_empty(),
                "{}",
                score.name()
            );
        }
        let rows = explain(Score::Drone, &Score::Drone.defaults());
        let (_, activity) = rows.iter().find(|(s, _)| s == "activity").unwrap();
        assert!(
            activity.iter().all(|u| u.contains("glitch")),
            "{activity:?}"
        );
    }
}
