//! `khorus-router`: the bus's notes and signals as PipeWire MIDI and OSC; OSC control in.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::map::RouterConfig;
use crate::stage::{self, Options};
use anyhow::{Result, anyhow};
use clap::Parser;
use khorus_bus::{BusConfig, logging, settings};

/// Routes khorus notes and signals to a PipeWire MIDI port and OSC targets.
///
/// The MIDI port is on unless --osc is given without --midi, or --no-midi. Settings come from the [router]
/// section of the configuration file; flags override them.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    /// Run the PipeWire MIDI node (the default unless --osc is given).
    #[arg(long, conflicts_with = "no_midi")]
    midi: bool,
    /// No MIDI node (OSC only).
    #[arg(long)]
    no_midi: bool,
    /// Send OSC to HOST:PORT (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    osc: Vec<String>,
    /// Listen for OSC control (/khorus/set, /khorus/tempo, /khorus/hush) on this UDP port,
    /// 0..=65535, 0 = off (127.0.0.1 unless osc_in_bind says otherwise).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(..), allow_negative_numbers = true)]
    osc_in: Option<u16>,
    /// Send MIDI clock (24 ppqn) with start/stop, following the composer's transport.
    #[arg(long)]
    midi_clock: bool,
    /// PipeWire node.name.
    #[arg(long)]
    name: Option<String>,
    /// Print every note and controller change.
    #[arg(long)]
    print: bool,
    /// Configuration file (default: $XDG_CONFIG_HOME/khorus/khorus.toml, /etc/khorus/khorus.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

const EXAMPLES: &str = "EXAMPLES:
  khorus-router                                 MIDI port khorus-router, patch it:
  pw-link khorus-router:out_0 midi-dump:input   (or Helvum / qpwgraph)
  khorus-router --osc 127.0.0.1:57120           SuperCollider gets timetagged bundles
  khorus-router --midi --osc-in 9000 --midi-clock
  oscsend localhost 9000 /khorus/tempo f 96";

fn options(cli: &Cli) -> Result<Options> {
    let (mut config, _path): (RouterConfig, _) = settings::load(cli.config.as_deref(), "router")?;
    config.osc.extend(cli.osc.iter().cloned());
    if let Some(p) = cli.osc_in {
        config.osc_in = p;
    }
    if let Some(n) = &cli.name {
        config.name = n.clone();
    }
    config.midi_clock |= cli.midi_clock;
    config.validate().map_err(|e| anyhow!(e))?;
    Ok(Options {
        midi: cli.midi || (cli.osc.is_empty() && !cli.no_midi),
        config,
        print: cli.print,
    })
}

/// Parses the command line and runs: the `khorus-router` binary, and control starting the stage
/// from its own binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    // A bad configuration or flag is a usage error (2), like clap's own.
    let options = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("khorus-router: {e:#}");
            return ExitCode::from(2);
        }
    };
    match stage::run(&BusConfig::from_env(), &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus-router: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc_in_port_is_range_checked_at_parse_time() {
        for (port, want) in [
            (
                "-1",
                "invalid value '-1' for '--osc-in <PORT>': -1 is not in 0..=65535",
            ),
            (
                "65536",
                "invalid value '65536' for '--osc-in <PORT>': 65536 is not in 0..=65535",
            ),
        ] {
            let e = Cli::try_parse_from(["khorus-router", "--osc-in", port]).expect_err("refused");
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(want), "{e}");
        }
        assert!(Cli::try_parse_from(["khorus-router", "--osc-in", "9000"]).is_ok());
    }
}
