//! Vector stores: the [`VectorStore`] trait, where every hit cites the CID of its source chunk;
//! [`FlatStore`], exact search in memory (the ground truth approximate indexes are measured
//! against); [`HnswStore`], approximate search on an HNSW graph in memory; `QdrantStore`, a
//! Qdrant collection over gRPC (feature `qdrant`). [`conformance`] is the suite every
//! implementation must pass.

pub mod conformance;
mod flat;
mod hnsw;
#[cfg(feature = "qdrant")]
pub mod qdrant;

use std::collections::BTreeMap;

use oai_core::Cid;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use flat::FlatStore;
pub use hnsw::{HnswParams, HnswStore};
#[cfg(feature = "qdrant")]
pub use qdrant::QdrantStore;

/// A vector with the CID of the chunk it was computed from and metadata to filter on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The source chunk's CID: the entry's key (upserting it again replaces the entry).
    pub source: Cid,
    /// The embedding.
    pub vector: Vec<f32>,
    /// Metadata (e.g. `dataset`, `lang`), matched exactly by [`Filter`].
    pub meta: BTreeMap<String, String>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The source chunk's CID.
    pub source: Cid,
    /// Dot product with the query (cosine similarity for normalised vectors).
    pub score: f32,
    /// The entry's metadata.
    pub meta: BTreeMap<String, String>,
}

/// Entries whose metadata has every listed key with the listed value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Required key/value pairs.
    pub equals: BTreeMap<String, String>,
}

impl Filter {
    /// A filter requiring `key == value`.
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            equals: BTreeMap::from([(key.into(), value.into())]),
        }
    }

    /// Whether `meta` passes.
    pub fn matches(&self, meta: &BTreeMap<String, String>) -> bool {
        self.equals.iter().all(|(k, v)| meta.get(k) == Some(v))
    }
}

/// An index of embeddings, each keyed by the CID of its source chunk.
///
/// Contract: a store has a dimension of at least 1 (making one of dimension 0 is
/// [`Error::InvalidInput`]); vectors have exactly [`VectorStore::dim`] finite values
/// ([`Error::Dimension`] / [`Error::InvalidInput`] otherwise, and nothing of a failing batch is
/// stored); `upsert` of a source already present replaces it; `search` returns at most `k`
/// hits passing the filter, best first, ties broken by source CID, so equal stores give equal
/// answers; `k = 0` is [`Error::InvalidInput`].
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Insert or replace entries.
    async fn upsert(&self, entries: Vec<Entry>) -> Result<()>;
    /// Remove the entries of these sources (absent ones are ignored).
    async fn remove(&self, sources: &[Cid]) -> Result<()>;
    /// The `k` best entries for `query` that pass `filter`.
    async fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>>;
    /// Whether an entry for `source` is stored.
    async fn contains(&self, source: &Cid) -> Result<bool>;
    /// Number of entries.
    async fn len(&self) -> Result<usize>;
    /// Whether the store holds no entries.
    async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

/// A shared vector store is a vector store (e.g. `Arc<dyn VectorStore>` chosen at run time).
#[async_trait::async_trait]
impl<T: VectorStore + ?Sized> VectorStore for std::sync::Arc<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    async fn upsert(&self, entries: Vec<Entry>) -> Result<()> {
        (**self).upsert(entries).await
    }

    async fn remove(&self, sources: &[Cid]) -> Result<()> {
        (**self).remove(sources).await
    }

    async fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        (**self).search(query, k, filter).await
    }

    async fn contains(&self, source: &Cid) -> Result<bool> {
        (**self).contains(source).await
    }

    async fn len(&self) -> Result<usize> {
        (**self).len().await
    }
}

/// Refuse a store of dimension 0 (it could hold nothing but empty vectors).
pub(crate) fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::InvalidInput(
            "a vector store needs a dimension of at least 1".into(),
        ));
    }
    Ok(())
}

/// Check a query against a store's dimension, and `k` (at least 1).
pub(crate) fn check_query(dim: usize, query: &[f32], k: usize) -> Result<()> {
    check_vector(dim, query)?;
    if k == 0 {
        return Err(Error::InvalidInput("k must be at least 1".into()));
    }
    Ok(())
}

/// Check a vector against a store's dimension.
pub(crate) fn check_vector(dim: usize, v: &[f32]) -> Result<()> {
    if v.len() != dim {
        return Err(Error::Dimension {
            expected: dim,
            got: v.len(),
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(
            "vector has a NaN or infinite value".into(),
        ));
    }
    Ok(())
}

/// Order hits best first, ties by source CID bytes.
pub(crate) fn rank(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.to_bytes().cmp(&b.source.to_bytes()))
    });
}

/// Dot product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
