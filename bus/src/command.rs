//! Commands: serde enums carried as bytes over iceoryx2 request-response.
//!
//! Each stage serves its own command enum on `khorus/cmd/<stage>`. A request's bytes are
//! decoded with the [`codec`](crate::codec); anything malformed or oversized is answered with a
//! [`ReplyError`] and counted, and the handler never sees it. Requests and replies each have an
//! event service (`…/requests`, `…/replies`) so both sides sleep until there is something to do.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use iceoryx2::port::client::Client;
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::server::Server;
use iceoryx2::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::config::MAX_NODES;
use crate::pubsub::{EventFactory, open_event, service_name};
use crate::service::Ipc;
use crate::services::command_service;
use crate::transfer::{self, Arrival, Frame, Incoming, Outgoing, Reassembly};
use crate::wait::Waker;
use crate::{BusError, StageKind, StageStatus};

/// A reply on the wire: the handler's answer, or why the command was refused.
pub type Reply<T> = Result<T, ReplyError>;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ReplyError {
    /// The class of problem.
    pub kind: ReplyErrorKind,
    /// What exactly, for the user (names the field, node or position).
    pub message: String,
}

/// Classes of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyErrorKind {
    /// The bytes did not decode as a command of this stage.
    Malformed,
    /// The request exceeded the size limit.
    TooLarge,
    /// The command decoded but its content is invalid; nothing was changed.
    Invalid,
    /// The stage does not support this command.
    Unsupported,
}

impl ReplyError {
    /// An `Invalid` refusal with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: ReplyErrorKind::Invalid,
            message: message.into(),
        }
    }

    fn from_codec(e: CodecError) -> Self {
        let kind = match e {
            CodecError::TooLarge { .. } => ReplyErrorKind::TooLarge,
            _ => ReplyErrorKind::Malformed,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

/// Commands every stage answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Common {
    /// Liveness check; answered with [`CommonReply::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Asks for the stage's counters now.
    Status,
    /// Asks the stage to exit cleanly.
    Shutdown,
}

impl Common {
    /// The standard answer every stage gives: `Pong` with this process's pid, the stage's
    /// `status()` report, or `Ack` to Shutdown (which sets `*shutdown`).
    pub fn answer(self, status: impl FnOnce() -> StageStatus, shutdown: &mut bool) -> CommonReply {
        match self {
            Common::Ping { nonce } => CommonReply::Pong {
                nonce,
                pid: std::process::id(),
            },
            Common::Status => CommonReply::Status(Box::new(status())),
            Common::Shutdown => {
                *shutdown = true;
                CommonReply::Ack
            }
        }
    }
}

/// Answers to [`Common`] commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommonReply {
    /// Answer to `Ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The answering process.
        pid: u32,
    },
    /// Answer to `Status`.
    Status(Box<StageStatus>),
    /// The command was carried out.
    Ack,
}

/// A transfer id unlikely to meet another client's at the same server: this process, a
/// counter, and the clock.
fn transfer_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (u64::from(std::process::id()) << 40) ^ (n << 20) ^ u64::from(crate::clock::now_ns() as u32)
}

type RrFactory =
    iceoryx2::service::port_factory::request_response::PortFactory<Ipc, [u8], (), [u8], ()>;

/// Room for one request or reply frame, fixed: a part of [`transfer::PART_BYTES`] and its
/// header. Larger messages travel in parts ([`crate::transfer`]). Fixed-size slots keep the
/// service's shared memory small: with growable slots iceoryx2 sizes every connection for all
/// the segments it might grow into (9.5 MB per connection, measured), and every stage holds
/// several.
const SLICE: usize = 2 * transfer::PART_BYTES;

/// Clients one command service takes at once (control, the router's OSC forwarder, CLI calls,
/// tools).
const MAX_CLIENTS: usize = 8;

fn open_rr(node: &Node<Ipc>, stage: StageKind) -> Result<RrFactory, BusError> {
    let path = command_service(stage);
    node.service_builder(&service_name(&path)?)
        .request_response::<[u8], [u8]>()
        .max_active_requests_per_client(4)
        .max_response_buffer_size(4)
        .max_clients(MAX_CLIENTS)
        .max_servers(2)
        .max_nodes(MAX_NODES)
        .open_or_create()
        .map_err(|e| BusError::iceoryx(&format!("open command service {path}"), e))
}

fn open_events(
    node: &Node<Ipc>,
    stage: StageKind,
) -> Result<(EventFactory, EventFactory), BusError> {
    let path = command_service(stage);
    Ok((
        open_event(node, &format!("{path}/requests"))?,
        open_event(node, &format!("{path}/replies"))?,
    ))
}

/// Answers one stage's commands.
pub struct CommandServer<Req, Resp> {
    stage: StageKind,
    port: Server<Ipc, [u8], (), [u8], ()>,
    requests: Rc<Listener<Ipc>>,
    replies: Notifier<Ipc>,
    ok: u64,
    rejected: u64,
    incoming: Incoming,
    outgoing: Outgoing,
    _services: (RrFactory, EventFactory, EventFactory),
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Debug for CommandServer<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandServer")
            .field("stage", &self.stage)
            .field("ok", &self.ok)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl<Req: DeserializeOwned, Resp: Serialize> CommandServer<Req, Resp> {
    pub(crate) fn open(node: &Node<Ipc>, stage: StageKind) -> Result<Self, BusError> {
        let rr = open_rr(node, stage)?;
        let (req_ev, rep_ev) = open_events(node, stage)?;
        let port = rr
            .server_builder()
            .initial_max_slice_len(SLICE)
            .allocation_strategy(AllocationStrategy::Static)
            .create()
            .map_err(|e| BusError::iceoryx(&format!("serve commands of {}", stage.name()), e))?;
        let requests = req_ev
            .listener_builder()
            .create()
            .map_err(|e| BusError::iceoryx("create request listener", e))?;
        let replies = rep_ev
            .notifier_builder()
            .create()
            .map_err(|e| BusError::iceoryx("create reply notifier", e))?;
        // A server is here: a client whose request found none waits on this event, and now
        // sends it again (see `CommandClient::call_raw`).
        replies
            .notify()
            .map_err(|e| BusError::iceoryx("announce the server", e))?;
        Ok(Self {
            stage,
            port,
            requests: Rc::new(requests),
            replies,
            ok: 0,
            rejected: 0,
            incoming: Incoming::default(),
            outgoing: Outgoing::default(),
            _services: (rr, req_ev, rep_ev),
            _types: PhantomData,
        })
    }

    /// Answers every pending request with `handler`; undecodable requests are refused without
    /// calling it. Returns how many requests were answered.
    pub fn serve(
        &mut self,
        mut handler: impl FnMut(Req) -> Reply<Resp>,
    ) -> Result<usize, BusError> {
        let mut n = 0;
        loop {
            let active = self
                .port
                .receive()
                .map_err(|e| BusError::iceoryx("receive a command", e))?;
            let Some(active) = active else { break };
            let now = Instant::now();
            let bytes = match Frame::decode(active.payload()) {
                Ok(Frame::Whole(msg)) => self.handle(msg, &mut handler, now)?,
                Ok(Frame::Part {
                    xfer,
                    index,
                    len,
                    bytes,
                }) => match self.incoming.part(xfer, index, len, bytes, now) {
                    Ok(Arrival::Partial) => Frame::Ack.encode(),
                    Ok(Arrival::Complete(msg)) => self.handle(&msg, &mut handler, now)?,
                    Err(e) => self.answer(Err(ReplyError::from_codec(e)), now)?,
                },
                Ok(Frame::More { xfer, index }) => match self.outgoing.more(xfer, index, now) {
                    Ok(part) => part,
                    Err(e) => self.answer(Err(ReplyError::from_codec(e)), now)?,
                },
                Ok(Frame::Ack) => {
                    let e = CodecError::Malformed {
                        len: 1,
                        detail: "an acknowledgement is not a request".into(),
                    };
                    self.answer(Err(ReplyError::from_codec(e)), now)?
                }
                Err(e) => self.answer(Err(ReplyError::from_codec(e)), now)?,
            };
            let sample = active
                .loan_slice_uninit(bytes.len())
                .map_err(|e| BusError::iceoryx("loan a reply", e))?;
            // A client that gave up and left makes the send fail; the request was still
            // handled and counted, so there is nothing more to do for it.
            sample.write_from_slice(&bytes).send().ok();
            n += 1;
        }
        if n > 0 {
            self.replies
                .notify()
                .map_err(|e| BusError::iceoryx("notify replies", e))?;
        }
        Ok(n)
    }
}

impl<Req: DeserializeOwned, Resp: Serialize> CommandServer<Req, Resp> {
    /// Decodes a whole request and answers it with `handler` (an undecodable one is refused
    /// without calling it).
    fn handle(
        &mut self,
        msg: &[u8],
        handler: &mut impl FnMut(Req) -> Reply<Resp>,
        now: Instant,
    ) -> Result<Vec<u8>, BusError> {
        let reply = match codec::decode::<Req>(msg) {
            Ok(req) => handler(req),
            Err(e) => Err(ReplyError::from_codec(e)),
        };
        self.answer(reply, now)
    }

    /// Counts `reply` and makes its first frame (a large reply waits in `outgoing` for the
    /// client to fetch the rest).
    fn answer(&mut self, reply: Reply<Resp>, now: Instant) -> Result<Vec<u8>, BusError> {
        if reply.is_ok() {
            self.ok += 1;
        } else {
            self.rejected += 1;
        }
        let bytes = match codec::encode(&reply) {
            Ok(b) => b,
            Err(e) => codec::encode::<Reply<Resp>>(&Err(ReplyError {
                kind: ReplyErrorKind::TooLarge,
                message: format!("the reply could not be sent: {e}"),
            }))?,
        };
        Ok(self.outgoing.first(bytes, now))
    }
}

impl<Req, Resp> CommandServer<Req, Resp> {
    /// Commands answered successfully.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Commands refused (malformed, oversized or invalid).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// A handle to wait for requests with [`wait::run`](crate::wait::run).
    pub fn waker(&self) -> Waker {
        Waker(crate::wait::Source::Listener(Rc::clone(&self.requests)))
    }
}

/// Sends commands to one stage and waits for its replies.
pub struct CommandClient<Req, Resp> {
    stage: StageKind,
    port: Client<Ipc, [u8], (), [u8], ()>,
    requests: Notifier<Ipc>,
    replies: Listener<Ipc>,
    server_wait: Option<Duration>,
    _services: (RrFactory, EventFactory, EventFactory),
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Debug for CommandClient<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandClient")
            .field("stage", &self.stage)
            .finish()
    }
}

impl<Req, Resp> CommandClient<Req, Resp> {
    /// The stage whose commands this sends.
    pub fn stage(&self) -> StageKind {
        self.stage
    }
}

impl<Req: Serialize, Resp: DeserializeOwned> CommandClient<Req, Resp> {
    pub(crate) fn open(node: &Node<Ipc>, stage: StageKind) -> Result<Self, BusError> {
        let rr = open_rr(node, stage)?;
        let (req_ev, rep_ev) = open_events(node, stage)?;
        let port = rr
            .client_builder()
            .initial_max_slice_len(SLICE)
            .allocation_strategy(AllocationStrategy::Static)
            .create()
            .map_err(|e| BusError::iceoryx(&format!("connect to {} commands", stage.name()), e))?;
        let requests = req_ev
            .notifier_builder()
            .create()
            .map_err(|e| BusError::iceoryx("create request notifier", e))?;
        let replies = rep_ev
            .listener_builder()
            .create()
            .map_err(|e| BusError::iceoryx("create reply listener", e))?;
        Ok(Self {
            stage,
            port,
            requests,
            replies,
            server_wait: None,
            _services: (rr, req_ev, rep_ev),
            _types: PhantomData,
        })
    }

    /// Waits at most `wait` for a server to appear when a request finds none (by default as
    /// long as the call's own timeout): a tool asking a stage that is not running says so
    /// after `wait`, while one asking a stage that is starting still gets its answer.
    pub fn wait_for_server(mut self, wait: Duration) -> Self {
        self.server_wait = Some(wait);
        self
    }

    /// Whether a server serves this service now, so a caller can take another route rather
    /// than wait for a timeout.
    pub fn has_server(&self) -> bool {
        use iceoryx2::service::port_factory::PortFactory as _;
        self._services.0.dynamic_config().number_of_servers() > 0
    }

    /// Sends `request` and waits up to `timeout` for the answer; a refusal is
    /// [`BusError::Refused`].
    pub fn call(&mut self, request: &Req, timeout: Duration) -> Result<Resp, BusError> {
        let bytes = codec::encode(request)?;
        self.call_raw(&bytes, timeout)?
            .map_err(|error| BusError::Refused {
                stage: self.stage.name(),
                error,
            })
    }

    /// Sends raw bytes as a request (for tools and tests of the server's defences) and returns
    /// the decoded reply. A request over one part travels in parts, and a large reply is
    /// fetched part by part ([`crate::transfer`]), all within `timeout`.
    ///
    /// A request that reaches no server (the stage is not running, or not yet serving: its
    /// process is starting) would never be answered. It is sent again each time a server
    /// announces itself, for as long as [`wait_for_server`](Self::wait_for_server) allows;
    /// then the call fails with [`BusError::NoServer`] rather than waiting out its timeout.
    pub fn call_raw(&mut self, bytes: &[u8], timeout: Duration) -> Result<Reply<Resp>, BusError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let server_deadline = start + self.server_wait.unwrap_or(timeout).min(timeout);
        let frames = transfer::frames(bytes, transfer_id());
        let mut answer = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            answer = self.exchange(frame, start, deadline, server_deadline)?;
            // Each part but the last is acknowledged; anything else (a refusal) ends it.
            if !(i + 1 < frames.len() && Frame::decode(&answer)? == Frame::Ack) {
                break;
            }
        }
        let reply = match Frame::decode(&answer)? {
            Frame::Whole(msg) => codec::decode::<Reply<Resp>>(msg)?,
            Frame::Part {
                xfer,
                index: 0,
                len,
                bytes,
            } => {
                let mut parts = Reassembly::start(xfer, len, bytes)?;
                while let Some(more) = parts.next_request() {
                    let part = self.exchange(&more, start, deadline, server_deadline)?;
                    parts.take(Frame::decode(&part)?)?;
                }
                codec::decode::<Reply<Resp>>(&parts.finish())?
            }
            _ => {
                return Err(CodecError::Malformed {
                    len: answer.len(),
                    detail: "the server answered out of turn".into(),
                }
                .into());
            }
        };
        Ok(reply)
    }

    /// One request frame and its answer frame.
    fn exchange(
        &mut self,
        bytes: &[u8],
        start: Instant,
        deadline: Instant,
        server_deadline: Instant,
    ) -> Result<Vec<u8>, BusError> {
        let timeout = deadline.saturating_duration_since(start);
        let pending = loop {
            let sample = self
                .port
                .loan_slice_uninit(bytes.len())
                .map_err(|e| BusError::iceoryx("loan a request", e))?;
            let pending = sample
                .write_from_slice(bytes)
                .send()
                .map_err(|e| BusError::iceoryx("send a request", e))?;
            if pending.number_of_server_connections() > 0 {
                break pending;
            }
            drop(pending);
            let left = server_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BusError::NoServer {
                    stage: self.stage.name(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            // Servers announce themselves on the reply event (so do replies to other
            // clients: then the request is simply sent again, and finds none again).
            crate::wait::sleep_on(&self.replies, left, || "wait for a server".into())?;
        };
        self.requests
            .notify()
            .map_err(|e| BusError::iceoryx("notify the server", e))?;
        loop {
            if let Some(response) = pending
                .receive()
                .map_err(|e| BusError::iceoryx("receive a reply", e))?
            {
                return Ok(response.payload().to_vec());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BusError::Timeout {
                    stage: self.stage.name(),
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            // Sleeps until some server answers some client; we then look at our own reply.
            crate::wait::sleep_on(&self.replies, left, || "wait for a reply".into())?;
        }
    }
}
