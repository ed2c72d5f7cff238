//! The event-driven wait every stage sleeps in.
//!
//! [`run`] attaches the listeners of the given sources (subscribers, command servers, and file
//! descriptors such as a child's pidfd) and an optional periodic tick to an iceoryx2 `WaitSet`,
//! and calls back when one of them fires, naming the source by the key the caller gave it — a
//! typed key, so adding a source never reroutes the others. Event notifications are drained
//! before the callback runs, and the callback is expected to drain its subscriber fully, so a
//! wake-up never leaves work behind and the loop never spins. SIGINT and SIGTERM end the loop.

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

/// Sleeps until a source fires or the tick elapses, calls `on_wake` with the source's key,
/// and repeats until the callback breaks, the deadline passes or the process is asked to
/// terminate.
///
/// Every subscriber and command server gets one `Wake::Ready` right away, so samples that
/// arrived before the wait began are not stranded; a file descriptor wakes only when it is
/// readable.
pub fn run<K: Copy>(
    sources: &[(K, Waker)],
    tick: Option<Duration>,
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

    // Samples may have arrived before the wait began; a descriptor says so itself.
    for (key, source) in sources {
        if let Source::Listener(_) = source.0 {
            source.drain();
            if on_wake(Wake::Ready(*key)).is_break() {
                return Ok(Exit::Stopped);
            }
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
