//! The event-driven wait every stage sleeps in.
//!
//! [`run`] attaches the listeners of the given sources (subscribers, command servers, and file
//! descriptors such as a child's pidfd) to an iceoryx2 `WaitSet`, sleeps until one of them
//! fires or an optional periodic tick is due, and calls back, naming the source by the key the
//! caller gave it — a typed key, so adding a source never reroutes the others. Ticks fall on
//! the monotonic clock's grid ([`Period`]), the same in every process: stages whose periods
//! divide one another wake together, and a stage can tick just after another's samples. Event
//! notifications are drained before the callback runs, and the callback is expected to drain
//! its subscriber fully, so a wake-up never leaves work behind and the loop never spins.
//! SIGINT and SIGTERM end the loop.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::prelude::*;
use iceoryx2::waitset::WaitSetRunResult;
use iceoryx2_bb_posix::file_descriptor::{FileDescriptor, FileDescriptorBased};
use iceoryx2_bb_posix::file_descriptor_set::SynchronousMultiplexing;

use crate::BusError;
use crate::service::Ipc;

/// A handle on something to wait for: the event listener of a subscriber or command server,
/// or a file descriptor that becomes readable (a pidfd when its process exits).
///
/// A listener is shared with its port, so the wait loop can hold wakers while the callback
/// uses the ports mutably. Get one with `waker()` on a [`Subscriber`](crate::Subscriber) or
/// [`CommandServer`](crate::CommandServer), or [`Waker::fd`].
#[derive(Clone)]
pub struct Waker(pub(crate) Source);

#[derive(Clone)]
pub(crate) enum Source {
    Listener(Rc<Listener<Ipc>>),
    Fd(Rc<Fd>),
}

/// A borrowed view of an owned descriptor, in the form the wait set takes.
pub(crate) struct Fd {
    _owned: OwnedFd,
    view: FileDescriptor,
}

impl std::fmt::Debug for Fd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fd").finish()
    }
}

impl FileDescriptorBased for Fd {
    fn file_descriptor(&self) -> &FileDescriptor {
        &self.view
    }
}

impl SynchronousMultiplexing for Fd {}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Listener(_) => f.write_str("Waker(listener)"),
            Source::Fd(_) => f.write_str("Waker(fd)"),
        }
    }
}

impl Waker {
    /// Wakes when `fd` is readable (level-triggered: the callback must make it not readable,
    /// or stop waiting on it, or the loop wakes again at once). For a pidfd: when the process
    /// has exited.
    pub fn fd(fd: OwnedFd) -> Self {
        // SAFETY: the descriptor stays open as long as `_owned` (same struct, dropped after
        // the non-owning view, which never closes it).
        let view = unsafe { FileDescriptor::non_owning_new_unchecked(fd.as_raw_fd()) };
        Waker(Source::Fd(Rc::new(Fd { _owned: fd, view })))
    }

    fn drain(&self) {
        if let Source::Listener(l) = &self.0 {
            // A failed try_wait leaves notifications pending; the next wake-up retries, and
            // the data itself is read from the subscriber regardless, so nothing is lost.
            l.try_wait(|_| {}).ok();
        }
    }
}

/// Sleeps on one listener for at most `timeout`, for a caller that then looks again at what
/// it waits for (a reply, a sample). A signal interrupting the sleep (a child exiting, a stop
/// and continue) is a wake-up like any other, not an error; `action` names the wait in one.
pub(crate) fn sleep_on(
    listener: &Listener<Ipc>,
    timeout: Duration,
    action: impl FnOnce() -> String,
) -> Result<(), BusError> {
    use iceoryx2::port::listener::ListenerWaitError;
    match listener.timed_wait(|_| {}, timeout) {
        Ok(_) | Err(ListenerWaitError::InterruptSignal) => Ok(()),
        Err(e) => Err(BusError::iceoryx(&action(), e)),
    }
}

/// Why [`run`] called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake<K> {
    /// The source given with key `K` has something to read.
    Ready(K),
    /// The periodic tick fired.
    Tick,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The callback asked to stop.
    Stopped,
    /// The deadline passed.
    Deadline,
    /// SIGINT or SIGTERM arrived.
    Terminated,
}

/// A periodic tick on the grid of the shared monotonic clock ([`crate::clock`]): due at every
/// multiple of its period plus its phase, in every process alike. Two stages ticking at 20 ms
/// and 100 ms wake together every 100 ms (one wake-up of an idle CPU, not two), and one
/// ticking at a phase of a few milliseconds reads what another published on the grid just
/// before. A tick that could not run on time is not made up: the next is on the grid again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    every_ns: u64,
    phase_ns: u64,
}

impl Period {
    /// Every `every` (at least 1 ms), on the grid's multiples.
    pub fn every(every: Duration) -> Self {
        let every_ns = (every.as_nanos() as u64).max(1_000_000);
        Self {
            every_ns,
            phase_ns: 0,
        }
    }

    /// The same period, `phase` after the grid's multiples (taken modulo the period).
    pub fn after(self, phase: Duration) -> Self {
        Self {
            phase_ns: phase.as_nanos() as u64 % self.every_ns,
            ..self
        }
    }

    /// The period.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.every_ns)
    }

    /// The first tick strictly after `now_ns` (monotonic ns).
    pub fn next_after(&self, now_ns: u64) -> u64 {
        let since = now_ns.saturating_sub(self.phase_ns);
        let base = if now_ns < self.phase_ns {
            0
        } else {
            since - since % self.every_ns + self.every_ns
        };
        base + self.phase_ns
    }
}

/// Sleeps until a source fires or the tick is due, calls `on_wake` with the source's key,
/// and repeats until the callback breaks, the deadline passes or the process is asked to
/// terminate. There must be a source or a tick.
///
/// Every subscriber and command server gets one `Wake::Ready` right away, so samples that
/// arrived before the wait began are not stranded; a file descriptor wakes only when it is
/// readable. The first tick is the grid's next after the call.
pub fn run<K: Copy>(
    sources: &[(K, Waker)],
    tick: Option<Period>,
    deadline: Option<Instant>,
    on_wake: impl FnMut(Wake<K>) -> ControlFlow<()>,
) -> Result<Exit, BusError> {
    run_changing(sources, &Cell::new(tick), deadline, on_wake)
}

/// [`run`] with a tick the callback may change (a stage that ticks faster while someone needs
/// it): a new period takes effect from its grid's next tick after the wake-up that set it.
pub fn run_changing<K: Copy>(
    sources: &[(K, Waker)],
    tick: &Cell<Option<Period>>,
    deadline: Option<Instant>,
    mut on_wake: impl FnMut(Wake<K>) -> ControlFlow<()>,
) -> Result<Exit, BusError> {
    crate::config::quiet_iceoryx_logs();
    let waitset = WaitSetBuilder::new()
        .signal_handling_mode(SignalHandlingMode::HandleTerminationRequests)
        .create::<Ipc>()
        .map_err(|e| BusError::iceoryx("create a wait set", e))?;
    let mut guards = Vec::with_capacity(sources.len());
    for (_, source) in sources {
        let guard = match &source.0 {
            Source::Listener(l) => waitset.attach_notification(l.as_ref()),
            Source::Fd(fd) => waitset.attach_notification(fd.as_ref()),
        }
        .map_err(|e| BusError::iceoryx("attach a source to the wait set", e))?;
        guards.push(guard);
    }
    if guards.is_empty() && tick.get().is_none() {
        return Err(BusError::Iceoryx {
            action: "wait".into(),
            detail: "nothing to wait on (no sources and no tick)".into(),
        });
    }

    // Samples may have arrived before the wait began; a descriptor says so itself.
    for (key, source) in sources {
        if let Source::Listener(_) = source.0 {
            source.drain();
            if on_wake(Wake::Ready(*key)).is_break() {
                return Ok(Exit::Stopped);
            }
        }
    }

    let mut period = tick.get();
    let mut next_tick = period.map(|p| p.next_after(crate::clock::now_ns()));
    loop {
        let now_ns = crate::clock::now_ns();
        if tick.get() != period {
            period = tick.get();
            next_tick = period.map(|p| p.next_after(now_ns));
        }
        if let (Some(period), Some(due)) = (period, next_tick)
            && now_ns >= due
        {
            next_tick = Some(period.next_after(now_ns));
            if on_wake(Wake::Tick).is_break() {
                return Ok(Exit::Stopped);
            }
            continue;
        }
        let to_deadline = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Exit::Deadline);
                }
                Some(left)
            }
            None => None,
        };
        // (iceoryx2 rounds a timeout up to the next millisecond: a tick comes at most that
        // late, never early, so the loop never spins waiting for it.)
        let to_tick = next_tick.map(|due| Duration::from_nanos(due - now_ns));
        let timeout = match (to_deadline, to_tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut stop = false;
        let callback = |id: WaitSetAttachmentId<Ipc>| {
            for (i, guard) in guards.iter().enumerate() {
                if id.has_event_from(guard) {
                    let (key, source) = &sources[i];
                    source.drain();
                    if on_wake(Wake::Ready(*key)).is_break() {
                        stop = true;
                        return CallbackProgression::Stop;
                    }
                }
            }
            CallbackProgression::Continue
        };
        let result = if guards.is_empty() {
            // Only a tick (a wait set needs something attached): sleep to it, as the wait set
            // would, and end on SIGINT/SIGTERM as it would.
            std::thread::sleep(timeout.unwrap_or_default());
            if iceoryx2_bb_posix::signal::SignalHandler::termination_requested() {
                WaitSetRunResult::TerminationRequest
            } else {
                WaitSetRunResult::AllEventsHandled
            }
        } else {
            match timeout {
                Some(t) => waitset.wait_and_process_once_with_timeout(callback, t),
                None => waitset.wait_and_process_once(callback),
            }
            .map_err(|e| BusError::iceoryx("wait", e))?
        };
        if stop {
            return Ok(Exit::Stopped);
        }
        match result {
            WaitSetRunResult::TerminationRequest => return Ok(Exit::Terminated),
            // The wait was interrupted (EINTR): by SIGINT or SIGTERM, which the next wait
            // reports as a termination request, or by anything else — a stop and continue
            // (Ctrl-Z, `fg`), a debugger attaching — which is no reason to stop.
            WaitSetRunResult::Interrupt => continue,
            WaitSetRunResult::StopRequest => return Ok(Exit::Stopped),
            WaitSetRunResult::AllEventsHandled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_period_ticks_on_the_grid_strictly_after_now() {
        let p = Period::every(Duration::from_millis(20));
        assert_eq!(p.next_after(0), 20 * MS);
        assert_eq!(p.next_after(19 * MS), 20 * MS);
        assert_eq!(p.next_after(20 * MS), 40 * MS, "strictly after");
        assert_eq!(p.next_after(1_000 * MS + 1), 1_020 * MS);
        let q = p.after(Duration::from_millis(3));
        assert_eq!(q.next_after(0), 3 * MS);
        assert_eq!(q.next_after(3 * MS), 23 * MS);
        assert_eq!(q.next_after(22 * MS), 23 * MS);
        assert_eq!(q.next_after(23 * MS + 1), 43 * MS);
    }

    #[test]
    fn periods_that_divide_each_other_tick_together() {
        let fast = Period::every(Duration::from_millis(20));
        let slow = Period::every(Duration::from_millis(100));
        let mut t = 7 * MS;
        for _ in 0..10 {
            let s = slow.next_after(t);
            let mut f = fast.next_after(t);
            while f < s {
                f = fast.next_after(f);
            }
            assert_eq!(f, s, "every slow tick is also a fast one");
            t = s;
        }
    }

    #[test]
    fn a_phase_is_taken_modulo_the_period_and_the_period_is_at_least_a_millisecond() {
        let p = Period::every(Duration::from_millis(10)).after(Duration::from_millis(23));
        assert_eq!(p.next_after(0), 3 * MS);
        assert_eq!(
            Period::every(Duration::ZERO).duration(),
            Duration::from_millis(1)
        );
    }
}
