//! A small real process for the bus tests and benchmarks: serves commands, publishes, or
//! echoes pings back over iceoryx2 or a Unix socket. It joins the bus named by
//! `KHORUS_BUS_PREFIX` / `KHORUS_BUS_ROOT`, like every khorus process.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use khorus_bus::wait;
use khorus_bus::{
    Bus, BusConfig, Counter, NoteEvent, SignalFrame, SignalId, StageKind, StageStatus, Topic, clock,
};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Signal,
    Note,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Sleep on the event service until a sample arrives.
    Event,
    /// Spin on receive (lowest latency, burns a core).
    Poll,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Answer `Common` commands on the tool command service until Shutdown.
    Serve,
    /// Publish a signal frame every `period_ms` until killed.
    Publish {
        #[arg(long, default_value_t = 10)]
        period_ms: u64,
    },
    /// Echo pings from the bus at (`--ping-prefix`, `--ping-root`) back on this process's bus,
    /// restamped with the send time.
    Echo {
        #[arg(long)]
        kind: Kind,
        #[arg(long)]
        mode: Mode,
        #[arg(long)]
        ping_prefix: String,
        #[arg(long)]
        ping_root: PathBuf,
    },
    /// Print "ready", wait for a line on stdin, then make two threads pass a byte back and
    /// forth `round_trips` times (context switches of this process only) and print "done".
    SwitchLoad {
        #[arg(long)]
        round_trips: usize,
    },
    /// Accept TCP connections on ADDR and discard what they send (a retransmission target).
    TcpSink { addr: String },
    /// Echo fixed-size messages on a Unix socket, restamping the first 8 bytes (t_ns).
    UdsEcho {
        path: PathBuf,
        #[arg(long)]
        size: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("khorus-bus-peer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = BusConfig::from_env();
    match cli.command {
        Cmd::Serve => serve(&config),
        Cmd::Publish { period_ms } => publish(&config, Duration::from_millis(period_ms)),
        Cmd::Echo {
            kind,
            mode,
            ping_prefix,
            ping_root,
        } => {
            let ping = BusConfig {
                prefix: ping_prefix,
                root: ping_root,
            };
            match kind {
                Kind::Signal => echo::<SignalFrame>(&ping, &config, mode),
                Kind::Note => echo::<NoteEvent>(&ping, &config, mode),
            }
        }
        Cmd::UdsEcho { path, size } => uds_echo(&path, size),
        Cmd::TcpSink { addr } => tcp_sink(&addr),
        Cmd::SwitchLoad { round_trips } => switch_load(round_trips),
    }
}

fn serve(config: &BusConfig) -> Result<()> {
    let bus = Bus::open("peer-serve", config)?;
    let mut server = bus.command_server::<khorus_bus::commands::Tool>()?;
    println!("ready");
    let mut shutdown = false;
    wait::run(&[((), server.waker())], None, None, |_| {
        let (ok, rejected) = (server.ok(), server.rejected());
        let result = server.serve(|cmd| {
            let status = || {
                let mut s = StageStatus::new(StageKind::Tool);
                s.set(Counter::CommandsOk, ok)
                    .set(Counter::CommandsRejected, rejected);
                s
            };
            Ok(cmd.answer(status, &mut shutdown))
        });
        if let Err(e) = result {
            eprintln!("serve: {e}");
        }
        if shutdown {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(())
}

fn publish(config: &BusConfig, period: Duration) -> Result<()> {
    let bus = Bus::open("peer-publish", config)?;
    let mut publisher = bus.publisher::<SignalFrame>()?;
    let mut frame = SignalFrame::default();
    let mut announced = false;
    let mut err = None;
    wait::run::<()>(&[], Some(wait::Period::every(period)), None, |_| {
        frame.t_ns = clock::now_ns();
        frame.set(SignalId::CSW, frame.seq as f32, 0.5);
        if let Err(e) = publisher.publish(frame) {
            err = Some(e);
            return ControlFlow::Break(());
        }
        if !announced {
            println!("ready");
            announced = true;
        }
        ControlFlow::Continue(())
    })?;
    match err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn echo<T: Topic>(ping: &BusConfig, pong: &BusConfig, mode: Mode) -> Result<()> {
    let ping_bus = Bus::open("peer-echo-in", ping)?;
    let pong_bus = Bus::open("peer-echo-out", pong)?;
    let mut sub = ping_bus.subscriber::<T>()?;
    let mut publisher = pong_bus.publisher::<T>()?;
    println!("ready");
    loop {
        let sample = match mode {
            Mode::Event => sub.receive_until(Instant::now() + Duration::from_secs(3600))?,
            Mode::Poll => sub.receive()?,
        };
        let Some(mut v) = sample else { continue };
        if v.t_ns() == u64::MAX {
            return Ok(()); // the bench says goodbye
        }
        v.set_t_ns(clock::now_ns());
        publisher.publish(v)?;
    }
}

fn uds_echo(path: &PathBuf, size: usize) -> Result<()> {
    if size < 8 {
        bail!("size must hold the 8-byte timestamp");
    }
    let mut stream =
        UnixStream::connect(path).with_context(|| format!("connect {}", path.display()))?;
    let mut buf = vec![0u8; size];
    loop {
        if stream.read_exact(&mut buf).is_err() {
            return Ok(()); // the bench closed the socket
        }
        buf[..8].copy_from_slice(&clock::now_ns().to_le_bytes());
        stream.write_all(&buf)?;
    }
}

fn tcp_sink(addr: &str) -> Result<()> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    println!("ready");
    for stream in listener.incoming() {
        let mut stream = stream?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    Ok(())
}

fn switch_load(round_trips: usize) -> Result<()> {
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let (mut a, mut b) = UnixStream::pair()?;
    let peer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut byte = [0u8; 1];
        for _ in 0..round_trips {
            b.read_exact(&mut byte)?;
            b.write_all(&byte)?;
        }
        Ok(())
    });
    let mut byte = [1u8; 1];
    for _ in 0..round_trips {
        a.write_all(&byte)?;
        a.read_exact(&mut byte)?;
    }
    peer.join().expect("peer thread")?;
    println!("done");
    Ok(())
}
