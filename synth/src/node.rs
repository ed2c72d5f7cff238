//! The PipeWire node: one thread owns the PipeWire main loop (as in Helvum) and the stream
//! whose real-time process callback fills exactly the frames PipeWire asks for. The rest of
//! the synth talks to this thread only through lock-free rings (events and new graphs in,
//! retired graphs out; see [`crate::rt`]) and a PipeWire channel (`Terminate`).

use std::time::Instant;

use khorus_pw::{Control, NodeError, Ready, Session, cycle_start_ns, format_pod, stream_err};
use pipewire as pw;
use pw::spa;

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

/// Runs the node until [`Control::Terminate`], reporting on `ready` once the stream is
/// connected.
pub fn run(
    options: &NodeOptions,
    renderer: Renderer,
    control: pw::channel::Receiver<Control>,
    ready: &Ready,
) -> Result<(), NodeError> {
    let session = Session::connect()?;
    let stream = pw::stream::StreamBox::new(
        &session.core,
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
            let buffer_start_ns = cycle_start_ns(stream);
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
    let format = format_pod(info.into())?;
    session.play(&stream, &format, options.autoconnect, control, ready)
}

fn renderer_xrun(renderer: &mut Renderer) {
    renderer.count_xrun();
}
