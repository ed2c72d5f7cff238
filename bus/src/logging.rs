//! Diagnostic logs for the khorus binaries (every stage installs them the same way).
//!
//! Levels: ERROR — the process cannot do what it was asked; WARN — it carries on with less
//! (a fallback, a dropped sample); INFO — what a user running it would want to know (started,
//! connected, restarted); DEBUG/TRACE — for developers. Logs go to stderr; what the user asked
//! for (tap output, query results) goes to stdout.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber: `RUST_LOG` if set, else `warn`, `info` with `-v`, `debug` with
/// `-vv`, `trace` beyond.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a supervisor's capture stays plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
