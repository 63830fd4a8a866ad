//! The heap settings a training process runs best with.
//!
//! Every step candle allocates the gradients and the activations afresh (buffers of megabytes)
//! and frees them at its end. glibc hands the top of its heap back to the kernel once more than
//! `M_TRIM_THRESHOLD` of it is free, and serves large blocks by fresh `mmap`s, so the next step
//! faults the same pages in again (zeroed by the kernel): on the train bench's MLP that made
//! the backward pass take twice as long (docs/kernels.md). A process that trains can therefore
//! ask glibc to keep freed memory ([`keep_freed_memory`]): it holds on to its peak heap, as a
//! training process does anyway. It is a setting of the whole process, so this library never
//! makes it by itself: the `oai` command and the benches opt in, a host process that links oai
//! (the Python and C libraries included) opts in when it wants to. Elsewhere (other C
//! libraries, other systems) it changes nothing.

/// Keep freed heap memory in this process: glibc serves blocks up to 32 MiB from the heap and
/// trims the heap only when 1 GiB at its top is free (`mallopt`). Training steps run up to twice
/// as fast; the process keeps its peak heap. A setting of the whole process, made only when
/// called; glibc on Linux only (a no-op elsewhere). Idempotent.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // Blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap, and the
            // heap is trimmed only when 1 GiB at its top is free.
            #[allow(unsafe_code)]
            // SAFETY: mallopt sets two of glibc's malloc parameters under its own lock; it
            // touches no memory of ours.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}
