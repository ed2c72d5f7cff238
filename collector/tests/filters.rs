//! The BPF filters: only the chosen processes, or the chosen cgroup subtree, are counted on
//! the filterable hooks.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use khorus_bus::clock;
use khorus_bus::signals::SignalId;
use khorus_tests::{Child, bin};

use crate::util::{Running, count, serial, start};

const N: usize = 20_000;

/// A process that will make about 2·N context switches when told to.
fn switcher() -> Child {
    let mut cmd = Command::new(bin("khorus-bus-peer"));
    cmd.args(["switch-load", "--round-trips", &N.to_string()])
        .stdin(Stdio::piped());
    let child = Child::spawn(cmd);
    child.wait_line(false, Duration::from_secs(10), |l| l == "ready");
    child
}

/// Starts the switcher's work (and `extra` round trips in this process, which is never in
/// the filter) and returns the switches each collector counted meanwhile.
fn switches_counted(runs: &mut [&mut Running], switcher: &mut Child, extra: usize) -> Vec<f64> {
    for run in runs.iter_mut() {
        run.skip_pending();
    }
    let t0 = clock::now_ns();
    let mut stdin = switcher.stdin().unwrap();
    stdin.write_all(b"go\n").unwrap();
    if extra > 0 {
        crate::bpf::ping_pong(extra);
    }
    switcher.wait_line(false, Duration::from_secs(60), |l| l == "done");
    let t1 = clock::now_ns();
    runs.iter_mut()
        .map(|run| count(&run.frames_until(t1), SignalId::CSW, t0))
        .collect()
}

fn config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("khorus.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_allow_list_counts_only_its_processes() {
    let _serial = serial();
    let mut switcher = switcher();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("[collector.filter]\ntgid_allow = [{}]\n", switcher.pid()),
    );
    let Some(mut run) = start("bpf", &["--config", &cfg]) else {
        return;
    };
    // This process makes 4N round trips of its own, which must not be counted.
    let counted = switches_counted(&mut [&mut run], &mut switcher, 4 * N)[0];
    assert!(
        counted >= 1.5 * N as f64 && counted < 4.0 * N as f64,
        "{counted} switches counted for the allowed process's ~{} (plus {} not allowed)",
        2 * N,
        8 * N
    );
}

#[test]
fn the_deny_list_leaves_its_processes_out() {
    let _serial = serial();
    let mut switcher = switcher();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("[collector.filter]\ntgid_deny = [{}]\n", switcher.pid()),
    );
    // Two collectors over the same window, one denying the switcher: whatever else the
    // machine does is counted by both, so the difference is the denied process alone.
    let Some(mut denied) = start("bpf", &["--config", &cfg]) else {
        return;
    };
    let mut open = start("bpf", &[]).unwrap();
    let counts = switches_counted(&mut [&mut denied, &mut open], &mut switcher, 0);
    let difference = counts[1] - counts[0];
    assert!(
        difference >= 1.5 * N as f64 && difference < 3.0 * N as f64,
        "the denied process's ~{} switches: counted {} with the deny list, {} without",
        2 * N,
        counts[0],
        counts[1]
    );
}

/// The cgroup v2 mount point (unified or hybrid layout).
fn cgroup2_root() -> String {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
        })
        .expect("a cgroup v2 hierarchy must be mounted for the cgroup filter")
}

/// A cgroup v2 directory of the test's own, removed on drop.
struct Cgroup(std::path::PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Members must have left (their process exited) before the directory can go.
        std::fs::remove_dir(&self.0).ok();
    }
}

#[test]
fn the_cgroup_filter_counts_only_its_subtree() {
    let _serial = serial();
    let group = Cgroup(
        std::path::Path::new(&cgroup2_root()).join(format!("khorus-test-{}", std::process::id())),
    );
    std::fs::create_dir_all(&group.0).unwrap();
    let mut switcher = switcher();
    std::fs::write(group.0.join("cgroup.procs"), switcher.pid().to_string()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!(
            "[collector.filter]\ncgroup = {:?}\n",
            group.0.display().to_string()
        ),
    );
    let Some(mut run) = start("bpf", &["--config", &cfg]) else {
        return;
    };
    let counted = switches_counted(&mut [&mut run], &mut switcher, 4 * N)[0];
    let (status, _, _) = switcher.wait_exit(Duration::from_secs(10));
    assert!(status.success());
    assert!(
        counted >= 1.5 * N as f64 && counted < 4.0 * N as f64,
        "{counted} switches counted for the cgroup's ~{} (plus {} outside it)",
        2 * N,
        8 * N
    );
}

/// Sends `k` bytes over loopback TCP from this process (its reader a thread of it too).
fn send_over_loopback(k: usize) {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&vec![0x5a; k]).unwrap();
    drop(s);
    assert_eq!(reader.join().unwrap(), k);
}

/// The network and block hooks skip the collector's own exclusion (it sends and issues
/// nothing) but keep the user's filters: traffic a denied process sends is left out, while a
/// collector without the filter, beside it, counts it.
#[test]
fn the_deny_list_leaves_out_the_traffic_its_processes_send() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("[collector.filter]\ntgid_deny = [{}]\n", std::process::id()),
    );
    let Some(mut denied) = start("bpf", &["--config", &cfg]) else {
        return;
    };
    let mut all = start("bpf", &[]).unwrap();
    denied.skip_pending();
    all.skip_pending();
    let k: usize = 8 << 20;
    let t0 = clock::now_ns();
    send_over_loopback(k);
    let t1 = clock::now_ns();
    let tx_all = count(&all.frames_until(t1), SignalId::TX, t0);
    let tx_denied = count(&denied.frames_until(t1), SignalId::TX, t0);
    assert!(
        tx_all >= k as f64,
        "unfiltered: tx {tx_all} bytes for {k} sent"
    );
    assert!(
        tx_denied < k as f64 / 4.0,
        "denied: tx {tx_denied} bytes counted of the {k} this process sent"
    );
}

/// The exec hook skips the collector's own exclusion (it never execs once attached) but keeps
/// the user's filters: the execs of a denied process (one pid exec'ing itself again and
/// again) are left out, while a collector without the filter, beside it, counts them.
#[test]
fn the_deny_list_leaves_out_the_execs_of_its_processes() {
    const EXECS: usize = 200;
    let _serial = serial();
    // Waits for a line, then execs `sh` EXECS times in the same pid, then says "done".
    let chain = "read go; n=$1; while [ \"$n\" -gt 0 ]; do n=$((n-1)); exec sh -c \"$0\" \"$0\" \"$n\" < /dev/null; done; echo done";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", chain, chain, &EXECS.to_string()])
        .stdin(Stdio::piped());
    let mut chainer = Child::spawn(cmd);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("[collector.filter]\ntgid_deny = [{}]\n", chainer.pid()),
    );
    let Some(mut denied) = start("bpf", &["--config", &cfg]) else {
        return;
    };
    let mut all = start("bpf", &[]).unwrap();
    denied.skip_pending();
    all.skip_pending();
    let t0 = clock::now_ns();
    chainer.stdin().unwrap().write_all(b"go\n").unwrap();
    chainer.wait_line(false, Duration::from_secs(60), |l| l == "done");
    let t1 = clock::now_ns();
    let (status, _, _) = chainer.wait_exit(Duration::from_secs(10));
    assert!(status.success());
    let execs_all = count(&all.frames_until(t1), SignalId::EXEC, t0).round();
    let execs_denied = count(&denied.frames_until(t1), SignalId::EXEC, t0).round();
    // Whatever else the machine runs meanwhile is counted by both.
    let difference = execs_all - execs_denied;
    assert!(
        execs_all >= EXECS as f64 && difference >= EXECS as f64 * 0.95,
        "the denied process's {EXECS} execs: counted {execs_denied} with the deny list, \
         {execs_all} without"
    );
}
