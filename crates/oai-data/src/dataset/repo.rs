use oai_core::Cid;

use super::{ChangeSet, Version};
use crate::{BlockStore, Error, RefStore, Result};

/// Named datasets and their forks: heads in a [`RefStore`] (`datasets/<name>`), versions in a
/// [`BlockStore`]. Every head update is a compare-and-swap, so two writers never lose each
/// other's versions: the loser gets [`Error::CasConflict`] and can rebase.
#[derive(Debug, Clone)]
pub struct Repo<B, R> {
    blocks: B,
    refs: R,
}

fn ref_name(name: &str) -> String {
    format!("datasets/{name}")
}

impl<B: BlockStore, R: RefStore> Repo<B, R> {
    /// A repo over a block store and a ref store.
    pub fn new(blocks: B, refs: R) -> Self {
        Self { blocks, refs }
    }

    /// The block store.
    pub fn blocks(&self) -> &B {
        &self.blocks
    }

    /// The ref store.
    pub fn refs(&self) -> &R {
        &self.refs
    }

    /// The head version of dataset `name`, if any.
    pub async fn head(&self, name: &str) -> Result<Option<Version>> {
        match self.refs.get_ref(&ref_name(name)).await? {
            Some(cid) => Ok(Some(Version::open(&self.blocks, &cid).await?)),
            None => Ok(None),
        }
    }

    /// Point `name` at `version` if its head is currently `expected` (`None`: create it).
    pub async fn set_head(
        &self,
        name: &str,
        expected: Option<Cid>,
        version: &Version,
    ) -> Result<()> {
        self.refs
            .compare_and_swap(&ref_name(name), expected, Some(version.cid()))
            .await
    }

    /// Fork dataset `from` as `to`: a new head on the same version, sharing every block.
    /// Fails with [`Error::CasConflict`] if `to` exists.
    pub async fn fork(&self, from: &str, to: &str) -> Result<Version> {
        let head = self
            .head(from)
            .await?
            .ok_or_else(|| Error::InvalidArgument(format!("no dataset named {from:?} to fork")))?;
        self.set_head(to, None, &head).await?;
        Ok(head)
    }

    /// Apply `changes` to the head of `name` and advance the head (compare-and-swap against
    /// the head the changes were applied to).
    pub async fn commit(&self, name: &str, changes: &ChangeSet) -> Result<Version> {
        let head = self
            .head(name)
            .await?
            .ok_or_else(|| Error::InvalidArgument(format!("no dataset named {name:?}")))?;
        let next = head.apply(&self.blocks, changes).await?;
        self.set_head(name, Some(head.cid()), &next).await?;
        Ok(next)
    }

    /// All dataset names with their head CIDs, sorted.
    pub async fn list(&self) -> Result<Vec<(String, Cid)>> {
        Ok(self
            .refs
            .list_refs()
            .await?
            .into_iter()
            .filter_map(|(n, c)| n.strip_prefix("datasets/").map(|s| (s.to_string(), c)))
            .collect())
    }
}
