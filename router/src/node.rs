//! The PipeWire MIDI node: one thread owns the PipeWire main loop and an output stream of
//! `application/control` (8-bit raw MIDI) whose real-time process callback writes the cycle's
//! events at their frames. It never connects by itself: patch it with pw-link, Helvum or
//! qpwgraph. PipeWire 0.3.65 runs the callback only while the port is linked (even with
//! `node.always-process`); what waited meanwhile is skipped if already over (see [`crate::rt`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::mpsc;

use pipewire as pw;
use pw::spa;
use pw::spa::pod::Pod;

use crate::rt::{Cycle, Scheduler};
use crate::seq::SeqWriter;

/// Messages to the PipeWire thread.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Disconnect and leave the main loop.
    Terminate,
}

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No PipeWire daemon answered.
    #[error(
        "cannot connect to PipeWire ({detail}); is the daemon running for this user? \
         (XDG_RUNTIME_DIR={runtime}, PIPEWIRE_REMOTE={remote})"
    )]
    Connect {
        /// pipewire-rs's error.
        detail: String,
        /// The runtime directory searched.
        runtime: String,
        /// The remote name, if set.
        remote: String,
    },
    /// The stream could not be created or connected.
    #[error("failed to {action}: {detail}")]
    Stream {
        /// What we were doing.
        action: &'static str,
        /// pipewire-rs's error.
        detail: String,
    },
}

fn stream_err(action: &'static str) -> impl Fn(pw::Error) -> NodeError {
    move |e| NodeError::Stream {
        action,
        detail: e.to_string(),
    }
}

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

/// Runs the node until [`Control::Terminate`]. Reports `Ok(node name)` on `ready` once the
/// stream is connected (or the error that stopped it).
pub fn run(
    name: &str,
    scheduler: Scheduler,
    control: pw::channel::Receiver<Control>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<(), NodeError> {
    let result = run_inner(name, scheduler, control, &ready);
    if let Err(e) = &result {
        ready.send(Err(e.to_string())).ok();
    }
    result
}

fn run_inner(
    name: &str,
    scheduler: Scheduler,
    control: pw::channel::Receiver<Control>,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<(), NodeError> {
    pw::init();
    let mainloop =
        pw::main_loop::MainLoopRc::new(None).map_err(stream_err("create the main loop"))?;
    let context =
        pw::context::ContextRc::new(&mainloop, None).map_err(stream_err("create a context"))?;
    let core = context.connect_rc(None).map_err(|e| NodeError::Connect {
        detail: e.to_string(),
        runtime: std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "(unset)".into()),
        remote: std::env::var("PIPEWIRE_REMOTE").unwrap_or_else(|_| "(unset)".into()),
    })?;
    let stream = pw::stream::StreamBox::new(
        &core,
        name,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Midi",
            *pw::keys::MEDIA_CATEGORY => "Playback",
            *pw::keys::MEDIA_ROLE => "Music",
            *pw::keys::FORMAT_DSP => "8 bit raw midi",
            *pw::keys::NODE_NAME => name,
            *pw::keys::NODE_DESCRIPTION => "khorus router (MIDI out)",
            *pw::keys::NODE_ALWAYS_PROCESS => "true",
            *pw::keys::APP_NAME => "khorus",
        },
    )
    .map_err(stream_err("create the stream"))?;

    let position = Arc::new(Position::default());
    let io_position = Arc::clone(&position);
    let _listener = stream
        .add_local_listener_with_user_data(scheduler)
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
            // When this cycle's first frame is heard: the cycle's clock plus the delay to the
            // device — the synth's mapping, so MIDI and audio of one note coincide.
            let start_ns = match stream.time() {
                Ok(t) => {
                    let r = t.rate();
                    let delay_ns = if r.denom > 0 {
                        t.delay() as i128 * r.num as i128 * 1_000_000_000 / r.denom as i128
                    } else {
                        0
                    };
                    t.now() + delay_ns as i64
                }
                Err(_) => khorus_bus::clock::now_ns() as i64,
            };
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

    let bytes: Vec<u8> = spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(spa::pod::Object {
            type_: spa::sys::SPA_TYPE_OBJECT_Format,
            id: spa::sys::SPA_PARAM_EnumFormat,
            properties: vec![
                spa::pod::Property::new(
                    spa::sys::SPA_FORMAT_mediaType,
                    spa::pod::Value::Id(spa::utils::Id(spa::sys::SPA_MEDIA_TYPE_application)),
                ),
                spa::pod::Property::new(
                    spa::sys::SPA_FORMAT_mediaSubtype,
                    spa::pod::Value::Id(spa::utils::Id(spa::sys::SPA_MEDIA_SUBTYPE_control)),
                ),
            ],
        }),
    )
    .map_err(|e| NodeError::Stream {
        action: "describe the MIDI format",
        detail: format!("{e:?}"),
    })?
    .0
    .into_inner();
    let pod = Pod::from_bytes(&bytes).ok_or(NodeError::Stream {
        action: "describe the MIDI format",
        detail: "invalid pod".into(),
    })?;
    let flags = pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::RT_PROCESS;
    stream
        .connect(spa::utils::Direction::Output, None, flags, &mut [pod])
        .map_err(stream_err("connect the stream"))?;

    let mainloop_weak = mainloop.downgrade();
    let _control = control.attach(mainloop.loop_(), move |msg| match msg {
        Control::Terminate => {
            if let Some(l) = mainloop_weak.upgrade() {
                l.quit();
            }
        }
    });
    ready.send(Ok(())).ok();
    mainloop.run();
    stream.disconnect().ok();
    Ok(())
}
