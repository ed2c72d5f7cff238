//! PipeWire glue shared by the stages that are PipeWire nodes (the synth's audio stream, the
//! router's MIDI stream): connecting with an error that says where it looked, the thread that
//! owns the main loop (as in Helvum: one thread, stopped through a PipeWire channel), the
//! clock mapping of a cycle, and format pods. Only the stream itself — its properties, format
//! and process callback — stays with each stage.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use pipewire as pw;
use pw::spa;

/// Why a node could not run.
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
    /// The connection to the daemon was lost (it stopped or restarted).
    #[error("lost the connection to PipeWire: {detail}")]
    Disconnected {
        /// The core's error.
        detail: String,
    },
}

/// Maps a pipewire-rs error to [`NodeError::Stream`] naming what we were doing.
pub fn stream_err(action: &'static str) -> impl Fn(pw::Error) -> NodeError {
    move |e| NodeError::Stream {
        action,
        detail: e.to_string(),
    }
}

/// A connection to the daemon: main loop, context and core.
#[derive(Debug)]
pub struct Session {
    /// The main loop (run by [`Session::run`]).
    pub mainloop: pw::main_loop::MainLoopRc,
    /// The context.
    pub context: pw::context::ContextRc,
    /// The core, to create streams on.
    pub core: pw::core::CoreRc,
}

impl Session {
    /// Connects to the daemon of this user (`XDG_RUNTIME_DIR`, `PIPEWIRE_REMOTE`).
    pub fn connect() -> Result<Self, NodeError> {
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
        Ok(Self {
            mainloop,
            context,
            core,
        })
    }

    /// Connects `stream` as an output offering `format` (from [`format_pod`]), real-time
    /// processed with mapped buffers (and linked to the default target by itself when
    /// `autoconnect`), runs until [`Control::Terminate`], then disconnects it.
    pub fn play(
        &self,
        stream: &pw::stream::Stream,
        format: &[u8],
        autoconnect: bool,
        control: pw::channel::Receiver<Control>,
        ready: &Ready,
    ) -> Result<(), NodeError> {
        connect_output(stream, format, autoconnect)?;
        let result = self.run(control, ready);
        stream.disconnect().ok();
        result
    }

    /// Says the node is up on `ready`, then runs the main loop until [`Control::Terminate`]
    /// arrives on `control`, or the daemon goes away (an error on the core object: the
    /// connection is gone), which is [`NodeError::Disconnected`].
    pub fn run(
        &self,
        control: pw::channel::Receiver<Control>,
        ready: &Ready,
    ) -> Result<(), NodeError> {
        let weak = self.mainloop.downgrade();
        let _attached = control.attach(self.mainloop.loop_(), move |msg| match msg {
            Control::Terminate => {
                if let Some(l) = weak.upgrade() {
                    l.quit();
                }
            }
        });
        let lost = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
        let weak = self.mainloop.downgrade();
        let lost_in = std::rc::Rc::clone(&lost);
        let _core_listener = self
            .core
            .add_listener_local()
            .error(move |id, _seq, res, message| {
                if id == pw::core::PW_ID_CORE {
                    *lost_in.borrow_mut() = Some(format!("{message} (error {res})"));
                    if let Some(l) = weak.upgrade() {
                        l.quit();
                    }
                }
            })
            .register();
        ready.send(Ok(())).ok();
        self.mainloop.run();
        match lost.borrow_mut().take() {
            Some(detail) => Err(NodeError::Disconnected { detail }),
            None => Ok(()),
        }
    }
}

/// Connects `stream` as an output offering `format` (from [`format_pod`]), real-time
/// processed with mapped buffers, linked to the default target by the session manager when
/// `autoconnect`.
pub fn connect_output(
    stream: &pw::stream::Stream,
    format: &[u8],
    autoconnect: bool,
) -> Result<(), NodeError> {
    connect_output_with(stream, format, autoconnect, true)
}

/// [`connect_output`], starting inactive (not scheduled until `set_active(true)`) unless
/// `active`.
pub fn connect_output_with(
    stream: &pw::stream::Stream,
    format: &[u8],
    autoconnect: bool,
    active: bool,
) -> Result<(), NodeError> {
    let mut flags = pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::RT_PROCESS;
    if autoconnect {
        flags |= pw::stream::StreamFlags::AUTOCONNECT;
    }
    if !active {
        flags |= pw::stream::StreamFlags::INACTIVE;
    }
    stream
        .connect(
            spa::utils::Direction::Output,
            None,
            flags,
            &mut [as_pod(format)?],
        )
        .map_err(stream_err("connect the stream"))
}

/// Messages to the PipeWire thread.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Leave the main loop (the stream is disconnected on the way out).
    Terminate,
}

/// How the node thread reports that it is up (or why not).
pub type Ready = mpsc::Sender<Result<(), String>>;

/// The thread that owns a PipeWire main loop and its stream.
pub struct NodeThread {
    control: pw::channel::Sender<Control>,
    thread: JoinHandle<Result<(), NodeError>>,
}

impl std::fmt::Debug for NodeThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeThread")
            .field("thread", &self.thread.thread().id())
            .finish()
    }
}

impl NodeThread {
    /// Runs `body` on a new thread named `pipewire` and waits (up to 10 s) until it reports
    /// on its [`Ready`] sender; an error it reports is returned here.
    pub fn spawn<F>(body: F) -> anyhow::Result<Self>
    where
        F: FnOnce(pw::channel::Receiver<Control>, &Ready) -> Result<(), NodeError> + Send + 'static,
    {
        let (control, control_rx) = pw::channel::channel::<Control>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pipewire".into())
            .spawn(move || {
                let result = body(control_rx, &ready_tx);
                if let Err(e) = &result {
                    ready_tx.send(Err(e.to_string())).ok();
                }
                result
            })
            .context("failed to start the PipeWire thread")?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Self { control, thread }),
            Ok(Err(e)) => {
                thread.join().ok();
                Err(anyhow!(e))
            }
            Err(_) => Err(anyhow!("the PipeWire thread did not start within 10 s")),
        }
    }

    /// Whether the thread has ended by itself (the PipeWire daemon went away).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the main loop and joins the thread.
    pub fn stop(self) -> anyhow::Result<()> {
        self.control.send(Control::Terminate).ok();
        self.thread
            .join()
            .map_err(|_| anyhow!("the PipeWire thread panicked"))??;
        Ok(())
    }
}

/// When the first frame of the buffer being filled in this cycle is heard, on the monotonic
/// clock: the cycle's time plus the stream's delay to the device. The one clock mapping of
/// khorus, so a note's audio (synth) and MIDI (router) coincide.
pub fn cycle_start_ns(stream: &pw::stream::Stream) -> i64 {
    match stream.time() {
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
    }
}

/// Frames from `start_ns` (a cycle's first frame, see [`cycle_start_ns`]) to `t_ns` at
/// `rate`, rounded to the nearest frame; negative when `t_ns` is earlier (a late event).
pub fn frame_offset(t_ns: i128, start_ns: i64, rate: u32) -> i64 {
    let dt = t_ns - start_ns as i128;
    ((dt * rate as i128 + dt.signum() * 500_000_000) / 1_000_000_000)
        .clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Serialises an `EnumFormat` object with `properties` into pod bytes.
pub fn format_pod(properties: Vec<spa::pod::Property>) -> Result<Vec<u8>, NodeError> {
    let bytes = spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(spa::pod::Object {
            type_: spa::sys::SPA_TYPE_OBJECT_Format,
            id: spa::sys::SPA_PARAM_EnumFormat,
            properties,
        }),
    )
    .map_err(|e| NodeError::Stream {
        action: "describe the stream format",
        detail: format!("{e:?}"),
    })?
    .0
    .into_inner();
    Ok(bytes)
}

/// The pod in `bytes` (as made by [`format_pod`]).
fn as_pod(bytes: &[u8]) -> Result<&spa::pod::Pod, NodeError> {
    spa::pod::Pod::from_bytes(bytes).ok_or(NodeError::Stream {
        action: "describe the stream format",
        detail: "invalid pod".into(),
    })
}
