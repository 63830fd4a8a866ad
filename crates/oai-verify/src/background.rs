//! Long work an agent runs beside its ticks (training a job, auditing a result, computing an
//! honest log), one task per job, so that a tick only reads the chain and answers what is due:
//! a node training for hours still answers a dispute move within a tick, and a challenger
//! auditing a decoy still plays its other disputes.

use std::collections::BTreeMap;
use std::future::Future;

use oai_chain::JobId;
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// The background tasks of one kind of work, by job.
pub(crate) struct Background<T> {
    tasks: BTreeMap<JobId, JoinHandle<Result<T>>>,
}

impl<T: Send + 'static> Background<T> {
    /// No work running.
    pub(crate) fn new() -> Self {
        Self {
            tasks: BTreeMap::new(),
        }
    }

    /// Start `work` for job `id` on a thread of the runtime's blocking pool: training and
    /// replays compute for long stretches without awaiting, which would stall every other task
    /// of the thread that polls them (all of them, on a current-thread runtime). The runtime's
    /// handle drives the work's I/O (a store over HTTP).
    pub(crate) fn start(
        &mut self,
        id: JobId,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) {
        let runtime = tokio::runtime::Handle::current();
        self.tasks.insert(
            id,
            tokio::task::spawn_blocking(move || runtime.block_on(work)),
        );
    }

    /// Whether work for `id` was started and has not been taken yet.
    pub(crate) fn has(&self, id: JobId) -> bool {
        self.tasks.contains_key(&id)
    }

    /// Whether no task runs or waits to be taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether any task is still running.
    pub(crate) fn running(&self) -> bool {
        self.tasks.values().any(|t| !t.is_finished())
    }

    /// Wait until no task is running.
    pub(crate) async fn finished(&self) {
        while self.running() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The outcome of `id`'s work once it has finished (taken: asked again, `None`); `None`
    /// while it runs or when none was started.
    pub(crate) async fn take(&mut self, id: JobId) -> Option<Result<T>> {
        if !self.tasks.get(&id)?.is_finished() {
            return None;
        }
        let task = self.tasks.remove(&id)?;
        Some(match task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(Error::Task(e.to_string())),
        })
    }
}
