//! The PipeWire node: one thread owns the PipeWire main loop (as in Helvum) and the stream
//! whose real-time process callback fills exactly the frames PipeWire asks for. The rest of
//! the synth talks to this thread only through lock-free rings (events and new graphs in,
//! retired graphs out; see [`crate::rt`]) and a PipeWire channel (`Terminate`).

use std::sync::mpsc;
use std::time::Instant;

use pipewire as pw;
use pw::spa;
use pw::spa::pod::Pod;

use crate::rt::{Clock, Renderer};

/// How the node presents itself.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// `node.name` (what pw-link and Helvum show).
    pub name: String,
    /// Connect to the default sink by itself.
    pub autoconnect: bool,
    /// Sample rate requested, Hz (PipeWire adapts if the graph runs at another).
    pub rate: u32,
}

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

/// Runs the node until [`Control::Terminate`]. Reports `Ok(())` on `ready` once the stream is
/// connected (or the error that stopped it).
pub fn run(
    options: &NodeOptions,
    renderer: Renderer,
    control: pw::channel::Receiver<Control>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<(), NodeError> {
    let result = run_inner(options, renderer, control, &ready);
    if let Err(e) = &result {
        ready.send(Err(e.to_string())).ok();
    }
    result
}

fn run_inner(
    options: &NodeOptions,
    renderer: Renderer,
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
        &options.name,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Audio",
            *pw::keys::MEDIA_CATEGORY => "Playback",
            *pw::keys::MEDIA_ROLE => "Music",
            *pw::keys::MEDIA_CLASS => "Stream/Output/Audio",
            *pw::keys::NODE_NAME => options.name.as_str(),
            *pw::keys::NODE_DESCRIPTION => "khorus synth",
            *pw::keys::APP_NAME => "khorus",
            *pw::keys::AUDIO_CHANNELS => "2",
        },
    )
    .map_err(stream_err("create the stream"))?;

    let rate = options.rate;
    let _listener = stream
        .add_local_listener_with_user_data(renderer)
        .process(move |stream, renderer| {
            let start = Instant::now();
            let Some(mut buffer) = stream.dequeue_buffer() else {
                renderer_xrun(renderer);
                return;
            };
            let requested = buffer.requested() as usize;
            let datas = buffer.datas_mut();
            let data = &mut datas[0];
            let Some(slice) = data.data() else { return };
            let capacity = slice.len() / 8;
            let frames = if requested == 0 {
                capacity
            } else {
                requested.min(capacity)
            };
            let frames = frames.min(renderer.max_frames());
            // When the first frame of this buffer will be heard: the cycle's clock plus the
            // delay to the device.
            let buffer_start_ns = match stream.time() {
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
            let out = renderer.fill(Clock { buffer_start_ns }, frames);
            for (dst, s) in slice.chunks_exact_mut(4).zip(out) {
                dst.copy_from_slice(&s.to_le_bytes());
            }
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.stride_mut() = 8;
            *chunk.size_mut() = (frames * 8) as u32;
            let budget = frames as u64 * 1_000_000_000 / rate as u64;
            renderer.account(start.elapsed().as_nanos() as u64, budget);
        })
        .register()
        .map_err(stream_err("register the stream listener"))?;

    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(rate);
    info.set_channels(2);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    let bytes: Vec<u8> = spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(spa::pod::Object {
            type_: spa::sys::SPA_TYPE_OBJECT_Format,
            id: spa::sys::SPA_PARAM_EnumFormat,
            properties: info.into(),
        }),
    )
    .map_err(|e| NodeError::Stream {
        action: "describe the audio format",
        detail: format!("{e:?}"),
    })?
    .0
    .into_inner();
    let pod = Pod::from_bytes(&bytes).ok_or(NodeError::Stream {
        action: "describe the audio format",
        detail: "invalid pod".into(),
    })?;
    let mut flags = pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::RT_PROCESS;
    if options.autoconnect {
        flags |= pw::stream::StreamFlags::AUTOCONNECT;
    }
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

fn renderer_xrun(renderer: &mut Renderer) {
    renderer.count_xrun();
}
