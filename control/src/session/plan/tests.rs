//! Sessions planned into stage commands: graphs and ids, slots, changes as sets or graphs,
//! refusals naming the element, the composer's replay on another's clock.

use super::*;
use khorus_bus::commands::composer::{
    ComposerReply, ControlParam, ControlSpec, ControlValue as Values, Simple, Transform,
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
    assert_eq!(plan.composer_changes(&old, 0).len(), 2);
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
        Plan::after(&good, &old).unwrap().graph_json(),
        Plan::of(&good).unwrap().graph_json()
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

#[test]
fn a_batch_over_bars_ramps_gain_and_tempo_in_the_composer_and_holds_the_graph() {
    let s = Session::default_session();
    let p0 = Plan::of(&s).unwrap();
    let mut c = composer_given(p0.composer_replay(), 0);
    let now = play(&mut c, 0, 11);
    let from_bpm = c.scheduler().transport().bpm();
    let s1 = s
        .apply(&[
            Change::Over { bars: 4 },
            Change::Set {
                node: "pad".into(),
                param: "gain".into(),
                value: Value::Number(0.25),
            },
            Change::Tempo {
                bpm: from_bpm + 20.0,
                beats_per_cycle: None,
            },
        ])
        .unwrap();
    let whats: Vec<&str> = s1.ramps.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(whats, ["pad.gain", "tempo"]);
    assert_eq!(
        s1.nodes["pad"].gain, 0.25,
        "the session holds where it goes"
    );
    let p1 = Plan::after(&s1, &p0).unwrap();
    // The synth is not told: the graph keeps the gain it has, the composer moves it.
    assert_eq!(p1.synth_changes(&p0), vec![]);
    let cmds = p1.composer_changes(&p0, 0);
    assert!(matches!(
        &cmds[..],
        [ComposerCommand::Tempo(TempoChange { over: Some(4), .. }), ComposerCommand::Ramps(r)]
            if r.len() == 1 && r[0].from == 1.0 && r[0].to == 0.25 && r[0].start.is_none()
    ));
    let mut starts = Vec::new();
    for cmd in cmds {
        match c.handle(cmd, now).unwrap() {
            ComposerReply::Applied { at_cycle } => starts.push(at_cycle),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(starts[0], starts[1], "both from the same bar");
    let start: f64 = starts[0]
        .parse::<khorus_composer::time::Q>()
        .unwrap()
        .to_f64();
    // Play it through: the gain's points fall on the line, the tempo's beats too. Half way
    // the composer restarts and follows the old clock (as control replays it).
    let mut placed = s1.clone();
    for r in &mut placed.ramps {
        r.start = Some(starts[0].clone());
    }
    let pad = (s1.nodes["pad"].id, s1.nodes["pad"].params["gain"]);
    let mut points = Vec::new();
    let mut beats = Vec::new();
    let mut t = now;
    for i in 0..200 {
        t += 100_000_000;
        if i == 60 {
            let clock = c.transport_info();
            assert!(clock.ramp.is_some(), "mid-ramp");
            let cmds = Plan::of(&placed).unwrap().composer_replay_following(clock);
            c = composer_given(cmds, t);
            assert_eq!(c.scheduler().ramps().len(), 1, "the gain ramp goes on");
            assert!(
                c.scheduler().transport().ramp().is_some(),
                "so does the tempo's"
            );
        }
        let batch = c.tick(t).unwrap();
        points.extend(
            batch
                .curves
                .into_iter()
                .filter(|p| (p.node, p.param) == pad),
        );
        let tr = c.scheduler().transport();
        let beat = tr.anchor().1.to_f64() * 4.0;
        if beats.last().is_none_or(|&(b, _)| b != beat) {
            beats.push((beat, tr.bpm()));
        }
    }
    let linear: Vec<f32> = points
        .iter()
        .filter(|p| p.shape() == khorus_bus::CurveShape::Linear)
        .map(|p| p.value)
        .collect();
    assert_eq!(linear.len(), 16, "one point a beat: {points:?}");
    for (k, v) in linear.iter().enumerate() {
        let want = 1.0 - 0.75 * (k + 1) as f32 / 16.0;
        assert!((v - want).abs() < 1e-6, "beat {}: {v}", k + 1);
    }
    // The steps: its start (1.0), and where the line was when the new composer resumed it.
    let steps: Vec<f32> = points
        .iter()
        .filter(|p| p.shape() == khorus_bus::CurveShape::Step)
        .map(|p| p.value)
        .collect();
    assert_eq!(steps.len(), 2, "{points:?}");
    assert!(
        steps[0] == 1.0 && steps[1] < 1.0 && steps[1] > 0.25,
        "{steps:?}"
    );
    for &(beat, bpm) in beats.iter().filter(|(b, _)| *b >= start * 4.0) {
        let x = ((beat - start * 4.0) / 16.0).min(1.0);
        let want = from_bpm + 20.0 * x;
        assert!(
            (bpm - want).abs() < 0.1,
            "beat {beat}: {bpm} bpm, want {want}"
        );
    }
    assert!(
        beats
            .iter()
            .any(|&(_, bpm)| (bpm - from_bpm - 20.0).abs() < 1e-9),
        "it got there"
    );
    assert!(c.scheduler().ramps().is_empty() && c.scheduler().transport().ramp().is_none());
}

#[test]
fn a_ramp_ends_when_its_number_changes_and_a_hand_written_one_must_end_at_the_value() {
    let s = Session::default_session();
    let over = |bars, gain| {
        vec![
            Change::Over { bars },
            Change::Set {
                node: "pad".into(),
                param: "gain".into(),
                value: Value::Number(gain),
            },
        ]
    };
    let s1 = s.apply(&over(8, 0.5)).unwrap();
    assert_eq!(s1.ramps.len(), 1);
    // Something else changes: the ramp goes on.
    let s2 = s1
        .apply(&[Change::Set {
            node: "bass".into(),
            param: "gain".into(),
            value: Value::Number(0.7),
        }])
        .unwrap();
    assert_eq!(s2.ramps, s1.ramps);
    // The number set again at once: the ramp ends, and the composer is told.
    let s3 = s2.apply(&over(0, 0.9)).unwrap();
    assert!(s3.ramps.is_empty());
    let (p2, p3) = (Plan::of(&s2).unwrap(), Plan::of(&s3).unwrap());
    assert!(matches!(
        &p3.composer_changes(&p2, 0)[..],
        [ComposerCommand::Ramps(r)] if r.len() == 1 && r[0].cycles == 0
    ));
    assert!(
        s.apply(&over(2000, 0.5))
            .unwrap_err()
            .message
            .contains("1..=1024")
    );
    let e = s
        .apply(&[Change::Ramp {
            what: "pad.gain".into(),
            from: 0.0,
            to: 0.5,
            bars: 4,
            start: Some("8".into()),
        }])
        .unwrap_err();
    assert!(e.message.contains("the value is 1"), "{e}");
    let e = s
        .apply(&[Change::Ramp {
            what: "pad.mute".into(),
            from: 0.0,
            to: 1.0,
            bars: 4,
            start: None,
        }])
        .unwrap_err();
    assert!(e.message.contains("not a number that ramps"), "{e}");
}

#[test]
fn an_effect_setting_ramps_from_its_default_and_the_graph_holds_it() {
    let s = Session::default_session();
    let p0 = Plan::of(&s).unwrap();
    let s1 = s
        .apply(&[
            Change::Over { bars: 2 },
            Change::Set {
                node: "reverb".into(),
                param: "room".into(),
                value: Value::Number(0.95),
            },
        ])
        .unwrap();
    let room = 0.7;
    assert_eq!(table::ROOM.default, 0.7);
    assert_eq!(s1.ramps.len(), 1);
    assert_eq!(
        (s1.ramps[0].what.as_str(), s1.ramps[0].from, s1.ramps[0].to),
        ("reverb.room", room, 0.95)
    );
    let p1 = Plan::after(&s1, &p0).unwrap();
    assert_eq!(
        p1.synth_changes(&p0),
        vec![],
        "the graph holds the room where it is"
    );
    let reverb = &s1.nodes["reverb"];
    assert!(matches!(
        &p1.composer_changes(&p0, 2)[..],
        [ComposerCommand::Ramps(r)]
            if r[0].node == reverb.id && r[0].param == reverb.params["room"] && r[0].cycles == 2
    ));
}

#[test]
fn a_send_level_changes_without_a_new_graph_and_ramps_in_the_synth() {
    let s = Session::default_session();
    let p0 = Plan::of(&s).unwrap();
    let route = |level| Change::Route {
        from: "pad".into(),
        to: "reverb".into(),
        level,
    };
    // A level: a Send, not a graph.
    let s1 = s.apply(&[route(0.2)]).unwrap();
    let p1 = Plan::after(&s1, &p0).unwrap();
    assert_eq!(
        p1.synth_changes(&p0),
        vec![SynthCommand::Send {
            from: "pad".into(),
            to: "reverb".into(),
            level: 0.2,
            at_ns: 0,
            over_ns: 0,
        }]
    );
    // A new route is still a graph change.
    let s2 = s1
        .apply(&[Change::Route {
            from: "bass".into(),
            to: "delay".into(),
            level: 0.3,
        }])
        .unwrap();
    assert!(matches!(
        Plan::after(&s2, &p1).unwrap().synth_changes(&p1)[..],
        [SynthCommand::LoadGraph { .. }]
    ));
    // Over bars: a ramp the synth will be handed once the composer has said where the next
    // cycle starts (an empty Ramps asks it); the graph holds the level meanwhile.
    let s3 = s1.apply(&[Change::Over { bars: 4 }, route(0.6)]).unwrap();
    assert_eq!(s3.ramps.len(), 1);
    assert_eq!(
        (s3.ramps[0].what.as_str(), s3.ramps[0].from, s3.ramps[0].to),
        ("pad->reverb", 0.2, 0.6)
    );
    let p3 = Plan::after(&s3, &p1).unwrap();
    assert_eq!(p3.synth_changes(&p1), vec![]);
    assert!(matches!(
        &p3.composer_changes(&p1, 4)[..],
        [ComposerCommand::Ramps(r)] if r.is_empty()
    ));
}

#[test]
fn a_score_chosen_over_bars_sets_its_own_tempo_at_once() {
    let s = Session::default_session();
    let s1 = s
        .apply(&[
            Change::Over { bars: 4 },
            Change::Score {
                name: "arp".into(),
                params: vec![("bpm".into(), "140".into())],
            },
        ])
        .unwrap();
    assert!(s1.ramps.is_empty(), "{:?}", s1.ramps);
}
