//! Where a forward pass reads its weights: the trainable [`Params`], or [`QuantizedWeights`]
//! for CPU inference with 8 / 4-bit linear layers (oai-kernels' [`QMatrix`], whose products
//! have the bits of the verifiable matmul on the dequantised weights).

use std::collections::BTreeMap;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use oai_kernels::quantized::{BlockFormat, QMatrix};

use crate::params::Params;
use crate::Kernels;
use crate::{Error, Result};

/// Named weights a model's forward pass reads.
pub trait Weights {
    /// The tensor called `name`, if there is one.
    fn get_opt(&self, name: &str) -> Option<&Tensor>;

    /// The tensor called `name`.
    fn get(&self, name: &str) -> Result<&Tensor> {
        self.get_opt(name)
            .ok_or_else(|| Error::malformed("weights", format!("no tensor {name}")))
    }

    /// `x @ W^T` for a 2-D `x` and the linear layer `name` (weight `{name}.weight`), on `k`.
    fn linear_weight(&self, name: &str, x: &Tensor, k: Kernels) -> Result<Tensor> {
        Ok(k.matmul_t(x, self.get(&format!("{name}.weight"))?)?)
    }

    /// The rows `ids` (a 1-D u32 tensor) of the embedding `name` (weight `{name}.weight`).
    fn embedding(&self, name: &str, ids: &Tensor) -> Result<Tensor> {
        Ok(self.get(&format!("{name}.weight"))?.index_select(ids, 0)?)
    }

    /// `x @ E^T` for the embedding `name` used as the output head too (tied embeddings).
    /// The product reads `E` through a view (a reshape to its own shape: no copy): a trainer
    /// sinks a weight's gradient straight out of the matmul, which would part it from the
    /// lookup's; through the view, candle adds the two in its own order.
    fn tied_head(&self, name: &str, x: &Tensor, k: Kernels) -> Result<Tensor> {
        let e = self.get(&format!("{name}.weight"))?;
        Ok(k.matmul_t(x, &e.reshape(e.dims())?)?)
    }
}

impl Weights for Params {
    fn get_opt(&self, name: &str) -> Option<&Tensor> {
        Params::get_opt(self, name)
    }
}

/// Weight quantisation for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// 8-bit blocks of 32 (ggml `Q8_0`).
    Int8,
    /// 4-bit blocks of 32 (ggml `Q4_0`).
    Int4,
}

/// Inference weights: linear layers (and embeddings) as quantised blocks, the rest in f32.
/// Each product has the bits of the verifiable matmul on the dequantised matrix, the
/// activations staying f32; an embedding row is its dequantised row.
#[derive(Debug, Default)]
pub struct QuantizedWeights {
    dense: BTreeMap<String, Tensor>,
    /// By layer name (`blk.0.attn_q` for `blk.0.attn_q.weight`).
    quantized: BTreeMap<String, QMatrix>,
}

impl QuantizedWeights {
    /// Quantise `tensors` (e.g. a checkpoint's parameters) with candle's quantiser: every
    /// linear layer's matrix (a rank-2 `*.weight` whose input size is a multiple of 32,
    /// embeddings called `*_emb` excepted), the rest kept in f32.
    pub fn new(tensors: BTreeMap<String, Tensor>, kind: Quantization) -> Result<Self> {
        let dtype = match kind {
            Quantization::Int8 => GgmlDType::Q8_0,
            Quantization::Int4 => GgmlDType::Q4_0,
        };
        let mut weights = Self::default();
        for (name, t) in tensors {
            let linear = name.strip_suffix(".weight").filter(|_| {
                t.rank() == 2 && !name.ends_with("_emb") && t.dim(1).is_ok_and(|d| d % 32 == 0)
            });
            match linear {
                Some(layer) => {
                    let q = QTensor::quantize(&t, dtype)?;
                    let format = block_format(dtype).expect("Q8_0 and Q4_0 are block formats");
                    let q = matrix(&q, format)?;
                    weights.quantized.insert(layer.to_string(), q);
                }
                None => {
                    weights.dense.insert(name, t);
                }
            }
        }
        Ok(weights)
    }

    /// Weights as a file holds them: each rank-2 `*.weight` in a format [`QMatrix`] multiplies
    /// (`Q4_0`, `Q4_1`, `Q8_0`) kept in its blocks, every other tensor dequantised to f32.
    /// A scale or an f32 weight that is not finite is [`Error::Malformed`].
    pub fn from_file_tensors(tensors: BTreeMap<String, QTensor>) -> Result<Self> {
        let mut weights = Self::default();
        for (name, t) in tensors {
            let layer = name.strip_suffix(".weight").filter(|_| t.rank() == 2);
            match (layer, block_format(t.dtype())) {
                (Some(layer), Some(format)) => {
                    let q = matrix(&t, format).map_err(|e| at(&name, e))?;
                    weights.quantized.insert(layer.to_string(), q);
                }
                _ => {
                    let dense = finite(&name, t.dequantize(&Device::Cpu)?)?;
                    weights.dense.insert(name, dense);
                }
            }
        }
        Ok(weights)
    }

    /// Number of quantised matrices.
    pub fn quantized_layers(&self) -> usize {
        self.quantized.len()
    }

    /// Bytes the weights hold: the quantised matrices and the f32 tensors.
    pub fn bytes(&self) -> usize {
        let quantized: usize = self.quantized.values().map(QMatrix::bytes).sum();
        let dense: usize = self.dense.values().map(|t| t.elem_count() * 4).sum();
        quantized + dense
    }
}

/// The [`QMatrix`] format of ggml's `dtype`, if it is one.
fn block_format(dtype: GgmlDType) -> Option<BlockFormat> {
    match dtype {
        GgmlDType::Q4_0 => Some(BlockFormat::Q4_0),
        GgmlDType::Q4_1 => Some(BlockFormat::Q4_1),
        GgmlDType::Q8_0 => Some(BlockFormat::Q8_0),
        _ => None,
    }
}

/// `t`'s blocks (rank 2, in `format`) as a [`QMatrix`].
fn matrix(t: &QTensor, format: BlockFormat) -> Result<QMatrix> {
    let (rows, cols) = t.shape().dims2()?;
    Ok(QMatrix::from_blocks(format, rows, cols, &t.data()?)?)
}

/// `t`, a file's tensor `name`, if every value is finite; else [`Error::Malformed`].
pub(crate) fn finite(name: &str, t: Tensor) -> Result<Tensor> {
    let all: Vec<f32> = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1()?;
    match all.iter().all(|v| v.is_finite()) {
        true => Ok(t),
        false => Err(Error::malformed(
            "weights",
            format!("{name} holds a value that is not finite"),
        )),
    }
}

/// `e` as a malformed file's tensor `name`.
fn at(name: &str, e: Error) -> Error {
    Error::malformed("weights", format!("{name}: {e}"))
}

impl Weights for QuantizedWeights {
    fn get_opt(&self, name: &str) -> Option<&Tensor> {
        self.dense.get(name)
    }

    fn linear_weight(&self, name: &str, x: &Tensor, k: Kernels) -> Result<Tensor> {
        match self.quantized.get(name) {
            Some(q) => Ok(q.matmul_t(x)?),
            None => Ok(k.matmul_t(x, self.get(&format!("{name}.weight"))?)?),
        }
    }

    fn embedding(&self, name: &str, ids: &Tensor) -> Result<Tensor> {
        let Some(q) = self.quantized.get(name) else {
            return Ok(self.get(&format!("{name}.weight"))?.index_select(ids, 0)?);
        };
        let ids: Vec<u32> = ids.to_vec1()?;
        let rows = q.dequantize_rows(&ids)?;
        Ok(Tensor::from_vec(rows, (ids.len(), q.cols()), &Device::Cpu)?)
    }

    fn tied_head(&self, name: &str, x: &Tensor, k: Kernels) -> Result<Tensor> {
        self.linear_weight(name, x, k)
    }
}
