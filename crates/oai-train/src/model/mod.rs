//! The models oai trains: an MLP classifier and two decoder-only language models (a GPT-style
//! transformer and a Llama-family model), with optional LoRA adapters. Models are plain functions of their [`Weights`] (the trainable
//! [`Params`], or [`QuantizedWeights`] for inference); every matmul, exp, log and tanh goes
//! through the pass's [`Kernels`] (or a quantised matmul), every random mask through
//! [`Dropout`].

mod generate;
#[cfg(test)]
mod gradients;
mod llama;
mod mlp;
pub mod ops;
mod transformer;
mod weights;

use candle_core::{Device, Tensor};
use oai_core::Seed;
use oai_data::dataset::Record;

use crate::params::{ParamDef, Params};
use crate::spec::{LlamaSpec, LoraBase, ModelSpec, TransformerSpec};
use crate::Kernels;
use crate::{Error, Result};

pub use generate::{Generation, LlamaGenerator, Sampling};
pub use ops::Dropout;
pub(crate) use weights::finite;
pub use weights::{Quantization, QuantizedWeights, Weights};

/// How one forward pass computes: with which kernels, and with dropout (training, masks from
/// the step's seed) or without (evaluation).
#[derive(Debug, Clone)]
pub struct Pass {
    /// The kernels every matmul and transcendental function runs on.
    pub kernels: Kernels,
    /// Dropout masks, when training.
    pub dropout: Option<Dropout>,
}

impl Pass {
    /// A training pass: dropout on, masks from `dropout`.
    pub fn train(kernels: Kernels, dropout: Dropout) -> Self {
        Self {
            kernels,
            dropout: Some(dropout),
        }
    }

    /// An evaluation pass: dropout off.
    pub fn eval(kernels: Kernels) -> Self {
        Self {
            kernels,
            dropout: None,
        }
    }
}

/// A model built from a [`ModelSpec`].
#[derive(Debug, Clone)]
pub enum Model {
    /// MLP classifier.
    Mlp {
        /// Input features.
        input: usize,
        /// Layer widths: input, hidden..., classes.
        widths: Vec<usize>,
        /// Dropout after hidden layers.
        dropout: f64,
    },
    /// Transformer language model, optionally with LoRA adapters `(rank, alpha)`.
    Transformer {
        /// Sizes.
        spec: TransformerSpec,
        /// LoRA rank and alpha when only adapters train.
        lora: Option<(usize, f64)>,
    },
    /// Llama-family language model, optionally with LoRA adapters `(rank, alpha)`.
    Llama {
        /// Sizes and constants.
        spec: LlamaSpec,
        /// LoRA rank and alpha when only adapters train.
        lora: Option<(usize, f64)>,
    },
}

impl Model {
    /// The model a spec describes.
    pub fn new(spec: &ModelSpec) -> Self {
        match spec {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                dropout,
            } => {
                let mut widths = vec![*input];
                widths.extend(hidden);
                widths.push(*classes);
                Model::Mlp {
                    input: *input,
                    widths,
                    dropout: *dropout,
                }
            }
            ModelSpec::Transformer(t) => Model::Transformer {
                spec: t.clone(),
                lora: None,
            },
            ModelSpec::Llama(l) => Model::Llama {
                spec: l.clone(),
                lora: None,
            },
            ModelSpec::Lora {
                base, rank, alpha, ..
            } => {
                let lora = Some((*rank, *alpha));
                match base {
                    LoraBase::Transformer(t) => Model::Transformer {
                        spec: t.clone(),
                        lora,
                    },
                    LoraBase::Llama(l) => Model::Llama {
                        spec: l.clone(),
                        lora,
                    },
                }
            }
        }
    }

    /// The parameters that train, in declaration order.
    pub fn param_defs(&self) -> Vec<ParamDef> {
        match self {
            Model::Mlp { widths, .. } => mlp::defs(widths),
            Model::Transformer { spec, lora: None } => transformer::defs(spec),
            Model::Transformer {
                spec,
                lora: Some((rank, _)),
            } => transformer::lora_defs(spec, *rank),
            Model::Llama { spec, lora: None } => llama::defs(spec),
            Model::Llama {
                spec,
                lora: Some((rank, _)),
            } => llama::lora_defs(spec, *rank),
        }
    }

    /// How many parameters train and how many are frozen (a LoRA base), counted without
    /// building the definitions of every layer; saturates at `u64::MAX`.
    pub fn param_count(&self) -> (u64, u64) {
        match self {
            Model::Mlp { widths, .. } => (mlp::param_count(widths), 0),
            Model::Transformer { spec, lora: None } => (transformer::param_count(spec), 0),
            Model::Transformer {
                spec,
                lora: Some((rank, _)),
            } => (
                transformer::lora_param_count(spec, *rank),
                transformer::param_count(spec),
            ),
            Model::Llama { spec, lora: None } => (llama::param_count(spec), 0),
            Model::Llama {
                spec,
                lora: Some((rank, _)),
            } => (
                llama::lora_param_count(spec, *rank),
                llama::param_count(spec),
            ),
        }
    }

    /// The frozen base parameters (LoRA only).
    pub fn base_defs(&self) -> Vec<ParamDef> {
        match self {
            Model::Transformer {
                spec,
                lora: Some(_),
            } => transformer::defs(spec),
            Model::Llama {
                spec,
                lora: Some(_),
            } => llama::defs(spec),
            _ => Vec::new(),
        }
    }

    /// Inputs and targets of a batch of records on `device`.
    ///
    /// MLP: `Labeled` records whose input has `input` elements (f32 or u8). Language models:
    /// `Bytes` or `Text` records of exactly `context + 1` tokens (bytes); targets are inputs
    /// shifted by one.
    pub fn batch(&self, records: &[Record], device: &Device) -> Result<(Tensor, Tensor)> {
        match self {
            Model::Mlp { input, widths, .. } => {
                mlp::batch(records, *input, *widths.last().expect("classes"), device)
            }
            Model::Transformer { spec, .. } => {
                transformer::batch(records, spec.vocab, spec.context, device)
            }
            Model::Llama { spec, .. } => {
                transformer::batch(records, spec.vocab, spec.context, device)
            }
        }
    }

    /// Logits: `[batch, classes]` (MLP) or `[batch, context, vocab]` (language models).
    pub fn logits<W: Weights + ?Sized>(&self, p: &W, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        match self {
            Model::Mlp {
                widths, dropout, ..
            } => mlp::forward(p, x, widths.len() - 1, *dropout, pass),
            Model::Transformer { spec, lora } => {
                transformer::forward(p, x, spec, lora_scale(*lora), pass)
            }
            Model::Llama { spec, lora } => {
                let (b, t) = x.dims2()?;
                let rows = llama::forward_rows(p, x, spec, lora_scale(*lora), pass)?;
                Ok(rows.reshape((b, t, spec.vocab))?)
            }
        }
    }

    /// Mean cross-entropy of a batch.
    pub fn loss(&self, p: &Params, x: &Tensor, y: &Tensor, pass: &Pass) -> Result<Tensor> {
        let logits = match self {
            Model::Mlp { .. } => self.logits(p, x, pass)?,
            Model::Transformer { spec, lora } => {
                transformer::forward_rows(p, x, spec, lora_scale(*lora), pass)?
            }
            Model::Llama { spec, lora } => {
                llama::forward_rows(p, x, spec, lora_scale(*lora), pass)?
            }
        };
        Ok(pass.kernels.cross_entropy(&logits, &y.flatten_all()?)?)
    }
}

/// The factor LoRA's branch is scaled by, `alpha / rank`, for adapters `(rank, alpha)`.
fn lora_scale(lora: Option<(usize, f64)>) -> Option<f64> {
    lora.map(|(r, a)| a / r as f64)
}

/// The dropout seed of step `step` of a run with seed `run`.
pub fn dropout_seed(run: Seed, step: u64) -> Seed {
    run.derive(format!("dropout/{step}").as_bytes())
}

pub(crate) fn bad_record(reason: String) -> Error {
    Error::malformed("batch record", reason)
}
