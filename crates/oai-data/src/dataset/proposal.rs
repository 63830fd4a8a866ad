use bytes::Bytes;
use oai_core::{ids, Cid, Digest};
use serde::{Deserialize, Serialize};

use super::{ChangeSet, Version};
use crate::{BlockStore, Error, Result};

/// A data proposal for a dataset DAO: apply `changes` to `base`, giving `result`. Stored as a
/// dag-cbor block; a contract votes on the proposal CID and on `result_root`, the root that
/// becomes the dataset's version if the vote passes. Anyone can [`Proposal::verify`] that the
/// result really is the base with the changes applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    // DAG-CBOR canonical key order
    /// Manifest CID of the version the changes apply to.
    pub base: Cid,
    /// Human-readable title.
    pub title: String,
    /// Manifest CID of the resulting version.
    pub result: Cid,
    /// The change set block.
    pub changes: Cid,
    /// Version root of the result (what the DAO contract records).
    pub result_root: Digest,
}

impl Proposal {
    /// Apply `changes` to `base`, store the change set, the result and the proposal; returns
    /// the proposal, its CID and the resulting version.
    pub async fn create<S: BlockStore + ?Sized>(
        store: &S,
        base: &Version,
        changes: &ChangeSet,
        title: impl Into<String>,
    ) -> Result<(Self, Cid, Version)> {
        let result = base.apply(store, changes).await?;
        let changes_cid = store
            .put(ids::DAG_CBOR, Bytes::from(changes.encode()))
            .await?;
        let p = Proposal {
            base: base.cid(),
            title: title.into(),
            result: result.cid(),
            changes: changes_cid,
            result_root: result.root(),
        };
        let bytes = serde_ipld_dagcbor::to_vec(&p).expect("proposals encode");
        let cid = store.put(ids::DAG_CBOR, Bytes::from(bytes)).await?;
        Ok((p, cid, result))
    }

    /// Load a proposal block.
    pub async fn load<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        crate::cbor::decode("proposal", None, &store.get(cid).await?)
    }

    /// Re-apply the changes to the base and check that they give exactly `result` and
    /// `result_root`; returns the result version.
    pub async fn verify<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Version> {
        let base = Version::open(store, &self.base).await?;
        let changes = ChangeSet::decode(&store.get(&self.changes).await?)?;
        let result = base.apply(store, &changes).await?;
        if result.cid() != self.result || result.root() != self.result_root {
            return Err(Error::Verification(format!(
                "applying {} to {} gives {} (root {}), the proposal claims {} (root {})",
                self.changes,
                self.base,
                result.cid(),
                result.root(),
                self.result,
                self.result_root
            )));
        }
        Ok(result)
    }
}
