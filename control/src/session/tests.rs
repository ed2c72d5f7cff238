//! The session's own tests: batches applied or refused whole, ids kept, values checked
//! against their parameters, and a session rebuilt exactly by its changes.

use super::*;

fn set(node: &str, param: &str, v: f64) -> Change {
    Change::Set {
        node: node.into(),
        param: param.into(),
        value: Value::Number(v),
    }
}

#[test]
fn the_default_session_has_the_builtins_routed_to_both_effects() {
    let s = Session::default_session();
    assert_eq!(s.nodes.len(), 10);
    assert_eq!(s.nodes["pad"].role, Role::Melody);
    assert!(
        s.routes
            .iter()
            .any(|r| r.from == "pad" && r.to == "reverb" && r.level == 0.45)
    );
    let ids: Vec<u32> = s.nodes.values().map(|n| n.id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    assert_eq!(s.nodes["pad"].params["cutoff"], 2);
}

#[test]
fn a_refused_batch_names_the_change_and_leaves_the_session_alone() {
    let s = Session::default_session();
    let before = serde_json::to_string(&s).unwrap();
    let e = s
        .apply(&[set("pad", "gain", 0.5), set("piano", "gain", 1.0)])
        .unwrap_err();
    assert_eq!(e.index, 2);
    assert!(e.message.contains("\"piano\""), "{e}");
    assert_eq!(serde_json::to_string(&s).unwrap(), before);
}

#[test]
fn route_loops_are_refused_naming_the_route() {
    let s = Session::default_session();
    let e = s
        .apply(&[
            Change::Route {
                from: "delay".into(),
                to: "reverb".into(),
                level: 0.3,
            },
            Change::Route {
                from: "reverb".into(),
                to: "delay".into(),
                level: 0.3,
            },
        ])
        .unwrap_err();
    assert!(e.message.contains("would close a loop"), "{e}");
    let ok = s
        .apply(&[Change::Route {
            from: "delay".into(),
            to: "reverb".into(),
            level: 0.3,
        }])
        .unwrap();
    assert_eq!(ok.effect_order().unwrap(), vec!["delay", "reverb"]);
}

#[test]
fn ids_stay_stable_when_a_node_is_replaced_and_are_never_reused() {
    let s = Session::default_session();
    let pad = s.nodes["pad"].id;
    let s2 = s
        .apply(&[
            Change::AddNode {
                name: "pad".into(),
                node: builtin_spec("lead", Role::Melody),
            },
            Change::RemoveNode {
                name: "kick".into(),
            },
            Change::AddNode {
                name: "kick2".into(),
                node: builtin_spec("kick", Role::Percussion),
            },
        ])
        .unwrap();
    assert_eq!(s2.nodes["pad"].id, pad);
    assert!(s2.nodes["kick2"].id > s.nodes.values().map(|n| n.id).max().unwrap());
}

#[test]
fn values_are_checked_against_the_parameter() {
    let s = Session::default_session();
    assert!(s.apply(&[set("pad", "gain", 9.0)]).is_err());
    assert!(s.apply(&[set("pad", "nope", 1.0)]).is_err());
    assert!(s.apply(&[set("pad", "cutoff", f64::NAN)]).is_err());
    let e = s
        .apply(&[Change::Set {
            node: "pad".into(),
            param: "gain".into(),
            value: Value::Expr("io".into()),
        }])
        .unwrap_err();
    assert!(e.message.contains("takes a number"), "{e}");
    let ok = s
        .apply(&[Change::Set {
            node: "pad".into(),
            param: "cutoff".into(),
            value: Value::Expr("range(io, 200, 4000)".into()),
        }])
        .unwrap();
    assert_eq!(
        ok.nodes["pad"].controls["cutoff"],
        ControlValue::Expr("range(io, 200, 4000)".into())
    );
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    /// One generated node: built-in, role, mix, controls (numbers or expressions), and
    /// a pattern.
    #[derive(Debug, Clone)]
    struct Gen {
        builtin: usize,
        role: usize,
        gain: f64,
        pan: f64,
        mute: bool,
        controls: Vec<(usize, Option<u16>)>,
        pattern: Option<(usize, Option<u8>)>,
        sends: Vec<(usize, u16)>,
    }

    const ROLES: [Role; 5] = [
        Role::Melody,
        Role::Bass,
        Role::Chords,
        Role::Percussion,
        Role::Other,
    ];
    const MINI: [&str; 4] = ["a1 ~ [e2 a1] g1", "bd*2 [sn cp]", "<c3 e3>(3,8)", "0 .. 3?"];
    const EXPRS: [&str; 3] = ["range(io, 200, 4000)", "exec * 2", "0.5"];

    fn node() -> impl Strategy<Value = Gen> {
        (
            0usize..64,
            0usize..5,
            0u32..=400,
            -100i32..=100,
            any::<bool>(),
            proptest::collection::vec((0usize..8, proptest::option::of(0u16..1000)), 0..4),
            proptest::option::of((0usize..4, proptest::option::of(1u8..8))),
            proptest::collection::vec((0usize..4, 0u16..=1000), 0..3),
        )
            .prop_map(
                |(builtin, role, gain, pan, mute, controls, pattern, sends)| Gen {
                    builtin,
                    role,
                    gain: f64::from(gain) / 100.0,
                    pan: f64::from(pan) / 100.0,
                    mute,
                    controls,
                    pattern,
                    sends,
                },
            )
    }

    /// A curve pattern: mini-notation or an expression, with transforms.
    fn curve(v: u16) -> PatternSpec {
        use khorus_bus::commands::composer::{Source, Transform};
        let mut spec = if v.is_multiple_of(2) {
            PatternSpec::mini(format!("{} <{} 0.5>", v / 1000, v % 7), None)
        } else {
            PatternSpec {
                source: Source::Expr {
                    expr: "range(sine, 0.1, 0.9)".into(),
                    per_cycle: u32::from(v % 64) + 1,
                },
                transforms: Vec::new(),
                controls: Vec::new(),
                quantum: Some("2".into()),
            }
        };
        if v.is_multiple_of(5) {
            spec.transforms.push(Transform::Fast("2".into()));
        }
        spec
    }

    /// The batch that makes a session of these nodes (and tempo and score), through the
    /// same `apply` every surface uses.
    fn batch(nodes: &[Gen], tempo: Option<(u16, u32)>, score: Option<usize>) -> Vec<Change> {
        let names: Vec<&str> = khorus_synth::builtin::names()
            .chain(EFFECTS.iter().map(|(n, _)| *n))
            .collect();
        let mut out = Vec::new();
        let mut effects = Vec::new();
        for (i, g) in nodes.iter().enumerate() {
            let builtin = names[g.builtin % names.len()];
            let name = format!("n{i}");
            if EFFECTS.iter().any(|(e, _)| *e == builtin) {
                effects.push(name.clone());
            }
            out.push(Change::AddNode {
                name,
                node: builtin_spec(builtin, ROLES[g.role]),
            });
        }
        let probe = Session::empty().apply(&out).expect("adding built-ins");
        for (i, g) in nodes.iter().enumerate() {
            let name = format!("n{i}");
            let node = &probe.nodes[&name];
            if node.kind() == Kind::Instrument {
                out.push(set(&name, "gain", g.gain));
                out.push(set(&name, "pan", g.pan));
                if let Some((m, q)) = g.pattern {
                    out.push(Change::Play {
                        node: name.clone(),
                        param: None,
                        pattern: Some(PatternSpec::mini(MINI[m], q.map(|q| q.to_string()))),
                    });
                }
            }
            if g.mute {
                out.push(set(&name, "mute", 1.0));
            }
            let params = node.param_names();
            for (p, v) in &g.controls {
                let param = &params[p % params.len()];
                if param == "gain" || param == "pan" {
                    continue;
                }
                out.push(match v {
                    Some(v) if v.is_multiple_of(3) => Change::Play {
                        node: name.clone(),
                        param: Some(param.clone()),
                        pattern: Some(curve(*v)),
                    },
                    Some(v) => set(&name, param, f64::from(*v) / 1000.0),
                    None => Change::Set {
                        node: name.clone(),
                        param: param.clone(),
                        value: Value::Expr(EXPRS[*p % EXPRS.len()].into()),
                    },
                });
            }
            for (to, level) in &g.sends {
                if let Some(to) = effects.get(to % effects.len().max(1))
                    && *to != name
                {
                    out.push(Change::Route {
                        from: name.clone(),
                        to: to.clone(),
                        level: f32::from(*level) / 1000.0,
                    });
                }
            }
        }
        if let Some((bpm, beats)) = tempo {
            out.push(Change::Tempo {
                bpm: f64::from(bpm) / 4.0,
                beats_per_cycle: Some(beats),
            });
        }
        if let Some(s) = score {
            let name = ["ambient", "percussive", "arp", "drone"][s];
            out.push(Change::Score {
                name: name.into(),
                params: vec![("key".into(), "c3".into())],
            });
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_session_is_rebuilt_exactly_by_its_changes(
            nodes in proptest::collection::vec(node(), 0..12),
            tempo in proptest::option::of((4u16..=3996, 1u32..=64)),
            score in proptest::option::of(0usize..4),
            ramp in proptest::option::of((1u32..=64, 0u16..=4000, proptest::option::of(0i64..1000))),
        ) {
            let changes = batch(&nodes, tempo, score);
            // Effects routed into each other both ways are refused; such a batch makes
            // no session to rebuild.
            let Ok(mut s) = Session::empty().apply(&changes) else {
                return Ok(());
            };
            // Ramps in progress: every instrument's gain, every route's level and the tempo,
            // over some bars, placed (as the composer answers) or not yet.
            if let Some((bars, to, start)) = ramp {
                let mut over = vec![Change::Over { bars }];
                for (name, n) in &s.nodes {
                    if n.kind() == Kind::Instrument {
                        over.push(set(name, "gain", f64::from(to) / 1000.0));
                    }
                }
                for r in &s.routes {
                    over.push(Change::Route {
                        from: r.from.clone(),
                        to: r.to.clone(),
                        level: f32::from(to) / 4000.0,
                    });
                }
                over.push(Change::Tempo { bpm: 30.0 + f64::from(to) / 10.0, beats_per_cycle: None });
                s = s.apply(&over).expect("ramps");
                for r in &mut s.ramps {
                    r.start = start.map(|c| format!("{c}/4"));
                }
            }
            let rebuilt = Session::empty().apply(&s.to_changes());
            prop_assert_eq!(rebuilt, Ok(s));
        }
    }

    #[test]
    fn mute_survives_the_round_trip() {
        let s = Session::default_session()
            .apply(&[set("pad", "mute", 1.0)])
            .unwrap();
        let rebuilt = Session::empty().apply(&s.to_changes()).unwrap();
        assert!(rebuilt.nodes["pad"].mute);
        assert_eq!(rebuilt, s);
        assert_eq!(
            Session::empty()
                .apply(&Session::default_session().to_changes())
                .unwrap(),
            Session::default_session()
        );
    }
}
