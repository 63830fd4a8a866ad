//! `oai.Store`: blocks (memory, filesystem or an IPFS node) and named heads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oai::data::dataset::{sources, ChangeSet, Repo, Version};
use oai::data::store::IpfsStore;
use oai::data::{car, unixfs, BlockStore, FsStore, MemStore, RefStore};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::dataset::Dataset;
use crate::errors::{self, parse_cid, Kind};
use crate::records;
use crate::runtime::block_on;

/// Blocks of any backend.
pub type Blocks = Arc<dyn BlockStore>;
/// Heads of any backend.
pub type Refs = Arc<dyn RefStore>;
/// Datasets over them.
pub type AnyRepo = Repo<Blocks, Refs>;

/// An open store's parts.
#[derive(Debug, Clone)]
pub struct Inner {
    /// The datasets (blocks and heads).
    pub repo: AnyRepo,
}

impl Inner {
    /// The block store.
    pub fn blocks(&self) -> &Blocks {
        self.repo.blocks()
    }
}

/// A block store with named heads: `Store.memory()`, `Store.open(path)` or
/// `Store.ipfs(url, refs=path)`. Every read is verified against its CID. Use it as a context
/// manager or call `close()`; a closed store raises `StoreClosedError`.
#[pyclass(frozen, module = "oai")]
pub struct Store {
    inner: Mutex<Option<Arc<Inner>>>,
    describe: String,
}

impl Store {
    fn new(blocks: Blocks, refs: Refs, describe: String) -> Self {
        Store {
            inner: Mutex::new(Some(Arc::new(Inner {
                repo: Repo::new(blocks, refs),
            }))),
            describe,
        }
    }

    /// The open store's parts, or `StoreClosedError`.
    pub fn inner(&self) -> PyResult<Arc<Inner>> {
        self.inner
            .lock()
            .map_err(|_| errors::error(Kind::Oai, "store lock poisoned"))?
            .clone()
            .ok_or_else(|| errors::error(Kind::StoreClosed, format!("{} is closed", self.describe)))
    }
}

fn profile(name: &str) -> PyResult<unixfs::Profile> {
    Ok(match name {
        "kubo-cidv1" => unixfs::Profile::KuboCidV1,
        "unixfs-v0-2015" => unixfs::Profile::UnixfsV0_2015,
        "unixfs-v1-2025" => unixfs::Profile::UnixfsV1_2025,
        other => {
            return Err(errors::error(
                Kind::InvalidInput,
                format!(
                    "unknown import profile {other:?} (kubo-cidv1, unixfs-v0-2015 or \
                     unixfs-v1-2025)"
                ),
            ))
        }
    })
}

/// A dataset version by head name or manifest CID.
pub async fn resolve(repo: &AnyRepo, name_or_cid: &str) -> PyResult<Version> {
    repo.resolve(name_or_cid).await.map_err(errors::data)
}

fn read_file(path: &std::path::Path) -> PyResult<Vec<u8>> {
    sources::read_file(path).map_err(errors::data)
}

#[pymethods]
impl Store {
    /// A store in memory (gone with the process).
    #[staticmethod]
    fn memory() -> Self {
        let m = MemStore::new();
        Store::new(Arc::new(m.clone()), Arc::new(m), "memory store".into())
    }

    /// The filesystem store at `path` (created if missing), the layout `oai --store` uses.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let fs = block_on(py, FsStore::open(path.clone()))?.map_err(errors::data)?;
        Ok(Store::new(
            Arc::new(fs.clone()),
            Arc::new(fs),
            format!("store {}", path.display()),
        ))
    }

    /// Blocks in the IPFS node whose RPC API is at `url` (e.g. `http://127.0.0.1:5001`); heads
    /// in the filesystem store at `refs`, or in memory when it is `None`.
    #[staticmethod]
    #[pyo3(signature = (url, refs = None))]
    fn ipfs(py: Python<'_>, url: &str, refs: Option<PathBuf>) -> PyResult<Self> {
        let blocks = IpfsStore::new(url).map_err(errors::data)?;
        let refs: Refs = match refs {
            Some(p) => Arc::new(block_on(py, FsStore::open(p))?.map_err(errors::data)?),
            None => Arc::new(MemStore::new()),
        };
        Ok(Store::new(
            Arc::new(blocks),
            refs,
            format!("IPFS store {url}"),
        ))
    }

    /// Close the store: later calls on it (and on datasets, trainers and logs opened from it)
    /// raise `StoreClosedError`.
    fn close(&self) -> PyResult<()> {
        *self
            .inner
            .lock()
            .map_err(|_| errors::error(Kind::Oai, "store lock poisoned"))? = None;
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { ", closed" } else { "" };
        format!("<oai.Store {}{state}>", self.describe)
    }

    /// Import `data` (bytes, or the path of a file) as IPFS would; returns its root CID, the
    /// one `ipfs add` gives with the same profile.
    #[pyo3(signature = (data, *, profile = "kubo-cidv1"))]
    fn add(&self, py: Python<'_>, data: &Bound<'_, PyAny>, profile: &str) -> PyResult<String> {
        let profile = self::profile(profile)?;
        let bytes = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if let Ok(p) = data.extract::<PathBuf>() {
            read_file(&p)?
        } else {
            return Err(PyTypeError::new_err("add() takes bytes or a path"));
        };
        let inner = self.inner()?;
        let r = block_on(py, async move {
            unixfs::import_bytes(inner.blocks(), &bytes, profile).await
        })?
        .map_err(errors::data)?;
        Ok(r.root.to_string())
    }

    /// The bytes of the file `cid` (every block verified).
    fn cat<'py>(&self, py: Python<'py>, cid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let cid = parse_cid(cid)?;
        let inner = self.inner()?;
        let bytes = block_on(py, async move {
            unixfs::read_to_vec(inner.blocks(), &cid).await
        })?
        .map_err(errors::data)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Whether the block `cid` is stored.
    fn has(&self, py: Python<'_>, cid: &str) -> PyResult<bool> {
        let cid = parse_cid(cid)?;
        let inner = self.inner()?;
        block_on(py, async move { inner.blocks().has(&cid).await })?.map_err(errors::data)
    }

    /// Import records into dataset `name` (its next version when it exists; only changed chunks
    /// are stored). Give `records` (an iterable of str, bytes, arrays or `(array, label)`), or
    /// exactly one of `lines` (a UTF-8 file, a text record per line), `csv` (numeric features
    /// with an integer class last: labelled float32 records, features times `scale`) or `files`
    /// (a directory: a bytes record per file, in name order).
    #[pyo3(signature = (name, records = None, *, lines = None, csv = None, files = None, scale = 1.0, schema = ""))]
    #[allow(clippy::too_many_arguments)]
    fn import_dataset(
        slf: Py<Self>,
        py: Python<'_>,
        name: String,
        records: Option<&Bound<'_, PyAny>>,
        lines: Option<PathBuf>,
        csv: Option<PathBuf>,
        files: Option<PathBuf>,
        scale: f32,
        schema: &str,
    ) -> PyResult<Dataset> {
        let schema = schema.to_string();
        let given = [
            records.is_some(),
            lines.is_some(),
            csv.is_some(),
            files.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(errors::error(
                Kind::InvalidInput,
                "give exactly one of records, lines=, csv= or files=",
            ));
        }
        let recs = if let Some(it) = records {
            it.try_iter()?
                .map(|r| records::record(&r?))
                .collect::<PyResult<Vec<_>>>()?
        } else if let Some(p) = lines {
            sources::lines_of_file(&p).map_err(errors::data)?
        } else if let Some(p) = csv {
            oai::train::corpus::labeled_from_csv_file(&p, scale).map_err(errors::train)?
        } else {
            let dir = files.expect("one source is given");
            sources::files_in(&dir).map_err(errors::data)?
        };
        let inner = slf.get().inner()?;
        let (_, version) = block_on(
            py,
            async move { inner.repo.import(&name, &schema, recs).await },
        )?
        .map_err(errors::data)?;
        Ok(Dataset::new(slf, version))
    }

    /// A dataset version by head name or manifest CID (its manifest verified).
    fn dataset(slf: Py<Self>, py: Python<'_>, name_or_cid: String) -> PyResult<Dataset> {
        let inner = slf.get().inner()?;
        let v = block_on(py, async move { resolve(&inner.repo, &name_or_cid).await })??;
        Ok(Dataset::new(slf, v))
    }

    /// Every dataset head: `{name: manifest CID}`, sorted by name.
    fn datasets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner()?;
        let list = block_on(py, async move { inner.repo.list().await })?.map_err(errors::data)?;
        let d = PyDict::new(py);
        for (name, cid) in list {
            d.set_item(name, cid.to_string())?;
        }
        Ok(d)
    }

    /// Fork dataset `source` as `name` (no bytes copied).
    fn fork(slf: Py<Self>, py: Python<'_>, source: String, name: String) -> PyResult<Dataset> {
        let inner = slf.get().inner()?;
        let v = block_on(py, async move { inner.repo.fork(&source, &name).await })?
            .map_err(errors::data)?;
        Ok(Dataset::new(slf, v))
    }

    /// Commit changes to the head of dataset `name`: `remove` indices of the current version,
    /// then `insert` records at `{index in the result: record}`; `replace` is `{index: record}`
    /// for records replaced in place (with no other change before them).
    #[pyo3(signature = (name, *, remove = Vec::new(), insert = None, replace = None))]
    fn commit(
        slf: Py<Self>,
        py: Python<'_>,
        name: String,
        remove: Vec<u64>,
        insert: Option<&Bound<'_, PyDict>>,
        replace: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Dataset> {
        let mut removed: Vec<u64> = remove;
        let mut inserted = Vec::new();
        for (map, also_remove) in [(insert, false), (replace, true)] {
            if let Some(m) = map {
                for (k, v) in m.iter() {
                    let i: u64 = k
                        .extract()
                        .map_err(|_| PyTypeError::new_err("change indices must be ints"))?;
                    if also_remove {
                        removed.push(i);
                    }
                    inserted.push((i, records::record(&v)?));
                }
            }
        }
        removed.sort_unstable();
        inserted.sort_by_key(|(i, _)| *i);
        let inner = slf.get().inner()?;
        let v = block_on(py, async move {
            let mut changes = ChangeSet::default();
            for i in removed {
                changes.remove(i);
            }
            for (i, r) in inserted {
                changes.insert(inner.blocks(), i, r).await?;
            }
            inner.repo.commit(&name, &changes).await
        })?
        .map_err(errors::data)?;
        Ok(Dataset::new(slf, v))
    }

    /// Write everything reachable from `root` (a CID or a dataset name) to a CARv1 file;
    /// returns the number of blocks.
    fn export_car(&self, py: Python<'_>, root: String, path: PathBuf) -> PyResult<u64> {
        let inner = self.inner()?;
        block_on(py, async move {
            let cid = match oai::core::ids::parse(&root) {
                Ok(c) => c,
                Err(_) => resolve(&inner.repo, &root).await?.cid(),
            };
            let mut f = tokio::fs::File::create(&path)
                .await
                .map_err(|e| errors::error(Kind::Oai, format!("{}: {e}", path.display())))?;
            car::export(inner.blocks(), &cid, &mut f)
                .await
                .map_err(errors::data)
        })?
    }

    /// Import a CARv1 file (every block verified); returns its roots.
    fn import_car(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
        let inner = self.inner()?;
        let bytes = read_file(&path)?;
        let roots = block_on(py, async move {
            car::import(inner.blocks(), std::io::Cursor::new(bytes)).await
        })?
        .map_err(errors::data)?;
        Ok(roots.iter().map(ToString::to_string).collect())
    }
}
