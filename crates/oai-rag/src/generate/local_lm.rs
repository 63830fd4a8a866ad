//! [`LocalLm`]: a byte-level transformer trained with oai-train, run on the CPU with quantised
//! weights (feature `local-lm`, which builds the trainer).

use candle_core::{Device, Tensor, D};
use oai_core::Cid;
use oai_data::BlockStore;
use oai_train::model::{Pass, Quantization, QuantizedWeights};
use oai_train::params::check_tensors;
use oai_train::{Checkpoint, Kernels, Model, ModelSpec, TransformerSpec};

use super::{check_question, Answer, Generator, Passage};
use crate::{Error, Result};

/// A byte-level transformer language model trained with oai-train (or any safetensors file
/// with the same tensor names and shapes), run on the CPU with int8 or 4-bit linear layers.
///
/// The prompt is the passages that fit the model's context window, best first, each as
/// `"[n] text\n"`, then `"Q: question\nA:"`; the answer is generated greedily (deterministic)
/// until a newline or `max_new` bytes. Bytes outside the model's vocabulary become `?`.
#[derive(Debug)]
pub struct LocalLm {
    model: Model,
    spec: TransformerSpec,
    weights: QuantizedWeights,
    max_new: usize,
}

impl LocalLm {
    /// Load the checkpoint `checkpoint` (a UnixFS `safetensors` file, verified block by block)
    /// of a transformer with sizes `spec`, quantised as `quantization`.
    pub async fn load<S: BlockStore + Clone + 'static>(
        store: &S,
        checkpoint: &Cid,
        spec: TransformerSpec,
        quantization: Quantization,
    ) -> Result<Self> {
        let ckpt = Checkpoint::get(store, checkpoint, &Device::Cpu)
            .await
            .map_err(|e| Error::Model {
                path: checkpoint.to_string(),
                reason: e.to_string(),
            })?;
        let model = Model::new(&ModelSpec::Transformer(spec.clone()));
        check_tensors(&model.param_defs(), &ckpt.params).map_err(|e| Error::Model {
            path: checkpoint.to_string(),
            reason: e.to_string(),
        })?;
        let weights =
            QuantizedWeights::new(ckpt.params, quantization).map_err(|e| Error::Model {
                path: checkpoint.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            model,
            spec,
            weights,
            max_new: 64,
        })
    }

    /// Generate at most `max_new` bytes per answer (default 64).
    pub fn max_new(mut self, max_new: usize) -> Self {
        self.max_new = max_new;
        self
    }

    /// Greedy continuation of `prompt` (the last `context` bytes are seen), stopping after a
    /// newline or `max_new` bytes.
    pub fn continue_text(&self, prompt: &[u8], max_new: usize) -> Result<Vec<u8>> {
        crate::error::compute_here()?;
        let vocab = self.spec.vocab;
        let mut ids: Vec<u32> = prompt
            .iter()
            .map(|b| {
                if (*b as usize) < vocab {
                    *b as u32
                } else {
                    b'?' as u32
                }
            })
            .collect();
        let mut out = Vec::new();
        for _ in 0..max_new {
            let window = &ids[ids.len().saturating_sub(self.spec.context)..];
            if window.is_empty() {
                break;
            }
            let x = Tensor::from_vec(window.to_vec(), (1, window.len()), &Device::Cpu)?;
            let logits = self
                .model
                .logits(&self.weights, &x, &Pass::eval(Kernels::Native))
                .map_err(|e| Error::Model {
                    path: "local model".into(),
                    reason: e.to_string(),
                })?;
            let next = logits
                .get(0)?
                .get(window.len() - 1)?
                .argmax(D::Minus1)?
                .to_scalar::<u32>()?;
            if next == b'\n' as u32 {
                break;
            }
            out.push(next as u8);
            ids.push(next);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Generator for LocalLm {
    async fn answer(&self, question: &str, passages: &[Passage]) -> Result<Answer> {
        check_question(question)?;
        let tail = format!("Q: {}\nA:", question.trim());
        let budget = self.spec.context.saturating_sub(tail.len());
        let mut prompt = String::new();
        let mut citations = Vec::new();
        for (n, p) in passages.iter().enumerate() {
            let piece = format!("[{}] {}\n", n + 1, p.text.trim());
            if prompt.len() + piece.len() > budget {
                break;
            }
            prompt.push_str(&piece);
            citations.push(p.source);
        }
        prompt.push_str(&tail);
        let text = self.continue_text(prompt.as_bytes(), self.max_new)?;
        Ok(Answer {
            text: String::from_utf8_lossy(&text).trim().to_string(),
            citations,
        })
    }
}
