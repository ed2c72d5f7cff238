//! The `--print` table: every signal's rate, unit and level, with a bar.

use khorus_bus::SignalFrame;
use khorus_bus::signals::SIGNALS;

/// Renders a frame as a table (one line per signal).
pub fn render(frame: &SignalFrame) -> String {
    let mut s = format!(
        "frame #{} source={:?} dt={:.1} ms\n",
        frame.seq,
        frame.source(),
        frame.dt_ns as f64 / 1e6
    );
    for (i, info) in SIGNALS.iter().enumerate() {
        if frame.available & (1 << i) == 0 {
            s.push_str(&format!("  {:<13} {:>12}\n", info.name, "unavailable"));
            continue;
        }
        let level = frame.level[i];
        let bar = "#".repeat((level * 30.0).round() as usize);
        s.push_str(&format!(
            "  {:<13} {:>12.1} {:<9} {:>5.3} {bar}\n",
            info.name, frame.rate[i], info.unit, level
        ));
    }
    s
}
