//! The bus inside one process (two nodes): overflow accounting and the wait loop. The
//! cross-process behaviour is tested end to end in `tests/`.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use khorus_bus::wait::{self, Exit, Period, Wake};
use khorus_bus::{Bus, BusConfig, NoteEvent, SignalFrame, Topic};

/// A bus of this test's own, removed afterwards.
struct Isolated(BusConfig);

impl Isolated {
    fn new() -> Self {
        Self(BusConfig::isolated("bus"))
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        self.0.remove_all_resources();
    }
}

fn note(t_ns: u64) -> NoteEvent {
    serde_json::from_str(&format!(
        r#"{{"t_ns":{t_ns},"dur_ns":1,"note":60,"velocity":0.5,"role":"bass"}}"#
    ))
    .unwrap()
}

#[test]
fn a_full_subscriber_buffer_drops_are_counted_on_both_sides() {
    let iso = Isolated::new();
    let a = Bus::open("a", &iso.0).unwrap();
    let b = Bus::open("b", &iso.0).unwrap();
    let mut sub = b.subscriber::<NoteEvent>().unwrap();
    let mut publisher = a.publisher::<NoteEvent>().unwrap();
    // A subscriber connects to a new publisher when it next reads, as every stage does when
    // its wait loop starts.
    assert_eq!(sub.receive().unwrap(), None);
    let buffer = NoteEvent::QOS.buffer as u64;
    let extra = 10;
    publisher
        .publish_all((0..buffer + extra).map(note))
        .unwrap();
    assert_eq!(publisher.published(), buffer + extra);
    assert_eq!(
        publisher.dropped(),
        extra,
        "the publisher counts refused deliveries"
    );

    let mut got = Vec::new();
    sub.drain(|n| got.push(n.seq)).unwrap();
    assert_eq!(
        got,
        (1..=buffer).collect::<Vec<_>>(),
        "the oldest are kept, in order"
    );
    // The gap shows on the subscriber's side as soon as the next sample arrives.
    publisher.publish(note(0)).unwrap();
    sub.drain(|_| {}).unwrap();
    assert_eq!(sub.missed(), extra);
    assert_eq!(sub.received(), buffer + 1);
}

#[test]
fn the_wait_loop_wakes_per_source_and_on_ticks() {
    let iso = Isolated::new();
    let bus = Bus::open("w", &iso.0).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let mut frames = bus.subscriber::<SignalFrame>().unwrap();
    let mut note_pub = bus.publisher::<NoteEvent>().unwrap();
    let mut frame_pub = bus.publisher::<SignalFrame>().unwrap();

    // Published before the wait begins: must not be stranded.
    note_pub.publish(note(1)).unwrap();
    let mut seen_notes = 0;
    let mut seen_frames = 0;
    let mut ticks = 0;
    let exit = wait::run(
        &[(0, notes.waker().unwrap()), (1, frames.waker().unwrap())],
        Some(Period::every(Duration::from_millis(5))),
        Some(Instant::now() + Duration::from_secs(20)),
        |wake| {
            match wake {
                Wake::Ready(0) => seen_notes += notes.drain(|_| {}).unwrap(),
                Wake::Ready(1) => seen_frames += frames.drain(|_| {}).unwrap(),
                Wake::Ready(i) => panic!("no source {i}"),
                Wake::Tick => {
                    ticks += 1;
                    // Each tick publishes on the other service: the loop must wake for it.
                    if ticks == 2 {
                        frame_pub.publish(SignalFrame::default()).unwrap();
                    }
                }
            }
            if seen_notes == 1 && seen_frames == 1 && ticks >= 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(exit, Exit::Stopped);
    assert_eq!((seen_notes, seen_frames), (1, 1));
}

#[test]
fn ticks_fall_on_the_clock_grid_at_their_phase() {
    let iso = Isolated::new();
    let bus = Bus::open("g", &iso.0).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let (every, phase) = (200_000_000u64, 7_000_000u64);
    let period = Period::every(Duration::from_nanos(every)).after(Duration::from_nanos(phase));
    let mut at = Vec::new();
    wait::run(
        &[((), notes.waker().unwrap())],
        Some(period),
        Some(Instant::now() + Duration::from_secs(20)),
        |wake| {
            if wake == Wake::Tick {
                at.push(khorus_bus::clock::now_ns());
            }
            if at.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(at.len(), 3);
    for pair in at.windows(2) {
        assert!(
            (pair[0] - phase) / every < (pair[1] - phase) / every,
            "two ticks in one period"
        );
    }
    for t in at {
        // After its grid point (never before), and not by as much as half a period.
        let late = (t - phase) % every;
        assert!(late < every / 2, "a tick {late} ns past its grid point");
    }
}

#[test]
fn a_publisher_counts_the_subscribers_waiting_for_each_sample() {
    let iso = Isolated::new();
    let bus = Bus::open("l", &iso.0).unwrap();
    let mut publisher = bus.publisher::<SignalFrame>().unwrap();
    let mut at_own_pace = bus.subscriber::<SignalFrame>().unwrap();
    let mut waiting = bus.subscriber::<SignalFrame>().unwrap();
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(
        publisher.listeners(),
        0,
        "nobody waits: both read at their pace"
    );
    let waker = waiting.waker().unwrap();
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(publisher.listeners(), 1);
    // Waiting once with `receive_until` (for a sample not there yet) counts too, until the
    // reader says it stopped.
    assert_eq!(at_own_pace.drain(|_| {}).unwrap(), 2);
    let soon = Instant::now() + Duration::from_millis(1);
    assert!(at_own_pace.receive_until(soon).unwrap().is_none());
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(publisher.listeners(), 2);
    at_own_pace.read_at_own_pace();
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(publisher.listeners(), 1);
    // The wait ends with the last waker given out.
    waiting.read_at_own_pace();
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(publisher.listeners(), 1, "a waker is still out");
    drop(waker);
    publisher.publish(SignalFrame::default()).unwrap();
    assert_eq!(publisher.listeners(), 0);
    // Every sample reached both, whatever their pace.
    assert_eq!(waiting.drain(|_| {}).unwrap(), 6);
    assert_eq!(at_own_pace.drain(|_| {}).unwrap(), 4);
}

#[test]
fn a_publisher_sees_subscribers_join_and_leave() {
    let iso = Isolated::new();
    let bus = Bus::open("j", &iso.0).unwrap();
    let mut publisher = bus.publisher::<SignalFrame>().unwrap();
    assert!(!publisher.subscribers_changed(), "none yet");
    let first = bus.subscriber::<SignalFrame>().unwrap();
    assert!(publisher.subscribers_changed(), "one joined");
    assert!(!publisher.subscribers_changed(), "nothing since");
    // One leaves and another joins between two looks: the count is the same, the set is not
    // (a stage restarted within a tick).
    drop(first);
    let _second = bus.subscriber::<SignalFrame>().unwrap();
    assert!(publisher.subscribers_changed(), "one left, another joined");
    assert!(!publisher.subscribers_changed());
    // Another node's subscriber counts alike.
    let other = Bus::open("j2", &iso.0).unwrap();
    let _third = other.subscriber::<SignalFrame>().unwrap();
    assert!(publisher.subscribers_changed());
}

#[test]
fn the_wait_loop_returns_at_its_deadline() {
    let iso = Isolated::new();
    let bus = Bus::open("d", &iso.0).unwrap();
    let mut notes = bus.subscriber::<NoteEvent>().unwrap();
    let mut wakes = 0;
    let exit = wait::run(
        &[((), notes.waker().unwrap())],
        None,
        Some(Instant::now() + Duration::from_millis(50)),
        |_| {
            wakes += 1;
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(exit, Exit::Deadline);
    assert_eq!(wakes, 1, "only the initial wake-up: nothing was published");
}
