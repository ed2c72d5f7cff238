//! Scores over a recorded trace: the same trace through the same score gives the same notes,
//! byte for byte, and they equal the checked-in expected stream.
//!
//! `tests/fixtures/trace.jsonl` is 6 s of real procfs counters from a development VM (exec,
//! csw, irq, network, disk, retransmits), normalised like the collector does, 100 ms apart.
//! Regenerate the expected streams after an intended change with `KHORUS_BLESS=1`.

use std::path::PathBuf;

use khorus_bus::{NoteEvent, SignalFrame};
use khorus_composer::score::{Score, replay};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn trace() -> Vec<SignalFrame> {
    std::fs::read_to_string(fixture("trace.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stream(notes: &[NoteEvent]) -> String {
    notes
        .iter()
        .map(|n| serde_json::to_string(n).unwrap() + "\n")
        .collect()
}

#[test]
fn a_recorded_trace_replays_to_the_identical_note_stream() {
    let frames = trace();
    assert_eq!(frames.len(), 60);
    for score in Score::ALL {
        let p = score.defaults();
        let first = stream(&replay(&frames, score, &p, 50_000_000).unwrap());
        let second = stream(&replay(&frames, score, &p, 50_000_000).unwrap());
        assert_eq!(first, second, "{}: two replays differ", score.name());
        assert!(
            !first.is_empty(),
            "{}: the trace should make music",
            score.name()
        );
        let path = fixture(&format!("expected-{}.jsonl", score.name()));
        if std::env::var("KHORUS_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &first).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with KHORUS_BLESS=1 once)", path.display()));
        assert_eq!(
            first,
            expected,
            "{}: differs from the checked-in stream",
            score.name()
        );
    }
}

#[test]
fn different_parameters_change_the_stream() {
    let frames = trace();
    let p = Score::Arp.defaults();
    let mut q = p.clone();
    q.key = "d3".into();
    assert_ne!(
        stream(&replay(&frames, Score::Arp, &p, 50_000_000).unwrap()),
        stream(&replay(&frames, Score::Arp, &q, 50_000_000).unwrap())
    );
}
