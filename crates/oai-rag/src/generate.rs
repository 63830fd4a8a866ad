//! Answers from retrieved passages, each citing the CIDs of the passages it used: the
//! [`Generator`] trait, [`Extractive`] (no model: the best-matching sentence) and [`LocalLm`]
//! (a byte-level transformer trained with oai-train, run on the CPU with quantised weights).

use std::collections::BTreeSet;

use candle_core::{Device, Tensor, D};
use oai_core::Cid;
use oai_data::BlockStore;
use oai_train::model::{Pass, Quantization, QuantizedWeights};
use oai_train::params::check_tensors;
use oai_train::{Checkpoint, Kernels, Model, ModelSpec, TransformerSpec};

use crate::{Error, Result};

/// A retrieved passage: its text and the CID of the record it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The source record's CID.
    pub source: Cid,
    /// The text.
    pub text: String,
}

/// An answer and the passages it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// CIDs of the passages the answer was made from, in the order given.
    pub citations: Vec<Cid>,
}

/// Makes an answer to a question from retrieved passages.
///
/// Contract: every CID in [`Answer::citations`] is the source of a passage that was given and
/// actually used; an empty question is [`Error::InvalidInput`].
#[async_trait::async_trait]
pub trait Generator: Send + Sync + std::fmt::Debug {
    /// Answer `question` from `passages` (best first).
    async fn answer(&self, question: &str, passages: &[Passage]) -> Result<Answer>;
}

fn words(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

fn check_question(question: &str) -> Result<()> {
    if question.trim().is_empty() {
        return Err(Error::InvalidInput("empty question".into()));
    }
    Ok(())
}

/// The answerer for when no model is at hand: the sentence of the passages sharing the most
/// words (longer than two letters, case-insensitive) with the question; ties go to the earlier
/// passage and sentence. Cites the passage the sentence is from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extractive;

#[async_trait::async_trait]
impl Generator for Extractive {
    async fn answer(&self, question: &str, passages: &[Passage]) -> Result<Answer> {
        check_question(question)?;
        let q = words(question);
        let mut best: Option<(usize, &str, Cid)> = None;
        for p in passages {
            for sentence in p.text.split_inclusive(['.', '!', '?', '\n']) {
                let score = words(sentence).intersection(&q).count();
                if score > 0 && best.as_ref().is_none_or(|(s, ..)| score > *s) {
                    best = Some((score, sentence.trim(), p.source));
                }
            }
        }
        Ok(match best {
            Some((_, text, source)) => Answer {
                text: text.to_string(),
                citations: vec![source],
            },
            None => Answer {
                text: String::new(),
                citations: Vec::new(),
            },
        })
    }
}

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
