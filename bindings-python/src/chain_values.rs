//! Chain values between Python and Rust: addresses and 32-byte words as `0x` hex strings, wei as
//! Python ints of any size, and events and reverts decoded by name through the contracts'
//! JSON ABIs (`ChainEvent.args`, `ChainRevertError.args`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use alloy::dyn_abi::{DynSolValue, EventExt, JsonAbiExt};
use alloy::json_abi::JsonAbi;
use alloy::primitives::{IntoLogData, LogData};
use alloy::sol_types::SolInterface;
use oai::chain::bindings::{
    DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket,
};
use oai::chain::{Address, Deployment, Event, Revert, B256, U256};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple};

use crate::errors::{self, Kind};

/// An account or contract address from a `0x` hex string (any case).
#[derive(Debug, Clone, Copy)]
pub struct Addr(pub Address);

impl<'a, 'py> FromPyObject<'a, 'py> for Addr {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let s = obj.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "an address is a 0x hex str, not {}",
                type_name(&obj)
            ))
        })?;
        let s = s.to_str()?;
        s.parse::<Address>()
            .map(Addr)
            .map_err(|e| errors::error(Kind::InvalidInput, format!("{s:?} is not an address: {e}")))
    }
}

/// An amount of wei from a Python int (0 ≤ wei < 2²⁵⁶; `bool` and `float` are refused).
#[derive(Debug, Clone, Copy)]
pub struct Wei(pub U256);

impl<'a, 'py> FromPyObject<'a, 'py> for Wei {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.cast::<PyInt>().is_err() || obj.cast::<PyBool>().is_ok() {
            return Err(PyTypeError::new_err(format!(
                "an amount of wei is an int, not {}",
                type_name(&obj)
            )));
        }
        let s = obj.str()?.to_string();
        U256::from_str_radix(&s, 10).map(Wei).map_err(|_| {
            errors::error(
                Kind::InvalidInput,
                format!("{s} wei is not an amount (0 <= wei < 2**256)"),
            )
        })
    }
}

/// A 32-byte word (a commitment, a case id) from a `0x` hex string of 64 digits or 32 bytes.
#[derive(Debug, Clone, Copy)]
pub struct Word(pub B256);

impl<'a, 'py> FromPyObject<'a, 'py> for Word {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            let b = b.as_bytes();
            return B256::try_from(b).map(Word).map_err(|_| {
                errors::error(
                    Kind::InvalidInput,
                    format!("a word is 32 bytes, not {}", b.len()),
                )
            });
        }
        let s = obj.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a 32-byte word is a 0x hex str or bytes, not {}",
                type_name(&obj)
            ))
        })?;
        let s = s.to_str()?;
        s.parse::<B256>().map(Word).map_err(|e| {
            errors::error(
                Kind::InvalidInput,
                format!("{s:?} is not a 32-byte word: {e}"),
            )
        })
    }
}

fn type_name(obj: &Borrowed<'_, '_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python int of any size.
pub fn int<'py>(py: Python<'py>, v: impl std::fmt::Display) -> PyResult<Bound<'py, PyAny>> {
    py.get_type::<PyInt>().call1((v.to_string(),))
}

/// An address as Python reads it: the EIP-55 checksummed hex string.
pub fn address(a: &Address) -> String {
    a.to_checksum(None)
}

/// A decoded ABI value as Python: ints, checksummed address strings, `0x` hex strings for
/// fixed bytes, `bytes`, `str`, lists and tuples.
fn value<'py>(py: Python<'py>, v: &DynSolValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        DynSolValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        DynSolValue::Int(i, _) => int(py, i)?,
        DynSolValue::Uint(u, _) => int(py, u)?,
        DynSolValue::FixedBytes(w, size) => PyString::new(
            py,
            &format!("0x{}", alloy::primitives::hex::encode(&w[..*size])),
        )
        .into_any(),
        DynSolValue::Address(a) => PyString::new(py, &address(a)).into_any(),
        DynSolValue::Bytes(b) => PyBytes::new(py, b).into_any(),
        DynSolValue::String(s) => PyString::new(py, s).into_any(),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => items
            .iter()
            .map(|x| value(py, x))
            .collect::<PyResult<Vec<_>>>()?
            .into_pyobject(py)?
            .into_any(),
        DynSolValue::Tuple(items) => PyTuple::new(
            py,
            items
                .iter()
                .map(|x| value(py, x))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        other => PyString::new(py, &format!("{other:?}")).into_any(),
    })
}

/// The contracts' ABIs, by contract name.
static ABIS: LazyLock<BTreeMap<&'static str, JsonAbi>> = LazyLock::new(|| {
    BTreeMap::from([
        ("NodeRegistry", NodeRegistry::abi::contract()),
        ("TrainingMarket", TrainingMarket::abi::contract()),
        ("RefereeAdjudicator", RefereeAdjudicator::abi::contract()),
        ("DatasetDAO", DatasetDAO::abi::contract()),
        ("TrainingDAO", TrainingDAO::abi::contract()),
    ])
});

/// `names` paired with `values` as a dict (ABI parameters without a name are `arg<i>`).
fn args<'py>(
    py: Python<'py>,
    names: impl Iterator<Item = String>,
    values: &[DynSolValue],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (i, (name, v)) in names.zip(values).enumerate() {
        let name = if name.is_empty() {
            format!("arg{i}")
        } else {
            name
        };
        d.set_item(name, value(py, v)?)?;
    }
    Ok(d)
}

/// An event of the oai contracts, decoded: which contract (and its address), the event's name
/// and its arguments by name.
#[pyclass(frozen, get_all, module = "oai")]
pub struct ChainEvent {
    /// The block it was emitted in.
    block: u64,
    /// `NodeRegistry`, `TrainingMarket`, `RefereeAdjudicator`, `DatasetDAO` or `TrainingDAO`.
    contract: String,
    /// The emitting contract's address.
    address: String,
    /// The event's name, e.g. `JobPosted`.
    name: String,
    /// Its arguments by name (ints, address and hex strings).
    args: Py<PyDict>,
}

impl ChainEvent {
    /// `event`, emitted in `block` by a contract of `deployment` (or a dataset DAO).
    pub fn new(
        py: Python<'_>,
        block: u64,
        event: &Event,
        deployment: &Deployment,
    ) -> PyResult<Self> {
        let (contract, emitter, log): (_, _, LogData) = match event {
            Event::Registry(e) => ("NodeRegistry", deployment.registry, e.to_log_data()),
            Event::Market(e) => ("TrainingMarket", deployment.market, e.to_log_data()),
            Event::Referee(e) => (
                "RefereeAdjudicator",
                deployment.adjudicator,
                e.to_log_data(),
            ),
            Event::Dao { dao, event } => ("DatasetDAO", *dao, event.to_log_data()),
            Event::Governance(e) => match deployment.dao {
                Some(dao) => ("TrainingDAO", dao, e.to_log_data()),
                None => {
                    return Err(errors::error(
                        Kind::Oai,
                        "a training DAO event from a deployment without one".to_string(),
                    ))
                }
            },
            other => {
                return Err(errors::error(
                    Kind::Oai,
                    format!("an event this oai cannot decode: {other:?}"),
                ))
            }
        };
        let undecodable =
            |why: String| errors::error(Kind::Oai, format!("a {contract} event: {why}"));
        let topic = log.topics().first().copied().unwrap_or_default();
        let abi_event = ABIS[contract]
            .events()
            .find(|e| e.selector() == topic)
            .ok_or_else(|| undecodable(format!("no event with the signature {topic}")))?;
        let decoded = abi_event
            .decode_log(&log)
            .map_err(|e| undecodable(e.to_string()))?;
        let (mut indexed, mut body) = (decoded.indexed.into_iter(), decoded.body.into_iter());
        let mut names = Vec::new();
        let mut values = Vec::new();
        for input in &abi_event.inputs {
            let v = if input.indexed {
                indexed.next()
            } else {
                body.next()
            };
            names.push(input.name.clone());
            values.push(v.ok_or_else(|| undecodable("fewer values than inputs".into()))?);
        }
        Ok(ChainEvent {
            block,
            contract: contract.into(),
            address: address(&emitter),
            name: abi_event.name.clone(),
            args: args(py, names.into_iter(), &values)?.unbind(),
        })
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[pymethods]
impl ChainEvent {
    fn __repr__(&self, py: Python<'_>) -> String {
        let args = self
            .args
            .bind(py)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "<oai.ChainEvent block {} {}.{}({args})>",
            self.block, self.contract, self.name
        )
    }
}

/// A decoded revert as `(contract, error, fields)`: the contract whose custom error it is (empty
/// for Solidity's `Error(string)` and `Panic(uint256)`), the error's name and its arguments by
/// name; revert data nothing decodes is `(None, None, {"data": bytes})`.
pub fn revert_parts<'py>(
    py: Python<'py>,
    revert: &Revert,
) -> PyResult<(Option<&'static str>, Option<String>, Bound<'py, PyDict>)> {
    let (contract, data) = match revert {
        Revert::Registry(e) => ("NodeRegistry", e.abi_encode()),
        Revert::Market(e) => ("TrainingMarket", e.abi_encode()),
        Revert::Referee(e) => ("RefereeAdjudicator", e.abi_encode()),
        Revert::Dao(e) => ("DatasetDAO", e.abi_encode()),
        Revert::Governance(e) => ("TrainingDAO", e.abi_encode()),
        Revert::Message(m) => {
            let d = PyDict::new(py);
            d.set_item("message", m)?;
            return Ok((Some(""), Some("Error".into()), d));
        }
        Revert::Panic(code) => {
            let d = PyDict::new(py);
            d.set_item("code", int(py, code)?)?;
            return Ok((Some(""), Some("Panic".into()), d));
        }
        other => {
            let d = PyDict::new(py);
            let raw = match other {
                Revert::Raw(b) => b.to_vec(),
                _ => Vec::new(),
            };
            d.set_item("data", PyBytes::new(py, &raw))?;
            return Ok((None, None, d));
        }
    };
    let error = (data.len() >= 4)
        .then(|| {
            ABIS[contract]
                .errors()
                .find(|e| e.selector()[..] == data[..4])
        })
        .flatten();
    let decoded = error.and_then(|e| e.abi_decode_input(&data[4..]).ok().map(|v| (e, v)));
    match decoded {
        Some((e, values)) => {
            let names = e.inputs.iter().map(|p| p.name.clone());
            Ok((
                Some(contract),
                Some(e.name.clone()),
                args(py, names, &values)?,
            ))
        }
        None => {
            let d = PyDict::new(py);
            d.set_item("data", PyBytes::new(py, &data))?;
            Ok((Some(contract), None, d))
        }
    }
}
