//! `khorus tap`: live bus traffic as readable lines or JSON lines.

use std::io::Write;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use khorus_bus::signals::SIGNALS;
use khorus_bus::wait::{self, Exit};
use khorus_bus::{
    Bus, BusConfig, Counter, CurvePoint, NoteEvent, SignalFrame, SignalSource, StageKind,
    StageStatus, Topic, TransportState, clock,
};

use crate::{Stream, write_line};

/// What to tap and how to print it.
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// The service.
    pub stream: Stream,
    /// JSON lines instead of text.
    pub json: bool,
    /// Stop after this many samples.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// What a tap saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapSummary {
    /// Samples printed.
    pub received: u64,
    /// Samples missing from publishers' sequences.
    pub missed: u64,
}

/// Taps the bus until the count or duration is reached, SIGINT/SIGTERM, or stdout closes.
pub fn run(config: &BusConfig, options: &TapOptions, out: &mut impl Write) -> Result<TapSummary> {
    let bus = Bus::open("tap", config).context("failed to join the bus")?;
    match options.stream {
        Stream::Signals => tap::<SignalFrame>(&bus, options, out, format_signals),
        Stream::Notes => tap::<NoteEvent>(&bus, options, out, format_note),
        Stream::Curves => tap::<CurvePoint>(&bus, options, out, format_curve),
        Stream::Status => tap::<StageStatus>(&bus, options, out, format_status),
        Stream::Transport => tap::<TransportState>(&bus, options, out, format_transport),
    }
}

fn tap<T: Topic + serde::Serialize>(
    bus: &Bus,
    options: &TapOptions,
    out: &mut impl Write,
    format: fn(&T) -> String,
) -> Result<TapSummary> {
    let mut sub = bus
        .subscriber::<T>()
        .with_context(|| format!("failed to subscribe to {}", T::SERVICE))?;
    // Tests wait for this line before publishing: from here on nothing is missed.
    tracing::info!("listening on {}", T::SERVICE);
    eprintln!("tap: listening on {}", T::SERVICE);
    let deadline = options.duration.map(|d| Instant::now() + d);
    let mut printed = 0u64;
    let mut failure = None;
    let waker = sub
        .waker()
        .with_context(|| format!("failed to listen on {}", T::SERVICE))?;
    let exit = wait::run(&[((), waker)], None, deadline, |_| {
        loop {
            match sub.receive() {
                Ok(Some(v)) => {
                    let line = if options.json {
                        match serde_json::to_string(&v) {
                            Ok(l) => l,
                            Err(e) => {
                                failure = Some(anyhow::anyhow!("failed to encode JSON: {e}"));
                                return ControlFlow::Break(());
                            }
                        }
                    } else {
                        format(&v)
                    };
                    match write_line(out, &line) {
                        Ok(true) => {}
                        Ok(false) => return ControlFlow::Break(()),
                        Err(e) => {
                            failure = Some(anyhow::Error::new(e).context("failed to write"));
                            return ControlFlow::Break(());
                        }
                    }
                    printed += 1;
                    if options.count.is_some_and(|n| printed >= n) {
                        return ControlFlow::Break(());
                    }
                }
                Ok(None) => return ControlFlow::Continue(()),
                Err(e) => {
                    failure = Some(anyhow::Error::new(e));
                    return ControlFlow::Break(());
                }
            }
        }
    })
    .context("failed to wait on the bus")?;
    if let Some(e) = failure {
        return Err(e);
    }
    if exit == Exit::Terminated {
        tracing::info!("tap interrupted");
    }
    Ok(TapSummary {
        received: printed,
        missed: sub.missed(),
    })
}

fn secs(t_ns: u64) -> String {
    format!("{:.6}", clock::ns_to_s(t_ns))
}

fn format_signals(f: &SignalFrame) -> String {
    let mut line = format!(
        "#{} t={} dt={:.1}ms src={:?}",
        f.seq,
        secs(f.t_ns),
        f.dt_ns as f64 / 1e6,
        f.source()
    );
    for (i, s) in SIGNALS.iter().enumerate() {
        if f.available & (1 << i) != 0 {
            line.push_str(&format!(
                " {}={:.3}({:.4} {})",
                s.name, f.level[i], f.rate[i], s.unit
            ));
        }
    }
    line
}

fn format_note(n: &NoteEvent) -> String {
    n.line(clock::now_ns())
}

fn format_curve(c: &CurvePoint) -> String {
    format!(
        "#{} t={} node={} param={} -> {:.4} {:?}",
        c.seq,
        secs(c.t_ns),
        c.node,
        c.param,
        c.value,
        c.shape()
    )
}

fn format_status(s: &StageStatus) -> String {
    let mut line = format!("#{} {} pid={}", s.seq, stage_label(s.stage()), s.pid);
    for (c, v) in s.iter() {
        match c {
            // A gauge holding an enum byte: print what it means, not the byte.
            Counter::Source => line.push_str(&format!(
                " source={}",
                SignalSource::from_u8(v.min(u8::MAX as u64) as u8).name()
            )),
            _ => line.push_str(&format!(" {}={v}", c.name())),
        }
    }
    line
}

fn format_transport(t: &TransportState) -> String {
    let ramp = match t.ramp() {
        Some((_, cps)) => format!(
            ", ramping to {:.2} bpm at cycle {}/{}",
            cps * 60.0 * t.beats_per_cycle as f64,
            t.ramp_end_num,
            t.ramp_end_den
        ),
        None => String::new(),
    };
    format!(
        "#{} {} bpm={:.2} beats/cycle={} cycle={:.4} hushes={} (cps {}/{}, anchor cycle {}/{} at t={}{ramp})",
        t.seq,
        if t.running == 1 { "running" } else { "stopped" },
        t.bpm(),
        t.beats_per_cycle,
        t.cycle_at(clock::now_ns()),
        t.hushes,
        t.cps_num,
        t.cps_den,
        t.anchor_cycle_num,
        t.anchor_cycle_den,
        secs(t.anchor_ns)
    )
}

fn stage_label(stage: StageKind) -> &'static str {
    stage.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_name_the_source() {
        let mut s = StageStatus::new(StageKind::Collector);
        s.set(Counter::Source, 1).set(Counter::Published, 7);
        let line = format_status(&s);
        assert_eq!(
            line,
            format!("#0 collector pid={} published=7 source=procfs", s.pid)
        );
        s.set(Counter::Source, 0);
        assert!(
            format_status(&s).ends_with(" source=bpf"),
            "{}",
            format_status(&s)
        );
    }

    #[test]
    fn note_names_follow_midi_octaves() {
        use khorus_bus::services::notes::note_name;
        assert_eq!(note_name(69.0), "A4");
        assert_eq!(note_name(60.0), "C4");
        assert_eq!(note_name(61.0), "C#4");
        assert_eq!(note_name(0.0), "C-1");
    }
}
