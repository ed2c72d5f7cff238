//! `khorus-collector`: kernel signals onto the khorus bus.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use khorus_bus::{BusConfig, logging, settings};
use khorus_collector::config::{CollectorConfig, SourceChoice, TICK_MS};
use khorus_collector::stage::{self, Options, Output};

/// Reads kernel activity (eBPF, PSI, procfs) and publishes normalised signal frames.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    /// Where to read from (default from the config file, else auto: BPF, falling back to procfs).
    #[arg(long, conflicts_with = "replay")]
    source: Option<SourceChoice>,
    /// Replay a recorded trace instead of reading a live source.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// With --replay: as fast as possible, not in real time.
    #[arg(long, requires = "replay")]
    fast: bool,
    /// Tick length in milliseconds (5..=1000) while something waits for every frame (a
    /// router with a MIDI peer or OSC target, `khorus tap signals`); always, when recording or
    /// printing.
    #[arg(long, value_parser = tick_ms(), allow_negative_numbers = true)]
    tick_ms: Option<u32>,
    /// Tick length in milliseconds (5..=1000, never shorter than --tick-ms) while every reader
    /// takes frames at its own pace (the composer).
    #[arg(long, value_parser = tick_ms(), allow_negative_numbers = true)]
    idle_tick_ms: Option<u32>,
    /// Seed of the synthetic source (0..=18446744073709551615).
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// Record the raw samples to FILE (replay it with --replay FILE).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Show a table of rates (mean of the last second) and levels, 4 times a second: redrawn
    /// in place on a terminal, as lines when piped.
    #[arg(long, conflicts_with = "json")]
    print: bool,
    /// Print every frame as a JSON line.
    #[arg(long)]
    json: bool,
    /// Print one frame and exit.
    #[arg(long)]
    once: bool,
    /// Stop after N frames (1 or more).
    #[arg(long, value_name = "N", conflicts_with = "once", value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    frames: Option<u64>,
    /// Configuration file (default: $XDG_CONFIG_HOME/khorus/khorus.toml, /etc/khorus/khorus.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

const EXAMPLES: &str = "EXAMPLES:
  khorus-collector --print                  live table of kernel activity
  khorus-collector --once --json            one frame as JSON
  khorus-collector --record perf.trace      publish and record
  khorus-collector --replay perf.trace      play a recording back in real time
  khorus-collector --source synthetic       deterministic demo signals

BPF needs CAP_BPF and CAP_PERFMON, dropped right after attaching; grant them once with
  sudo setcap cap_bpf,cap_perfmon+ep $(command -v khorus-collector)
Without them the collector falls back to procfs and says why.";

/// `--tick-ms`, `--idle-tick-ms`: [`TICK_MS`].
fn tick_ms() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(*TICK_MS.start() as i64..=*TICK_MS.end() as i64)
}

fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's own convention, ours too).
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let options = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("khorus-collector: {e:#}");
            return ExitCode::from(2);
        }
    };
    match stage::run(&BusConfig::from_env(), &options, &mut io::stdout().lock()) {
        Ok(summary) => {
            tracing::info!("{summary:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("khorus-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn options(cli: &Cli) -> Result<Options> {
    let (mut config, _path): (CollectorConfig, _) =
        settings::load(cli.config.as_deref(), "collector")?;
    if let Some(s) = cli.source {
        config.source = s;
    }
    if let Some(t) = cli.tick_ms {
        config.tick_ms = t.into();
    }
    if let Some(t) = cli.idle_tick_ms {
        config.idle_tick_ms = t.into();
    }
    if let Some(s) = cli.seed {
        config.seed = s;
    }
    config.validate()?;
    Ok(Options {
        config,
        replay: cli.replay.clone(),
        fast: cli.fast,
        record: cli.record.clone(),
        output: if cli.json {
            Output::Json
        } else if cli.print && !cli.once && cli.frames.is_none() && io::stdout().is_terminal() {
            // A terminal gets the table redrawn in place; a pipe, a file or a counted run
            // gets lines it can keep.
            Output::Live
        } else if cli.print || cli.once {
            Output::Print
        } else {
            Output::Quiet
        },
        frames: if cli.once { Some(1) } else { cli.frames },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> (String, i32) {
        let args = std::iter::once("khorus-collector").chain(args.iter().copied());
        let e = Cli::try_parse_from(args).expect_err("refused");
        (e.to_string(), e.exit_code())
    }

    #[test]
    fn numeric_flags_are_range_checked_at_parse_time() {
        let cases: [(&[&str], &str); 5] = [
            (
                &["--tick-ms", "4"],
                "invalid value '4' for '--tick-ms <TICK_MS>': 4 is not in 5..=1000",
            ),
            (&["--tick-ms", "1001"], "1001 is not in 5..=1000"),
            (&["--tick-ms", "-5"], "-5 is not in 5..=1000"),
            (&["--frames", "0"], "0 is not in 1..18446744073709551615"),
            (&["--seed", "-1"], "invalid value '-1' for '--seed <SEED>'"),
        ];
        for (args, want) in cases {
            let (msg, code) = refused(args);
            assert_eq!(code, 2, "{msg}");
            assert!(msg.contains(want), "{args:?}: {msg}");
        }
        assert!(
            Cli::try_parse_from(["khorus-collector", "--tick-ms", "5", "--frames", "1"]).is_ok()
        );
    }

    /// What `main` prints for a failure: the chain, `{:#}`.
    fn printed(e: anyhow::Error) -> String {
        format!("{e:#}")
    }

    #[test]
    fn a_missing_config_file_names_the_os_error_once() {
        let cli = Cli::try_parse_from(["khorus-collector", "--config", "/nonexistent/khorus.toml"])
            .expect("parsed");
        let e = options(&cli).expect_err("no such file");
        assert_eq!(
            printed(e),
            "failed to read /nonexistent/khorus.toml: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_missing_replay_file_names_the_os_error_once() {
        let cli = Cli::try_parse_from(["khorus-collector", "--replay", "/nonexistent/perf.trace"])
            .expect("parsed");
        let options = options(&cli).expect("valid options");
        let e = stage::open_source(&options).err().expect("no such file");
        assert_eq!(
            printed(e),
            "failed to open the trace to replay: /nonexistent/perf.trace: \
             No such file or directory (os error 2)"
        );
    }
}
