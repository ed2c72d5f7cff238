//! The one way a stage process joins the bus: its node (named after the stage), its command
//! service (typed by [`Commands`]), its heartbeat on `khorus/status` (at most once a second),
//! and the `<stage>: ready` line that supervisors and tests wait for. Each stage then sleeps
//! in [`wait::run`](crate::wait::run) with typed wake-ups; control is run the same way.

use std::time::{Duration, Instant};

use crate::commands::Commands;
use crate::{Bus, BusConfig, BusError, CommandServer, Publisher, StageStatus};

/// How often a stage's status is published.
pub const STATUS_PERIOD: Duration = Duration::from_secs(1);

/// A stage on the bus.
#[derive(Debug)]
pub struct StageRunner<S: Commands> {
    server: CommandServer<S::Request, S::Reply>,
    status: Publisher<StageStatus>,
    last_status: Option<Instant>,
    // Dropped last: ports before the node.
    bus: Bus,
}

impl<S: Commands> StageRunner<S> {
    /// Joins the bus as `S`'s stage and serves its commands.
    pub fn open(config: &BusConfig) -> Result<Self, BusError> {
        let bus = Bus::open(S::STAGE.name(), config)?;
        let server = bus.command_server::<S>()?;
        let status = bus.publisher::<StageStatus>()?;
        Ok(Self {
            server,
            status,
            // The first report comes a period after joining, with a period's counters in it.
            last_status: Some(Instant::now()),
            bus,
        })
    }

    /// The bus, to open the stage's other ports.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The command service.
    pub fn server(&mut self) -> &mut CommandServer<S::Request, S::Reply> {
        &mut self.server
    }

    /// Commands answered and refused so far, for the status report.
    pub fn commands(&self) -> (u64, u64) {
        (self.server.ok(), self.server.rejected())
    }

    /// Says the stage is up: from here on its commands are answered. Also returns the stack
    /// that setting up took and the running stage will not (see [`crate::memory::release_unused_stack`]).
    pub fn announce_ready(&self) {
        crate::memory::release_unused_stack();
        eprintln!("{}: ready", S::STAGE.name());
    }

    /// Publishes `report()` when a status period has passed since the last one (`force`:
    /// now). Returns whether it published.
    pub fn heartbeat(
        &mut self,
        force: bool,
        report: impl FnOnce() -> StageStatus,
    ) -> Result<bool, BusError> {
        let due = self
            .last_status
            .is_none_or(|t| t.elapsed() >= STATUS_PERIOD);
        if !(due || force) {
            return Ok(false);
        }
        self.last_status = Some(Instant::now());
        self.status.publish(report())?;
        Ok(true)
    }
}
