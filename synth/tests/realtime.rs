//! The audio callback's code under an allocation detector: any allocation aborts the test.

use std::sync::Arc;

use assert_no_alloc::assert_no_alloc;
use khorus_bus::CurvePoint;
use khorus_synth::render::GraphSpec;
use khorus_synth::rt::{Clock, Incoming, Renderer, RtStats};

use crate::util::note;

#[test]
fn the_callback_path_never_allocates() {
    // Built outside the detector, as the stage does before handing it to PipeWire.
    let engine = GraphSpec::default().build(48_000.0).unwrap();
    let (mut tx, rx) = rtrb::RingBuffer::new(8192);
    let stats = Arc::new(RtStats::default());
    let mut renderer = Renderer::new(engine, rx, Arc::clone(&stats), 8192);
    let mut sum = 0.0f32;
    let mut clock = Clock { buffer_start_ns: 0 };
    for cycle in 0..200u64 {
        // 60 notes per cycle on the pad (32 voices): stealing in every cycle; some in the
        // past (late); automation of the pad's cutoff (node 1 param 2) and gain.
        for k in 0..60u64 {
            let mut n = note(
                (cycle * 1024 + k * 10) as f64 / 48_000.0 - 0.001,
                0.05,
                40.0 + k as f32 % 30.0,
                0.7,
            );
            n.node = 1;
            tx.push(Incoming::Note(n)).unwrap();
        }
        let curve: CurvePoint = serde_json::from_str(&format!(
            r#"{{"t_ns":{},"node":1,"param":{},"value":{},"shape":"step"}}"#,
            cycle * 21_333_333,
            2 + cycle % 2,
            300.0 + (cycle % 10) as f32 * 500.0
        ))
        .unwrap();
        tx.push(Incoming::Curve(curve)).unwrap();
        assert_no_alloc(|| {
            let out = renderer.fill(clock, 1024);
            sum += out.iter().map(|x| x.abs()).sum::<f32>();
            renderer.account(1000, 21_333_333);
        });
        clock.buffer_start_ns += 21_333_333;
    }
    let stolen = stats.stolen.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sum > 0.0 && stolen > 100, "sound {sum}, stolen {stolen}");
    assert!(stats.late.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
