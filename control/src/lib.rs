//! khorus control: the user's surface.
//!
//! Today it holds the bus tools: [`tap`] prints live traffic, [`inject`] publishes JSON lines
//! onto the bus, [`nodes`] lists the processes on the bus and cleans up after dead ones. The
//! supervisor, topology, scripting and HTTP API grow here.

pub mod inject;
pub mod nodes;
pub mod tap;

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
