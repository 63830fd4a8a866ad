//! Retrieval: `Embedder` (all-MiniLM-L6-v2 or hashed words, `embed`), `Index` (exact, HNSW or
//! a Qdrant collection, `vector`), `store.ingest(...)` and named indexes (here), and
//! `store.knowledge(...)` to search and answer with citations (`knowledge`), as oai-rag's
//! modules divide them.

// oai-rag's `Error` holds candle's (at least 128 bytes); the helpers here pass it through
// unchanged to `errors::rag` rather than box it.
#![allow(clippy::result_large_err)]

mod embed;
mod knowledge;
mod vector;

use std::collections::BTreeMap;
use std::sync::Arc;

use oai::rag::federation::LocalPeer;
use oai::rag::{named, Ingestor};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::errors::{self, Kind};
use crate::runtime::block_on;
use crate::store::{resolve, Store};

pub use embed::Embedder;
pub use knowledge::{Answer, Knowledge, Passage};
pub use vector::{Index, SearchHit};

type AnyEmbedder = Arc<dyn oai::rag::Embedder>;
type AnyIndex = Arc<dyn oai::rag::VectorStore>;

/// A `{str: str}` mapping as metadata.
fn meta(obj: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    match obj {
        None => Ok(BTreeMap::new()),
        Some(o) if o.is_none() => Ok(BTreeMap::new()),
        Some(o) => o
            .extract::<BTreeMap<String, String>>()
            .map_err(|_| PyTypeError::new_err("metadata is a dict of str to str")),
    }
}

fn filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<oai::rag::Filter>> {
    let equals = meta(obj)?;
    Ok((!equals.is_empty()).then_some(oai::rag::Filter { equals }))
}

/// `k` of a retrieval over an index and its peers (an index refuses 0 itself).
fn check_k(k: usize) -> PyResult<()> {
    if k == 0 {
        return Err(errors::error(Kind::InvalidInput, "k must be at least 1"));
    }
    Ok(())
}

/// What an ingest did: passages embedded, skipped (already indexed) and entries removed.
#[pyclass(frozen, module = "oai", get_all)]
pub struct IngestReport {
    /// Passages embedded (not found in the index before).
    embedded: usize,
    /// Passages already indexed, skipped.
    skipped: usize,
    /// Entries removed (passages that left the dataset).
    removed: usize,
}

impl From<oai::rag::IngestReport> for IngestReport {
    fn from(r: oai::rag::IngestReport) -> Self {
        IngestReport {
            embedded: r.embedded,
            skipped: r.skipped,
            removed: r.removed,
        }
    }
}

#[pymethods]
impl IngestReport {
    fn __repr__(&self) -> String {
        format!(
            "<oai.IngestReport embedded={} skipped={} removed={}>",
            self.embedded, self.skipped, self.removed
        )
    }
}

/// The retrieval methods of `Store`.
#[pymethods]
impl Store {
    /// Embed every text passage of `dataset` (name or CID) not yet in `index`, each entry
    /// tagged with `meta`; with `since` (an older version of it), move the index by their
    /// diff instead: passages that left are removed, only those that arrived are embedded.
    #[pyo3(signature = (dataset, embedder, index, *, meta = None, since = None))]
    fn ingest(
        &self,
        py: Python<'_>,
        dataset: String,
        embedder: &Embedder,
        index: &Index,
        meta: Option<&Bound<'_, PyAny>>,
        since: Option<String>,
    ) -> PyResult<IngestReport> {
        let tags = self::meta(meta)?;
        let (inner, store) = (self.inner()?, index.store());
        embedder.check_fits(&store)?;
        let ingestor = tags
            .into_iter()
            .fold(Ingestor::new(embedder.inner.clone(), store), |i, (k, v)| {
                i.with_meta(k, v)
            });
        let report = block_on(py, async move {
            let new = resolve(&inner.repo, &dataset).await?;
            let report = match since {
                None => ingestor.ingest(inner.blocks(), &new).await,
                Some(old) => {
                    let old = resolve(&inner.repo, &old).await?;
                    ingestor.update(inner.blocks(), &old, &new).await
                }
            };
            report.map_err(errors::rag)
        })??;
        Ok(report.into())
    }

    /// Embed the text records of `dataset` (name or CID) into the index saved under `name`
    /// (the head `indexes/NAME`, as `oai rag ingest DATASET --index NAME` makes it): a new
    /// HNSW index, or the saved one moved to this version by the diff (only what arrived is
    /// embedded). The embedder must be the one the index was made with.
    fn ingest_index(
        &self,
        py: Python<'_>,
        name: String,
        dataset: String,
        embedder: &Embedder,
    ) -> PyResult<IngestReport> {
        let (inner, embedder) = (self.inner()?, embedder.inner.clone());
        let report = block_on(py, async move {
            let version = resolve(&inner.repo, &dataset).await?;
            named::ingest(inner.blocks(), inner.repo.refs(), &name, embedder, &version)
                .await
                .map_err(errors::rag)
        })??
        .0;
        Ok(report.into())
    }

    /// The index saved under `name` (by `oai rag ingest` or `ingest_index`) with its dataset's
    /// passages, to search and answer with `embedder`, the one it was made with.
    fn open_index(&self, py: Python<'_>, name: String, embedder: &Embedder) -> PyResult<Knowledge> {
        let (inner, model) = (self.inner()?, embedder.inner.clone());
        let index = block_on(py, async {
            named::open(inner.blocks(), inner.repo.refs(), &name, &*model).await
        })?
        .map_err(errors::rag)?;
        Ok(Knowledge {
            dataset: index.descriptor.dataset.to_string(),
            peer: Arc::new(index.into_peer(&name)),
            embedder: model,
        })
    }

    /// The passages of `dataset` (name or CID, read and verified once) with `index` and the
    /// `embedder` it was made with, to search and answer from.
    fn knowledge(
        &self,
        py: Python<'_>,
        dataset: String,
        embedder: &Embedder,
        index: &Index,
    ) -> PyResult<Knowledge> {
        let (inner, store) = (self.inner()?, index.store());
        embedder.check_fits(&store)?;
        let (version, records) = block_on(py, async move {
            let version = resolve(&inner.repo, &dataset).await?;
            let records = version
                .records(inner.blocks())
                .await
                .map_err(errors::data)?;
            Ok::<_, PyErr>((version, records))
        })??;
        let cid = version.cid().to_string();
        Ok(Knowledge {
            peer: Arc::new(LocalPeer::new(format!("local:{cid}"), store, records)),
            embedder: embedder.inner.clone(),
            dataset: cid,
        })
    }
}
