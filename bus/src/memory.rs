//! Memory a long-running process no longer needs, given back to the system: the stack that
//! setting up took, and heap pages freed after large drops (a retired synth engine, a graph
//! built only to be checked). khorus runs all day; without these the peak of its start-up and
//! of every edit stays resident.

/// Returns the heap pages freed so far to the system (glibc keeps them otherwise). Call it
/// after dropping something large, off any real-time thread: it takes the allocator's locks.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer changes.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives back the pages of this thread's stack below the current frame. Joining the bus takes
/// ~200 KB of stack once (iceoryx2 reads every node's details, each with its whole config, into
/// frames on the stack); a stage then runs its loop from here in a few KB, and without this
/// the pages it will never use again stay resident all day. Memory below the stack pointer is
/// free by definition: a later call that reaches it finds zeroed pages, as on a fresh stack.
pub fn release_unused_stack() {
    use nix::sys::mman::{MmapAdvise, madvise};
    // Left alone below this frame, for the calls the stage makes next.
    const MARGIN: usize = 32 * 1024;
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let Some(low) = stack_mapping_start(sp) else {
        return;
    };
    // The kernel rounds the length up to whole pages: align to the real page size, or the
    // rounding could reach the live frames on a system with pages larger than 4 KiB.
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else {
        return;
    };
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
