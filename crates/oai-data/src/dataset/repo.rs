use oai_core::Cid;

use super::{Builder, ChangeSet, Record, Version};
use crate::{BlockStore, Error, RefStore, Result};

/// Named datasets and their forks: heads in a [`RefStore`] (`datasets/<name>`), versions in a
/// [`BlockStore`]. Every head update is a compare-and-swap, so two writers never lose each
/// other's versions: the loser gets [`Error::CasConflict`] and can rebase.
#[derive(Debug, Clone)]
pub struct Repo<B, R> {
    blocks: B,
    refs: R,
}

fn unknown(name: &str) -> Error {
    Error::UnknownName {
        what: "dataset",
        name: name.to_string(),
    }
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

    /// A version by dataset name (its head) or by manifest CID; [`Error::UnknownName`] when
    /// it is neither a CID nor a dataset's name.
    pub async fn resolve(&self, name_or_cid: &str) -> Result<Version> {
        if let Ok(cid) = oai_core::ids::parse(name_or_cid) {
            return Version::open(&self.blocks, &cid).await;
        }
        self.head(name_or_cid)
            .await?
            .ok_or_else(|| unknown(name_or_cid))
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

    /// Import `records` as the next version of dataset `name` (its first when it does not
    /// exist; only changed chunks are stored) and advance the head (compare-and-swap). Returns
    /// the head before, if any, and the new version.
    pub async fn import(
        &self,
        name: &str,
        schema: &str,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<(Option<Version>, Version)> {
        let head = self.head(name).await?;
        let mut b = Builder::new(&self.blocks)
            .schema(schema)
            .parent(head.as_ref().map(Version::cid));
        for r in records {
            b.push(r).await?;
        }
        let v = b.finish().await?;
        self.set_head(name, head.as_ref().map(Version::cid), &v)
            .await?;
        Ok((head, v))
    }

    /// Fork dataset `from` as `to`: a new head on the same version, sharing every block.
    /// Fails with [`Error::CasConflict`] if `to` exists.
    pub async fn fork(&self, from: &str, to: &str) -> Result<Version> {
        let head = self.head(from).await?.ok_or_else(|| unknown(from))?;
        self.set_head(to, None, &head).await?;
        Ok(head)
    }

    /// Apply `changes` to the head of `name` and advance the head (compare-and-swap against
    /// the head the changes were applied to).
    pub async fn commit(&self, name: &str, changes: &ChangeSet) -> Result<Version> {
        let head = self.head(name).await?.ok_or_else(|| unknown(name))?;
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
