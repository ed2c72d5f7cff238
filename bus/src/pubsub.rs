//! Typed publishers and subscribers for the hot-path payloads, each paired with an event
//! service so that subscribers sleep until something arrives.
//!
//! Overflow is never silent. Services do not overwrite old samples; a publisher that finds a
//! subscriber's buffer full discards the sample *for that subscriber* and counts it
//! ([`Publisher::dropped`]), and subscribers count gaps in each publisher's sequence numbers
//! ([`Subscriber::missed`]). A slow tap therefore never stalls the synth, and both sides can
//! say how much was lost. (A subscriber connects to a publisher that appeared after it on its
//! next `receive`; samples that overflow before that are not seen by the publisher's counter,
//! but still show up as gaps on the subscriber's.)

use std::fmt::Debug;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iceoryx2::port::BackpressureAction;
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher as IoxPublisher;
use iceoryx2::port::subscriber::Subscriber as IoxSubscriber;
use iceoryx2::prelude::*;

use crate::BusError;
use crate::config::{MAX_NODES, MAX_PUBLISHERS, MAX_SUBSCRIBERS};
use crate::service::Ipc;
use crate::wait::Waker;

/// Buffering of one pub-sub service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    /// Samples a subscriber can hold before the publisher starts dropping for it.
    pub buffer: usize,
    /// Latest samples a newly connected subscriber receives.
    pub history: usize,
    /// Publishers at once (a stage, a tool or two, and a restarted stage's stale port until
    /// control cleans it up): every subscriber holds a connection slot, tens of kilobytes,
    /// for each.
    pub publishers: usize,
    /// Subscribers at once. A publisher reserves `buffer` samples for each, and keeps a
    /// counter per sample: size it to the stages and taps that read the topic.
    pub subscribers: usize,
}

/// A hot-path payload: a fixed-size `#[repr(C)]` type with its own service.
pub trait Topic: Debug + Copy + ZeroCopySend + Send + 'static {
    /// The service path, e.g. `khorus/notes`.
    const SERVICE: &'static str;
    /// The service's buffering.
    const QOS: Qos;
    /// The sequence number carried in the payload.
    fn seq(&self) -> u64;
    /// Stamps the sequence number (done by [`Publisher::publish`]).
    fn set_seq(&mut self, seq: u64);
    /// The payload's monotonic timestamp, ns.
    fn t_ns(&self) -> u64;
    /// Restamps the payload's monotonic timestamp, ns.
    fn set_t_ns(&mut self, t_ns: u64);
}

/// Implements [`Topic`] for a payload with `seq` and `t_ns` fields: its service path and QoS.
macro_rules! topic {
    ($ty:ty, $service:literal, buffer: $buffer:expr, history: $history:expr,
        publishers: $publishers:expr, subscribers: $subscribers:expr) => {
        impl $crate::pubsub::Topic for $ty {
            const SERVICE: &'static str = $service;
            const QOS: $crate::pubsub::Qos = $crate::pubsub::Qos {
                buffer: $buffer,
                history: $history,
                publishers: $publishers,
                subscribers: $subscribers,
            };
            fn seq(&self) -> u64 {
                self.seq
            }
            fn set_seq(&mut self, seq: u64) {
                self.seq = seq;
            }
            fn t_ns(&self) -> u64 {
                self.t_ns
            }
            fn set_t_ns(&mut self, t_ns: u64) {
                self.t_ns = t_ns;
            }
        }
    };
}
pub(crate) use topic;

/// A payload every bit pattern of which is a valid value: integers and arrays of them, no
/// `bool`, `enum`, reference or niche. Such a payload can be filled in place in shared memory,
/// writing only the part that changed ([`Publisher::publish_in_place`]).
///
/// # Safety
/// Implement it only for `#[repr(C)]` types made of integers and arrays of integers.
pub unsafe trait AnyBits: Topic {}

/// The event service paired with a pub-sub service.
fn wake_service(service: &str) -> String {
    format!("{service}/wake")
}

pub(crate) fn service_name(path: &str) -> Result<ServiceName, BusError> {
    ServiceName::new(path).map_err(|e| BusError::InvalidName {
        name: path.to_string(),
        reason: format!("{e:?}"),
    })
}

type PubSubFactory<T> = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Ipc, T, ()>;
pub(crate) type EventFactory = iceoryx2::service::port_factory::event::PortFactory<Ipc>;

fn open_pubsub<T: Topic>(node: &Node<Ipc>) -> Result<PubSubFactory<T>, BusError> {
    node.service_builder(&service_name(T::SERVICE)?)
        .publish_subscribe::<T>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(T::QOS.buffer)
        .history_size(T::QOS.history)
        .max_publishers(T::QOS.publishers.min(MAX_PUBLISHERS))
        .max_subscribers(T::QOS.subscribers.min(MAX_SUBSCRIBERS))
        .max_nodes(MAX_NODES)
        .open_or_create()
        .map_err(|e| BusError::iceoryx(&format!("open service {}", T::SERVICE), e))
}

pub(crate) fn open_event(node: &Node<Ipc>, path: &str) -> Result<EventFactory, BusError> {
    node.service_builder(&service_name(path)?)
        .event()
        .max_notifiers(MAX_PUBLISHERS + MAX_SUBSCRIBERS)
        .max_listeners(MAX_SUBSCRIBERS + MAX_PUBLISHERS)
        .max_nodes(MAX_NODES)
        .open_or_create()
        .map_err(|e| BusError::iceoryx(&format!("open event service {path}"), e))
}

/// Publishes `T` and wakes its subscribers.
pub struct Publisher<T: Topic> {
    port: IoxPublisher<Ipc, T, ()>,
    notifier: Notifier<Ipc>,
    next_seq: u64,
    published: u64,
    dropped: Arc<AtomicU64>,
    /// Listeners the last wake reached: readers waiting for each sample as it comes.
    listeners: usize,
    /// The subscribers at the last [`Publisher::subscribers_changed`]: how many, and the sum
    /// of their ids' hashes.
    subscriber_set: (usize, u64),
    service: PubSubFactory<T>,
    _wake: EventFactory,
}

impl<T: Topic> Debug for Publisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("service", &T::SERVICE)
            .field("published", &self.published)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<T: Topic> Publisher<T> {
    pub(crate) fn open(node: &Node<Ipc>) -> Result<Self, BusError> {
        let service = open_pubsub::<T>(node)?;
        let wake = open_event(node, &wake_service(T::SERVICE))?;
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        let port = service
            .publisher_builder()
            .backpressure_strategy(BackpressureStrategy::DiscardData)
            .set_backpressure_handler(move |_info: &iceoryx2::port::BackpressureInfo| {
                counter.fetch_add(1, Ordering::Relaxed);
                BackpressureAction::DiscardData
            })
            .create()
            .map_err(|e| BusError::iceoryx(&format!("create publisher on {}", T::SERVICE), e))?;
        let notifier = wake
            .notifier_builder()
            .create()
            .map_err(|e| BusError::iceoryx(&format!("create notifier on {}", T::SERVICE), e))?;
        Ok(Self {
            port,
            notifier,
            next_seq: 1,
            published: 0,
            dropped,
            listeners: 0,
            subscriber_set: (0, 0),
            service,
            _wake: wake,
        })
    }

    /// Whether a subscriber joined or left since the last call (the first call: whether there
    /// is any). A publisher of state that changes rarely (the transport) sends it again then,
    /// so that a newcomer has it — and is woken for it — at once, instead of sending it to
    /// everyone on a period to reach newcomers.
    pub fn subscribers_changed(&mut self) -> bool {
        use iceoryx2::service::port_factory::PortFactory as _;
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut now = (0usize, 0u64);
        self.service.dynamic_config().list_subscribers(|d| {
            now.0 += 1;
            now.1 = now.1.wrapping_add(hasher.hash_one(d.subscriber_id));
            CallbackProgression::Continue
        });
        std::mem::replace(&mut self.subscriber_set, now) != now
    }

    /// Stamps `value` with the next sequence number, publishes it and wakes the subscribers.
    /// Returns the sequence number used.
    pub fn publish(&mut self, value: T) -> Result<u64, BusError> {
        let seq = self.put(value)?;
        self.wake()?;
        Ok(seq)
    }

    /// Publishes several values, then wakes the subscribers once.
    pub fn publish_all(&mut self, values: impl IntoIterator<Item = T>) -> Result<usize, BusError> {
        let mut n = 0;
        for value in values {
            self.put(value)?;
            n += 1;
        }
        if n > 0 {
            self.wake()?;
        }
        Ok(n)
    }

    /// Publishes a sample filled in place by `fill`, which sees the slot as it was left (old
    /// bytes, or zeros) and must write every field readers read: a large table written this
    /// way touches only the pages it fills, not the whole payload (the id table holds 256
    /// nodes, and a session of ten touches ten nodes' worth of shared memory).
    pub fn publish_in_place(&mut self, fill: impl FnOnce(&mut T)) -> Result<u64, BusError>
    where
        T: AnyBits,
    {
        let seq = self.next_seq;
        let mut sample = self
            .port
            .loan_uninit()
            .map_err(|e| BusError::iceoryx(&format!("loan a sample on {}", T::SERVICE), e))?;
        // SAFETY: the slot is shared memory the OS mapped zero-filled and publishers of this
        // service only ever wrote `T`s into, so its bytes are initialized; `T: AnyBits` makes
        // every bit pattern a valid `T`.
        let value = unsafe { sample.payload_mut().assume_init_mut() };
        fill(value);
        value.set_seq(seq);
        // SAFETY: as above, the payload is a valid `T`.
        let sample = unsafe { sample.assume_init() };
        sample
            .send()
            .map_err(|e| BusError::iceoryx(&format!("send on {}", T::SERVICE), e))?;
        self.next_seq += 1;
        self.published += 1;
        self.wake()?;
        Ok(seq)
    }

    /// Stamps and sends one sample without waking anyone.
    fn put(&mut self, mut value: T) -> Result<u64, BusError> {
        let seq = self.next_seq;
        value.set_seq(seq);
        let sample = self
            .port
            .loan_uninit()
            .map_err(|e| BusError::iceoryx(&format!("loan a sample on {}", T::SERVICE), e))?;
        sample
            .write_payload(value)
            .send()
            .map_err(|e| BusError::iceoryx(&format!("send on {}", T::SERVICE), e))?;
        self.next_seq += 1;
        self.published += 1;
        Ok(seq)
    }

    fn wake(&mut self) -> Result<(), BusError> {
        self.listeners = self
            .notifier
            .notify()
            .map_err(|e| BusError::iceoryx(&format!("notify on {}", T::SERVICE), e))?;
        Ok(())
    }

    /// How many subscribers the last publish woke: those waiting for each sample as it comes
    /// (holding a [`Subscriber::waker`], or in [`Subscriber::receive_until`]). A subscriber
    /// that reads at its own pace is not among them, so a publisher can tell whether anyone
    /// needs its samples sooner than their own pace (the collector ticks faster only then).
    pub fn listeners(&self) -> usize {
        self.listeners
    }

    /// Samples published so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Deliveries discarded because a subscriber's buffer was full (one per subscriber).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Receives `T`, sleeping in a [`wait::run`](crate::wait::run) until its publishers wake it.
pub struct Subscriber<T: Topic> {
    port: IoxSubscriber<Ipc, T, ()>,
    /// Made when someone first waits for samples as they come, dropped by
    /// [`read_at_own_pace`](Self::read_at_own_pace): a listener is what tells publishers that
    /// someone is waiting ([`Publisher::listeners`]).
    listener: Option<Rc<Listener<Ipc>>>,
    /// Last sequence number seen per publisher id.
    last_seq: Vec<(u128, u64)>,
    received: u64,
    missed: u64,
    _service: PubSubFactory<T>,
    wake: EventFactory,
}

impl<T: Topic> Debug for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("service", &T::SERVICE)
            .field("received", &self.received)
            .field("missed", &self.missed)
            .finish()
    }
}

impl<T: Topic> Subscriber<T> {
    pub(crate) fn open(node: &Node<Ipc>) -> Result<Self, BusError> {
        let service = open_pubsub::<T>(node)?;
        let wake = open_event(node, &wake_service(T::SERVICE))?;
        let port = service
            .subscriber_builder()
            .buffer_size(T::QOS.buffer)
            .create()
            .map_err(|e| BusError::iceoryx(&format!("create subscriber on {}", T::SERVICE), e))?;
        Ok(Self {
            port,
            listener: None,
            last_seq: Vec::new(),
            received: 0,
            missed: 0,
            _service: service,
            wake,
        })
    }

    /// Takes the next sample, if any, without blocking.
    pub fn receive(&mut self) -> Result<Option<T>, BusError> {
        let Some(sample) = self
            .port
            .receive()
            .map_err(|e| BusError::iceoryx(&format!("receive on {}", T::SERVICE), e))?
        else {
            return Ok(None);
        };
        let value = *sample.payload();
        let publisher = sample.header().publisher_id().value();
        drop(sample);
        self.account(publisher, value.seq());
        Ok(Some(value))
    }

    /// Takes the next sample, sleeping on the event service until one arrives or `deadline`
    /// passes (then `Ok(None)`). For a process that waits on this subscriber alone; a stage
    /// with several sources uses [`wait::run`](crate::wait::run).
    pub fn receive_until(&mut self, deadline: std::time::Instant) -> Result<Option<T>, BusError> {
        loop {
            if let Some(v) = self.receive()? {
                return Ok(Some(v));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let listener = self.listener()?;
            crate::wait::sleep_on(&listener, left, || format!("wait on {}", T::SERVICE))?;
        }
    }

    /// Takes every pending sample, calling `f` on each. Returns how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(T)) -> Result<usize, BusError> {
        let mut n = 0;
        while let Some(v) = self.receive()? {
            f(v);
            n += 1;
        }
        Ok(n)
    }

    fn account(&mut self, publisher: u128, seq: u64) {
        self.received += 1;
        match self.last_seq.iter_mut().find(|(id, _)| *id == publisher) {
            Some((_, last)) => {
                if seq > *last + 1 {
                    self.missed += seq - *last - 1;
                }
                *last = seq.max(*last);
            }
            None => {
                // A publisher we join late: its history starts wherever it starts.
                self.last_seq.push((publisher, seq));
                // Bounded: publishers come and go with restarts; forget the oldest.
                if self.last_seq.len() > 4 * MAX_PUBLISHERS {
                    self.last_seq.remove(0);
                }
            }
        }
    }

    /// A handle to wait on this subscriber with [`wait::run`](crate::wait::run). From now on
    /// the publishers count this subscriber among those waiting for each sample.
    pub fn waker(&mut self) -> Result<Waker, BusError> {
        Ok(Waker(crate::wait::Source::Listener(self.listener()?)))
    }

    /// Stops waiting for samples as they come (after [`waker`](Self::waker) or
    /// [`receive_until`](Self::receive_until)): the subscriber keeps receiving, and is read at
    /// its reader's own pace. The wait ends with the last [`Waker`] given out.
    pub fn read_at_own_pace(&mut self) {
        self.listener = None;
    }

    fn listener(&mut self) -> Result<Rc<Listener<Ipc>>, BusError> {
        if let Some(l) = &self.listener {
            return Ok(Rc::clone(l));
        }
        let listener = self
            .wake
            .listener_builder()
            .create()
            .map_err(|e| BusError::iceoryx(&format!("create listener on {}", T::SERVICE), e))?;
        Ok(Rc::clone(self.listener.insert(Rc::new(listener))))
    }

    /// Samples received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Samples known to be missing from publishers' sequences.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
