//! `khorus`: the command line of the khorus control process.

use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use khorus::{Stream, inject, nodes, tap};
use khorus_bus::{BusConfig, logging};

/// khorus turns live Linux kernel activity into music.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "EXAMPLES:
  khorus tap signals                 live kernel signals, one line per frame
  khorus tap notes --json | head     the next notes as JSON lines
  khorus tap notes --json > n.jsonl; khorus inject notes --restamp n.jsonl
  echo '{\"dur_ns\":250000000,\"note\":69,\"velocity\":0.8,\"role\":\"melody\"}' | khorus inject notes -
  khorus nodes --cleanup             list processes on the bus, remove dead ones

The bus is chosen by KHORUS_BUS_PREFIX and KHORUS_BUS_ROOT (default: khorus_ in /tmp/iceoryx2/).";

#[derive(Debug, Subcommand)]
enum Command {
    /// Print live bus traffic as readable lines or JSON lines.
    #[command(after_help = "EXAMPLES:\n  khorus tap signals\n  khorus tap notes --json --count 16")]
    Tap {
        /// Which service to tap.
        stream: Stream,
        /// JSON lines (the format `khorus inject` reads).
        #[arg(long)]
        json: bool,
        /// Exit after this many samples.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Publish JSON lines from FILE (or - for stdin) onto the bus.
    #[command(
        after_help = "EXAMPLES:\n  khorus inject notes notes.jsonl\n  khorus tap signals --json --count 100 > s.jsonl; khorus inject signals --restamp s.jsonl"
    )]
    Inject {
        /// Which service to publish on.
        stream: Stream,
        /// Input file of JSON lines, or - for stdin.
        file: PathBuf,
        /// Shift timestamps so the first sample lands --lead-ms from now.
        #[arg(long)]
        restamp: bool,
        /// Lead in milliseconds for restamped samples and those with t_ns 0.
        #[arg(long, default_value_t = 0)]
        lead_ms: u64,
        /// Stay on the bus this long after publishing so subscribers can read.
        #[arg(long, default_value_t = 500)]
        linger_ms: u64,
    },
    /// List the processes on the bus.
    Nodes {
        /// First remove what dead processes left behind.
        #[arg(long)]
        cleanup: bool,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's own convention, ours too).
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus: {e:#}");
            if e.downcast_ref::<inject::InjectError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = BusConfig::from_env();
    let stdout = io::stdout();
    match cli.command {
        Command::Tap {
            stream,
            json,
            count,
            seconds,
        } => {
            let options = tap::TapOptions {
                stream,
                json,
                count,
                duration: seconds.map(Duration::from_secs_f64),
            };
            let summary = tap::run(&config, &options, &mut stdout.lock())?;
            if summary.missed > 0 {
                eprintln!("tap: {} samples missed by this tap", summary.missed);
            }
            Ok(())
        }
        Command::Inject {
            stream,
            file,
            restamp,
            lead_ms,
            linger_ms,
        } => {
            let options = inject::InjectOptions {
                stream,
                restamp,
                lead: Duration::from_millis(lead_ms),
                linger: Duration::from_millis(linger_ms),
            };
            let n = if file.as_os_str() == "-" {
                inject::run(&config, &options, io::stdin().lock())?
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("failed to open {}", file.display()))?;
                inject::run(&config, &options, BufReader::new(f))?
            };
            eprintln!("inject: published {n}");
            Ok(())
        }
        Command::Nodes { cleanup, json } => nodes::run(&config, cleanup, json, &mut stdout.lock()),
    }
}
