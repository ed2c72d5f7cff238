//! Large sessions for the scale test and the session benchmark: node definitions of over a
//! hundred primitives, distinct per node, and patterns that keep about one voice sounding
//! however many nodes play.

use khorus_bus::Role;
use khorus_bus::commands::control::{Change, NodeSpec, PatternSpec};

/// Nodes in a large session.
pub const NODES: usize = 256;
/// Node `i`'s pattern: one short note a cycle, the nodes in turn (`i` of 256 steps), so
/// about one voice sounds at a time however many nodes play.
pub fn pattern(i: usize) -> String {
    match i {
        0 => format!("c3 ~!{}", NODES - 1),
        i if i == NODES - 1 => format!("~!{} c3", NODES - 1),
        i => format!("~!{i} c3 ~!{}", NODES - 1 - i),
    }
}

/// A definition of 104 primitives, distinct for each `i`: a saw through a chain of a
/// hundred gains and offsets, a filter and an envelope.
pub fn definition(i: usize) -> String {
    let mut nodes =
        vec![r#"{"id":"o","type":"osc","wave":"saw","freq":{"control":"freq"}}"#.to_string()];
    let mut prev = "o".to_string();
    for k in 0..100 {
        let id = format!("s{k}");
        nodes.push(if k % 2 == 0 {
            format!(
                r#"{{"id":"{id}","type":"mul","inputs":[{{"node":"{prev}"}},{}]}}"#,
                1.0 + (i * 100 + k) as f64 * 1e-7
            )
        } else {
            format!(
                r#"{{"id":"{id}","type":"add","inputs":[{{"node":"{prev}"}},{}]}}"#,
                1e-6 * k as f64
            )
        });
        prev = id;
    }
    nodes.push(format!(
        r#"{{"id":"flt","type":"filter","mode":"lowpass","input":{{"node":"{prev}"}},"cutoff":{{"control":"cutoff"}}}}"#
    ));
    nodes.push(r#"{"id":"env","type":"adsr","gate":{"control":"gate"},"attack":0.01,"decay":0.1,"sustain":0.5,"release":0.1}"#.into());
    nodes.push(r#"{"id":"out","type":"mul","inputs":[{"node":"flt"},{"node":"env"},{"control":"vel"},0.02]}"#.into());
    format!(
        r#"{{"name":"d{i}","controls":[{{"name":"cutoff","default":{},"min":80,"max":12000}}],"nodes":[{}],"output":{{"node":"out"}}}}"#,
        1000 + i,
        nodes.join(",")
    )
}

/// The batch that adds nodes `from..to` (named `n{i}`), each with its definition and
/// pattern, every fourth routed into the reverb.
pub fn nodes(from: usize, to: usize) -> Vec<Change> {
    let mut out = Vec::new();
    for i in from..to {
        let name = format!("n{i}");
        out.push(Change::AddNode {
            name: name.clone(),
            node: NodeSpec {
                builtin: None,
                def: Some(definition(i)),
                role: Role::Melody,
                polyphony: Some(2),
            },
        });
        out.push(Change::Play {
            node: name.clone(),
            param: None,
            pattern: Some(PatternSpec::mini(pattern(i), None)),
        });
        if i % 4 == 0 {
            out.push(Change::Route {
                from: name,
                to: "reverb".into(),
                level: 0.25,
            });
        }
    }
    out
}
