//! `khorus-composer`: the composer stage's command line. Parses arguments, then either runs
//! the stage on the bus or answers a one-off `query` of mini-notation.

use std::io::Write;
use std::process::ExitCode;

use crate::pattern::Context;
use crate::score::Score;
use crate::stage::{self, Options};
use crate::time::Q;
use crate::transport;
use anyhow::Result;
use clap::{Parser, Subcommand};
use khorus_bus::BusConfig;
use khorus_bus::commands::composer::ScoreParams;

const EXAMPLES: &str = "EXAMPLES:
  khorus-composer                           run on the bus (silent until a command or --score)
  khorus-composer --score ambient --print   play the ambient score, print every note
  khorus-composer --score arp --key c3 --scale dorian --bpm 128
  khorus-composer --score arp --explain     what each kernel signal does in the arp score
  khorus-composer query \"a2 [c3 e3]*2 <g3 b3>\" --cycles 2
  khorus-composer query \"bd(3,8,2) hh?\" --cycles 4 --json";

/// The khorus composer: patterns with TidalCycles semantics, driven by kernel signals.
#[derive(Debug, Parser)]
#[command(version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Lookahead: how far ahead notes are scheduled, ms (1..=10000). The scheduler ticks every
    /// half of it (200 ms: 10 ticks a second, each note out at least 100 ms before it sounds,
    /// more than two PipeWire quanta of 2048 frames, the synth's; each tick costs, so shorter
    /// costs more CPU).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(LOOKAHEAD_MS), allow_negative_numbers = true)]
    lookahead_ms: u32,
    /// Initial tempo, beats per minute (1..=999).
    #[arg(long, default_value_t = 120.0, value_parser = parse_bpm, allow_negative_numbers = true)]
    bpm: f64,
    /// Beats per cycle (1..=64).
    #[arg(long, default_value_t = transport::DEFAULT_BEATS_PER_CYCLE, value_parser = beats_per_cycle(), allow_negative_numbers = true)]
    beats_per_cycle: u32,
    /// Start playing a score: ambient, percussive, arp or drone.
    #[arg(long)]
    score: Option<String>,
    /// Score key (note name, e.g. a3).
    #[arg(long)]
    key: Option<String>,
    /// Score scale (minor, dorian, pentatonic_minor, …).
    #[arg(long)]
    scale: Option<String>,
    /// Score density (0..=1).
    #[arg(long, value_parser = parse_density, allow_negative_numbers = true)]
    density: Option<f64>,
    /// Print each note as it is scheduled.
    #[arg(long)]
    print: bool,
    /// With --score: print what each kernel signal drives in that score, and exit.
    #[arg(long, requires = "score")]
    explain: bool,
    /// More logs (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the events of a mini-notation pattern with exact rational spans.
    Query {
        /// The pattern.
        pattern: String,
        /// Cycles to query from 0, in one query, as Tidal's `queryArc` over 0..N (1..=4096: one
        /// query spans at most 4096 cycles).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(QUERY_CYCLES), allow_negative_numbers = true)]
        cycles: u32,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `--lookahead-ms`.
const LOOKAHEAD_MS: std::ops::RangeInclusive<i64> = 1..=10_000;
/// `query --cycles`: as many as one query may span.
const QUERY_CYCLES: std::ops::RangeInclusive<i64> = 1..=crate::time::MAX_QUERY_CYCLES;

/// `--beats-per-cycle`: [`transport::BEATS_PER_CYCLE`].
fn beats_per_cycle() -> clap::builder::RangedI64ValueParser<u32> {
    let r = &transport::BEATS_PER_CYCLE;
    clap::value_parser!(u32).range(i64::from(*r.start())..=i64::from(*r.end()))
}

/// `--bpm`: [`transport::BPM`], with the transport's own message.
fn parse_bpm(s: &str) -> Result<f64, String> {
    let bpm: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    let q =
        Q::from_f64(bpm).map_err(|_| transport::TempoError::OutOfRange(s.into()).to_string())?;
    transport::check_bpm(q).map_err(|e| e.to_string())?;
    Ok(bpm)
}

/// `--density`: 0..=1.
fn parse_density(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if (0.0..=1.0).contains(&d) => Ok(d),
        Ok(_) => Err(format!("{s} is outside 0..=1")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

/// Parses the command line and runs: the `khorus-composer` binary, and control starting the stage
/// from its own binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    khorus_bus::logging::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("khorus-composer: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("khorus-composer: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Some(Cmd::Query {
        pattern,
        cycles,
        json,
    }) = &cli.command
    {
        return query(pattern, *cycles, *json, &mut std::io::stdout().lock());
    }
    let bpm = Q::from_f64(cli.bpm).map_err(|e| Failure::Usage(e.into()))?;
    let score = match &cli.score {
        None => None,
        Some(name) => {
            let s = Score::from_name(name)
                .ok_or_else(|| Failure::Usage(anyhow::anyhow!("unknown score {name:?}")))?;
            let params = ScoreParams {
                key: cli.key.clone(),
                scale: cli.scale.clone(),
                bpm: Some(cli.bpm),
                density: cli.density,
                routes: None,
            };
            if cli.explain {
                let p = s.params(&params).map_err(|e| Failure::Usage(e.into()))?;
                let text = crate::explain::table(s, &p);
                return match std::io::stdout().lock().write_all(text.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Runtime(
                        anyhow::Error::new(e).context("failed to write"),
                    )),
                    _ => Ok(()),
                };
            }
            Some((s, params))
        }
    };
    let opts = Options {
        lookahead_ns: u64::from(cli.lookahead_ms) * 1_000_000,
        bpm,
        beats_per_cycle: cli.beats_per_cycle,
        score,
        print: cli.print,
    };
    let config = BusConfig::from_env();
    let mut out = std::io::stdout().lock();
    stage::run(&config, &opts, &mut out).map_err(|e| match e {
        stage::StageError::Options(_) => Failure::Usage(e.into()),
        e => Failure::Runtime(anyhow::Error::new(e).context("the composer stopped")),
    })
}

fn query(pattern: &str, cycles: u32, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let pat = crate::mini::parse(pattern)
        .map_err(|e| Failure::Usage(anyhow::anyhow!("invalid pattern at {e}")))?;
    // One query over the whole span, so an event longer than a cycle is one event (`a/2`
    // over 2 cycles: part 0-2), as Tidal answers it.
    let haps = pat
        .query_span(Q::ZERO, Q::int(i64::from(cycles)), &Context::default())
        .map_err(|e| {
            Failure::Runtime(anyhow::Error::new(e).context("failed to query the pattern"))
        })?;
    for h in haps {
        let whole = h.whole.map(|w| w.to_string()).unwrap_or_else(|| "~".into());
        let line = if json {
            serde_json::json!({
                "whole": h.whole.map(|w| [w.begin.to_string(), w.end.to_string()]),
                "part": [h.part.begin.to_string(), h.part.end.to_string()],
                "onset": h.has_onset(),
                "value": h.value.to_string(),
            })
            .to_string()
        } else {
            format!("{whole} part {} {}", h.part, h.value)
        };
        if let Err(e) = writeln!(out, "{line}") {
            // A closed pipe (`| head`) is success.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::Runtime(
                anyhow::Error::new(e).context("failed to write"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Pattern;

    /// clap's message for `args` (after the program name), and its exit code.
    fn refused(args: &[&str]) -> (String, i32) {
        let args = std::iter::once("khorus-composer").chain(args.iter().copied());
        let e = Cli::try_parse_from(args).expect_err("refused");
        (e.to_string(), e.exit_code())
    }

    #[test]
    fn negative_numbers_get_the_range_message_not_unexpected_argument() {
        for bpm in ["-5", "0", "1000", "nan", "inf"] {
            let (msg, code) = refused(&["--bpm", bpm]);
            assert_eq!(code, 2, "{msg}");
            assert!(
                msg.contains(&format!(
                    "invalid value '{bpm}' for '--bpm <BPM>': tempo must be between 1 and 999 bpm"
                )),
                "{msg}"
            );
        }
        let cases: [(&[&str], &str); 6] = [
            (&["--lookahead-ms", "-1"], "-1 is not in 1..=10000"),
            (&["--lookahead-ms", "10001"], "10001 is not in 1..=10000"),
            (&["--beats-per-cycle", "-4"], "-4 is not in 1..=64"),
            (&["--beats-per-cycle", "65"], "65 is not in 1..=64"),
            (&["--density", "-0.5"], "-0.5 is outside 0..=1"),
            (&["query", "a", "--cycles", "-3"], "-3 is not in 1..=4096"),
        ];
        for (args, want) in cases {
            let (msg, code) = refused(args);
            assert_eq!(code, 2, "{msg}");
            assert!(msg.contains(want), "{args:?}: {msg}");
        }
    }

    #[test]
    fn in_range_values_parse() {
        let cli = Cli::try_parse_from([
            "khorus-composer",
            "--bpm",
            "999",
            "--beats-per-cycle",
            "64",
            "--density",
            "1",
            "--lookahead-ms",
            "10000",
        ])
        .expect("parsed");
        assert_eq!((cli.bpm, cli.beats_per_cycle), (999.0, 64));
    }

    fn lines(pattern: &str, cycles: u32) -> Vec<String> {
        let mut out = Vec::new();
        if query(pattern, cycles, false, &mut out).is_err() {
            panic!("query {pattern:?} --cycles {cycles} failed");
        }
        String::from_utf8(out)
            .expect("UTF-8")
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_query_over_several_cycles_is_one_query() {
        // Tidal's queryArc over 0..2 of "a/2": one event, whole and part 0-2.
        assert_eq!(lines("a/2", 2), ["[0, 2) part [0, 2) a"]);
        assert_eq!(
            lines("a/2", 3),
            ["[0, 2) part [0, 2) a", "[2, 4) part [2, 3) a"]
        );
        let out = lines("a", 4096);
        assert_eq!(out.len(), 4096);
        assert_eq!(out[4095], "[4095, 4096) part [4095, 4096) a");
        for p in ["a/2 [b c]@3", "<a b>/3 c(3,8,2)", "{a b c}%4"] {
            let one = Pattern::query_span(
                &crate::mini::parse(p).expect("a pattern"),
                Q::ZERO,
                Q::int(6),
                &Context::default(),
            )
            .expect("queried")
            .into_iter()
            .map(|h| {
                let whole = h.whole.map(|w| w.to_string()).unwrap_or_else(|| "~".into());
                format!("{whole} part {} {}", h.part, h.value)
            })
            .collect::<Vec<_>>();
            assert_eq!(lines(p, 6), one, "{p}");
        }
        let (msg, code) = refused(&["query", "a", "--cycles", "4097"]);
        assert_eq!(code, 2, "{msg}");
    }
}
