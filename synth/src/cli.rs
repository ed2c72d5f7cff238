//! `khorus-synth`: the synth stage (a PipeWire node on the khorus bus), the offline renderer,
//! and the client commands that change a running synth (`set`, `load`).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::{self, ClientError};
use crate::command::FADE_MS;
use crate::engine::RATE_HZ;
use crate::graph::GraphSpec;
use crate::node::NodeOptions;
use crate::render;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use khorus_bus::commands::synth::{GraphEdit, SynthCommand};
use khorus_bus::{BusConfig, NoteEvent, logging};

/// Polyphonic synth for khorus: plays the notes on the bus as a PipeWire node.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    /// PipeWire node.name.
    #[arg(long, default_value = "khorus-synth")]
    name: String,
    /// Do not connect to the default sink (patch with pw-link, Helvum, qpwgraph).
    #[arg(long)]
    no_autoconnect: bool,
    /// Do not offer each node's output as a stream of its own (`<name>.<node>`).
    #[arg(long)]
    no_stems: bool,
    /// Sample rate, Hz (8000..=192000).
    #[arg(long, default_value_t = 48_000, value_parser = rate_hz(), allow_negative_numbers = true)]
    rate: u32,
    /// The PipeWire quantum to ask for, frames (32..=8192; `node.latency`). The graph runs
    /// at the smallest quantum any of its nodes asks for; a larger one wakes the synth less
    /// often; PipeWire grants at most its `clock.max-quantum` (2048 by default in Debian 12's
    /// PipeWire), and the log says when the cycle is shorter than asked. Notes leave the
    /// composer at least half its lookahead (100 ms by default) before they sound, and a
    /// cycle starts up to two cycles before it is heard: with a quantum above 2048, lengthen
    /// the composer's lookahead (README: cheaper in the background).
    #[arg(long, default_value_t = 2048, value_parser = quantum_frames(), allow_negative_numbers = true)]
    quantum: u32,
    /// Graph file (JSON: instruments); default: the built-in patch.
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render notes offline to a WAV file with the same engine (deterministic).
    Render {
        /// Graph file (JSON); default: the built-in patch.
        #[arg(long, value_name = "FILE")]
        graph: Option<PathBuf>,
        /// Notes as JSON lines (`khorus tap notes --json`); times relative to the first note
        /// with --rebase, else absolute ns from 0. A note finds its instrument by the node id
        /// control gave it: render with the graph of `khorus-synth graph` to hear the
        /// instruments that played it (the built-in patch numbers its nodes 1, 2, … in order).
        #[arg(long, value_name = "FILE")]
        notes: PathBuf,
        /// Length, s (more than 0, at most 86400; a WAV file holds at most 4 GiB, about 3 h at
        /// 48 kHz).
        #[arg(long, value_parser = parse_seconds, allow_negative_numbers = true)]
        seconds: f32,
        /// Output WAV (32-bit float stereo).
        #[arg(long, value_name = "FILE.wav")]
        out: PathBuf,
        /// Shift times so the first note starts at 0.
        #[arg(long)]
        rebase: bool,
        /// Sample rate, Hz (8000..=192000).
        #[arg(long, default_value_t = 48_000, value_parser = rate_hz(), allow_negative_numbers = true)]
        rate: u32,
    },
    /// Set a parameter of an instrument of the running synth (smoothed, from the next block).
    Set {
        /// The instrument's name in the graph (built-ins: pad, lead, bass, chords, kick,
        /// click, hat, glitch).
        node: String,
        /// `gain` (0..4), `pan` (-1..1) or a control of its definition; clamped to its range.
        param: String,
        /// The value.
        #[arg(allow_negative_numbers = true)]
        value: f32,
    },
    /// Add an instrument or effect to the running synth, or replace the node of its name;
    /// every other node plays on.
    Put {
        /// One entry of a graph file's `instruments` (no "type") or `effects` (with a
        /// "type"): inline JSON, or a file holding it.
        entry: String,
        /// Crossfade of the node, ms (1..=2000).
        #[arg(long, default_value_t = 60, value_parser = fade_ms(), allow_negative_numbers = true)]
        fade_ms: u32,
    },
    /// Remove a node (and every send into it) from the running synth; it fades out.
    Remove {
        /// Its name.
        node: String,
        /// Fade, ms (1..=2000).
        #[arg(long, default_value_t = 60, value_parser = fade_ms(), allow_negative_numbers = true)]
        fade_ms: u32,
    },
    /// Set the send from a node into an effect (0 removes it); the level glides.
    Route {
        /// An instrument or effect.
        from: String,
        /// An effect.
        to: String,
        /// 0..=1.
        #[arg(allow_negative_numbers = true)]
        level: f32,
    },
    /// Print the running synth's graph as JSON, with the node ids control gave it — what
    /// `render --graph` needs to replay a `khorus tap notes --json` with the same instruments.
    Graph,
    /// Replace the running synth's graph: the nodes both graphs share play on, the rest
    /// crossfade.
    Load {
        /// Graph file (JSON, as for --graph).
        graph: PathBuf,
        /// Crossfade length, ms (1..=2000).
        #[arg(long, default_value_t = 200, value_parser = fade_ms(), allow_negative_numbers = true)]
        fade_ms: u32,
    },
}

/// `--rate`: [`RATE_HZ`], checked by clap (exit 2, the range in the message).
fn rate_hz() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(i64::from(*RATE_HZ.start())..=i64::from(*RATE_HZ.end()))
}

/// `--quantum`: up to the largest block the renderer is sized for.
fn quantum_frames() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(32..=crate::stage::MAX_FRAMES as i64)
}

/// `--fade-ms`: [`FADE_MS`].
fn fade_ms() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(i64::from(*FADE_MS.start())..=i64::from(*FADE_MS.end()))
}

/// `--seconds`: finite, more than 0 and at most [`render::MAX_SECONDS`].
fn parse_seconds(s: &str) -> Result<f32, String> {
    let range = format!(
        "a length in seconds, more than 0 and at most {}",
        render::MAX_SECONDS
    );
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= render::MAX_SECONDS => Ok(x),
        Ok(_) => Err(format!("{s} is not {range}")),
        Err(_) => Err(format!("{s:?} is not a number; expected {range}")),
    }
}

const EXAMPLES: &str = "EXAMPLES:
  khorus-synth                                  play the bus's notes on the default sink
  khorus-synth --no-autoconnect --name stems    then: pw-link stems:output_FL …
  pw-link khorus-synth.bass:output_FL SINK:playback_FL    one node's stem (every node has one)
  khorus tap notes --json > n.jsonl; khorus-synth graph > g.json
  khorus-synth render --graph g.json --notes n.jsonl --rebase --seconds 10 --out take.wav
  khorus-synth set bass cutoff 1200             change a running synth (exit 2 if refused)
  khorus-synth set lead pan -0.5
  khorus-synth load live.json --fade-ms 500     a new graph: shared nodes play on, the rest crossfade
  khorus-synth put '{\"name\":\"lead2\",\"builtin\":\"lead\",\"sends\":{\"reverb\":0.3}}'
  khorus-synth remove lead2                     it fades out; nothing else is touched
  khorus-synth route bass reverb 0.2            a send, gliding to its new level";

/// Parses the command line and runs: the `khorus-synth` binary, and control starting the stage
/// from its own binary.
pub fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's own convention, ours too).
    let cli = Cli::parse();
    logging::init(cli.verbose);
    if let Some(Command::Render { seconds, rate, .. }) = &cli.command
        && let Err(e) = render::wav_frames(*seconds, *rate as f32)
    {
        eprintln!("khorus-synth: --seconds {seconds} at --rate {rate}: {e}");
        return ExitCode::from(2);
    }
    if let Some(cmd) = client_command(&cli.command) {
        return send(cmd);
    }
    if let Some(Command::Graph) = cli.command {
        return print_graph();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus-synth: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A graph or notes file that cannot be used: a usage error (exit 2), like a bad flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// The command for a running synth, if the subcommand is one.
fn client_command(command: &Option<Command>) -> Option<Result<SynthCommand, ClientError>> {
    match command {
        Some(Command::Set { node, param, value }) => {
            Some(Ok(client::set_command(node, param, *value)))
        }
        Some(Command::Load { graph, fade_ms }) => Some(client::load_command(graph, *fade_ms)),
        Some(Command::Put { entry, fade_ms }) => Some(client::put_command(entry, *fade_ms)),
        Some(Command::Remove { node, fade_ms }) => Some(Ok(client::edit_command(
            GraphEdit::Remove { node: node.clone() },
            *fade_ms,
        ))),
        Some(Command::Route { from, to, level }) => Some(Ok(client::edit_command(
            GraphEdit::Route {
                from: from.clone(),
                to: to.clone(),
                level: *level,
            },
            1,
        ))),
        _ => None,
    }
}

/// Sends a client command to the running synth: 0 applied, 2 refused (or an unreadable
/// file), 1 when the bus fails or no synth answers.
fn send(cmd: Result<SynthCommand, ClientError>) -> ExitCode {
    match cmd.and_then(|cmd| client::send(&BusConfig::from_env(), &cmd, client::TIMEOUT)) {
        Ok(()) => {
            println!("applied");
            ExitCode::SUCCESS
        }
        Err(ClientError::Refused(message)) => {
            eprintln!("khorus-synth: refused: {message}");
            ExitCode::from(2)
        }
        Err(e @ ClientError::Read { .. }) => {
            eprintln!("khorus-synth: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("khorus-synth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the running synth's graph: 0 printed, 1 when no synth answers.
fn print_graph() -> ExitCode {
    match client::describe(&BusConfig::from_env(), client::TIMEOUT) {
        Ok(Some(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("khorus-synth: the synth could not write its graph as JSON");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("khorus-synth: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_graph(path: Option<&PathBuf>) -> Result<GraphSpec> {
    match path {
        None => Ok(GraphSpec::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| bad(format!("failed to read {}: {e}", p.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| bad(format!("invalid graph {}: {e}", p.display())))
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Render {
            graph,
            notes,
            seconds,
            out,
            rebase,
            rate,
        }) => {
            let spec = load_graph(graph.as_ref())?;
            let mut engine = spec.build(rate as f32).map_err(bad)?;
            let file = std::fs::File::open(&notes)
                .map_err(|e| bad(format!("failed to open {}: {e}", notes.display())))?;
            let mut list: Vec<NoteEvent> = Vec::new();
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let n: NoteEvent = serde_json::from_str(&line)
                    .map_err(|e| bad(format!("{}:{}: {e}", notes.display(), i + 1)))?;
                list.push(n);
            }
            let origin = if rebase {
                list.iter().map(|n| n.t_ns).min().unwrap_or(0)
            } else {
                0
            };
            render::render_to_wav(&mut engine, &list, origin, seconds, &out)
                .with_context(|| format!("failed to write {}", out.display()))?;
            let stats = engine.stats();
            eprintln!(
                "khorus-synth: rendered {} notes ({} late) to {}",
                stats.notes,
                stats.late,
                out.display()
            );
            Ok(())
        }
        // Client commands were sent from main; they never reach here.
        Some(
            Command::Set { .. }
            | Command::Load { .. }
            | Command::Put { .. }
            | Command::Remove { .. }
            | Command::Route { .. }
            | Command::Graph,
        )
        | None => {
            let start = load_graph(cli.graph.as_ref())?;
            let engine = start.build(cli.rate as f32).map_err(bad)?;
            let options = NodeOptions {
                name: cli.name,
                autoconnect: !cli.no_autoconnect,
                rate: cli.rate,
                stems: !cli.no_stems,
                quantum: cli.quantum,
            };
            crate::stage::run(&BusConfig::from_env(), &options, start, engine)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error clap prints for `args`, and its exit code.
    fn refused(args: &[&str]) -> (String, i32) {
        let e = Cli::try_parse_from(args).expect_err("refused");
        (e.to_string(), e.exit_code())
    }

    fn render(extra: &[&str]) -> Vec<String> {
        let mut args = vec!["khorus-synth", "render", "--notes", "n", "--out", "o.wav"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    }

    #[test]
    fn rate_out_of_range_is_a_usage_error_not_a_panic() {
        for rate in ["0", "1", "7999", "192001", "-5"] {
            let args = render(&["--seconds", "1", "--rate", rate]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (msg, code) = refused(&args);
            assert_eq!(code, 2, "{msg}");
            assert!(
                msg.contains(&format!(
                    "invalid value '{rate}' for '--rate <RATE>': {rate} is not in 8000..=192000"
                )),
                "{msg}"
            );
        }
        let (msg, code) = refused(&["khorus-synth", "--rate", "0"]);
        assert_eq!(code, 2);
        assert!(msg.contains("0 is not in 8000..=192000"), "{msg}");
        for rate in ["8000", "192000"] {
            let args = render(&["--seconds", "1", "--rate", rate]);
            assert!(Cli::try_parse_from(args).is_ok());
        }
    }

    #[test]
    fn the_quantum_is_at_most_what_the_renderer_holds() {
        for q in ["0", "31", "8193", "-1"] {
            let (msg, code) = refused(&["khorus-synth", "--quantum", q]);
            assert_eq!(code, 2, "{msg}");
            assert!(msg.contains(&format!("{q} is not in 32..=8192")), "{msg}");
        }
        let cli = Cli::try_parse_from(["khorus-synth"]).unwrap();
        assert_eq!(cli.quantum, 2048);
        let cli = Cli::try_parse_from(["khorus-synth", "--quantum", "256"]).unwrap();
        assert_eq!(cli.quantum, 256);
    }

    #[test]
    fn seconds_must_be_finite_positive_and_at_most_a_day() {
        for s in ["inf", "1e20", "nan", "-1", "0", "86400.5"] {
            let args = render(&["--seconds", s]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (msg, code) = refused(&args);
            assert_eq!(code, 2, "{msg}");
            assert!(
                msg.contains(&format!(
                    "invalid value '{s}' for '--seconds <SECONDS>': {s} is not a length in \
                     seconds, more than 0 and at most 86400"
                )),
                "{msg}"
            );
        }
        let (msg, _) = refused(
            &render(&["--seconds", "ten"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            msg.contains("\"ten\" is not a number; expected a length in seconds"),
            "{msg}"
        );
        assert!(Cli::try_parse_from(render(&["--seconds", "86400"])).is_ok());
        assert!(Cli::try_parse_from(render(&["--seconds", "0.01"])).is_ok());
    }

    #[test]
    fn fade_ms_is_checked_at_parse_time() {
        for v in ["0", "2001", "-1"] {
            let (msg, code) = refused(&["khorus-synth", "load", "g.json", "--fade-ms", v]);
            assert_eq!(code, 2, "{msg}");
            assert!(msg.contains(&format!("{v} is not in 1..=2000")), "{msg}");
        }
        assert!(
            Cli::try_parse_from(["khorus-synth", "load", "g.json", "--fade-ms", "2000"]).is_ok()
        );
    }
}
