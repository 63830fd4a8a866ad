//! `oai.Dataset`, its proofs, batches and diffs.

use oai::core::Seed;
use oai::data::dataset::{RecordProof, Sampler, Version};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use crate::errors::{self, parse_cid, Kind};
use crate::records;
use crate::runtime::block_on;
use crate::store::{resolve, Store};

/// One version of a dataset: records under a Merkle root, named by its manifest's CID.
#[pyclass(frozen, module = "oai")]
pub struct Dataset {
    store: Py<Store>,
    version: Version,
}

impl Dataset {
    /// `version`, read through `store`.
    pub fn new(store: Py<Store>, version: Version) -> Self {
        Dataset { store, version }
    }

    fn index(&self, i: i64) -> PyResult<u64> {
        let len = self.version.len() as i64;
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return Err(PyIndexError::new_err(format!(
                "record index {i} out of range (dataset has {len} records)"
            )));
        }
        Ok(j as u64)
    }
}

#[pymethods]
impl Dataset {
    /// The manifest's CID (names this version).
    #[getter]
    fn cid(&self) -> String {
        self.version.cid().to_string()
    }

    /// The Merkle root over the records (hex).
    #[getter]
    fn root(&self) -> String {
        self.version.root().to_string()
    }

    /// The schema description of the manifest.
    #[getter]
    fn schema(&self) -> String {
        self.version.manifest().schema.clone()
    }

    /// The previous version's CID, if any.
    #[getter]
    fn parent(&self) -> Option<String> {
        self.version.manifest().parent.map(|p| p.to_string())
    }

    /// Bytes of all records' encodings.
    #[getter]
    fn bytes(&self) -> u64 {
        self.version.manifest().bytes
    }

    fn __len__(&self) -> usize {
        self.version.len() as usize
    }

    /// Record `i` (negative counts from the end), verified against its chunk.
    fn __getitem__<'py>(&self, py: Python<'py>, i: i64) -> PyResult<Bound<'py, PyAny>> {
        let index = self.index(i)?;
        let inner = self.store.get().inner()?;
        let v = self.version.clone();
        let r = block_on(py, async move { v.record(inner.blocks(), index).await })?
            .map_err(errors::data)?;
        records::to_python(py, &r)
    }

    /// Every record, in order.
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let inner = self.store.get().inner()?;
        let v = self.version.clone();
        let rs =
            block_on(py, async move { v.records(inner.blocks()).await })?.map_err(errors::data)?;
        rs.iter().map(|r| records::to_python(py, r)).collect()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = pyo3::types::PyList::new(py, self.records(py)?)?;
        list.try_iter().map(Bound::into_any)
    }

    /// Every record's CID, in order.
    fn record_cids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let inner = self.store.get().inner()?;
        let v = self.version.clone();
        let cids = block_on(py, async move { v.record_cids(inner.blocks()).await })?
            .map_err(errors::data)?;
        Ok(cids.iter().map(ToString::to_string).collect())
    }

    /// Records removed from this version and added in `other` (a dataset, name or CID).
    fn diff(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Diff> {
        let inner = self.store.get().inner()?;
        let other = match other.cast::<Dataset>() {
            Ok(d) => d.get().version.clone(),
            Err(_) => {
                let name: String = other.extract()?;
                let inner = inner.clone();
                block_on(py, async move { resolve(&inner.repo, &name).await })??
            }
        };
        let v = self.version.clone();
        let d = block_on(py, async move { v.diff(inner.blocks(), &other).await })?
            .map_err(errors::data)?;
        let list =
            |l: &[(u64, oai::core::Cid)]| l.iter().map(|(i, c)| (*i, c.to_string())).collect();
        Ok(Diff {
            removed: list(&d.removed),
            added: list(&d.added),
        })
    }

    /// Record `index` with its inclusion proof against this version's root.
    fn prove(&self, py: Python<'_>, index: i64) -> PyResult<Proof> {
        let index = self.index(index)?;
        let inner = self.store.get().inner()?;
        let v = self.version.clone();
        let (record, cid, proof) =
            block_on(py, async move { v.prove(inner.blocks(), index).await })?
                .map_err(errors::data)?;
        Ok(Proof {
            record: records::to_python(py, &record)?.unbind(),
            cid: cid.to_string(),
            root: self.version.root().to_string(),
            proof,
        })
    }

    /// The deterministic batch `step` of `epoch` for `seed` and `batch_size`, with a proof for
    /// every record.
    #[pyo3(signature = (seed, batch_size, epoch = 0, step = 0))]
    fn batch(
        &self,
        py: Python<'_>,
        seed: u64,
        batch_size: u64,
        epoch: u64,
        step: u64,
    ) -> PyResult<Batch> {
        let inner = self.store.get().inner()?;
        let v = self.version.clone();
        let b = block_on(py, async move {
            let mut s = Sampler::for_version(&v, Seed::from_u64(seed), batch_size)?;
            s.batch(inner.blocks(), &v, epoch, step).await
        })?
        .map_err(errors::data)?;
        Ok(Batch {
            seed,
            batch_size,
            len: self.version.len(),
            batch: b,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Dataset {} records={} root={}>",
            self.version.cid(),
            self.version.len(),
            self.version.root()
        )
    }
}

/// A record and its inclusion proof against a version root.
#[pyclass(frozen, module = "oai")]
pub struct Proof {
    record: Py<PyAny>,
    cid: String,
    root: String,
    proof: RecordProof,
}

#[pymethods]
impl Proof {
    /// The record's value.
    #[getter]
    fn record(&self, py: Python<'_>) -> Py<PyAny> {
        self.record.clone_ref(py)
    }

    /// The record's CID.
    #[getter]
    fn cid(&self) -> String {
        self.cid.clone()
    }

    /// The record's index.
    #[getter]
    fn index(&self) -> u64 {
        self.proof.index
    }

    /// The version root the proof was made against (hex).
    #[getter]
    fn root(&self) -> String {
        self.root.clone()
    }

    /// Whether the record `cid` (default: this proof's) is at `index` under `root` (default:
    /// the version's).
    #[pyo3(signature = (root = None, cid = None))]
    fn verify(&self, root: Option<&str>, cid: Option<&str>) -> PyResult<bool> {
        let root: oai::core::Digest = root
            .unwrap_or(&self.root)
            .parse()
            .map_err(|e| errors::error(Kind::InvalidInput, format!("root: {e}")))?;
        let cid = parse_cid(cid.unwrap_or(&self.cid))?;
        Ok(self.proof.verify_cid(&cid, &root))
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Proof record {} at {} under {}>",
            self.cid, self.proof.index, self.root
        )
    }
}

/// A deterministic batch: record indices and CIDs with their proofs.
#[pyclass(frozen, module = "oai")]
pub struct Batch {
    seed: u64,
    batch_size: u64,
    len: u64,
    batch: oai::data::dataset::Batch,
}

#[pymethods]
impl Batch {
    /// Record indices, in batch order.
    #[getter]
    fn indices(&self) -> Vec<u64> {
        self.batch.indices.clone()
    }

    /// Record CIDs, in batch order.
    #[getter]
    fn records(&self) -> Vec<String> {
        self.batch.records.iter().map(ToString::to_string).collect()
    }

    /// The epoch.
    #[getter]
    fn epoch(&self) -> u64 {
        self.batch.epoch
    }

    /// The step within the epoch.
    #[getter]
    fn step(&self) -> u64 {
        self.batch.step
    }

    fn __len__(&self) -> usize {
        self.batch.indices.len()
    }

    /// Check the batch: the sampler's indices for its seed, and every record's proof against
    /// the root. Raises `IntegrityError` when it does not check out.
    fn verify(&self) -> PyResult<()> {
        let mut s = Sampler::new(
            self.batch.root,
            self.len,
            Seed::from_u64(self.seed),
            self.batch_size,
        )
        .map_err(errors::data)?;
        self.batch
            .verify(&self.batch.root, &mut s)
            .map_err(errors::data)
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Batch epoch={} step={} indices={:?}>",
            self.batch.epoch, self.batch.step, self.batch.indices
        )
    }
}

/// Records removed and added between two versions.
#[pyclass(frozen, module = "oai", get_all)]
pub struct Diff {
    /// `(index in the old version, CID)` of removed records.
    removed: Vec<(u64, String)>,
    /// `(index in the new version, CID)` of added records.
    added: Vec<(u64, String)>,
}

#[pymethods]
impl Diff {
    fn __repr__(&self) -> String {
        format!("<oai.Diff -{} +{}>", self.removed.len(), self.added.len())
    }
}
