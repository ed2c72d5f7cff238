//! `khorus inject`: publishes JSON lines (as printed by `khorus tap --json`) onto the bus.
//!
//! The whole input is parsed before anything is published, so a bad line changes nothing and
//! its error names the line and column.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context, Result};
use khorus_bus::{
    Bus, BusConfig, CurvePoint, NoteEvent, SignalFrame, StageStatus, Topic, TransportState, clock,
};
use serde::de::DeserializeOwned;

use crate::Stream;

/// How to stamp what is injected.
#[derive(Debug, Clone)]
pub struct InjectOptions {
    /// The service.
    pub stream: Stream,
    /// Shift all timestamps so the first one lands `lead` from now (replays a captured tap).
    pub restamp: bool,
    /// Lead time added to "now" for samples with `t_ns` 0 or when restamping.
    pub lead: Duration,
    /// How long to stay on the bus after publishing, so subscribers can connect and read.
    pub linger: Duration,
}

/// A parse error, with its place.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct InjectError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses every JSON line of `input`; blank lines and lines starting with `#` are skipped.
pub fn parse_lines<T: DeserializeOwned>(input: impl BufRead) -> Result<Vec<T>, InjectError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| InjectError {
            line: i + 1,
            column: 1,
            message: format!("cannot read: {e}"),
        })?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let value = serde_json::from_str(trimmed).map_err(|e| InjectError {
            line: i + 1,
            column: e.column().max(1) + (line.len() - line.trim_start().len()),
            message: e.to_string(),
        })?;
        out.push(value);
    }
    Ok(out)
}

/// Reads, validates and publishes; returns how many samples were published.
pub fn run(config: &BusConfig, options: &InjectOptions, input: impl BufRead) -> Result<usize> {
    match options.stream {
        Stream::Signals => inject::<SignalFrame>(config, options, input),
        Stream::Notes => inject::<NoteEvent>(config, options, input),
        Stream::Curves => inject::<CurvePoint>(config, options, input),
        Stream::Status => inject::<StageStatus>(config, options, input),
        Stream::Transport => inject::<TransportState>(config, options, input),
    }
}

fn inject<T: Topic + DeserializeOwned>(
    config: &BusConfig,
    options: &InjectOptions,
    input: impl BufRead,
) -> Result<usize> {
    let mut values: Vec<T> = parse_lines(input).context("invalid input, nothing was published")?;
    let now = clock::now_ns() + options.lead.as_nanos() as u64;
    let first = values.first().map(Topic::t_ns).unwrap_or(0);
    for v in &mut values {
        let t = v.t_ns();
        let stamped = if options.restamp {
            now + t.saturating_sub(first)
        } else if t == 0 {
            now
        } else {
            t
        };
        v.set_t_ns(stamped);
    }
    let latest = latest_time(&values);
    let bus = Bus::open("inject", config).context("failed to join the bus")?;
    let mut publisher = bus
        .publisher::<T>()
        .with_context(|| format!("failed to publish on {}", T::SERVICE))?;
    let n = publisher
        .publish_all(values)
        .with_context(|| format!("failed to publish on {}", T::SERVICE))?;
    // A subscriber connects to a publisher when it next reads; samples of a publisher that
    // already left are gone. Stay until every sample's time has come, and at least `linger`.
    let until = (clock::now_ns() + options.linger.as_nanos() as u64).max(latest);
    std::thread::sleep(Duration::from_nanos(until.saturating_sub(clock::now_ns())));
    if publisher.dropped() > 0 {
        tracing::warn!(
            "{} deliveries dropped: a subscriber's buffer was full",
            publisher.dropped()
        );
    }
    Ok(n)
}

/// The latest timestamp, capped at 10 s from now so a far-future stamp cannot hang the tool.
fn latest_time<T: Topic>(values: &[T]) -> u64 {
    let cap = clock::now_ns() + 10_000_000_000;
    values.iter().map(Topic::t_ns).max().unwrap_or(0).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_line_names_line_and_column() {
        let input =
            "{\"dur_ns\":1,\"note\":60,\"velocity\":0.5,\"role\":\"bass\"}\n\n  {\"note\": }\n";
        let err = parse_lines::<NoteEvent>(input.as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.column >= 10, "{err}");
    }

    #[test]
    fn unknown_signal_is_refused_by_name() {
        let input = r#"{"signals":{"exec":{"rate":1,"level":0.5},"bogus":{"rate":1,"level":1}}}"#;
        let err = parse_lines::<SignalFrame>(input.as_bytes()).unwrap_err();
        assert!(err.message.contains("bogus"), "{err}");
    }

    #[test]
    fn out_of_range_note_is_refused() {
        let input = r#"{"dur_ns":1,"note":300,"velocity":0.5,"role":"bass"}"#;
        let err = parse_lines::<NoteEvent>(input.as_bytes()).unwrap_err();
        assert!(err.message.contains("300"), "{err}");
    }

    #[test]
    fn tap_json_round_trips_through_inject() {
        let mut f = SignalFrame::default();
        f.set(khorus_bus::SignalId::CSW, 1234.5, 0.25);
        f.seq = 7;
        let line = serde_json::to_string(&f).unwrap();
        let back = parse_lines::<SignalFrame>(line.as_bytes()).unwrap();
        assert_eq!(back, vec![f]);
    }
}
