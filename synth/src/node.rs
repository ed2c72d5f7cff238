//! The PipeWire node: one thread owns the PipeWire main loop (as in Helvum), the master stream
//! (which autoconnects) and one stream per stem ([`crate::stems`]), all in one `node.group`
//! so they run in the same driver cycle. Whichever of them the cycle calls first renders the
//! engine for the cycle; the others copy their part. Each process callback fills exactly the
//! frames PipeWire asks for. The rest of the synth talks to this thread only through
//! lock-free rings (events and new graphs in, retired graphs out; see [`crate::rt`]) and
//! PipeWire channels (`Terminate`; [`ToNode`]: the stem list, and whether the master stream
//! runs — the bus thread pauses it while nothing sounds).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use std::sync::Arc;

use atomic_refcell::AtomicRefCell;
use khorus_pw::{
    Control, NodeError, Ready, Session, connect_output, cycle_start_ns, format_pod, stream_err,
};
use pipewire as pw;
use pw::spa;

use crate::rt::{Clock, Renderer};
use crate::stems::StemSwitches;

/// How the node presents itself.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// `node.name` (what pw-link and Helvum show); stems are `<name>.<node>`.
    pub name: String,
    /// Connect to the default sink by itself.
    pub autoconnect: bool,
    /// Sample rate requested, Hz (PipeWire adapts if the graph runs at another).
    pub rate: u32,
    /// Offer every node's output as a stream of its own.
    pub stems: bool,
    /// The PipeWire quantum asked for, frames (`node.latency`): the graph runs at the
    /// smallest any of its nodes asks for. Notes leave the composer at least half its
    /// lookahead before they sound, so a cycle longer than that would make them late.
    pub quantum: u32,
}

impl NodeOptions {
    /// `node.latency` as PipeWire reads it (`frames/rate`).
    fn latency(&self) -> String {
        format!("{}/{}", self.quantum, self.rate)
    }
}

/// The stems to offer: (slot, node name).
pub type StemList = Vec<(usize, String)>;

/// What the bus thread tells the PipeWire thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToNode {
    /// The stems to offer now.
    Stems(StemList),
    /// Run the master stream (`true`), or pause it (`false`): a paused stream is not
    /// scheduled, so silence costs no callbacks; it runs again from the next cycle.
    Active(bool),
}

/// The renderer and the cycle it last rendered, shared by the streams' process callbacks.
struct Cycle {
    renderer: Renderer,
    /// The driver's time of the cycle last rendered, ns (None: unknown).
    rendered_at: Option<i64>,
    /// Frames last rendered.
    rendered: usize,
}

impl Cycle {
    /// Renders this cycle for `stream` unless another stream of the group already has (the
    /// same driver time); `frames` at most. Without the driver's time only the master renders
    /// (a stem then copies what the master made last), so the engine never runs twice a cycle.
    fn render(&mut self, stream: &pw::stream::Stream, frames: usize, master: bool) -> usize {
        let now = stream.time().ok().map(|t| t.now());
        let done = match now {
            Some(now) => self.rendered_at == Some(now) && self.rendered >= frames,
            None => !master,
        };
        if done {
            return frames.min(self.rendered);
        }
        let buffer_start_ns = cycle_start_ns(stream);
        let frames = frames.min(self.renderer.max_frames());
        self.renderer.fill(Clock { buffer_start_ns }, frames);
        self.rendered_at = now;
        self.rendered = frames;
        frames
    }
}

/// A borrowed cycle: the callbacks run on PipeWire's one data thread, so a borrow never
/// fails; if one ever did, that callback would output silence rather than wait.
type Shared = Rc<AtomicRefCell<Cycle>>;

/// Runs the node until [`Control::Terminate`], reporting on `ready` once the master stream is
/// connected; stems come and go, and the master pauses and runs, as `to_node` says.
pub fn run(
    options: &NodeOptions,
    renderer: Renderer,
    to_node: pw::channel::Receiver<ToNode>,
    control: pw::channel::Receiver<Control>,
    ready: &Ready,
) -> Result<(), NodeError> {
    let session = Session::connect()?;
    // No stem is linked yet: none is copied until one is.
    let switches = renderer.stem_switches();
    for slot in 0..crate::stems::MAX_STEMS {
        switches.set(slot, false);
    }
    let shared: Shared = Rc::new(AtomicRefCell::new(Cycle {
        renderer,
        rendered_at: None,
        rendered: 0,
    }));
    let format = stereo_format(options.rate)?;
    let master = pw::stream::StreamRc::new(
        session.core.clone(),
        &options.name,
        properties(
            &options.name,
            "khorus synth",
            &options.name,
            &options.latency(),
        ),
    )
    .map_err(stream_err("create the stream"))?;
    let rate = options.rate;
    let _master_listener = master
        .add_local_listener_with_user_data(Rc::clone(&shared))
        .process(move |stream, shared| {
            let start = Instant::now();
            let Ok(mut cycle) = shared.try_borrow_mut() else {
                return;
            };
            let Some(mut buffer) = stream.dequeue_buffer() else {
                cycle.renderer.count_xrun();
                return;
            };
            let Some(frames) = fill(&mut buffer, |frames| {
                let frames = cycle.render(stream, frames, true);
                cycle.renderer.master(frames)
            }) else {
                return;
            };
            let budget = frames as u64 * 1_000_000_000 / rate as u64;
            cycle
                .renderer
                .account(start.elapsed().as_nanos() as u64, budget);
        })
        .register()
        .map_err(stream_err("register the stream listener"))?;
    connect_output(&master, &format, options.autoconnect)?;

    // The stem streams, by slot, made and dropped on the main loop as the graph changes.
    let running: Rc<RefCell<BTreeMap<usize, Stem>>> = Rc::default();
    let _to_node = {
        let (core, name, latency, running) = (
            session.core.clone(),
            options.name.clone(),
            options.latency(),
            Rc::clone(&running),
        );
        let shared = Rc::clone(&shared);
        let format = format.clone();
        let switches = Arc::clone(&switches);
        let (master, offer_stems) = (master.clone(), options.stems);
        to_node.attach(session.mainloop.loop_(), move |message: ToNode| {
            let list = match message {
                ToNode::Active(on) => {
                    if let Err(e) = master.set_active(on) {
                        let what = if on { "run" } else { "pause" };
                        tracing::warn!("could not {what} the stream: {e}");
                    }
                    return;
                }
                ToNode::Stems(_) if !offer_stems => return,
                ToNode::Stems(list) => list,
            };
            let mut running = running.borrow_mut();
            running.retain(|slot, stem| {
                let keep = list.contains(&(*slot, stem.node.clone()));
                if !keep {
                    // Its node is gone: nothing to copy into the slot any more.
                    switches.set(*slot, false);
                }
                keep
            });
            for (slot, node) in list {
                if running.contains_key(&slot) {
                    continue;
                }
                match Stem::start(&core, &name, &latency, &node, slot, &shared, &format) {
                    Ok(stem) => {
                        running.insert(slot, stem);
                    }
                    Err(e) => tracing::warn!("no stem for {node:?}: {e}"),
                }
            }
        })
    };
    // A stem stream runs only while something is linked to it: idle, it is not scheduled and
    // costs nothing (ten unlinked stems in the group cost 0.3 % of a core).
    let registry = session
        .core
        .get_registry_rc()
        .map_err(stream_err("get the registry"))?;
    let links = Rc::new(RefCell::new(Links {
        nodes: Default::default(),
        links: Default::default(),
        counts: Default::default(),
        switches: Arc::clone(&switches),
    }));
    let _watch = {
        let (on_add, on_remove) = (Rc::clone(&links), Rc::clone(&links));
        let (running_add, running_remove) = (Rc::clone(&running), Rc::clone(&running));
        registry
            .add_listener_local()
            .global(move |g| {
                let Some(props) = g.props else { return };
                let mut links = on_add.borrow_mut();
                match g.type_ {
                    pw::types::ObjectType::Node => {
                        if let Some(name) = props.get(*pw::keys::NODE_NAME) {
                            links.nodes.insert(g.id, name.to_string());
                        }
                    }
                    pw::types::ObjectType::Link => {
                        let out = props
                            .get(*pw::keys::LINK_OUTPUT_NODE)
                            .and_then(|v| v.parse::<u32>().ok());
                        if let Some(name) = out.and_then(|n| links.nodes.get(&n)).cloned() {
                            links.links.insert(g.id, name.clone());
                            links.count(&name, 1, &running_add.borrow());
                        }
                    }
                    _ => {}
                }
            })
            .global_remove(move |id| {
                let mut links = on_remove.borrow_mut();
                links.nodes.remove(&id);
                if let Some(name) = links.links.remove(&id) {
                    links.count(&name, -1, &running_remove.borrow());
                }
            })
            .register()
    };
    let result = session.run(control, ready);
    running.borrow_mut().clear();
    master.disconnect().ok();
    result
}

/// Links out of the stem streams, from the registry: a stem is active while it has one.
struct Links {
    /// Node names by global id.
    nodes: std::collections::HashMap<u32, String>,
    /// The output node's name of every link out of a node we know, by link id.
    links: std::collections::HashMap<u32, String>,
    /// Links per node name.
    counts: std::collections::HashMap<String, u32>,
    /// The renderer's switches: a stem is copied while it is linked.
    switches: Arc<StemSwitches>,
}

impl Links {
    /// One more (`+1`) or one less (`-1`) link out of node `name`; a stem of that name is
    /// activated by its first link and deactivated when its last one goes.
    fn count(&mut self, name: &str, by: i32, stems: &BTreeMap<usize, Stem>) {
        let n = self.counts.entry(name.to_string()).or_default();
        let before = *n;
        *n = n.saturating_add_signed(by);
        let after = *n;
        if (before == 0) != (after == 0)
            && let Some((&slot, stem)) = stems.iter().find(|(_, s)| s.node_name == name)
        {
            self.switches.set(slot, after > 0);
            if let Err(e) = stem.stream.set_active(after > 0) {
                tracing::warn!("stem {name}: {e}");
            }
        }
    }
}

/// One stem's stream and its listener.
struct Stem {
    node: String,
    /// Its `node.name`.
    node_name: String,
    stream: pw::stream::StreamRc,
    _listener: pw::stream::StreamListener<Shared>,
}

impl Stem {
    fn start(
        core: &pw::core::CoreRc,
        synth: &str,
        latency: &str,
        node: &str,
        slot: usize,
        shared: &Shared,
        format: &[u8],
    ) -> Result<Self, NodeError> {
        let name = format!("{synth}.{node}");
        let stream = pw::stream::StreamRc::new(
            core.clone(),
            &name,
            properties(&name, &format!("khorus stem: {node}"), synth, latency),
        )
        .map_err(stream_err("create a stem stream"))?;
        let listener = stream
            .add_local_listener_with_user_data(Rc::clone(shared))
            .process(move |stream, shared| {
                let Ok(mut cycle) = shared.try_borrow_mut() else {
                    return;
                };
                let Some(mut buffer) = stream.dequeue_buffer() else {
                    return;
                };
                fill(&mut buffer, |frames| {
                    let frames = cycle.render(stream, frames, false);
                    cycle.renderer.stem(slot, frames)
                });
            })
            .register()
            .map_err(stream_err("register a stem listener"))?;
        // Never linked by the session manager: stems are for patching by hand. Inactive until
        // something is linked to it (see `Links`).
        khorus_pw::connect_output_with(&stream, format, false, false)?;
        Ok(Self {
            node: node.to_string(),
            node_name: name,
            stream,
            _listener: listener,
        })
    }
}

impl Drop for Stem {
    fn drop(&mut self) {
        self.stream.disconnect().ok();
    }
}

/// The properties of the master (`group` = its own name) or of a stem in its group.
fn properties(
    name: &str,
    description: &str,
    group: &str,
    latency: &str,
) -> pw::properties::PropertiesBox {
    pw::properties::properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CATEGORY => "Playback",
        *pw::keys::MEDIA_ROLE => "Music",
        *pw::keys::MEDIA_CLASS => "Stream/Output/Audio",
        *pw::keys::NODE_NAME => name,
        *pw::keys::NODE_DESCRIPTION => description,
        *pw::keys::APP_NAME => "khorus",
        *pw::keys::AUDIO_CHANNELS => "2",
        "node.group" => group,
        *pw::keys::NODE_LATENCY => latency,
    }
}

/// Fills the buffer's first data with the interleaved stereo frames `render(frames)` gives
/// for the frames PipeWire asked for; returns how many.
fn fill<'a>(
    buffer: &mut pw::buffer::Buffer<'_>,
    render: impl FnOnce(usize) -> &'a [f32],
) -> Option<usize> {
    let requested = buffer.requested() as usize;
    let data = &mut buffer.datas_mut()[0];
    let slice = data.data()?;
    let capacity = slice.len() / 8;
    let frames = if requested == 0 {
        capacity
    } else {
        requested.min(capacity)
    };
    let out = render(frames);
    let frames = frames.min(out.len() / 2);
    for (dst, s) in slice.chunks_exact_mut(4).zip(out) {
        dst.copy_from_slice(&s.to_le_bytes());
    }
    let chunk = data.chunk_mut();
    *chunk.offset_mut() = 0;
    *chunk.stride_mut() = 8;
    *chunk.size_mut() = (frames * 8) as u32;
    Some(frames)
}

fn stereo_format(rate: u32) -> Result<Vec<u8>, NodeError> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(rate);
    info.set_channels(2);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    format_pod(info.into())
}
