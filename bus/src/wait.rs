//! The event-driven wait every stage sleeps in.
//!
//! [`run`] attaches the listeners of the given subscribers (and an optional periodic tick) to
//! an iceoryx2 `WaitSet` and calls back when one of them fires. Event notifications are drained
//! before the callback runs, and the callback is expected to drain its subscriber fully, so a
//! wake-up never leaves work behind and the loop never spins. SIGINT and SIGTERM end the loop.

use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::prelude::*;
use iceoryx2::waitset::WaitSetRunResult;

use crate::BusError;

/// A handle on the event listener of a subscriber or command server, to wait on.
///
/// It shares the listener with its port, so the wait loop can hold wakers while the callback
/// uses the ports mutably. Get one with `waker()` on a [`Subscriber`](crate::Subscriber) or
/// [`CommandServer`](crate::CommandServer).
#[derive(Clone)]
pub struct Waker(pub(crate) Rc<Listener<ipc::Service>>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// Why [`run`] called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Source `i` (index into the `sources` slice) has something to read.
    Ready(usize),
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

/// Sleeps until a source fires or the tick elapses, calls `on_wake`, and repeats until the
/// callback breaks, the deadline passes or the process is asked to terminate.
///
/// Every source gets one `Wake::Ready` right away, so samples that arrived before the wait
/// began are not stranded.
pub fn run(
    sources: &[Waker],
    tick: Option<Duration>,
    deadline: Option<Instant>,
    mut on_wake: impl FnMut(Wake) -> ControlFlow<()>,
) -> Result<Exit, BusError> {
    crate::config::quiet_iceoryx_logs();
    let waitset = WaitSetBuilder::new()
        .signal_handling_mode(SignalHandlingMode::HandleTerminationRequests)
        .create::<ipc::Service>()
        .map_err(|e| BusError::iceoryx("create a wait set", e))?;
    let mut guards = Vec::with_capacity(sources.len());
    for source in sources {
        let guard = waitset
            .attach_notification(source.0.as_ref())
            .map_err(|e| BusError::iceoryx("attach a listener to the wait set", e))?;
        guards.push(guard);
    }
    let tick_guard = match tick {
        Some(period) => Some(
            waitset
                .attach_interval(period)
                .map_err(|e| BusError::iceoryx("attach a tick to the wait set", e))?,
        ),
        None => None,
    };
    if guards.is_empty() && tick_guard.is_none() {
        return Err(BusError::Iceoryx {
            action: "wait".into(),
            detail: "nothing to wait on (no sources and no tick)".into(),
        });
    }

    for (i, source) in sources.iter().enumerate() {
        drain_notifications(&source.0);
        if on_wake(Wake::Ready(i)).is_break() {
            return Ok(Exit::Stopped);
        }
    }

    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Exit::Deadline);
                }
                Some(left)
            }
            None => None,
        };
        let mut stop = false;
        let callback = |id: WaitSetAttachmentId<ipc::Service>| {
            for (i, guard) in guards.iter().enumerate() {
                if id.has_event_from(guard) {
                    drain_notifications(&sources[i].0);
                    if on_wake(Wake::Ready(i)).is_break() {
                        stop = true;
                        return CallbackProgression::Stop;
                    }
                }
            }
            if let Some(guard) = &tick_guard
                && id.has_event_from(guard)
                && on_wake(Wake::Tick).is_break()
            {
                stop = true;
                return CallbackProgression::Stop;
            }
            CallbackProgression::Continue
        };
        let result = match timeout {
            Some(t) => waitset.wait_and_process_once_with_timeout(callback, t),
            None => waitset.wait_and_process_once(callback),
        }
        .map_err(|e| BusError::iceoryx("wait", e))?;
        if stop {
            return Ok(Exit::Stopped);
        }
        match result {
            WaitSetRunResult::TerminationRequest | WaitSetRunResult::Interrupt => {
                return Ok(Exit::Terminated);
            }
            WaitSetRunResult::StopRequest => return Ok(Exit::Stopped),
            WaitSetRunResult::AllEventsHandled => {}
        }
    }
}

/// Consumes pending notifications so the wait set does not fire again for them.
fn drain_notifications(listener: &Listener<ipc::Service>) {
    // A failed try_wait leaves notifications pending; the next wake-up retries, and the data
    // itself is read from the subscriber regardless, so nothing is lost.
    listener.try_wait(|_| {}).ok();
}
