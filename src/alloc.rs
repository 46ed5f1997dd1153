//! How the service's allocator is tuned. mimalloc is the global allocator of the `gongwen` binary and of the
//! benches (glibc's spent a tenth of the server's time in malloc/free on large traces and write bursts); this
//! sets how long it keeps memory that was freed before handing it back to the kernel.
//!
//! mimalloc's default is 10 ms (100 ms for whole segments in its arenas, ten times the delay). A trace over 200,000
//! deliveries and a fan-out to 100,000 recipients free and allocate again hundreds of megabytes within a second, and
//! every page handed back and taken again is zeroed by the kernel on the next touch. At 1 s the trace, the fan-out
//! and ingest's CPU per acknowledgment were faster in 7 of 8 alternating pairs of runs, by 4-29 %, for 25-460 MiB
//! more peak RSS (BENCHMARKS.md, 12-02e). An operator who prefers the memory back sooner sets
//! `MIMALLOC_PURGE_DELAY` (in ms), which is then left alone.
use std::os::raw::c_long;

/// `mi_option_purge_delay` in mimalloc v2's `mimalloc.h` (the 16th option, counted from 0), which the bindings of
/// libmimalloc-sys do not name; `tests::the_option_is_the_purge_delay` checks it reads mimalloc's default of 10.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory is kept, in ms (arenas keep it ten times as long, as mimalloc does by default).
pub const PURGE_DELAY_MS: c_long = 1_000;

/// Applies the setting, unless `MIMALLOC_PURGE_DELAY` gives one. Call it first thing in `main`, before any other
/// thread exists.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: stores one integer option of the C allocator, which only reads it when it purges; called before
        // any other thread is started.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // Nothing in the test binary tunes it: mimalloc's documented default for the purge delay.
        // SAFETY: reads one integer option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 10);
        // Its neighbours in the enum, which the bindings do name, have other defaults.
        // SAFETY: as above.
        let eager_commit_delay =
            unsafe { libmimalloc_sys::mi_option_get(libmimalloc_sys::mi_option_eager_commit_delay) };
        assert_eq!(libmimalloc_sys::mi_option_eager_commit_delay + 1, PURGE_DELAY);
        assert_ne!(eager_commit_delay, 10);
    }
}
