//! Least privilege: capabilities are gone once the programs are attached, and a user without
//! them gets procfs with the reason.

use std::process::Command;
use std::time::Duration;

use khorus_collector::privileges::proc_caps;
use khorus_tests::{Child, TestBus};

use crate::util::{collector_cmd, serial, start};

#[test]
fn every_capability_is_dropped_after_attach() {
    let _serial = serial();
    let Some(run) = start("bpf", &[]) else { return };
    let caps = proc_caps(run.child.pid()).unwrap();
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        let v = caps.iter().find(|(k, _)| k == set).map(|(_, v)| *v);
        assert_eq!(v, Some(0), "{set} of the running collector: {caps:x?}");
    }
}

/// The collector run as user nobody with no capabilities at all (setpriv, util-linux).
fn unprivileged(bus: &TestBus, args: &[&str]) -> Command {
    let collector = collector_cmd(bus, args);
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(collector.get_program())
    .args(collector.get_args())
    .envs(bus.config.env());
    cmd
}

#[test]
fn without_capabilities_auto_falls_back_to_procfs_and_says_why() {
    let _serial = serial();
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let bus = TestBus::new("nocap");
    let mut child = Child::spawn(unprivileged(&bus, &["--once", "--json"]));
    let (status, stdout, stderr) = child.wait_exit(Duration::from_secs(30));
    let stderr = stderr.join("\n");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("using procfs"), "{stderr}");
    assert!(
        stderr.contains("CAP_BPF"),
        "the reason names the capability: {stderr}"
    );
    assert!(
        stdout.iter().any(|l| l.contains("\"source\":\"procfs\"")),
        "{stdout:?}"
    );
}

#[test]
fn explicit_bpf_without_capabilities_is_an_error() {
    let _serial = serial();
    let bus = TestBus::new("nocap2");
    let cmd = unprivileged(&bus, &["--source", "bpf", "--once"]);
    let (status, _, stderr) = Child::spawn(cmd).wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.join("\n").contains("BPF is not available"),
        "{stderr:?}"
    );
}
