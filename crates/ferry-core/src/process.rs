//! Process-wide settings a binary applies once at start (the CLI, the app, the raw ceiling).

/// Keep freed message buffers in the heap instead of handing them back to the kernel.
///
/// A transfer allocates and frees 128-256 KiB buffers (chunk frames, SCTP reassembly) a few
/// thousand times per GiB. glibc serves blocks that size with `mmap` until its dynamic
/// threshold catches up, and trims the heap top as soon as 128 KiB are free, so the next
/// buffer page-faults its memory in again: measured at 2.7 % of both peers' CPU per GiB on
/// loopback (docs/BENCHMARKS.md). Fixed thresholds (4 MiB mmap, 64 MiB trim) stop that churn;
/// peak RSS did not move, because what is kept is what the next message reuses.
///
/// No-op off glibc (musl, macOS, Windows, Android's bionic have their own allocators).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 4 << 20;
        const TRIM_THRESHOLD: libc::c_int = 64 << 20;
        // A refusal leaves glibc's own thresholds, which only cost the CPU measured above;
        // it is not logged because every caller runs this before its log subscriber exists.
        // SAFETY: mallopt only changes allocator parameters; called before any threads start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
