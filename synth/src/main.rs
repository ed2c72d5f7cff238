//! `khorus-synth`: the synth stage (a PipeWire node on the khorus bus), the offline renderer,
//! and the client commands that change a running synth (`set`, `load`).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use khorus_bus::commands::synth::SynthCommand;
use khorus_bus::{BusConfig, NoteEvent, logging};
use khorus_synth::client::{self, ClientError};
use khorus_synth::node::NodeOptions;
use khorus_synth::render::{self, GraphSpec};

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
    /// Sample rate, Hz.
    #[arg(long, default_value_t = 48_000)]
    rate: u32,
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
        /// with --rebase, else absolute ns from 0.
        #[arg(long, value_name = "FILE")]
        notes: PathBuf,
        /// Length, s.
        #[arg(long)]
        seconds: f32,
        /// Output WAV (32-bit float stereo).
        #[arg(long, value_name = "FILE.wav")]
        out: PathBuf,
        /// Shift times so the first note starts at 0.
        #[arg(long)]
        rebase: bool,
        /// Sample rate, Hz.
        #[arg(long, default_value_t = 48_000)]
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
    /// Replace the running synth's graph, crossfading from the old one.
    Load {
        /// Graph file (JSON, as for --graph).
        graph: PathBuf,
        /// Crossfade length, ms (1..=2000).
        #[arg(long, default_value_t = 200)]
        fade_ms: u32,
    },
}

const EXAMPLES: &str = "EXAMPLES:
  khorus-synth                                  play the bus's notes on the default sink
  khorus-synth --no-autoconnect --name stems    then: pw-link stems:output_FL …
  khorus tap notes --json > n.jsonl
  khorus-synth render --notes n.jsonl --rebase --seconds 10 --out take.wav
  khorus-synth set bass cutoff 1200             change a running synth (exit 2 if refused)
  khorus-synth set lead pan -0.5
  khorus-synth load live.json --fade-ms 500     swap its graph with a crossfade";

fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's own convention, ours too).
    let cli = Cli::parse();
    logging::init(cli.verbose);
    if let Some(cmd) = client_command(&cli.command) {
        return send(cmd);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus-synth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command for a running synth, if the subcommand is one.
fn client_command(command: &Option<Command>) -> Option<Result<SynthCommand, ClientError>> {
    match command {
        Some(Command::Set { node, param, value }) => {
            Some(Ok(client::set_command(node, param, *value)))
        }
        Some(Command::Load { graph, fade_ms }) => Some(client::load_command(graph, *fade_ms)),
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

fn load_graph(path: Option<&PathBuf>) -> Result<GraphSpec> {
    match path {
        None => Ok(GraphSpec::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("failed to read {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("invalid graph {}", p.display()))
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
            let mut engine = spec.build(rate as f32)?;
            let file = std::fs::File::open(&notes)
                .with_context(|| format!("failed to open {}", notes.display()))?;
            let mut list: Vec<NoteEvent> = Vec::new();
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let n: NoteEvent = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{}", notes.display(), i + 1))?;
                list.push(n);
            }
            let origin = if rebase {
                list.iter().map(|n| n.t_ns).min().unwrap_or(0)
            } else {
                0
            };
            let (l, r) = render::render(&mut engine, &list, origin, seconds);
            render::write_wav(&out, rate, &l, &r)
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
        Some(Command::Set { .. } | Command::Load { .. }) | None => {
            let engine = load_graph(cli.graph.as_ref())?.build(cli.rate as f32)?;
            let options = NodeOptions {
                name: cli.name,
                autoconnect: !cli.no_autoconnect,
                rate: cli.rate,
            };
            khorus_synth::stage::run(&BusConfig::from_env(), &options, engine)
        }
    }
}
