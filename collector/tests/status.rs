//! The collector's heartbeat and command service.

use std::time::{Duration, Instant};

use khorus_bus::command::CommonReply;
use khorus_bus::{Bus, Common, Counter, StageKind, StageStatus};

use crate::util::{serial, start};

#[test]
fn heartbeat_reports_ticks_source_and_programs_and_commands_are_answered() {
    let _serial = serial();
    let Some(mut run) = start("bpf", &["--tick-ms", "10"]) else {
        return;
    };
    let bus = Bus::open("status-test", run.bus_config()).unwrap();
    let mut status = bus.subscriber::<StageStatus>().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let s = status
            .receive_until(deadline)
            .unwrap()
            .expect("a heartbeat within 10 s");
        if s.stage() == StageKind::Collector {
            break s;
        }
    };
    assert_eq!(report.pid, run.child.pid());
    assert!(report.get(Counter::Ticks).unwrap() > 10);
    assert_eq!(report.get(Counter::Source), Some(0), "source = bpf");
    assert_eq!(report.get(Counter::ProgramsAttached), Some(8));
    assert_eq!(report.get(Counter::ReadErrors), Some(0));
    assert!(report.get(Counter::LateTicks).is_some());
    assert!(report.get(Counter::Dropped).is_some());

    let mut client = bus
        .command_client::<khorus_bus::commands::Collector>()
        .unwrap();
    let reply = client
        .call(&Common::Ping { nonce: 9 }, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        reply,
        CommonReply::Pong {
            nonce: 9,
            pid: run.child.pid()
        }
    );
    assert_eq!(
        client
            .call(&Common::Shutdown, Duration::from_secs(10))
            .unwrap(),
        CommonReply::Ack
    );
    let (exit, _, stderr) = run.child.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{}", stderr.join("\n"));
    run.skip_pending();
}
