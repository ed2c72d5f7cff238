//! The `--print` table: every signal's rate (the mean over the last second), unit and level,
//! with a bar. On a terminal it is redrawn in place at 4 Hz; piped, it is printed as lines.
//!
//! A single 20 ms tick's rate is mostly noise (a burst of 3 execs reads as 150 exec/s), so the
//! rate column is the time-weighted mean over a ring of the recent ticks covering the last
//! second: the events counted in that second divided by its length. The level column is the
//! normaliser's own smoothed level, as published.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use khorus_bus::SignalFrame;
use khorus_bus::signals::{SIGNAL_CAPACITY, SIGNALS};

/// How far back the rate column looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How often the table is drawn (4 Hz).
pub const REDRAW: Duration = Duration::from_millis(250);
/// Most ticks the window holds, so a tiny tick cannot grow it without bound (1 ms ticks still
/// cover the second).
const MAX_TICKS: usize = 1024;
/// ANSI: cursor home, then clear to the end of the screen.
const HOME_AND_CLEAR: &str = "\x1b[H\x1b[J";

/// The rates of the ticks that cover the last [`RATE_WINDOW`] of measured time (frame `dt_ns`,
/// so a fast replay averages over a second of the trace, not of the wall clock).
#[derive(Debug, Clone)]
pub struct RateWindow {
    window_ns: u64,
    /// (dt_ns, availability bits, rates) per tick, oldest first.
    ticks: VecDeque<(u64, u32, [f32; SIGNAL_CAPACITY])>,
    span_ns: u64,
}

impl RateWindow {
    /// A window of `window` of measured time.
    pub fn new(window: Duration) -> Self {
        RateWindow {
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            ticks: VecDeque::with_capacity(64),
            span_ns: 0,
        }
    }

    /// Adds a frame's rates; drops the ticks no longer needed to cover the window.
    pub fn push(&mut self, frame: &SignalFrame) {
        self.ticks
            .push_back((frame.dt_ns, frame.available, frame.rate));
        self.span_ns = self.span_ns.saturating_add(frame.dt_ns);
        while let Some(&(oldest, _, _)) = self.ticks.front() {
            let without = self.span_ns - oldest;
            if without >= self.window_ns || self.ticks.len() > MAX_TICKS {
                self.span_ns = without;
                self.ticks.pop_front();
            } else {
                break;
            }
        }
    }

    /// The time-weighted mean rate of signal `i` over the ticks in which it was measured;
    /// `None` if it was not measured at all.
    pub fn mean(&self, i: usize) -> Option<f64> {
        let (mut sum, mut time) = (0.0, 0u64);
        for (dt, available, rate) in &self.ticks {
            if available & (1 << i) != 0 {
                sum += f64::from(rate[i]) * *dt as f64;
                time += dt;
            }
        }
        (time > 0).then(|| sum / time as f64)
    }

    /// Measured time the window holds, ns (a little over the window once it is full).
    pub fn span_ns(&self) -> u64 {
        self.span_ns
    }
}

/// Renders a frame as a table (one line per signal), rates from `window`.
pub fn render(frame: &SignalFrame, window: &RateWindow) -> String {
    let mut s = format!(
        "frame #{} source={:?} dt={:.1} ms, rates: mean of the last {:.1} s\n",
        frame.seq,
        frame.source(),
        frame.dt_ns as f64 / 1e6,
        window.span_ns() as f64 / 1e9,
    );
    for (i, info) in SIGNALS.iter().enumerate() {
        let rate = window.mean(i);
        if frame.available & (1 << i) == 0 || rate.is_none() {
            s.push_str(&format!("  {:<13} {:>12}\n", info.name, "unavailable"));
            continue;
        }
        let level = frame.level[i].clamp(0.0, 1.0);
        let bar = "#".repeat((level * 30.0).round() as usize);
        s.push_str(&format!(
            "  {:<13} {:>12.1} {:<9} {:>5.3} {bar}\n",
            info.name,
            rate.unwrap_or(0.0),
            info.unit,
            level
        ));
    }
    s
}

/// The `--print` output: keeps the rate window, says when to draw, and draws.
#[derive(Debug, Clone)]
pub struct Printer {
    window: RateWindow,
    live: bool,
    last: Option<Instant>,
}

impl Printer {
    /// `live`: redraw in place (stdout is a terminal); otherwise print lines.
    pub fn new(live: bool) -> Self {
        Printer {
            window: RateWindow::new(RATE_WINDOW),
            live,
            last: None,
        }
    }

    /// Takes every frame; returns the text to write when a draw is due (every [`REDRAW`], or
    /// every frame with `every_frame`, as `--once` and `--frames` want).
    pub fn frame(
        &mut self,
        frame: &SignalFrame,
        now: Instant,
        every_frame: bool,
    ) -> Option<String> {
        self.window.push(frame);
        let due = every_frame || self.last.is_none_or(|t| now.duration_since(t) >= REDRAW);
        if !due {
            return None;
        }
        self.last = Some(now);
        let table = render(frame, &self.window);
        Some(if self.live {
            format!("{HOME_AND_CLEAR}{table}")
        } else {
            table
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dt_ms: u64, rate0: f32, available: u32) -> SignalFrame {
        let mut f = SignalFrame {
            dt_ns: dt_ms * 1_000_000,
            available,
            ..SignalFrame::default()
        };
        f.rate[0] = rate0;
        f.level[0] = 0.5;
        f
    }

    #[test]
    fn the_window_mean_is_time_weighted_over_the_last_second() {
        let mut w = RateWindow::new(Duration::from_secs(1));
        assert_eq!(w.mean(0), None);
        // 50 ticks of 20 ms at 100/s, then 25 at 300/s: the last second is half each.
        for _ in 0..50 {
            w.push(&frame(20, 100.0, 1));
        }
        assert_eq!(w.mean(0), Some(100.0));
        for _ in 0..25 {
            w.push(&frame(20, 300.0, 1));
        }
        assert_eq!(w.span_ns(), 1_000_000_000);
        assert_eq!(w.mean(0), Some(200.0));
        // Longer ticks weigh more: 500 ms at 0 and 500 ms (ten ticks) at 300.
        let mut w = RateWindow::new(Duration::from_secs(1));
        w.push(&frame(500, 0.0, 1));
        for _ in 0..10 {
            w.push(&frame(50, 300.0, 1));
        }
        assert_eq!(w.mean(0), Some(150.0));
        // Old ticks fall out.
        for _ in 0..20 {
            w.push(&frame(50, 40.0, 1));
        }
        assert_eq!(w.mean(0), Some(40.0));
    }

    #[test]
    fn unmeasured_ticks_do_not_count_as_zero() {
        let mut w = RateWindow::new(Duration::from_secs(1));
        w.push(&frame(20, 100.0, 1));
        w.push(&frame(20, 0.0, 0));
        assert_eq!(w.mean(0), Some(100.0));
        assert_eq!(w.mean(1), None);
    }

    #[test]
    fn a_tiny_tick_cannot_grow_the_window_without_bound() {
        let mut w = RateWindow::new(Duration::from_secs(1));
        for _ in 0..5000 {
            w.push(&frame(0, 1.0, 1));
        }
        assert!(w.ticks.len() <= MAX_TICKS + 1);
        assert_eq!(w.mean(0), None, "no measured time, no rate");
    }

    #[test]
    fn the_table_shows_the_mean_beside_the_level() {
        let mut w = RateWindow::new(Duration::from_secs(1));
        w.push(&frame(20, 100.0, 1));
        w.push(&frame(20, 300.0, 1));
        let text = render(&frame(20, 300.0, 1), &w);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("frame #0 source=Inject dt=20.0 ms, rates: mean of the last 0.0 s")
        );
        let row = lines.next().unwrap_or("");
        let unit = SIGNALS[0].unit;
        assert_eq!(
            row,
            format!(
                "  {:<13} {:>12} {unit:<9} 0.500 {}",
                SIGNALS[0].name,
                "200.0",
                "#".repeat(15)
            )
        );
        assert_eq!(
            lines.next(),
            Some(format!("  {:<13} {:>12}", SIGNALS[1].name, "unavailable").as_str())
        );
        assert_eq!(text.lines().count(), SIGNALS.len() + 1);
    }

    #[test]
    fn live_output_redraws_in_place_at_4_hz_and_piped_output_is_plain() {
        let t0 = Instant::now();
        let mut live = Printer::new(true);
        let first = live
            .frame(&frame(20, 1.0, 1), t0, false)
            .unwrap_or_default();
        assert!(first.starts_with("\x1b[H\x1b[Jframe #0"), "{first:?}");
        assert_eq!(
            live.frame(&frame(20, 1.0, 1), t0 + Duration::from_millis(100), false),
            None
        );
        assert!(live.frame(&frame(20, 1.0, 1), t0 + REDRAW, false).is_some());
        assert!(live.frame(&frame(20, 1.0, 1), t0 + REDRAW, true).is_some());

        let mut piped = Printer::new(false);
        let text = piped
            .frame(&frame(20, 1.0, 1), t0, false)
            .unwrap_or_default();
        assert!(
            text.starts_with("frame #0") && !text.contains('\x1b'),
            "{text:?}"
        );
    }
}
