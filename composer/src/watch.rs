//! Notices when signal frames stop arriving. The scores are silent below an activity floor, so a
//! composer playing a kernel score with no collector running makes no sound and no error; this
//! says why, once, and reports the age of the last frame in the status.

/// After this long without a frame while a kernel score plays, the user is told.
pub const STALE_AFTER_NS: u64 = 5_000_000_000;

/// What the user is told when frames stop arriving.
pub const STALE_WARNING: &str = "no signal frames for 5 s: kernel scores wait for activity \
                                 (start the collector, or `--source synthetic`)";

/// What changed at a check, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Frames stopped arriving while a kernel score plays (warn once).
    Stale,
    /// Frames arrive again after a warning.
    Resumed,
}

/// Tracks the last signal frame.
#[derive(Debug, Clone, Copy)]
pub struct SignalWatch {
    /// The last frame's arrival, or the start when none arrived yet, monotonic ns.
    last_ns: u64,
    /// A warning was given and not yet cleared.
    warned: bool,
    /// Age of the last frame at the last check, ns.
    age_ns: u64,
}

impl SignalWatch {
    /// A watch started at `now_ns` (the stage's start counts as the last frame).
    pub fn new(now_ns: u64) -> Self {
        Self {
            last_ns: now_ns,
            warned: false,
            age_ns: 0,
        }
    }

    /// A frame arrived at `now_ns`.
    pub fn frame(&mut self, now_ns: u64) {
        self.last_ns = self.last_ns.max(now_ns);
        self.age_ns = 0;
    }

    /// Checks at `now_ns` whether frames are missing while `kernel_score` plays; the change,
    /// if any, is reported once.
    pub fn check(&mut self, now_ns: u64, kernel_score: bool) -> Option<Change> {
        self.age_ns = now_ns.saturating_sub(self.last_ns);
        let stale = self.age_ns >= STALE_AFTER_NS;
        match (stale && kernel_score, self.warned) {
            (true, false) => {
                self.warned = true;
                Some(Change::Stale)
            }
            (false, true) if !stale => {
                self.warned = false;
                Some(Change::Resumed)
            }
            _ => None,
        }
    }

    /// Whole seconds since the last frame, as of the last check (the status gauge).
    pub fn age_s(&self) -> u64 {
        self.age_ns / 1_000_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn missing_frames_warn_once_and_clear_when_frames_arrive() {
        let mut w = SignalWatch::new(10 * S);
        assert_eq!(w.check(14 * S, true), None);
        assert_eq!(w.check(15 * S, true), Some(Change::Stale));
        assert_eq!(w.check(16 * S, true), None, "once");
        assert_eq!(w.age_s(), 6);
        w.frame(17 * S);
        assert_eq!(w.check(17 * S, true), Some(Change::Resumed));
        assert_eq!(w.age_s(), 0);
        assert_eq!(w.check(21 * S, true), None);
        assert_eq!(
            w.check(22 * S, true),
            Some(Change::Stale),
            "again after a new gap"
        );
    }

    #[test]
    fn no_warning_without_a_kernel_score() {
        let mut w = SignalWatch::new(0);
        assert_eq!(w.check(60 * S, false), None);
        assert_eq!(w.age_s(), 60, "the gauge counts anyway");
        assert_eq!(w.check(61 * S, true), Some(Change::Stale));
    }

    #[test]
    fn the_warning_says_what_to_do() {
        assert_eq!(
            STALE_WARNING,
            "no signal frames for 5 s: kernel scores wait for activity (start the collector, \
             or `--source synthetic`)"
        );
    }
}
