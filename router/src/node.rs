//! The PipeWire MIDI node: one thread owns the PipeWire main loop and an output stream of
//! `application/control` (8-bit raw MIDI) whose real-time process callback writes the cycle's
//! events at their frames. It never connects by itself: patch it with pw-link, Helvum or
//! qpwgraph. PipeWire 0.3.65 runs the callback only while the port is linked (even with
//! `node.always-process`, which this node does not set: it only made the graph wake the
//! unlinked node's thread every cycle, 47 times a second, for nothing); what waited meanwhile
//! is skipped if already over (see [`crate::rt`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use khorus_pw::{Control, NodeError, Ready, Session, cycle_start_ns, format_pod, stream_err};
use pipewire as pw;
use pw::spa;

use crate::rt::{Cycle, Scheduler};
use crate::seq::SeqWriter;

/// The graph's position (quantum, rate), written by PipeWire, read in the callback.
#[derive(Debug, Default)]
struct Position(AtomicPtr<spa::sys::spa_io_position>);

impl Position {
    /// Frames and rate of the current cycle (a 1024-frame, 48 kHz guess before PipeWire says).
    fn cycle(&self) -> (u32, u32) {
        let p = self.0.load(Ordering::Acquire);
        if p.is_null() {
            return (1024, 48_000);
        }
        // SAFETY: PipeWire keeps the io area it handed us in `io_changed` valid until it
        // replaces or clears it there, which swaps this pointer first.
        let clock = unsafe { &(*p).clock };
        let frames = clock.duration.clamp(1, 1 << 16) as u32;
        let rate = if clock.rate.denom > 0 {
            clock.rate.denom
        } else {
            48_000
        };
        (frames, rate)
    }
}

/// Whether a peer is linked to the node, as its stream's state says (PipeWire runs the stream
/// while its port is linked, pauses it otherwise), and an eventfd that becomes readable at
/// each change: the bus thread waits on it, so it learns of a link at once, not at its next
/// tick.
#[derive(Debug)]
pub struct LinkWatch {
    streaming: AtomicBool,
    event: File,
}

impl LinkWatch {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd takes no pointers; it returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            streaming: AtomicBool::new(false),
            // SAFETY: `fd` was just created and is owned by nothing else.
            event: File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
        })
    }

    /// A peer is linked (the stream runs).
    pub fn linked(&self) -> bool {
        self.streaming.load(Ordering::Acquire)
    }

    /// A descriptor that is readable while a change is unread (for a wait set).
    pub fn readable(&self) -> std::io::Result<OwnedFd> {
        self.event.try_clone().map(OwnedFd::from)
    }

    /// Marks the changes so far as read.
    pub fn clear(&self) {
        // Nothing to read (EAGAIN) is fine: the flag, not the count, is what matters.
        (&self.event).read_exact(&mut [0; 8]).ok();
    }

    fn set(&self, streaming: bool) {
        if self.streaming.swap(streaming, Ordering::AcqRel) != streaming {
            // Fails only when the counter would overflow: it is readable then anyway.
            (&self.event).write_all(&1u64.to_ne_bytes()).ok();
        }
    }
}

/// Runs the node until [`Control::Terminate`], reporting on `ready` once the stream is
/// connected and on `link` whenever a peer links or unlinks.
pub fn run(
    name: &str,
    scheduler: Scheduler,
    control: pw::channel::Receiver<Control>,
    ready: &Ready,
    link: Arc<LinkWatch>,
) -> Result<(), NodeError> {
    let session = Session::connect()?;
    let stream = pw::stream::StreamBox::new(
        &session.core,
        name,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Midi",
            *pw::keys::MEDIA_CATEGORY => "Playback",
            *pw::keys::MEDIA_ROLE => "Music",
            *pw::keys::FORMAT_DSP => "8 bit raw midi",
            *pw::keys::NODE_NAME => name,
            *pw::keys::NODE_DESCRIPTION => "khorus router (MIDI out)",
            *pw::keys::APP_NAME => "khorus",
        },
    )
    .map_err(stream_err("create the stream"))?;

    let position = Arc::new(Position::default());
    let io_position = Arc::clone(&position);
    let _listener = stream
        .add_local_listener_with_user_data(scheduler)
        .state_changed(move |_stream, _data, _old, new| {
            link.set(matches!(new, pw::stream::StreamState::Streaming));
        })
        .io_changed(move |_stream, _data, id, area, size| {
            if id == spa::sys::SPA_IO_Position {
                let ok = !area.is_null()
                    && size as usize >= std::mem::size_of::<spa::sys::spa_io_position>();
                let p = if ok {
                    area.cast::<spa::sys::spa_io_position>()
                } else {
                    std::ptr::null_mut()
                };
                io_position.0.store(p, Ordering::Release);
            }
        })
        .process(move |stream, scheduler| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                scheduler.count_xrun();
                return;
            };
            let (frames, rate) = position.cycle();
            let start_ns = cycle_start_ns(stream);
            let datas = buffer.datas_mut();
            let data = &mut datas[0];
            let Some(bytes) = data.data() else { return };
            let Some(mut out) = SeqWriter::new(bytes) else {
                return;
            };
            scheduler.process(
                Cycle {
                    start_ns,
                    frames,
                    rate,
                },
                &mut out,
            );
            let len = out.len();
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.stride_mut() = 1;
            *chunk.size_mut() = len as u32;
        })
        .register()
        .map_err(stream_err("register the stream listener"))?;

    let format = format_pod(vec![
        spa::pod::Property::new(
            spa::sys::SPA_FORMAT_mediaType,
            spa::pod::Value::Id(spa::utils::Id(spa::sys::SPA_MEDIA_TYPE_application)),
        ),
        spa::pod::Property::new(
            spa::sys::SPA_FORMAT_mediaSubtype,
            spa::pod::Value::Id(spa::utils::Id(spa::sys::SPA_MEDIA_SUBTYPE_control)),
        ),
    ])?;
    session.play(&stream, &format, false, control, ready)
}
