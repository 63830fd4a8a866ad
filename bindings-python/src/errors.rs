//! Rust errors as the exceptions of `oai.errors` (defined in Python, so that they can also
//! derive from `ValueError`, `LookupError` or `ConnectionError`).

use oai::chain::Error as ChainError;
use oai::core::ErrorKind;
use oai::data::Error as DataError;
use oai::rag::Error as RagError;
use oai::train::Error as TrainError;
use oai::verify::Error as VerifyError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

/// The classes of `oai.errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `OaiError`: anything else.
    Oai,
    /// `IntegrityError`: bytes that do not match their CID, a proof or log that does not check.
    Integrity,
    /// `NotFoundError` (also a `LookupError`).
    NotFound,
    /// `InvalidInputError` (also a `ValueError`).
    InvalidInput,
    /// `StoreClosedError`.
    StoreClosed,
    /// `UnavailableError` (also a `ConnectionError`): an IPFS node that cannot be reached.
    Unavailable,
    /// `ConflictError`: a head moved under a compare-and-swap.
    Conflict,
    /// `ComputeError`: a log of another compute class or kernel version.
    Compute,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Oai => "OaiError",
            Kind::Integrity => "IntegrityError",
            Kind::NotFound => "NotFoundError",
            Kind::InvalidInput => "InvalidInputError",
            Kind::StoreClosed => "StoreClosedError",
            Kind::Unavailable => "UnavailableError",
            Kind::Conflict => "ConflictError",
            Kind::Compute => "ComputeError",
        }
    }
}

/// A Python exception of `kind` with `message`.
pub fn error(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| {
        match py
            .import("oai.errors")
            .and_then(|m| m.getattr(kind.class()))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
        {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

impl From<ErrorKind> for Kind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Integrity => Kind::Integrity,
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::InvalidInput => Kind::InvalidInput,
            ErrorKind::Unavailable => Kind::Unavailable,
            ErrorKind::Conflict => Kind::Conflict,
            ErrorKind::Compute => Kind::Compute,
            _ => Kind::Oai,
        }
    }
}

/// `oai-data`'s errors as exceptions.
pub fn data(e: DataError) -> PyErr {
    error(e.kind().into(), e.to_string())
}

/// `oai-train`'s errors as exceptions.
pub fn train(e: TrainError) -> PyErr {
    error(e.kind().into(), e.to_string())
}

/// `oai-verify`'s errors as exceptions (a chain's revert is a `ChainRevertError`).
pub fn verify(e: VerifyError) -> PyErr {
    match e {
        VerifyError::Chain(c) => chain(c),
        other => error(other.kind().into(), other.to_string()),
    }
}

/// `oai-rag`'s errors as exceptions: missing model files are `NotFoundError`, a vector of
/// the wrong size or an empty text `InvalidInputError`, a corrupt saved index
/// `IntegrityError`, a Qdrant server that fails `UnavailableError`.
pub fn rag(e: RagError) -> PyErr {
    error(e.kind().into(), e.to_string())
}

/// A CID from its string form, or `InvalidInputError`.
pub fn parse_cid(s: &str) -> PyResult<oai::core::Cid> {
    oai::core::ids::parse(s).map_err(|e| error(Kind::InvalidInput, format!("{s:?}: {e}")))
}

/// `oai-chain`'s errors as exceptions: a revert is a `ChainRevertError` carrying the decoded
/// contract error (`call`, `contract`, `error`, `fields`); an account nobody can sign for and
/// arguments no contract accepts are `InvalidInputError`; a node that fails is
/// `UnavailableError`.
pub fn chain(e: ChainError) -> PyErr {
    if let ChainError::Reverted { call, revert } = &e {
        return Python::attach(|py| revert_error(py, call, revert, e.to_string()));
    }
    error(e.kind().into(), e.to_string())
}

fn revert_error(py: Python<'_>, call: &str, revert: &oai::chain::Revert, message: String) -> PyErr {
    let made = (|| {
        let (contract, name, fields) = crate::chain_values::revert_parts(py, revert)?;
        let class = py.import("oai.errors")?.getattr("ChainRevertError")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("call", call)?;
        kwargs.set_item("contract", contract)?;
        kwargs.set_item("error", name)?;
        kwargs.set_item("fields", fields)?;
        class.call((message.clone(),), Some(&kwargs))
    })();
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(message),
    }
}
