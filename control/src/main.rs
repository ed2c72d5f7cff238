//! `khorus`: the command line of the khorus control process.

use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use khorus::cli::client::{self, ClientError};
use khorus::cli::{inject, install, nodes, tap};
use khorus::up::config::ControlConfig;
use khorus::{Stream, up};
use khorus_bus::commands::control::{Change, ControlCommand, ControlReply};
use khorus_bus::{BusConfig, Role, logging, settings};

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
  khorus up                          start the pipeline, play the session (Ctrl-C: down)
  khorus status --watch              one row per stage: state, restarts, CPU, memory, counters
  khorus play bass 'a1 ~ e2 a1'      a pattern into a node's slot
  khorus set pad.cutoff 900          a number…
  khorus set pad.cutoff 'range(io, 200, 4000)'   …or a kernel signal expression
  khorus route lead reverb 0.5       send level from a node into an effect
  khorus tempo 128; khorus hush; khorus score arp key=c3
  khorus note bass a2 0.8 400        audition a note (a name or a MIDI number: a2 = 45)
  khorus session --json > s.json; khorus session load s.json
  khorus session reset               back to the session khorus starts with
  khorus down                        silence, stop every stage
  khorus tap signals                 live kernel signals, one line per frame
  khorus tap notes --json | head     the next notes as JSON lines
  khorus tap notes --json > n.jsonl; khorus inject notes --restamp n.jsonl
  echo '{\"dur_ns\":250000000,\"note\":69,\"velocity\":0.8,\"role\":\"melody\"}' | khorus inject notes -
  khorus nodes --cleanup             list processes on the bus, remove dead ones

The bus is chosen by KHORUS_BUS_PREFIX and KHORUS_BUS_ROOT (default: khorus_ in /tmp/iceoryx2/).";

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the pipeline (or adopt the stages already running) and supervise it.
    Up {
        /// Configuration file (`[control]` and the stages' sections); default:
        /// $XDG_CONFIG_HOME/khorus/khorus.toml, then /etc/khorus/khorus.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Leave a stage out (repeatable): collector, composer, synth, router.
        #[arg(long, value_name = "STAGE")]
        without: Vec<String>,
    },
    /// Silence the music and stop every stage and control.
    Down,
    /// One row per stage: state, restarts, CPU, memory, counters.
    Status {
        /// JSON.
        #[arg(long)]
        json: bool,
        /// Redraw every second.
        #[arg(long)]
        watch: bool,
    },
    /// The session (nodes, routes, patterns, tempo, score).
    Session {
        /// JSON (the format `session load` reads).
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<SessionAction>,
    },
    /// Play a pattern on a node (from the next cycle, or the next QUANTUM-cycle bar):
    /// mini-notation on NODE's notes, or on NODE.PARAM as a curve of its numbers; with
    /// --per-cycle N, the text on NODE.PARAM is a signal expression sampled N times a cycle.
    #[command(
        after_help = "EXAMPLES:\n  khorus play bass 'a1 ~ [e2 a1] g1'\n  khorus play drums 'bd*2 [sn cp] hh? bd:1' --quantum 4\n  khorus play pad.cutoff '300 <1200 2400> 600'\n  khorus play pad.cutoff 'range(sine, 200, 2000)' --per-cycle 16\n  khorus play bass 'e2 ~ b1 ~' --over 4    # crossfade over 4 bars\n  khorus hush pad.cutoff"
    )]
    Play {
        /// NODE (its notes) or NODE.PARAM (a curve on that parameter).
        target: String,
        /// Mini-notation, e.g. "a2 ~ [e2 g2]" (numbers for a curve), or with --per-cycle a
        /// signal expression, e.g. "range(sine, 200, 2000)".
        #[arg(allow_hyphen_values = true)]
        pattern: String,
        /// Cycles to align the change to (e.g. 4: the next 4-cycle bar).
        #[arg(long)]
        quantum: Option<String>,
        /// NODE.PARAM only: the pattern is a signal expression, sampled this many times a
        /// cycle (1..=1024).
        #[arg(long)]
        per_cycle: Option<u32>,
        /// Crossfade with the pattern it replaces over BARS bars (cycles): the old notes
        /// fade out as the new fade in (a curve on NODE.PARAM switches at once).
        #[arg(long, value_name = "BARS")]
        over: Option<u32>,
    },
    /// Set a node's parameter to a number or a kernel signal expression.
    #[command(
        after_help = "EXAMPLES:\n  khorus set pad.cutoff 1200\n  khorus set pad.gain 0.2 --over 8    # fade over 8 bars from the next one\n  khorus set pad.cutoff 'range(io, 200, 4000)'"
    )]
    Set {
        /// NODE.PARAM (gain, pan, mute, or a control of its definition).
        target: String,
        /// A number, or an expression such as "range(io, 200, 4000)".
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Move there over BARS bars (cycles), in a straight line from the next cycle
        /// boundary (an instrument's gain, pan or number control; others jump).
        #[arg(long, value_name = "BARS")]
        over: Option<u32>,
    },
    /// Route a node into an effect with a send level.
    Route {
        /// The source node.
        from: String,
        /// The effect.
        to: String,
        /// Send level 0..=1.
        #[arg(default_value_t = 1.0)]
        level: f32,
        /// Move an existing route's level there over BARS bars (cycles) from the next cycle
        /// boundary (a new route starts at once).
        #[arg(long, value_name = "BARS")]
        over: Option<u32>,
    },
    /// Remove a route.
    Unroute {
        /// The source node.
        from: String,
        /// The effect.
        to: String,
    },
    /// Add or remove a node.
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// Set the tempo.
    #[command(
        after_help = "EXAMPLES:\n  khorus tempo 96\n  khorus tempo 140 --over 8    # accelerate over 8 bars, linear in bars"
    )]
    Tempo {
        /// Beats per minute, 1..=999.
        bpm: f64,
        /// Beats per cycle, 1..=64.
        #[arg(long)]
        beats_per_cycle: Option<u32>,
        /// Ramp there over BARS bars (cycles) from the next cycle boundary, the tempo linear
        /// in bars and the beat grid continuous (the beats per cycle stay as they are).
        #[arg(long, value_name = "BARS")]
        over: Option<u32>,
    },
    /// Silence a node's pattern (NODE), a curve (NODE.PARAM), or everything (patterns and
    /// the score).
    Hush {
        /// NODE or NODE.PARAM; none: everything.
        node: Option<String>,
    },
    /// Play a kernel score: ambient, percussive, arp, drone, or none.
    Score {
        /// The score.
        name: String,
        /// Parameters as key=value: key, scale, bpm, density.
        params: Vec<String>,
    },
    /// Play one note on a node now (an audition).
    Note {
        /// The node.
        node: String,
        /// A note name (a3, c#4, eb2) or a MIDI note number (69 = a4), as in patterns.
        #[arg(value_parser = parse_note, allow_negative_numbers = true)]
        note: f32,
        /// Velocity 0..=1.
        #[arg(default_value_t = 0.8)]
        velocity: f32,
        /// Length, ms.
        #[arg(default_value_t = 500)]
        dur_ms: u32,
    },
    /// Write (or remove) a systemd user unit that runs `khorus up`.
    Install {
        /// A user unit (the only kind).
        #[arg(long, required = true)]
        user: bool,
        /// Remove it.
        #[arg(long)]
        uninstall: bool,
    },
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

#[derive(Debug, Subcommand)]
enum SessionAction {
    /// Replace the session with a JSON file (as `session --json` prints it).
    Load {
        /// The file.
        file: PathBuf,
        /// Move every number that differs (gains, pans, number controls, tempo) to the
        /// file's over BARS bars (cycles) from the next cycle boundary; the rest changes at
        /// once.
        #[arg(long, value_name = "BARS")]
        over: Option<u32>,
    },
    /// Back to the session khorus starts with (the ambient score through the built-in patch,
    /// no patterns): what was changed since is gone.
    Reset,
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// Add a node (or replace the node of that name).
    Add {
        /// Its name.
        name: String,
        /// A built-in: pad, lead, bass, chords, kick, click, hat, glitch, delay, reverb.
        #[arg(long, conflicts_with = "def")]
        builtin: Option<String>,
        /// A synth definition file (JSON).
        #[arg(long, value_name = "FILE")]
        def: Option<PathBuf>,
        /// Its role: melody, bass, chords, percussion, other.
        #[arg(long, default_value = "other", value_parser = parse_role)]
        role: Role,
    },
    /// Remove a node with its routes and pattern.
    Remove {
        /// Its name.
        name: String,
    },
}

/// `khorus note`'s note: a name as patterns write it, or a number, within MIDI's 0..=127.
fn parse_note(s: &str) -> Result<f32, String> {
    let note = match khorus_composer::notes::note_name(s) {
        Some(m) => m as f32,
        None => s
            .parse::<f32>()
            .map_err(|_| format!("{s:?} is neither a note name (a3, c#4) nor a number"))?,
    };
    if !(0.0..=127.0).contains(&note) {
        return Err(format!("{s} is MIDI note {note}, outside 0..=127"));
    }
    Ok(note)
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "melody" => Ok(Role::Melody),
        "bass" => Ok(Role::Bass),
        "chords" => Ok(Role::Chords),
        "percussion" => Ok(Role::Percussion),
        "other" => Ok(Role::Other),
        _ => Err("one of melody, bass, chords, percussion, other".into()),
    }
}

fn main() -> ExitCode {
    // Control starts the composer, synth and router from this binary, named by argv[0].
    if let Some(code) = khorus::up::supervise::run_as_stage() {
        return code;
    }
    // Usage errors exit with 2, --help and --version with 0 (clap's own convention, ours too).
    let cli = Cli::parse();
    // `khorus up` is a supervisor in the foreground: what it does (starts, restarts) is the
    // point, so it logs at info by default.
    let up = matches!(cli.command, Command::Up { .. });
    logging::init(cli.verbose + up as u8);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus: {e:#}");
            if let Some(c) = e.downcast_ref::<ClientError>() {
                ExitCode::from(c.exit_code())
            } else if e.downcast_ref::<inject::InjectError>().is_some()
                || e.downcast_ref::<settings::SettingsError>().is_some()
                || e.downcast_ref::<UsageError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A bad configuration or argument found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Sends one batch of changes and says so.
/// `change`, made over `over` bars if given.
fn over_bars(over: Option<u32>, change: Change) -> Vec<Change> {
    match over {
        Some(bars) => vec![Change::Over { bars }, change],
        None => vec![change],
    }
}

fn batch(config: &BusConfig, changes: Vec<Change>) -> Result<()> {
    match client::call(config, &ControlCommand::Batch(changes))? {
        ControlReply::Applied { version } => {
            println!("applied (session version {version})");
            Ok(())
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

fn print_session(s: &khorus::session::Session) {
    match &s.score {
        Some(sc) => println!(
            "score: {} {}",
            sc.name,
            sc.params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        None => println!("score: none"),
    }
    if let Some(t) = s.tempo {
        println!("tempo: {} bpm, {} beats a cycle", t.bpm, t.beats_per_cycle);
    }
    for (name, n) in &s.nodes {
        let what = n.builtin.clone().unwrap_or_else(|| "definition".into());
        let mut line = format!("node {name} (id {}, {what}, {:?})", n.id, n.role);
        if n.mute {
            line.push_str(" muted");
        }
        if let Some(p) = &n.pattern {
            line.push_str(&format!(" plays {}", khorus::session::brief(p)));
        }
        for (k, v) in &n.controls {
            line.push_str(&format!(
                " {k}={}",
                match v {
                    khorus::session::ControlValue::Number(x) => x.to_string(),
                    khorus::session::ControlValue::Expr(e) => format!("\"{e}\""),
                    khorus::session::ControlValue::Pattern(p) =>
                        format!("curve {}", khorus::session::brief(p)),
                }
            ));
        }
        println!("{line}");
    }
    for r in &s.routes {
        println!("route {} -> {} {}", r.from, r.to, r.level);
    }
    for r in &s.ramps {
        let start = r.start.as_deref().unwrap_or("the next cycle");
        println!(
            "ramp {} {} -> {} over {} bars from cycle {start}",
            r.what, r.from, r.to, r.bars
        );
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
        Command::Up {
            config: path,
            without,
        } => {
            let (mut control, _) = settings::load::<ControlConfig>(path.as_deref(), "control")?;
            control.without.extend(without);
            control.validate().map_err(UsageError)?;
            up::run(up::Options {
                bus: config,
                config: control,
                config_path: path,
            })
        }
        Command::Down => {
            client::down(&config)?;
            println!("down");
            Ok(())
        }
        Command::Status { json, watch } => {
            let mut control = client::Client::open(&config)?;
            loop {
                let reports = match control.call(&ControlCommand::Stages)? {
                    ControlReply::Stages(r) => r,
                    other => anyhow::bail!("unexpected answer {other:?}"),
                };
                let mut out = stdout.lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&reports)?)?;
                } else {
                    if watch && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                        write!(out, "\x1b[H\x1b[2J")?;
                    }
                    client::print_status(&mut out, &reports)?;
                }
                out.flush()?;
                if !watch {
                    break Ok(());
                }
                drop(out);
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Command::Session { json, action } => match action {
            Some(action) => {
                let (json, done, over) = match action {
                    SessionAction::Load { file, over } => (
                        std::fs::read_to_string(&file)
                            .with_context(|| format!("failed to read {}", file.display()))?,
                        "loaded",
                        over,
                    ),
                    SessionAction::Reset => (
                        serde_json::to_string(&khorus::session::Session::default_session())?,
                        "reset",
                        None,
                    ),
                };
                match client::call(&config, &ControlCommand::LoadSession { json, over })? {
                    ControlReply::Applied { version } => {
                        println!("{done} (session version {version})");
                        Ok(())
                    }
                    other => anyhow::bail!("unexpected answer {other:?}"),
                }
            }
            None => match client::call(&config, &ControlCommand::Session)? {
                ControlReply::Session { json: text } => {
                    if json {
                        print!("{text}");
                    } else {
                        let s: khorus::session::Session = serde_json::from_str(&text)?;
                        print_session(&s);
                    }
                    Ok(())
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            },
        },
        Command::Play {
            target,
            pattern,
            quantum,
            per_cycle,
            over,
        } => batch(
            &config,
            over_bars(over, client::play(&target, &pattern, quantum, per_cycle)?),
        ),
        Command::Set {
            target,
            value,
            over,
        } => batch(&config, over_bars(over, client::set(&target, &value)?)),
        Command::Route {
            from,
            to,
            level,
            over,
        } => batch(&config, over_bars(over, Change::Route { from, to, level })),
        Command::Unroute { from, to } => batch(&config, vec![Change::Unroute { from, to }]),
        Command::Node { action } => match action {
            NodeAction::Add {
                name,
                builtin,
                def,
                role,
            } => {
                if builtin.is_none() && def.is_none() {
                    return Err(UsageError("give --builtin NAME or --def FILE".into()).into());
                }
                let node = client::node_spec(builtin, def.as_deref(), role)?;
                batch(&config, vec![Change::AddNode { name, node }])
            }
            NodeAction::Remove { name } => batch(&config, vec![Change::RemoveNode { name }]),
        },
        Command::Tempo {
            bpm,
            beats_per_cycle,
            over,
        } => batch(
            &config,
            over_bars(
                over,
                Change::Tempo {
                    bpm,
                    beats_per_cycle,
                },
            ),
        ),
        Command::Hush { node } => batch(
            &config,
            vec![match node {
                Some(target) => client::hush(&target)?,
                None => Change::HushAll,
            }],
        ),
        Command::Score { name, params } => {
            let params = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| UsageError(format!("{p:?}: write key=value")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            batch(&config, vec![Change::Score { name, params }])
        }
        Command::Note {
            node,
            note,
            velocity,
            dur_ms,
        } => {
            client::call(
                &config,
                &ControlCommand::Note {
                    node,
                    note,
                    velocity,
                    dur_ms,
                },
            )?;
            Ok(())
        }
        Command::Install { user: _, uninstall } => {
            let path = install::run(uninstall)?;
            if uninstall {
                println!(
                    "removed {}; run: systemctl --user daemon-reload",
                    path.display()
                );
            } else {
                println!(
                    "wrote {}; run: systemctl --user daemon-reload && systemctl --user enable --now khorus",
                    path.display()
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_a_name_or_a_number_within_midi() {
        assert_eq!(parse_note("a3"), Ok(57.0));
        assert_eq!(parse_note("c#4"), Ok(61.0));
        assert_eq!(parse_note("eb2"), Ok(39.0));
        assert_eq!(parse_note("45"), Ok(45.0));
        assert_eq!(parse_note("60.5"), Ok(60.5));
        assert!(parse_note("128").unwrap_err().contains("outside 0..=127"));
        assert!(parse_note("-1").unwrap_err().contains("outside 0..=127"));
        assert!(
            parse_note("x3")
                .unwrap_err()
                .contains("neither a note name")
        );
        let cli = Cli::try_parse_from(["khorus", "note", "bass", "a3"]).expect("parsed");
        assert!(matches!(cli.command, Command::Note { note, .. } if note == 57.0));
    }
}
