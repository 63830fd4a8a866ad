use oai_core::{ids, Cid, Digest};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Element type of a tensor record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DType {
    /// 8-bit unsigned integer.
    U8,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit signed integer.
    I64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }
}

/// A dense tensor: element type, shape and little-endian row-major bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tensor {
    // fields in DAG-CBOR canonical key order
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    dtype: DType,
    shape: Vec<u64>,
}

impl Tensor {
    /// A tensor, checking that `data` holds exactly `shape`'s element count.
    pub fn new(dtype: DType, shape: Vec<u64>, data: Vec<u8>) -> Result<Self> {
        let t = Self { data, dtype, shape };
        t.check()?;
        Ok(t)
    }

    /// An `f32` tensor from values.
    pub fn from_f32(shape: Vec<u64>, values: &[f32]) -> Result<Self> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::new(DType::F32, shape, data)
    }

    fn check(&self) -> Result<()> {
        let n = self
            .shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .and_then(|n| n.checked_mul(self.dtype.size() as u64));
        if n != Some(self.data.len() as u64) {
            return Err(Error::Malformed {
                what: "tensor record",
                reason: format!(
                    "shape {:?} of {:?} needs {n:?} bytes, data has {}",
                    self.shape,
                    self.dtype,
                    self.data.len()
                ),
            });
        }
        Ok(())
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }
    /// Raw little-endian bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// One item of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Record {
    /// UTF-8 text.
    Text(String),
    /// Opaque bytes.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A tensor.
    Tensor(Tensor),
    /// A labelled example: input tensor and integer class.
    Labeled {
        /// The input.
        input: Tensor,
        /// The class.
        label: u64,
    },
}

impl Record {
    /// Canonical DAG-CBOR encoding: the bytes a record's CID names.
    pub fn encode(&self) -> Vec<u8> {
        serde_ipld_dagcbor::to_vec(self).expect("records always encode")
    }

    /// Decode and validate a record.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let r: Record = crate::cbor::decode("record", None, bytes)?;
        r.validate()?;
        Ok(r)
    }

    /// Check tensor shapes.
    pub fn validate(&self) -> Result<()> {
        match self {
            Record::Tensor(t) | Record::Labeled { input: t, .. } => t.check(),
            _ => Ok(()),
        }
    }

    /// The record's CID: CIDv1, dag-cbor, sha2-256 of [`Record::encode`].
    pub fn cid(&self) -> Cid {
        ids::cid_v1(ids::DAG_CBOR, &self.encode())
    }
}

/// A record with its encoding and digest computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub record: Record,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl Encoded {
    pub fn new(record: Record) -> Result<Self> {
        record.validate()?;
        let bytes = record.encode();
        let digest = Digest::of(&bytes);
        Ok(Self {
            record,
            bytes,
            digest,
        })
    }

    pub fn cid(&self) -> Cid {
        ids::cid_v1_of_digest(ids::DAG_CBOR, &self.digest)
    }

    /// The record as a standalone dag-cbor block (no re-hashing).
    pub fn into_block(self) -> Result<crate::store::Block> {
        crate::store::Block::from_digest(ids::DAG_CBOR, &self.digest, self.bytes.into())
    }
}
