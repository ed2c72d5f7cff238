//! The session at scale: nodes with their own definitions of over a hundred primitives,
//! routes and patterns — built through the CLI (past the 16 KiB a message once held), then
//! 256 of them through one `session load` with 1024 routes and a curve on every parameter,
//! read back byte-identical, and replayed whole to a synth and a composer killed meanwhile.

use super::*;

use khorus_tests::scale::{NODES, definition, pattern};

/// Nodes added one CLI change at a time (each change costs control and the synth work in
/// proportion to the whole session: see BENCHMARKS.md).
const CLI_NODES: usize = 40;

/// The synth's graph as it describes it.
fn synth_graph(up: &Up) -> String {
    let bus = Bus::open("t-scale-g", &up.bus.config).unwrap();
    let mut synth = bus.command_client::<commands::Synth>().unwrap();
    match synth.call(&SynthCommand::Describe, Duration::from_secs(30)) {
        Ok(SynthReply::Graph { json }) => json.unwrap_or_default(),
        other => panic!("describe: {other:?}"),
    }
}

#[test]
fn a_session_of_256_nodes_is_built_loaded_read_back_and_replayed_whole() {
    let Some(stack) = PipeWireStack::start() else {
        return;
    };
    let mut up = Up::start(stack.env(), "scale", None);
    up.wait_ready(&ALL);
    up.ok(&["score", "none"]);
    let dir = tempfile::tempdir().unwrap();
    // Through the CLI, one change at a time.
    for i in 0..CLI_NODES {
        let def = dir.path().join(format!("d{i}.json"));
        std::fs::write(&def, definition(i)).unwrap();
        let name = format!("n{i}");
        up.ok(&["node", "add", &name, "--def", def.to_str().unwrap()]);
        up.ok(&["play", &name, &pattern(i)]);
        if i % 4 == 0 {
            up.ok(&["route", &name, "reverb", "0.25"]);
        }
    }
    let built = up.session();
    assert!(built.len() > 16 << 10, "{} bytes", built.len());
    let mut s: serde_json::Value = serde_json::from_str(&built).unwrap();
    assert_eq!(s["nodes"].as_object().unwrap().len(), CLI_NODES + 10);

    // The rest written as a session file (one node of the CLI's as the template), loaded at
    // once: 256 nodes, each two voices, routed into four effects (1024 routes), a curve on
    // every parameter (768 on the instruments' gain, pan and cutoff; the effects' returns).
    let template = s["nodes"]["n1"].clone();
    let mut next_id = s["next_id"].as_u64().unwrap();
    for (name, like) in [("echo", "delay"), ("hall", "reverb")] {
        let mut node = s["nodes"][like].clone();
        node["id"] = next_id.into();
        next_id += 1;
        s["nodes"][name] = node;
    }
    let curve = |mini: &str| {
        serde_json::json!({"source": {"Mini": mini}, "transforms": [],
        "controls": [], "quantum": null})
    };
    for i in CLI_NODES..NODES {
        let mut node = template.clone();
        node["id"] = next_id.into();
        next_id += 1;
        node["def"] = serde_json::from_str(&definition(i)).unwrap();
        node["pattern"]["source"]["Mini"] = pattern(i).into();
        node["polyphony"] = 2.into();
        s["nodes"][format!("n{i}")] = node;
    }
    let mut routes = Vec::new();
    for i in 0..NODES {
        let name = format!("n{i}");
        for (k, to) in ["delay", "reverb", "echo", "hall"].into_iter().enumerate() {
            let level = (5 + (i + k) % 10) as f64 / 100.0;
            routes.push(serde_json::json!({"from": name, "to": to, "level": level}));
        }
        let node = &mut s["nodes"][&name];
        node["controls"]["gain"] = curve("0.9 1");
        node["controls"]["pan"] = curve("-0.1 0.1");
        node["controls"]["cutoff"] = curve(&format!("{} 3000", 400 + i));
    }
    for fx in ["delay", "reverb", "echo", "hall"] {
        s["nodes"][fx]["controls"]["return"] = curve("0.8 0.9");
    }
    s["next_id"] = next_id.into();
    routes.sort_by_key(|r| {
        (
            r["from"].as_str().unwrap().to_string(),
            r["to"].as_str().unwrap().to_string(),
        )
    });
    assert_eq!(routes.len(), 1024);
    s["routes"] = routes.into();
    let file = dir.path().join("big.json");
    std::fs::write(&file, serde_json::to_string(&s).unwrap()).unwrap();
    up.ok(&["session", "reset"]);
    up.ok(&["session", "load", file.to_str().unwrap()]);
    let loaded = up.session();
    assert!(loaded.len() > 1 << 20, "{} bytes", loaded.len());
    // The session is the file (definitions are read into the synth's types, so their
    // numbers come back as the f32s the synth plays: compared apart from them).
    let without_defs = |mut v: serde_json::Value| {
        for node in v["nodes"].as_object_mut().unwrap().values_mut() {
            node.as_object_mut().unwrap().remove("def");
        }
        v
    };
    let read: serde_json::Value = serde_json::from_str(&loaded).unwrap();
    assert_eq!(read["nodes"]["n200"]["def"]["name"], "d200");
    assert_eq!(
        without_defs(read),
        without_defs(s),
        "the session is the file"
    );
    // Its own dump loads back to itself, byte for byte.
    let again = dir.path().join("again.json");
    std::fs::write(&again, &loaded).unwrap();
    up.ok(&["session", "load", again.to_str().unwrap()]);
    assert_eq!(up.session(), loaded, "read back byte-identical");
    let built = loaded;
    let graph = synth_graph(&up);
    assert!(graph.contains("\"n255\""), "the synth has every node");

    // A killed synth and a killed composer get all of it back.
    let pid = up.pid_of(StageKind::Synth);
    kill9(pid);
    wait_back(&mut up, StageKind::Synth, pid);
    assert_eq!(
        synth_graph(&up),
        graph,
        "the synth's graph is the session's"
    );
    let bus = Bus::open("t-scale", &up.bus.config).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let pid = up.pid_of(StageKind::Composer);
    kill9(pid);
    wait_back(&mut up, StageKind::Composer, pid);
    notes.drain(|_| {}).unwrap();
    let (first, last) = (up.node_id("n0"), up.node_id("n255"));
    let mut heard = (false, false);
    wait_for(
        Duration::from_secs(20),
        "notes of the first and last node",
        || {
            notes
                .drain(|n| {
                    heard.0 |= n.node == first;
                    heard.1 |= n.node == last;
                })
                .unwrap();
            (heard.0 && heard.1).then_some(())
        },
    );
    assert_eq!(up.session(), built);
}
