//! Records between Python and Rust: `str` is text, `bytes` is bytes, a numpy array is a tensor
//! and `(array, label)` (or `{"input": array, "label": label}`) a labelled example.

use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use oai::data::dataset::{DType, Record, Tensor};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple};

use crate::errors::{self, Kind};

fn dtype_of(code: &str) -> Option<DType> {
    Some(match code {
        "|u1" => DType::U8,
        "<u4" => DType::U32,
        "<i8" => DType::I64,
        "<f2" => DType::F16,
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        _ => return None,
    })
}

fn numpy_code(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "|u1",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::F16 => "<f2",
        // numpy has no bfloat16: its bit patterns come out as uint16
        DType::BF16 => "<u2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        _ => "|u1",
    }
}

/// A numpy array as a tensor (its bytes copied once, in C order).
pub fn tensor(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a numpy array, got {}",
            obj.get_type().name().map_or("?".into(), |n| n.to_string())
        ))
    })?;
    let code: String = arr.dtype().getattr("str")?.extract()?;
    let dtype = dtype_of(&code).ok_or_else(|| {
        errors::error(
            Kind::InvalidInput,
            format!(
                "arrays of dtype {code} cannot be records (use uint8, uint32, int64, float16, \
                 float32 or float64, little-endian)"
            ),
        )
    })?;
    let shape = arr.shape().iter().map(|&d| d as u64).collect();
    let data: Vec<u8> = arr.call_method1("tobytes", ("C",))?.extract()?;
    Tensor::new(dtype, shape, data).map_err(errors::data)
}

/// A Python value as a record.
pub fn record(obj: &Bound<'_, PyAny>) -> PyResult<Record> {
    if obj.is_none() {
        return Err(PyTypeError::new_err("a record cannot be None"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Record::Text(s.to_str()?.to_string()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Record::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Record::Bytes(b.to_vec()));
    }
    if obj.cast::<PyUntypedArray>().is_ok() {
        return Ok(Record::Tensor(tensor(obj)?));
    }
    let labeled = |input: Bound<'_, PyAny>, label: Bound<'_, PyAny>| -> PyResult<Record> {
        let label: u64 = label
            .extract()
            .map_err(|_| PyTypeError::new_err("a label must be a non-negative int"))?;
        Ok(Record::Labeled {
            input: tensor(&input)?,
            label,
        })
    };
    if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() == 2 {
            return labeled(t.get_item(0)?, t.get_item(1)?);
        }
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        if let (Some(input), Some(label)) = (d.get_item("input")?, d.get_item("label")?) {
            return labeled(input, label);
        }
    }
    Err(PyTypeError::new_err(format!(
        "cannot make a record of {}: give str, bytes, a numpy array, (array, label) or \
         {{'input': array, 'label': label}}",
        obj.get_type().name().map_or("?".into(), |n| n.to_string())
    )))
}

/// A tensor as a read-only numpy array over its bytes.
pub fn array<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    let bytes = PyBytes::new(py, t.data());
    let shape: Vec<u64> = t.shape().to_vec();
    np.call_method1("frombuffer", (bytes, numpy_code(t.dtype())))?
        .call_method1("reshape", (shape,))
}

/// A record as a Python value.
pub fn to_python<'py>(py: Python<'py>, r: &Record) -> PyResult<Bound<'py, PyAny>> {
    Ok(match r {
        Record::Text(s) => PyString::new(py, s).into_any(),
        Record::Bytes(b) => PyBytes::new(py, b).into_any(),
        Record::Tensor(t) => array(py, t)?,
        Record::Labeled { input, label } => {
            (array(py, input)?, *label).into_pyobject(py)?.into_any()
        }
        other => {
            return Err(errors::error(
                Kind::Oai,
                format!("a record kind this oai cannot show: {other:?}"),
            ))
        }
    })
}
