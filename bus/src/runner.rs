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
    /// that setting up took and the running stage will not (see [`release_unused_stack`]).
    pub fn announce_ready(&self) {
        release_unused_stack();
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

/// Gives back the pages of this thread's stack below the current frame. Joining the bus takes
/// ~200 KB of stack once (iceoryx2 reads every node's details, each with its whole config, into
/// frames on the stack); a stage then runs its loop from here in a few KB, and without this
/// the pages it will never use again stay resident all day. Memory below the stack pointer is
/// free by definition: a later call that reaches it finds zeroed pages, as on a fresh stack.
fn release_unused_stack() {
    use nix::sys::mman::{MmapAdvise, madvise};
    // Left alone below this frame, for the calls the stage makes next.
    const MARGIN: usize = 32 * 1024;
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let Some(low) = stack_mapping_start(sp) else {
        return;
    };
    let page = 4096;
    let end = (sp.saturating_sub(MARGIN)) & !(page - 1);
    if end <= low {
        return;
    }
    let Some(start) = std::ptr::NonNull::new(low as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: [low, end) lies in this thread's stack mapping, below the live frames (which
    // are above `sp`): no reference points into it. MADV_DONTNEED on private anonymous memory
    // only drops pages, which read back as zeros when touched again.
    if let Err(e) = unsafe { madvise(start, end - low, MmapAdvise::MADV_DONTNEED) } {
        tracing::debug!("could not release the unused stack: {e}");
    }
}

/// The start of the mapping that holds `addr` (this thread's stack), from /proc/self/maps.
fn stack_mapping_start(addr: usize) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        (lo <= addr && addr < hi).then_some(lo)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident KB of the mapping that holds `addr`, from /proc/self/smaps.
    fn resident_kb_around(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = lo <= addr && addr < hi;
            } else if inside && let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches(" kB").trim().parse().unwrap();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[inline(never)]
    fn use_stack(kb: usize) -> u8 {
        let mut buf = [0u8; 64 * 1024];
        std::hint::black_box(&mut buf).fill(1);
        let below = if kb > 64 { use_stack(kb - 64) } else { 0 };
        std::hint::black_box(buf[7]).wrapping_add(below)
    }

    /// What joining the bus touched below the running frame goes back; the frames above it
    /// (this one's locals) are untouched and the thread goes on using its stack.
    #[test]
    fn the_stack_below_the_running_frame_is_given_back() {
        std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(|| {
                let marker = 7u8;
                let here = std::hint::black_box(&marker) as *const u8 as usize;
                assert_eq!(use_stack(1024), 16, "sixteen 64 KB frames");
                let before = resident_kb_around(here);
                release_unused_stack();
                let after = resident_kb_around(here);
                assert!(before >= 1024, "the stack was not touched: {before} KB");
                assert!(
                    after + 900 <= before,
                    "only {before} → {after} KB of stack given back"
                );
                assert_eq!(std::hint::black_box(marker), 7);
                assert_eq!(use_stack(256), 4, "the stack is usable again");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
