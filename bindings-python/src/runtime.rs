//! One Tokio runtime per process, created on first use, and the GIL released around it.
//!
//! After `fork()` the child has none of the parent's runtime threads: the first call in the
//! child notices the new process id and builds a fresh runtime (the parent's is leaked, never
//! dropped: dropping it would wait for threads that do not exist). The lock is only taken with
//! the GIL held, so no other thread can hold it when Python forks.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime(_py: Python<'_>) -> PyResult<Arc<Runtime>> {
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| PyRuntimeError::new_err("oai's runtime lock is poisoned"))?;
    let pid = std::process::id();
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    if let Some((_, stale)) = slot.take() {
        std::mem::forget(stale);
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("oai-runtime")
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start oai's runtime: {e}")))?,
    );
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// Run `fut` to completion on the process's runtime with the GIL released.
pub fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime(py)?;
    Ok(py.detach(|| rt.block_on(fut)))
}

/// Registered with `os.register_at_fork`: forget the parent's runtime in a forked child at once
/// (the process-id check would also catch it on first use).
#[pyfunction]
pub fn _after_fork_in_child() {
    if let Ok(mut slot) = RUNTIME.try_lock() {
        if let Some((_, stale)) = slot.take() {
            std::mem::forget(stale);
        }
    }
}
