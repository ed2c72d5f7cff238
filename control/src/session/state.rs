//! Where control keeps what must outlive it: the session, written atomically (write, fsync,
//! rename, fsync the directory) under `$XDG_STATE_HOME/khorus/<bus>/`, and the stages' logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use khorus_bus::BusConfig;

use crate::session::Session;

/// The state directory of this bus (one per bus prefix, so test buses never share one).
pub fn dir(bus: &BusConfig) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let name = bus.prefix.trim_end_matches('_');
    base.join("khorus")
        .join(if name.is_empty() { "default" } else { name })
}

/// The session file.
pub fn session_path(bus: &BusConfig) -> PathBuf {
    dir(bus).join("session.json")
}

/// A stage's log file (its stdout and stderr).
pub fn log_path(bus: &BusConfig, stage: &str) -> PathBuf {
    dir(bus).join(format!("{stage}.log"))
}

/// Writes `bytes` to `path` so that a crash at any moment leaves the old file or the new one,
/// never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().context("a state file has a directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create {}", parent.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("failed to create {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("failed to write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("failed to replace {}", path.display()))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync {}", parent.display()))?;
    Ok(())
}

/// The session as JSON, as it is saved and dumped.
pub fn session_json(session: &Session) -> String {
    let mut s = serde_json::to_string_pretty(session).expect("a session serialises");
    s.push('\n');
    s
}

/// Saves the session.
pub fn save_session(bus: &BusConfig, session: &Session) -> Result<()> {
    write_atomic(&session_path(bus), session_json(session).as_bytes())
}

/// The saved session, if there is one.
pub fn load_session(bus: &BusConfig) -> Result<Option<Session>> {
    let path = session_path(bus);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("invalid session {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// The last `n` lines of a file (a stage's log), for crash reports.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    // Only the end matters; a long log is not read into lines whole.
    let start = text.len().saturating_sub(16 * 1024);
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/session.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn tail_gives_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), vec!["c", "d"]);
        assert!(tail(&d.path().join("none"), 2).is_empty());
    }
}
