//! khorus control: the supervisor, the owner of the session, and the user's surface.
//!
//! [`up`] is the long-running control process (`khorus up`): it starts and supervises the
//! stages ([`supervise`]), owns the [`session`] and plays it through the stages ([`plan`]),
//! and answers [`ControlCommand`](khorus_bus::commands::control::ControlCommand)s that the
//! CLI ([`client`]) sends. The bus tools live here too: [`tap`] prints live traffic,
//! [`inject`] publishes JSON lines onto the bus, [`nodes`] lists the processes on the bus.

pub mod client;
pub mod clients;
pub mod config;
pub mod inject;
pub mod install;
pub mod nodes;
pub mod plan;
pub mod procinfo;
pub mod session;
pub mod state;
pub mod supervise;
pub mod tap;
pub mod up;

use std::io::{self, Write};

/// Which hot-path service a tool works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stream {
    /// `khorus/signals`: kernel signal frames.
    Signals,
    /// `khorus/notes`: timestamped notes.
    Notes,
    /// `khorus/curves`: automation breakpoints.
    Curves,
    /// `khorus/status`: stage heartbeats.
    Status,
    /// `khorus/transport`: the composer's clock.
    Transport,
}

/// Writes one line to stdout; a closed pipe (`| head`) is reported as `Ok(false)` so the tool
/// can stop quietly.
pub(crate) fn write_line(out: &mut impl Write, line: &str) -> io::Result<bool> {
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}
