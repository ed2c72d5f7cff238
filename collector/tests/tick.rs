//! The collector's tick follows its readers: every 20 ms while one waits for each frame as it
//! comes, every 100 ms (on the clock's grid) while all read at their own pace.

use std::time::{Duration, Instant};

use khorus_bus::command::CommonReply;
use khorus_bus::{Bus, Common, Counter, SignalFrame};

use crate::util::{Running, T, serial, start};

const MS: u64 = 1_000_000;

/// The tick the collector reports in its status, ms.
fn tick_ms(run: &Running) -> u64 {
    let bus = Bus::open("tick-status", run.bus_config()).unwrap();
    let mut client = bus
        .command_client::<khorus_bus::commands::Collector>()
        .unwrap();
    match client
        .call(&Common::Status, Duration::from_secs(10))
        .unwrap()
    {
        CommonReply::Status(s) => s.get(Counter::TickMs).expect("tick_ms in the status"),
        other => panic!("{other:?}"),
    }
}

/// Frames `from` the frame after the next `skip` (those may straddle a change of tick).
fn intervals(frames: &[SignalFrame], skip: usize) -> Vec<u64> {
    let mut dts: Vec<u64> = frames[skip..].iter().map(|f| f.dt_ns).collect();
    dts.sort_unstable();
    dts
}

#[test]
fn the_tick_is_fast_only_while_a_reader_waits_for_each_frame() {
    let _serial = serial();
    // procfs: live counters, which anyone may read (the synthetic source's time is its count
    // of ticks, so it keeps its tick).
    let mut run = start("procfs", &[]).expect("procfs always starts");

    // From now on this test reads at its own pace, as the composer does: nobody waits.
    run.frames.read_at_own_pace();
    let mut idle = Vec::new();
    let deadline = Instant::now() + T;
    while idle.len() < 13 {
        match run.frames.receive().unwrap() {
            Some(f) => idle.push(f),
            // Polling, on purpose: a wait would make this test a waiting reader.
            None => {
                assert!(Instant::now() < deadline, "frames stopped");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // Tolerances a loaded 2-core machine holds (a late wake-up stretches one interval and
    // shortens none): the median tells 100 ms from 20 ms whatever the load.
    let dts = intervals(&idle, 3);
    assert!(
        dts[dts.len() / 2] >= 60 * MS,
        "idle frames every {dts:?} ns, not 100 ms"
    );
    assert_eq!(tick_ms(&run), 100);
    // On the grid: each idle tick comes just after a multiple of 100 ms (by the wake-up's
    // latency), where an unaligned one would be anywhere in the period: 8 of 10 within 40 ms
    // of it (by chance, 1 % of the time).
    let offsets: Vec<u64> = idle[3..].iter().map(|f| f.t_ns % (100 * MS)).collect();
    let near = offsets.iter().filter(|&&o| o < 40 * MS).count();
    assert!(near >= 8, "idle ticks {offsets:?} ns after the grid");

    // Waiting for each frame: fast again from the next idle tick on.
    let fast = run.frames_until(khorus_bus::clock::now_ns() + 400 * MS);
    let dts = intervals(&fast, 3);
    let median = dts[dts.len() / 2];
    assert!(
        (10 * MS..=50 * MS).contains(&median),
        "frames every {dts:?} ns while a reader waits, not 20 ms"
    );
    assert_eq!(tick_ms(&run), 20);
}
