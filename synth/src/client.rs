//! The command-line client: sends one command to a running synth over the bus and returns its
//! answer, for `khorus-synth set`, `load`, `put`, `remove`, `route` and `graph`.

use std::path::Path;
use std::time::Duration;

use khorus_bus::commands::synth::{GraphEdit, SynthCommand, SynthReply};
use khorus_bus::{Bus, BusConfig, BusError, StageKind};

/// How long the client waits for an answer (a graph is built before the synth answers).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a command got no `Applied`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The graph file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The synth refused the command; its message says why (nothing was changed).
    #[error("{0}")]
    Refused(String),
    /// The bus failed or the synth did not answer.
    #[error(transparent)]
    Bus(BusError),
    /// The synth answered something the command does not expect (`Applied`, or the graph
    /// for `graph`).
    #[error("unexpected reply {0:?}")]
    Unexpected(SynthReply),
}

/// `set NODE PARAM VALUE`.
pub fn set_command(node: &str, param: &str, value: f32) -> SynthCommand {
    SynthCommand::Set {
        node: node.to_string(),
        param: param.to_string(),
        value,
    }
}

/// `load GRAPH.json --fade-ms N`: the command carrying the file's text.
pub fn load_command(path: &Path, fade_ms: u32) -> Result<SynthCommand, ClientError> {
    let json = std::fs::read_to_string(path).map_err(|source| ClientError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(SynthCommand::LoadGraph { json, fade_ms })
}

/// `put ENTRY`: inline JSON (starting with `{`), or a file holding it.
pub fn put_command(entry: &str, fade_ms: u32) -> Result<SynthCommand, ClientError> {
    let json = if entry.trim_start().starts_with('{') {
        entry.to_string()
    } else {
        std::fs::read_to_string(entry).map_err(|source| ClientError::Read {
            path: entry.to_string(),
            source,
        })?
    };
    Ok(edit_command(GraphEdit::Put { json }, fade_ms))
}

/// A node-by-node edit.
pub fn edit_command(edit: GraphEdit, fade_ms: u32) -> SynthCommand {
    SynthCommand::Edit { edit, fade_ms }
}

/// Sends `cmd` to the synth on the bus `config` names and waits up to `timeout` for `Applied`.
pub fn send(config: &BusConfig, cmd: &SynthCommand, timeout: Duration) -> Result<(), ClientError> {
    match call(config, cmd, timeout)? {
        SynthReply::Applied => Ok(()),
        other => Err(ClientError::Unexpected(other)),
    }
}

/// The graph the running synth plays, as JSON with the node ids control gave it (`None`: it
/// plays the graph it started with — its `--graph` file or the built-in patch — and nothing
/// was loaded since).
pub fn describe(config: &BusConfig, timeout: Duration) -> Result<Option<String>, ClientError> {
    match call(config, &SynthCommand::Describe, timeout)? {
        SynthReply::Graph { json } => Ok(json),
        other => Err(ClientError::Unexpected(other)),
    }
}

/// Sends `cmd` and waits up to `timeout` for the synth's answer; a refusal is its message.
fn call(
    config: &BusConfig,
    cmd: &SynthCommand,
    timeout: Duration,
) -> Result<SynthReply, ClientError> {
    let bus = Bus::open("synth-client", config).map_err(ClientError::Bus)?;
    // With no synth on the bus, say so at once; one that is starting is waited for.
    let starting = bus.stage_present(StageKind::Synth, &[]);
    let mut client = bus
        .command_client::<khorus_bus::commands::Synth>()
        .map_err(ClientError::Bus)?
        .wait_for_server(if starting { timeout } else { Duration::ZERO });
    client.call(cmd, timeout).map_err(|e| match e {
        BusError::Refused { error, .. } => ClientError::Refused(error.message),
        e => ClientError::Bus(e),
    })
}
