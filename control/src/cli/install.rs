//! `khorus install --user`: a systemd user unit for `khorus up`.
//!
//! The unit agrees with adoption: `KillMode=process`, so when systemd restarts a control that
//! crashed, only control is restarted and the stages it supervised play on to be adopted.
//! Stopping the unit sends SIGTERM to control, which is `khorus down`: the stages stop too.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The unit's file name.
pub const UNIT: &str = "khorus.service";

/// Where user units live.
pub fn unit_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("systemd/user")
}

/// The unit's text for the `khorus` binary at `exe`.
pub fn unit_text(exe: &Path) -> String {
    format!(
        "# Written by `khorus install --user`; remove with `khorus install --user --uninstall`.
[Unit]
Description=khorus: live kernel activity as music
Documentation=https://example.invalid/khorus
After=pipewire.service wireplumber.service
Wants=pipewire.service

[Service]
ExecStart={exe} up
# Only control is stopped or restarted by systemd itself: the stages it supervises live in
# their own process groups and are adopted by the next `khorus up` (no gap in the music).
# Stopping the unit sends SIGTERM to control, which stops the stages in order.
KillMode=process
Restart=on-failure
RestartSec=1

[Install]
WantedBy=default.target
",
        exe = exe.display()
    )
}

/// Writes (or with `uninstall`, removes) the unit; returns its path.
pub fn run(uninstall: bool) -> Result<PathBuf> {
    let path = unit_dir().join(UNIT);
    if uninstall {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("failed to remove {}", path.display()));
            }
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("failed to find the khorus binary")?;
    crate::session::state::write_atomic(&path, unit_text(&exe).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_keeps_the_stages_when_control_restarts() {
        let text = unit_text(Path::new("/usr/bin/khorus"));
        assert!(text.contains("ExecStart=/usr/bin/khorus up"));
        assert!(text.contains("KillMode=process"));
        assert!(text.contains("Restart=on-failure"));
    }
}
