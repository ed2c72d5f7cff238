//! khorus control: the supervisor, the owner of the session, and the user's surface — in
//! three places:
//!
//! - [`cli`]: what the `khorus` command runs besides `up` — the client that sends
//!   [`ControlCommand`](khorus_bus::commands::control::ControlCommand)s, and the bus tools
//!   (`tap`, `inject`, `nodes`) and `install`;
//! - [`up`]: what `khorus up` runs — the long-running control process that starts and
//!   supervises the stages and plays the session through them;
//! - [`session`]: the session model — the session and its changes, what each stage needs to
//!   play it ([`session::plan`]), and how it is saved ([`session::state`]).

pub mod cli;
pub mod session;
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
