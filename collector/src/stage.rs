//! The collector stage: opens a source, gives up privileges, and on every tick turns a sample
//! into a [`SignalFrame`] on the bus (and optionally into a trace, a table or JSON lines).

use std::cell::Cell;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use khorus_bus::wait::{self, Period, Wake};
use khorus_bus::{
    BusConfig, Counter, Publisher, SignalFrame, StageKind, StageRunner, StageStatus, clock,
};

use crate::config::{CollectorConfig, SourceChoice};
use crate::normalise::Normaliser;
use crate::privileges;
use crate::sample::SourceKind;
use crate::sources::bpf::BpfCounters;
use crate::sources::procfs::Procfs;
use crate::sources::replay::Replay;
use crate::sources::synthetic::Synthetic;
use crate::sources::{Differencer, Source, Tick};
use crate::trace::{TraceHeader, TraceWriter};

/// What to print on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Nothing (the bus only).
    Quiet,
    /// A table of rates and levels, printed as lines at 4 Hz (stdout is not a terminal).
    Print,
    /// The same table redrawn in place at 4 Hz (stdout is a terminal).
    Live,
    /// Every frame as a JSON line (the format of `khorus tap signals --json`).
    Json,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `[collector]` settings.
    pub config: CollectorConfig,
    /// Replay this trace instead of reading a live source.
    pub replay: Option<PathBuf>,
    /// Replay as fast as possible instead of in real time.
    pub fast: bool,
    /// Record raw samples to this trace.
    pub record: Option<PathBuf>,
    /// Stdout output.
    pub output: Output,
    /// Stop after this many frames (`--once` is 1).
    pub frames: Option<u64>,
}

/// Counters of a run, as in the status heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Ticks taken.
    pub ticks: u64,
    /// Ticks that started more than half a period late.
    pub late_ticks: u64,
    /// Counter reads that failed.
    pub read_errors: u64,
    /// Frames published.
    pub published: u64,
    /// Deliveries dropped by full subscribers.
    pub dropped: u64,
    /// Samples recorded.
    pub recorded: u64,
    /// The tick now, ms (a gauge): fast while someone waits for every frame, idle otherwise.
    pub tick_ms: u64,
}

/// Opens the configured source; with `auto`, falls back to procfs and says why.
pub fn open_source(options: &Options) -> Result<Box<dyn Source>> {
    let tick_ns = options.config.tick_ms * 1_000_000;
    if let Some(path) = &options.replay {
        let replay = Replay::open(path).context("failed to open the trace to replay")?;
        return Ok(Box::new(replay));
    }
    match options.config.source {
        SourceChoice::Procfs => Ok(Box::new(Differencer::new(Procfs::default()))),
        SourceChoice::Synthetic => Ok(Box::new(Synthetic::new(options.config.seed, tick_ns))),
        SourceChoice::Bpf | SourceChoice::Auto => match BpfCounters::load(&options.config.filter) {
            Ok(bpf) => {
                tracing::info!("BPF programs attached: {}", bpf.attached().join(", "));
                Ok(Box::new(BpfSource(Differencer::new(bpf))))
            }
            Err(e) => {
                tracing::debug!("BPF load failed: {e:?}");
                let exe = std::env::current_exe()
                    .unwrap_or_else(|_| PathBuf::from("$(command -v khorus-collector)"));
                let fallback = options.config.source == SourceChoice::Auto;
                let text = privileges::bpf_unavailable(
                    &e.to_string(),
                    &privileges::diagnose_bpf(),
                    &exe,
                    fallback,
                );
                if !fallback {
                    bail!("{text}");
                }
                // Once, for the user; the details are in the debug log.
                eprintln!("khorus-collector: {text}");
                Ok(Box::new(Differencer::new(Procfs::default())))
            }
        },
    }
}

/// The BPF differencer, reporting its attached programs.
struct BpfSource(Differencer<BpfCounters>);

impl Source for BpfSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Bpf
    }
    fn tick(&mut self, now_ns: u64, e: &mut u64) -> Result<Tick, crate::sources::SourceError> {
        self.0.tick(now_ns, e)
    }
    fn programs_attached(&self) -> u64 {
        self.0.counters().attached().len() as u64
    }
}

/// The slowest the idle tick follows an idle composer, ms (its tick while it has nothing to
/// make).
const SLOWEST_IDLE_MS: u64 = 1000;

/// A composer status older than this is not followed (it is gone): ms.
const PACE_STALE_MS: u64 = 5000;

/// The idle tick follows the pace of the reader that takes frames at its own pace — the
/// composer, which reads the latest frame once per tick (its status' `tick_ms`: 100 ms
/// playing, 1 s with nothing to make): frames made faster than that are never read. Never
/// faster than the configured idle tick, never slower than [`SLOWEST_IDLE_MS`].
#[derive(Debug, Default)]
struct ReaderPace {
    /// The composer's tick and when its status said so, ns.
    composer: Option<(u64, u64)>,
}

impl ReaderPace {
    fn observe(&mut self, s: &StageStatus) {
        if s.stage() == StageKind::Composer
            && let Some(ms) = s.get(Counter::TickMs).filter(|&ms| ms > 0)
        {
            self.composer = Some((ms, s.t_ns));
        }
    }

    /// The idle tick at `now_ns`, ms.
    fn idle_ms(&self, configured: u64, now_ns: u64) -> u64 {
        match self.composer {
            Some((ms, at)) if now_ns.saturating_sub(at) < PACE_STALE_MS * 1_000_000 => {
                ms.clamp(configured, SLOWEST_IDLE_MS.max(configured))
            }
            _ => configured,
        }
    }
}

/// Runs the stage until SIGINT/SIGTERM, a Shutdown command, the end of a replay, or the frame
/// limit.
pub fn run(bus_config: &BusConfig, options: &Options, out: &mut impl Write) -> Result<Summary> {
    options.config.validate()?;
    let source = open_source(options)?;
    // Everything privileged is done: BPF is attached and its maps are open.
    privileges::drop_all().context("failed to drop privileges")?;

    let as_fast_as_it_reads = options.replay.is_some() && options.fast;
    let fast = Period::every(Duration::from_millis(options.config.tick_ms));
    // A replay follows its trace's clock, the synthetic source's time is its count of ticks,
    // a recording keeps every tick, and a printing collector has a reader on stdout: only a
    // quiet collector of live counters slows down when nobody waits.
    let live = matches!(source.kind(), SourceKind::Bpf | SourceKind::Procfs);
    let adapts = live && options.record.is_none() && options.output == Output::Quiet;
    let mut stage = StageRunner::<khorus_bus::commands::Collector>::open(bus_config)
        .context("failed to join the bus")?;
    let frames = stage.bus().publisher::<SignalFrame>()?;
    // Status reports, read at the tick (never a reason to wake): the composer's pace.
    let mut statuses = stage.bus().subscriber::<StageStatus>()?;
    let mut pace = ReaderPace::default();
    let recorder = match &options.record {
        Some(path) => Some(
            TraceWriter::create(
                path,
                &TraceHeader::new(options.config.tick_ms * 1_000_000, source.kind()),
            )
            .with_context(|| format!("failed to start recording {}", path.display()))?,
        ),
        None => None,
    };
    let mut ticker = Ticker {
        source,
        recorder,
        normaliser: Normaliser::new(options.config.tuning()),
        frames,
        summary: Summary::default(),
        table: crate::table::Printer::new(options.output == Output::Live),
        options,
    };
    stage.announce_ready();
    if as_fast_as_it_reads {
        // No clock to wait for.
        while ticker.step(out, &mut stage)?.is_continue() {}
    } else {
        // One wait set for the whole run: commands wake it between ticks. (Building a wait
        // set per tick cost syscalls 50 times a second.) Ticks start fast; after each frame,
        // the readers it woke say which tick comes next — one that starts to wait is served
        // at the fast tick from the next idle tick on.
        let period = Cell::new(Some(fast));
        ticker.summary.tick_ms = fast.duration().as_millis() as u64;
        let mut shutdown = false;
        let mut failure = None;
        let mut last = Instant::now();
        let commands = stage.server().waker();
        wait::run_changing(&[((), commands)], &period, None, |wake| match wake {
            Wake::Ready(()) => {
                let report = heartbeat(&ticker.summary, ticker.source.as_ref(), stage.commands());
                if let Err(e) = stage
                    .server()
                    .serve(|cmd| Ok(cmd.answer(|| report, &mut shutdown)))
                {
                    tracing::warn!("command service: {e}");
                }
                if shutdown {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            Wake::Tick => {
                let now = Instant::now();
                let every = period.get().map_or(Duration::ZERO, |p| p.duration());
                if now.duration_since(last) > every + every / 2 {
                    ticker.summary.late_ticks += 1;
                }
                last = now;
                let flow = match ticker.step(out, &mut stage) {
                    Ok(flow) => flow,
                    Err(e) => {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                };
                if adapts && let Err(e) = statuses.drain(|s| pace.observe(&s)) {
                    failure = Some(e.into());
                    return ControlFlow::Break(());
                }
                let next = match (adapts, ticker.frames.listeners()) {
                    (false, _) => fast,
                    (true, 0) => {
                        let ms = pace.idle_ms(options.config.idle_tick_ms(), clock::now_ns());
                        Period::every(Duration::from_millis(ms))
                    }
                    (true, _) => fast,
                };
                if ticker.frames.published() > 0 && period.get() != Some(next) {
                    tracing::debug!("ticking every {:?}", next.duration());
                    period.set(Some(next));
                    ticker.summary.tick_ms = next.duration().as_millis() as u64;
                }
                flow
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    let Ticker {
        recorder,
        summary,
        source,
        ..
    } = ticker;
    if let Some(r) = recorder {
        let n = r.finish().context("failed to finish the trace")?;
        tracing::info!("recorded {n} samples");
    }
    let commands = stage.commands();
    stage.heartbeat(true, || heartbeat(&summary, source.as_ref(), commands))?;
    Ok(summary)
}

/// What one tick needs: the source, the normaliser, the ports, and what to print.
struct Ticker<'a> {
    source: Box<dyn Source>,
    recorder: Option<TraceWriter>,
    normaliser: Normaliser,
    frames: Publisher<SignalFrame>,
    summary: Summary,
    table: crate::table::Printer,
    options: &'a Options,
}

impl Ticker<'_> {
    /// Reads the source, publishes a frame (and once a second the heartbeat); `Break` when the
    /// run is over (end of a replay, the frame limit, stdout closed).
    fn step(
        &mut self,
        out: &mut impl Write,
        stage: &mut StageRunner<khorus_bus::commands::Collector>,
    ) -> Result<ControlFlow<()>> {
        let options = self.options;
        let summary = &mut self.summary;
        summary.ticks += 1;
        let sample = match self
            .source
            .tick(clock::now_ns(), &mut summary.read_errors)?
        {
            Tick::Sample(s) => s,
            Tick::Primed => return Ok(ControlFlow::Continue(())),
            Tick::End => return Ok(ControlFlow::Break(())),
        };
        if let Some(r) = self.recorder.as_mut() {
            r.write(&sample).context("failed to record")?;
            summary.recorded += 1;
        }
        let mut frame = self.normaliser.frame(&sample);
        frame.seq = self.frames.publish(frame)?;
        summary.published = self.frames.published();
        summary.dropped = self.frames.dropped();
        match options.output {
            Output::Quiet => {}
            Output::Json => {
                if !write_out(out, &serde_json::to_string(&frame)?)? {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Output::Print | Output::Live => {
                let every_frame = options.frames.is_some();
                if let Some(text) = self.table.frame(&frame, Instant::now(), every_frame)
                    && !write_out(out, &text)?
                {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        let commands = stage.commands();
        stage.heartbeat(false, || heartbeat(summary, self.source.as_ref(), commands))?;
        if options.frames.is_some_and(|n| summary.published >= n) {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }
}

fn heartbeat(s: &Summary, source: &dyn Source, (ok, rejected): (u64, u64)) -> StageStatus {
    let mut st = StageStatus::new(StageKind::Collector);
    st.set(Counter::Ticks, s.ticks)
        .set(Counter::LateTicks, s.late_ticks)
        .set(Counter::TickMs, s.tick_ms)
        .set(Counter::ReadErrors, s.read_errors)
        .set(Counter::Published, s.published)
        .set(Counter::Dropped, s.dropped)
        .set(Counter::ProgramsAttached, source.programs_attached())
        .set(
            Counter::Source,
            khorus_bus::SignalSource::from(source.kind()) as u64,
        )
        .set(Counter::CommandsOk, ok)
        .set(Counter::CommandsRejected, rejected);
    st
}

/// Writes a line; `Ok(false)` when stdout is closed (`| head`).
fn write_out(out: &mut impl Write, text: &str) -> Result<bool> {
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stage: StageKind, tick_ms: u64, t_ns: u64) -> StageStatus {
        let mut s = StageStatus::new(stage);
        s.set(Counter::TickMs, tick_ms);
        s.t_ns = t_ns;
        s
    }

    #[test]
    fn the_idle_tick_follows_the_composers_pace_within_bounds() {
        let s = 1_000_000_000;
        let mut pace = ReaderPace::default();
        // No composer heard of: the configured idle tick.
        assert_eq!(pace.idle_ms(100, 10 * s), 100);
        // A composer with nothing to make reads once a second.
        pace.observe(&report(StageKind::Composer, 1000, 10 * s));
        assert_eq!(pace.idle_ms(100, 10 * s), 1000);
        // Other stages' ticks are not a reader's pace.
        pace.observe(&report(StageKind::Synth, 42, 11 * s));
        assert_eq!(pace.idle_ms(100, 11 * s), 1000);
        // Playing again: its tick, but never faster than configured nor slower than a second.
        pace.observe(&report(StageKind::Composer, 100, 12 * s));
        assert_eq!(pace.idle_ms(100, 12 * s), 100);
        assert_eq!(pace.idle_ms(200, 12 * s), 200);
        pace.observe(&report(StageKind::Composer, 5000, 13 * s));
        assert_eq!(pace.idle_ms(100, 13 * s), SLOWEST_IDLE_MS);
        // A configured idle tick slower than that stays.
        assert_eq!(pace.idle_ms(2000, 13 * s), 2000);
        // A report without a tick (0) changes nothing.
        pace.observe(&report(StageKind::Composer, 0, 14 * s));
        assert_eq!(pace.idle_ms(100, 14 * s), SLOWEST_IDLE_MS);
        // A composer silent for longer than a status period or so is gone: not followed.
        assert_eq!(pace.idle_ms(100, 13 * s + PACE_STALE_MS * 1_000_000), 100);
    }
}
