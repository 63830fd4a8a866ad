//! Where a forward pass reads its weights: the trainable [`Params`], or [`QuantizedWeights`]
//! for CPU inference with int8 / 4-bit linear layers (candle's quantized tensors).

use std::collections::BTreeMap;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

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

/// Inference weights: every linear layer's matrix (a rank-2 `*.weight` whose input size is a
/// multiple of 32, embeddings excepted) quantised, the rest kept in f32.
#[derive(Debug)]
pub struct QuantizedWeights {
    dense: BTreeMap<String, Tensor>,
    quantized: BTreeMap<String, QMatMul>,
    kind: Quantization,
}

impl QuantizedWeights {
    /// Quantise `tensors` (e.g. a checkpoint's parameters).
    pub fn new(tensors: BTreeMap<String, Tensor>, kind: Quantization) -> Result<Self> {
        let dtype = match kind {
            Quantization::Int8 => GgmlDType::Q8_0,
            Quantization::Int4 => GgmlDType::Q4_0,
        };
        let mut dense = BTreeMap::new();
        let mut quantized = BTreeMap::new();
        for (name, t) in tensors {
            let linear = name.strip_suffix(".weight").filter(|_| {
                t.rank() == 2 && !name.ends_with("_emb") && t.dim(1).is_ok_and(|d| d % 32 == 0)
            });
            match linear {
                Some(layer) => {
                    let q = QTensor::quantize(&t, dtype)?;
                    quantized.insert(layer.to_string(), QMatMul::from_qtensor(q)?);
                }
                None => {
                    dense.insert(name, t);
                }
            }
        }
        Ok(Self {
            dense,
            quantized,
            kind,
        })
    }

    /// The quantisation used.
    pub fn kind(&self) -> Quantization {
        self.kind
    }

    /// Number of quantised matrices.
    pub fn quantized_layers(&self) -> usize {
        self.quantized.len()
    }
}

impl Weights for QuantizedWeights {
    fn get_opt(&self, name: &str) -> Option<&Tensor> {
        self.dense.get(name)
    }

    fn linear_weight(&self, name: &str, x: &Tensor, k: Kernels) -> Result<Tensor> {
        match self.quantized.get(name) {
            Some(q) => Ok(q.forward(x)?),
            None => Ok(k.matmul_t(x, self.get(&format!("{name}.weight"))?)?),
        }
    }
}
