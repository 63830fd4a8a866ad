//! `oai.Index` (exact, HNSW or a Qdrant collection) and `oai.SearchHit`; numpy in and out.

use std::collections::BTreeMap;
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use oai::core::Cid;
use oai::rag::vector::QdrantStore;
use oai::rag::{Entry, FlatStore, Hit, HnswParams, HnswStore};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, parse_cid, Kind};
use crate::runtime::block_on;
use crate::store::Store;

use super::{filter, meta, AnyIndex};

/// The backends of an `Index`.
#[derive(Debug, Clone)]
enum Backend {
    Flat(FlatStore),
    Hnsw(HnswStore),
    Qdrant(Arc<QdrantStore>),
}

/// Vectors keyed by the CID of the passage they were computed from, with metadata to filter
/// on: `Index.flat(dim)` (exact), `Index.hnsw(dim)` (approximate, saved through a store) or
/// `Index.qdrant(url, collection, dim)`. Hits are best first, ties broken by CID.
#[pyclass(frozen, module = "oai")]
pub struct Index {
    backend: Backend,
}

impl Index {
    pub(super) fn store(&self) -> AnyIndex {
        match &self.backend {
            Backend::Flat(s) => Arc::new(s.clone()),
            Backend::Hnsw(s) => Arc::new(s.clone()),
            Backend::Qdrant(s) => s.clone(),
        }
    }

    fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Flat(_) => "flat",
            Backend::Hnsw(_) => "hnsw",
            Backend::Qdrant(_) => "qdrant",
        }
    }
}

fn dtype_name(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!(
            "a {}-dimensional array of {}",
            a.ndim(),
            a.dtype()
                .getattr("name")
                .and_then(|n| n.extract::<String>())
                .unwrap_or_else(|_| "?".into())
        ),
        Err(_) => obj.get_type().name().map_or("?".into(), |n| n.to_string()),
    }
}

/// A float32 numpy array of shape `(n, dim)` as rows (read in place, copied once).
fn rows(obj: &Bound<'_, PyAny>, dim: usize) -> PyResult<Vec<Vec<f32>>> {
    let arr = obj.cast::<PyArray2<f32>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a 2-dimensional float32 numpy array, got {}",
            dtype_name(obj)
        ))
    })?;
    let view = arr.readonly();
    let a = view.as_array();
    if a.ncols() != dim {
        return Err(errors::error(
            Kind::InvalidInput,
            format!("vectors have {} columns, the index holds {dim}", a.ncols()),
        ));
    }
    Ok(a.rows().into_iter().map(|r| r.to_vec()).collect())
}

/// A float32 numpy array of shape `(dim,)` as a vector.
fn vector(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let arr = obj.cast::<PyArray1<f32>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a 1-dimensional float32 numpy array, got {}",
            dtype_name(obj)
        ))
    })?;
    Ok(arr.readonly().as_array().to_vec())
}

/// A search result: the source passage's CID, the score (cosine similarity for unit vectors)
/// and the entry's metadata.
#[pyclass(frozen, module = "oai", get_all)]
pub struct SearchHit {
    /// The source passage's CID.
    source: String,
    /// Dot product with the query.
    score: f32,
    /// The entry's metadata.
    meta: BTreeMap<String, String>,
}

impl From<Hit> for SearchHit {
    fn from(h: Hit) -> Self {
        SearchHit {
            source: h.source.to_string(),
            score: h.score,
            meta: h.meta,
        }
    }
}

#[pymethods]
impl SearchHit {
    fn __repr__(&self) -> String {
        format!("<oai.SearchHit {} score={:.4}>", self.source, self.score)
    }
}

#[pymethods]
impl Index {
    /// Exact search over every entry, in memory.
    #[staticmethod]
    fn flat(dim: usize) -> PyResult<Self> {
        Ok(Index {
            backend: Backend::Flat(FlatStore::new(dim).map_err(errors::rag)?),
        })
    }

    /// Approximate search on an HNSW graph in memory (`m` links per node, candidate lists of
    /// `ef_construction` while inserting and `ef_search` while searching).
    #[staticmethod]
    #[pyo3(signature = (dim, *, m = 16, ef_construction = 128, ef_search = 128))]
    fn hnsw(dim: usize, m: usize, ef_construction: usize, ef_search: usize) -> PyResult<Self> {
        if m < 2 || ef_construction == 0 || ef_search == 0 {
            return Err(errors::error(
                Kind::InvalidInput,
                format!(
                    "HNSW needs m >= 2 and positive candidate lists (m={m}, \
                     ef_construction={ef_construction}, ef_search={ef_search})"
                ),
            ));
        }
        let params = HnswParams {
            m,
            ef_construction,
            ef_search,
        };
        Ok(Index {
            backend: Backend::Hnsw(HnswStore::with_params(dim, params).map_err(errors::rag)?),
        })
    }

    /// The Qdrant collection `collection` at the gRPC endpoint `url` (e.g.
    /// `http://127.0.0.1:6334`), created with dot-product vectors of `dim` values when missing.
    #[staticmethod]
    fn qdrant(py: Python<'_>, url: String, collection: String, dim: usize) -> PyResult<Self> {
        let store = block_on(py, async move {
            QdrantStore::connect(&url, &collection, dim).await
        })?
        .map_err(errors::rag)?;
        Ok(Index {
            backend: Backend::Qdrant(Arc::new(store)),
        })
    }

    /// The HNSW index saved with `save(store)` under `cid`, every block verified.
    #[staticmethod]
    fn load(py: Python<'_>, store: &Store, cid: &str) -> PyResult<Self> {
        let cid = parse_cid(cid)?;
        let inner = store.inner()?;
        let index = block_on(
            py,
            async move { HnswStore::load(inner.blocks(), &cid).await },
        )?
        .map_err(errors::rag)?;
        Ok(Index {
            backend: Backend::Hnsw(index),
        })
    }

    /// Save an HNSW index's graph and entries into `store`; returns the CID `Index.load` takes.
    fn save(&self, py: Python<'_>, store: &Store) -> PyResult<String> {
        let Backend::Hnsw(index) = &self.backend else {
            return Err(errors::error(
                Kind::InvalidInput,
                format!(
                    "only an HNSW index is saved through a store (this one is {})",
                    self.kind()
                ),
            ));
        };
        let (index, inner) = (index.clone(), store.inner()?);
        let cid =
            block_on(py, async move { index.save(inner.blocks()).await })?.map_err(errors::rag)?;
        Ok(cid.to_string())
    }

    /// Vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.store().dim()
    }

    /// Insert or replace one entry per source CID: `vectors` is a float32 array of shape
    /// `(len(sources), dim)`; `meta` one dict for all entries or a sequence of one per entry.
    /// A failing batch stores nothing.
    #[pyo3(signature = (sources, vectors, meta = None))]
    fn upsert(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        vectors: &Bound<'_, PyAny>,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let store = self.store();
        let rows = rows(vectors, store.dim())?;
        if rows.len() != sources.len() {
            return Err(errors::error(
                Kind::InvalidInput,
                format!("{} sources but {} vectors", sources.len(), rows.len()),
            ));
        }
        let metas: Vec<BTreeMap<String, String>> = match meta {
            Some(m) if m.cast::<PyDict>().is_err() && !m.is_none() => {
                let list: Vec<Bound<'_, PyAny>> = m
                    .extract()
                    .map_err(|_| PyTypeError::new_err("meta is a dict or a sequence of dicts"))?;
                if list.len() != sources.len() {
                    return Err(errors::error(
                        Kind::InvalidInput,
                        format!(
                            "{} sources but {} metadata dicts",
                            sources.len(),
                            list.len()
                        ),
                    ));
                }
                list.iter()
                    .map(|d| self::meta(Some(d)))
                    .collect::<PyResult<_>>()?
            }
            other => vec![self::meta(other)?; sources.len()],
        };
        let entries = sources
            .iter()
            .zip(rows)
            .zip(metas)
            .map(|((s, vector), meta)| {
                Ok(Entry {
                    source: parse_cid(s)?,
                    vector,
                    meta,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        block_on(py, async move { store.upsert(entries).await })?.map_err(errors::rag)
    }

    /// Remove the entries of these source CIDs (absent ones are ignored).
    fn remove(&self, py: Python<'_>, sources: Vec<String>) -> PyResult<()> {
        let cids = sources
            .iter()
            .map(|s| parse_cid(s))
            .collect::<PyResult<Vec<Cid>>>()?;
        let store = self.store();
        block_on(py, async move { store.remove(&cids).await })?.map_err(errors::rag)
    }

    /// The `k` best entries for `query` (float32, shape `(dim,)`) whose metadata has every
    /// key/value of `where`.
    #[pyo3(signature = (query, k = 5, r#where = None))]
    fn search(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<SearchHit>> {
        let (q, f, store) = (vector(query)?, filter(r#where)?, self.store());
        let hits = block_on(py, async move { store.search(&q, k, f.as_ref()).await })?
            .map_err(errors::rag)?;
        Ok(hits.into_iter().map(SearchHit::from).collect())
    }

    /// `search` for every row of `queries` (float32, shape `(n, dim)`) in one call: a list of
    /// `n` hit lists.
    #[pyo3(signature = (queries, k = 5, r#where = None))]
    fn search_many(
        &self,
        py: Python<'_>,
        queries: &Bound<'_, PyAny>,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Vec<SearchHit>>> {
        let store = self.store();
        let (qs, f) = (rows(queries, store.dim())?, filter(r#where)?);
        let all = block_on(py, async move {
            let mut all = Vec::with_capacity(qs.len());
            for q in &qs {
                all.push(store.search(q, k, f.as_ref()).await?);
            }
            Ok::<_, oai::rag::Error>(all)
        })?
        .map_err(errors::rag)?;
        Ok(all
            .into_iter()
            .map(|hits| hits.into_iter().map(SearchHit::from).collect())
            .collect())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let store = self.store();
        block_on(py, async move { store.len().await })?.map_err(errors::rag)
    }

    fn __contains__(&self, py: Python<'_>, source: &str) -> PyResult<bool> {
        let (cid, store) = (parse_cid(source)?, self.store());
        block_on(py, async move { store.contains(&cid).await })?.map_err(errors::rag)
    }

    fn __repr__(&self) -> String {
        format!("<oai.Index {} dim={}>", self.kind(), self.dim())
    }
}
