//! Keeping a live job's blocks: an agent names the head of each log a job's disputes may need
//! (`<kind>/<market>/<job>` in a [`RefStore`]) until the job settles, so that garbage collection
//! (`oai gc`, or an IPFS node's, through `oai_data::store::PinnedRefs`) keeps every block
//! that hangs off it: the records, the checkpoints, the header, the spec and the dataset.

use std::collections::BTreeSet;
use std::sync::Arc;

use oai_chain::{Address, JobId, JobStatus};
use oai_core::Cid;
use oai_data::RefStore;

use crate::Result;

/// The names an agent keeps, under one `kind` (`jobs` for a node's submitted logs,
/// `challenges` for a challenger's honest logs).
#[derive(Debug, Clone)]
pub(crate) struct Keeper {
    refs: Option<Arc<dyn RefStore>>,
    kind: &'static str,
    /// Jobs that ended for good (paid, slashed, cancelled) whose name is known to be gone.
    released: BTreeSet<JobId>,
}

impl Keeper {
    /// Keeps nothing until [`Keeper::keeping`].
    pub(crate) fn new(kind: &'static str) -> Self {
        Keeper {
            refs: None,
            kind,
            released: BTreeSet::new(),
        }
    }

    /// Name heads in `refs`.
    pub(crate) fn keeping(mut self, refs: Arc<dyn RefStore>) -> Self {
        self.refs = Some(refs);
        self
    }

    fn name(&self, market: Address, id: JobId) -> String {
        format!("{}/{market}/{id}", self.kind)
    }

    /// Name (`Some`) or drop (`None`) the head kept for job `id` of `market`.
    pub(crate) async fn keep(&self, market: Address, id: JobId, head: Option<Cid>) -> Result<()> {
        let Some(refs) = &self.refs else {
            return Ok(());
        };
        let name = self.name(market, id);
        let old = refs.get_ref(&name).await?;
        if old != head {
            refs.compare_and_swap(&name, old, head).await?;
        }
        Ok(())
    }

    /// Drop the name kept for job `id` once the job is no longer live, so its blocks may be
    /// collected. A job ended for good is looked at once; an open one (it may be claimed
    /// again) every time.
    pub(crate) async fn release_if_settled(
        &mut self,
        market: Address,
        id: JobId,
        status: JobStatus,
    ) -> Result<()> {
        if self.refs.is_none() || self.released.contains(&id) {
            return Ok(());
        }
        match status {
            JobStatus::Claimed | JobStatus::Submitted | JobStatus::Disputed => Ok(()),
            JobStatus::Open => self.keep(market, id, None).await,
            _ => {
                self.keep(market, id, None).await?;
                self.released.insert(id);
                Ok(())
            }
        }
    }
}
