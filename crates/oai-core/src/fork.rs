//! Compute after `fork()`. The thread pools a CPU step runs on (candle's barrier pool, rayon's
//! global pool) start their worker threads once per process, and a forked child inherits the
//! pools without their threads: its first parallel op waits for workers that do not exist,
//! forever. So every crate that computes notes it and checks first ([`compute`]): a child forked after its parent computed is refused at once with a clear error
//! instead of hanging. A child forked before any compute starts its own pools and works.

use std::sync::atomic::{AtomicU32, Ordering};

/// The process that started the pools (0: none has).
static STARTED_IN: AtomicU32 = AtomicU32::new(0);

/// Note that this process computes on the thread pools (cheap: one atomic read after the first
/// call).
pub fn computing() {
    if STARTED_IN.load(Ordering::Relaxed) == 0 {
        let _ =
            STARTED_IN.compare_exchange(0, std::process::id(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// `Err(parent)` in a child forked from process `parent` after `parent` computed: the pools'
/// workers are gone, and a step would never end.
pub fn check() -> Result<(), u32> {
    match STARTED_IN.load(Ordering::SeqCst) {
        0 => Ok(()),
        p if p == std::process::id() => Ok(()),
        parent => Err(parent),
    }
}

/// [`check`], then [`computing`]: call before a computation.
pub fn compute() -> Result<(), u32> {
    check()?;
    computing();
    Ok(())
}

/// What to tell a user whose process was forked after `parent` computed.
pub fn explain(parent: u32) -> String {
    format!(
        "this process was forked from process {parent} after that process computed with oai: \
         the compute threads do not survive fork(), so a step would wait forever; compute in a \
         process started fresh (Python: a multiprocessing \"spawn\" or \"forkserver\" context), \
         or fork before the first computation"
    )
}
