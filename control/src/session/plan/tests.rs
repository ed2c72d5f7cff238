//! Sessions planned into stage commands: graphs and ids, slots, changes as sets or graphs,
//! refusals naming the element, the composer's replay on another's clock.

use super::*;
use khorus_bus::commands::composer::{
    ControlParam, ControlSpec, ControlValue as Values, Simple, Transform,
};
use khorus_bus::commands::control::{Change, PatternControl, PatternSpec, Value};
use khorus_composer::stage::{Composer, Options};

#[test]
fn the_default_session_plans_and_its_graph_builds_with_ids() {
    let s = Session::default_session();
    let plan = Plan::of(&s).unwrap();
    let engine = plan.graph.build(48_000.0).unwrap();
    let pad = s.nodes["pad"].id;
    let index = engine.ids().node(pad).unwrap();
    assert_eq!(engine.instruments()[index].name(), "pad");
    let routes = score_routes(&s);
    assert_eq!(routes.node_for(Role::Melody, 60.0), pad);
    assert_eq!(routes.node_for(Role::Percussion, 36.0), s.nodes["kick"].id);
    assert_eq!(routes.node_for(Role::Percussion, 42.0), s.nodes["hat"].id);
    assert_eq!(
        routes.node_for(Role::Percussion, 50.0),
        s.nodes["glitch"].id
    );
    assert_eq!(routes.cutoff, vec![(pad, s.nodes["pad"].params["cutoff"])]);
}

#[test]
fn a_number_change_is_a_set_and_a_new_node_a_new_graph() {
    let s = Session::default_session();
    let old = Plan::of(&s).unwrap();
    let s2 = s
        .apply(&[Change::Set {
            node: "pad".into(),
            param: "cutoff".into(),
            value: Value::Number(900.0),
        }])
        .unwrap();
    let new = Plan::of(&s2).unwrap();
    assert_eq!(
        new.synth_changes(&old),
        vec![SynthCommand::Set {
            node: "pad".into(),
            param: "cutoff".into(),
            value: 900.0
        }]
    );
    let s3 = s2
        .apply(&[Change::RemoveNode {
            name: "kick".into(),
        }])
        .unwrap();
    assert!(matches!(
        Plan::of(&s3).unwrap().synth_changes(&new)[..],
        [SynthCommand::LoadGraph { .. }]
    ));
}

#[test]
fn a_definition_that_reads_input_is_an_effect_node_routes_go_into() {
    let dub = r#"{"name":"dub","controls":[{"name":"wet","default":1,"min":0,"max":1}],
        "nodes":[{"id":"d","type":"echo","input":"input","time":0.3},
                 {"id":"o","type":"mul","inputs":[{"node":"d"},{"control":"wet"}]}],
        "output":{"node":"o"}}"#;
    let s = Session::default_session()
        .apply(&[
            Change::AddNode {
                name: "dub".into(),
                node: khorus_bus::commands::control::NodeSpec {
                    builtin: None,
                    def: Some(dub.into()),
                    role: khorus_bus::Role::Other,
                    polyphony: None,
                },
            },
            Change::Route {
                from: "pad".into(),
                to: "dub".into(),
                level: 0.4,
            },
            Change::Set {
                node: "dub".into(),
                param: "wet".into(),
                value: Value::Number(0.5),
            },
        ])
        .unwrap();
    assert_eq!(s.nodes["dub"].param_names(), ["return", "wet"]);
    let plan = Plan::of(&s).unwrap();
    let g = &plan.graph;
    assert!(g.instruments.iter().all(|i| i.node_name() != "dub"));
    let dub = g
        .effects
        .iter()
        .find(|e| e.name() == "dub")
        .expect("an effect");
    assert!(matches!(dub, EffectSpec::Def { controls, .. } if controls["wet"] == 0.5));
    // It plays no notes.
    let e = s
        .apply(&[Change::Play {
            node: "dub".into(),
            param: None,
            pattern: Some(PatternSpec::mini("c4", None)),
        }])
        .unwrap_err();
    assert!(e.message.contains("effect"), "{e}");
}

#[test]
fn a_bad_pattern_is_refused_by_the_composers_code_naming_the_node() {
    let s = Session::default_session()
        .apply(&[Change::Play {
            node: "bass".into(),
            param: None,
            pattern: Some(PatternSpec::mini("a [b", None)),
        }])
        .unwrap();
    let e = Plan::of(&s).unwrap_err();
    assert_eq!(e.element, "pattern of bass");
}

#[test]
fn patterns_and_expressions_become_slots() {
    let s = Session::default_session()
        .apply(&[
            Change::Play {
                node: "bass".into(),
                param: None,
                pattern: Some(PatternSpec::mini("a2 ~ e2", None)),
            },
            Change::Set {
                node: "pad".into(),
                param: "cutoff".into(),
                value: Value::Expr("range(io, 200, 4000)".into()),
            },
        ])
        .unwrap();
    let plan = Plan::of(&s).unwrap();
    assert!(plan.slots.contains_key("node/bass"));
    assert!(plan.slots.contains_key("ctl/pad/cutoff"));
    let old = Plan::of(&Session::default_session()).unwrap();
    assert_eq!(plan.composer_changes(&old).len(), 2);
}

#[test]
fn a_whole_pattern_reaches_the_composer_with_its_transforms_controls_and_ids() {
    let spec = PatternSpec {
        source: Source::Mini("a2 [c3 e3] <g2 b2>".into()),
        transforms: vec![
            Transform::Over("2".into()),
            Transform::Every {
                n: 3,
                then: Simple::Rev,
            },
            Transform::SometimesBy {
                prob: "0.3".into(),
                then: Simple::Add("12".into()),
            },
        ],
        controls: vec![
            PatternControl {
                param: "velocity".into(),
                value: Values::Mini("0.5 0.9".into()),
            },
            PatternControl {
                param: "cutoff".into(),
                value: Values::Expr("range(io, 300, 3000)".into()),
            },
        ],
        quantum: Some("4".into()),
    };
    let s = Session::default_session()
        .apply(&[Change::Play {
            node: "pad".into(),
            param: None,
            pattern: Some(spec.clone()),
        }])
        .unwrap();
    let plan = Plan::of(&s).unwrap();
    let slot = &plan.slots["node/pad"];
    assert_eq!(slot.source, spec.source);
    assert_eq!(slot.transforms, spec.transforms);
    assert_eq!(slot.quantum.as_deref(), Some("4"));
    assert_eq!(
        slot.controls,
        [
            ControlSpec {
                param: ControlParam::Velocity,
                value: Values::Mini("0.5 0.9".into()),
            },
            ControlSpec {
                param: ControlParam::Param(s.nodes["pad"].params["cutoff"]),
                value: Values::Expr("range(io, 300, 3000)".into()),
            },
        ]
    );
    // The session file keeps all of it.
    let json = serde_json::to_string(&s).unwrap();
    let back: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    // A transform the composer refuses is refused naming the node and the field.
    let bad = Session::default_session()
        .apply(&[Change::Play {
            node: "pad".into(),
            param: None,
            pattern: Some(PatternSpec {
                transforms: vec![Transform::Fast("1 +".into())],
                ..spec.clone()
            }),
        }])
        .unwrap();
    let e = Plan::of(&bad).unwrap_err();
    assert_eq!(e.element, "pattern of pad");
    assert!(e.message.contains("transforms[0].fast"), "{e}");
    // A control that is not the node's is refused by the session.
    let e = Session::default_session()
        .apply(&[Change::Play {
            node: "pad".into(),
            param: None,
            pattern: Some(PatternSpec {
                controls: vec![PatternControl {
                    param: "wobble".into(),
                    value: Values::Mini("1".into()),
                }],
                ..spec
            }),
        }])
        .unwrap_err();
    assert!(e.message.contains("\"wobble\""), "{e}");
}

#[test]
fn a_curve_plays_on_a_parameter_and_hushes() {
    let curve = |source| Change::Play {
        node: "pad".into(),
        param: Some("cutoff".into()),
        pattern: Some(PatternSpec {
            source,
            transforms: Vec::new(),
            controls: Vec::new(),
            quantum: None,
        }),
    };
    let s = Session::default_session()
        .apply(&[curve(Source::Expr {
            expr: "range(sine, 200, 2000)".into(),
            per_cycle: 16,
        })])
        .unwrap();
    let plan = Plan::of(&s).unwrap();
    let slot = &plan.slots["ctl/pad/cutoff"];
    assert_eq!(
        slot.target,
        Target::Curve {
            node: s.nodes["pad"].id,
            param: s.nodes["pad"].params["cutoff"],
            shape: CurveShape::Linear,
        }
    );
    assert!(matches!(slot.source, Source::Expr { per_cycle: 16, .. }));
    // Mini-notation numbers make a curve too; a word is refused by the composer's code.
    let s2 = s
        .apply(&[curve(Source::Mini("300 <1200 2400>".into()))])
        .unwrap();
    assert!(Plan::of(&s2).is_ok());
    let words = s.apply(&[curve(Source::Mini("300 x".into()))]).unwrap();
    assert_eq!(Plan::of(&words).unwrap_err().element, "pad.cutoff");
    // A number replaces the curve; hushing a curve removes it; hushing none is refused.
    let set = s
        .apply(&[Change::Set {
            node: "pad".into(),
            param: "cutoff".into(),
            value: Value::Number(900.0),
        }])
        .unwrap();
    assert!(!Plan::of(&set).unwrap().slots.contains_key("ctl/pad/cutoff"));
    let hush = Change::Play {
        node: "pad".into(),
        param: Some("cutoff".into()),
        pattern: None,
    };
    let hushed = s.apply(std::slice::from_ref(&hush)).unwrap();
    assert!(!hushed.nodes["pad"].controls.contains_key("cutoff"));
    assert!(hushed.apply(&[hush]).is_err());
    // No such parameter.
    let e = Session::default_session()
        .apply(&[Change::Play {
            node: "pad".into(),
            param: Some("wobble".into()),
            pattern: Some(PatternSpec::mini("1", None)),
        }])
        .unwrap_err();
    assert!(e.message.contains("no parameter \"wobble\""), "{e}");
}

#[test]
fn an_older_session_file_with_mini_and_quantum_still_loads() {
    let mut json: serde_json::Value = serde_json::to_value(Session::default_session()).unwrap();
    json["nodes"]["bass"]["pattern"] = serde_json::json!({"mini": "a1 ~", "quantum": "4"});
    let s: Session = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(
        s.nodes["bass"].pattern,
        Some(PatternSpec::mini("a1 ~", Some("4".into())))
    );
    json["nodes"]["bass"]["pattern"] = serde_json::json!({"mini": "a1 ~", "typo": 1});
    assert!(serde_json::from_value::<Session>(json).is_err());
}

/// A composer as `khorus up` starts one, given `cmds` at `now_ns`.
fn composer_given(cmds: Vec<ComposerCommand>, now_ns: u64) -> Composer {
    let mut c = Composer::new(&Options::default(), now_ns).unwrap();
    for cmd in cmds {
        c.handle(cmd, now_ns).unwrap();
    }
    c
}

/// Plays `c` for `ticks` ticks of 100 ms from `from_ns`; the time after them.
fn play(c: &mut Composer, from_ns: u64, ticks: u64) -> u64 {
    let mut now = from_ns;
    for _ in 0..ticks {
        now += 100_000_000;
        c.tick(now).unwrap();
    }
    now
}

#[test]
fn a_restarted_composer_keeps_the_old_clock_and_plays_the_tempo_chosen_while_it_was_down() {
    let s = Session::default_session();
    let mut old = composer_given(Plan::of(&s).unwrap().composer_replay(), 0);
    let exit = play(&mut old, 0, 123);
    let clock = old.transport_info();
    let old_clock = old.scheduler().transport().clone();
    let score_bpm = old_clock.bpm();
    // While the composer is down (back-off, or starting), the tempo changes.
    let s2 = s
        .apply(&[Change::Tempo {
            bpm: score_bpm + 24.0,
            beats_per_cycle: None,
        }])
        .unwrap();
    let now = exit + 250_000_000;
    let cmds = Plan::of(&s2)
        .unwrap()
        .composer_replay_following(clock.clone());
    assert!(matches!(
        &cmds[cmds.len() - 2..],
        [ComposerCommand::Follow(_), ComposerCommand::Tempo(_)]
    ));
    let new = composer_given(cmds, now);
    let t = new.scheduler().transport();
    assert_eq!(t.bpm(), score_bpm + 24.0, "the session's tempo wins");
    // On the old clock's cycle: the new tempo starts from the new composer's horizon,
    // which falls where the old clock had it.
    let (anchor_ns, anchor_cycle) = t.anchor();
    assert!(anchor_ns > now, "from a lookahead on, not before");
    assert_eq!(old_clock.ns_at(anchor_cycle).unwrap(), anchor_ns);

    // The same session (no tempo chosen meanwhile): the old clock as it was, not
    // re-anchored.
    let cmds = Plan::of(&s)
        .unwrap()
        .composer_replay_following(clock.clone());
    let same = composer_given(cmds, now);
    assert_eq!(same.scheduler().transport().anchor(), old_clock.anchor());
    assert_eq!(same.scheduler().transport().cps(), old_clock.cps());

    // Another score chosen while it was down, the session with no tempo of its own: the
    // new score's tempo, on the old clock's cycle.
    let s3 = s
        .apply(&[Change::Score {
            name: "arp".into(),
            params: vec![("bpm".into(), format!("{}", score_bpm + 10.0))],
        }])
        .unwrap();
    let cmds = Plan::of(&s3).unwrap().composer_replay_following(clock);
    let arp = composer_given(cmds, now);
    let t = arp.scheduler().transport();
    assert_eq!(t.bpm(), score_bpm + 10.0);
    let (anchor_ns, anchor_cycle) = t.anchor();
    assert_eq!(old_clock.ns_at(anchor_cycle).unwrap(), anchor_ns);
}

#[test]
fn a_plan_after_another_checks_what_changed_and_refuses_the_same() {
    let base = Session::default_session();
    let old = Plan::of(&base).unwrap();
    // A broken definition is refused whether the whole session is checked or only the change.
    let bad = base
        .apply(&[Change::AddNode {
            name: "x".into(),
            node: khorus_bus::commands::control::NodeSpec {
                builtin: None,
                def: Some(
                    r#"{"name":"x","nodes":[{"id":"o","type":"osc","wave":"saw","freq":{"node":"nope"}}],"output":{"node":"o"}}"#
                        .into(),
                ),
                role: Role::Melody,
                polyphony: None,
            },
        }])
        .unwrap();
    let full = Plan::of(&bad).unwrap_err();
    let after = Plan::after(&bad, &old).unwrap_err();
    assert_eq!(full, after);
    // A good change plans the same either way.
    let good = base
        .apply(&[Change::Route {
            from: "bass".into(),
            to: "delay".into(),
            level: 0.5,
        }])
        .unwrap();
    assert_eq!(
        Plan::after(&good, &old).unwrap().graph_json,
        Plan::of(&good).unwrap().graph_json
    );
    // Only what changed is left to check.
    let g = Plan::of(&good).unwrap().graph;
    let part = g.changed_since(&old.graph).expect("something changed");
    let names: Vec<&str> = part.instruments.iter().map(|i| i.node_name()).collect();
    assert_eq!(names, ["bass"]);
    assert_eq!(part.effects.len(), 2);
    assert!(part.ids.contains_key("bass") && !part.ids.contains_key("pad"));
    assert!(g.changed_since(&g).is_none());
}
