//! Where the bus lives and how big its services are.
//!
//! Every khorus process reads [`BusConfig::from_env`], so a supervisor or a test moves a whole
//! pipeline to another bus by setting `KHORUS_BUS_PREFIX` / `KHORUS_BUS_ROOT` on its children.
//! [`BusConfig::isolated`] gives a test a bus of its own, so test suites run in parallel and
//! never touch a running khorus.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use iceoryx2::config::Config;
use iceoryx2::prelude::{LogLevel, set_log_level_from_env_or};
use iceoryx2_bb_container::semantic_string::SemanticString;
use iceoryx2_bb_system_types::file_name::FileName;
use iceoryx2_bb_system_types::path::Path as IoxPath;

use crate::BusError;

/// Environment variable naming the bus prefix (file-name prefix of every shared resource).
pub const ENV_PREFIX: &str = "KHORUS_BUS_PREFIX";
/// Environment variable naming the bus root directory.
pub const ENV_ROOT: &str = "KHORUS_BUS_ROOT";
/// Prefix of the default bus.
pub const DEFAULT_PREFIX: &str = "khorus_";
/// Root directory of the default bus (iceoryx2's own default).
pub const DEFAULT_ROOT: &str = "/tmp/iceoryx2/";

/// Upper bounds on the participants of every khorus service. iceoryx2's defaults (2
/// publishers, 8 subscribers, 20 nodes) are too small for a pipeline with taps, a supervisor
/// and tests; these are sized for five stages, a handful of taps and their restarts.
pub(crate) const MAX_NODES: usize = 64;
pub(crate) const MAX_PUBLISHERS: usize = 8;
pub(crate) const MAX_SUBSCRIBERS: usize = 16;

/// Which bus to join: a file-name prefix and a root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Prefix of every shared-memory object and file (e.g. `khorus_`).
    pub prefix: String,
    /// Directory under which iceoryx2 keeps node and service records.
    pub root: PathBuf,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_string(),
            root: PathBuf::from(DEFAULT_ROOT),
        }
    }
}

impl BusConfig {
    /// The bus named by `KHORUS_BUS_PREFIX` / `KHORUS_BUS_ROOT`, or the default one.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(prefix) = std::env::var(ENV_PREFIX) {
            config.prefix = prefix;
        }
        if let Ok(root) = std::env::var(ENV_ROOT) {
            config.root = PathBuf::from(root);
        }
        config
    }

    /// A bus no other process shares unless told to: a unique prefix and a fresh root under
    /// the temporary directory. Pass it to children with [`BusConfig::env`].
    pub fn isolated(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Nanoseconds make prefixes unique across pid reuse too.
        let salt = crate::clock::now_ns() % 1_000_000;
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        let prefix = format!("kt{tag}{pid}x{n}x{salt}_");
        let root = std::env::temp_dir().join(format!("khorus-bus-{pid}-{n}-{salt}"));
        Self { prefix, root }
    }

    /// The environment variables that put a child process on this bus.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            (ENV_PREFIX, self.prefix.clone()),
            (ENV_ROOT, self.root.display().to_string()),
        ]
    }

    /// Where iceoryx2 keeps this bus's shared memory objects (`/dev/shm` on Linux).
    pub fn shm_dir(&self) -> &'static Path {
        Path::new("/dev/shm")
    }

    /// Counts the files this bus owns in `/dev/shm` and under its root: what a leak test
    /// watches.
    pub fn resource_files(&self) -> usize {
        let in_shm = std::fs::read_dir(self.shm_dir())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&self.prefix))
                    .count()
            })
            .unwrap_or(0);
        in_shm + count_files(&self.root)
    }

    /// Removes every file this bus owns: its files in `/dev/shm` and under its root, and the
    /// directories that leaves empty. Only for buses nobody uses any more (`khorus down`, test
    /// teardown). Files of other prefixes under the same root (the default root is shared by
    /// every bus on the machine, and by anything else that uses iceoryx2) stay.
    pub fn remove_all_resources(&self) {
        if let Ok(dir) = std::fs::read_dir(self.shm_dir()) {
            for entry in dir.filter_map(Result::ok) {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&self.prefix)
                {
                    // Best effort: a file that vanished meanwhile is already what we want.
                    std::fs::remove_file(entry.path()).ok();
                }
            }
        }
        remove_prefixed(&self.root, &self.prefix);
    }

    /// The iceoryx2 configuration for this bus: prefix, root, and khorus's participant limits.
    pub(crate) fn iceoryx_config(&self) -> Result<Config, BusError> {
        let mut config = Config::default();
        config.global.prefix =
            FileName::new(self.prefix.as_bytes()).map_err(|e| BusError::InvalidName {
                name: self.prefix.clone(),
                reason: format!("not a valid file-name prefix ({e:?})"),
            })?;
        let mut root = self.root.display().to_string();
        if !root.ends_with('/') {
            root.push('/');
        }
        let root_path = IoxPath::new(root.as_bytes()).map_err(|e| BusError::InvalidName {
            name: root.clone(),
            reason: format!("not a valid root path ({e:?})"),
        })?;
        config.global.set_root_path(&root_path);
        let ps = &mut config.defaults.publish_subscribe;
        ps.max_nodes = MAX_NODES;
        ps.max_publishers = MAX_PUBLISHERS;
        ps.max_subscribers = MAX_SUBSCRIBERS;
        // An expired connection (its publisher gone, samples unread) is kept until read; every
        // port reserves and touches ~3.6 KB per possible one up front, and iceoryx2's default
        // of 128 cost ~460 KB per subscriber, client and server (a third of a stage's memory).
        // No more publishers than a topic has can leave before the next drain.
        ps.subscriber_expired_connection_buffer = MAX_PUBLISHERS;
        let ev = &mut config.defaults.event;
        ev.max_nodes = MAX_NODES;
        ev.max_notifiers = MAX_PUBLISHERS + MAX_SUBSCRIBERS;
        ev.max_listeners = MAX_SUBSCRIBERS + MAX_PUBLISHERS;
        let rr = &mut config.defaults.request_response;
        rr.max_nodes = MAX_NODES;
        rr.max_clients = MAX_SUBSCRIBERS;
        rr.max_servers = 2;
        rr.server_expired_connection_buffer = rr.max_clients;
        rr.client_expired_connection_buffer = rr.max_servers;
        Ok(config)
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// iceoryx2 logs to stderr on its own; khorus reports problems through its own errors, so
/// only iceoryx2's errors get through unless `IOX2_LOG_LEVEL` asks for more.
pub(crate) fn quiet_iceoryx_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| set_log_level_from_env_or(LogLevel::Error));
}

/// Removes the files under `dir` whose names start with `prefix`, and every directory this
/// leaves empty (`dir` too). Returns whether `dir` is gone. Best effort: what vanished
/// meanwhile is already what we want.
fn remove_prefixed(dir: &Path, prefix: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_prefixed(&path, prefix);
        } else if entry.file_name().to_string_lossy().starts_with(prefix) {
            std::fs::remove_file(&path).ok();
        }
    }
    // Fails, and keeps it, while anything (another bus's file) is left inside.
    std::fs::remove_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_bus_leaves_other_buses_under_the_same_root_alone() {
        let root = std::env::temp_dir().join(format!("khorus-remove-{}", std::process::id()));
        let files = [
            "a_1.event",
            "b_1.event",
            "nodes/a_9.node_monitor",
            "nodes/9/a_node.details",
            "nodes/9/a_x.service_tag",
            "nodes/8/b_node.details",
            "services/a_s.service",
            "services/b_s.service",
        ];
        for f in files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
        let a = BusConfig {
            prefix: "a_".into(),
            root: root.clone(),
        };
        a.remove_all_resources();
        let left = |f: &str| root.join(f).exists();
        for f in files {
            assert_eq!(left(f), f.contains("b_"), "{f}");
        }
        assert!(
            !left("nodes/9"),
            "a node directory of the removed bus is gone"
        );
        let b = BusConfig {
            prefix: "b_".into(),
            root: root.clone(),
        };
        b.remove_all_resources();
        assert!(!root.exists(), "the last bus out removes the root");
    }

    #[test]
    fn isolated_buses_never_share_a_prefix_or_root() {
        let a = BusConfig::isolated("t");
        let b = BusConfig::isolated("t");
        assert_ne!(a.prefix, b.prefix);
        assert_ne!(a.root, b.root);
        assert!(a.iceoryx_config().is_ok());
    }

    #[test]
    fn bad_prefix_is_a_clear_error() {
        let config = BusConfig {
            prefix: "a/b".into(),
            root: "/tmp/x".into(),
        };
        let err = config.iceoryx_config().unwrap_err().to_string();
        assert!(err.contains("a/b"), "{err}");
    }
}
