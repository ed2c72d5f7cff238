//! The one clock of khorus: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! Every timestamp on the bus (`t_ns` fields) is on this clock, so the composer can stamp a
//! note with the instant it must sound and the synth and router, in other processes, agree on
//! what that instant is.

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on `CLOCK_MONOTONIC` now.
pub fn now_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux for a valid clock id; a failure would mean a broken
    // libc, where returning 0 is safer than panicking in a real-time context.
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// Converts a span of nanoseconds to seconds.
pub fn ns_to_s(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_back() {
        let mut last = now_ns();
        assert!(last > 0);
        for _ in 0..10_000 {
            let t = now_ns();
            assert!(t >= last, "clock went back: {t} < {last}");
            last = t;
        }
    }
}
