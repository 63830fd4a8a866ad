//! [`ChatLm`]: a Llama-family chat model from a GGUF file (e.g. SmolLM2-135M-Instruct)
//! answering from retrieved passages on the CPU (feature `local-lm`, which builds oai-train).

use std::path::Path;

use oai_train::gguf::{self, Tokenizer};
use oai_train::model::{LlamaGenerator, QuantizedWeights, Sampling};
use oai_train::Kernels;

use super::{check_question, Answer, Generator, Passage};
use crate::{Error, Result};

/// What the model is asked before the passages.
const INSTRUCTION: &str = "Answer the question using only the numbered passages below.";

/// A Llama-family model that chats in ChatML (SmolLM2, Qwen), answering a question from the
/// passages it is given, greedily (the same answer on every machine of a class: verifiable
/// kernels).
///
/// The prompt is one user turn: an instruction, the passages best first as `[n] text` while
/// they fit `prompt_tokens`, and the question; the answer ends at the end of the turn or after
/// `max_new` tokens. It cites the passages that were in the prompt.
#[derive(Debug)]
pub struct ChatLm {
    generator: LlamaGenerator<QuantizedWeights>,
    tokenizer: Tokenizer,
    max_new: usize,
    prompt_tokens: usize,
}

impl ChatLm {
    /// Load the GGUF file at `path`; a missing file, or one that is not a Llama-family model
    /// chatting in ChatML, is [`Error::Model`].
    pub fn from_gguf(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let model = |reason: String| Error::Model {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| model(e.to_string()))?;
        let (generator, tokenizer) =
            gguf::generator(&bytes, Kernels::Verifiable).map_err(|e| model(e.to_string()))?;
        if tokenizer
            .chat_turn("?")
            .map_err(|e| model(e.to_string()))?
            .is_none()
        {
            return Err(model("the model does not chat in ChatML".into()));
        }
        Ok(Self {
            generator,
            tokenizer,
            max_new: 96,
            prompt_tokens: 1024,
        })
    }

    /// Generate at most `max_new` tokens per answer (default 96).
    pub fn max_new(mut self, max_new: usize) -> Self {
        self.max_new = max_new;
        self
    }

    /// Put passages in the prompt while it stays within `tokens` tokens (default 1,024; at
    /// most the model's context less `max_new`).
    pub fn prompt_tokens(mut self, tokens: usize) -> Self {
        self.prompt_tokens = tokens;
        self
    }

    /// The user turn of `question` with `passages`, its token ids and the end-of-turn token.
    fn turn(&self, question: &str, passages: &[&Passage]) -> Result<(Vec<u32>, u32)> {
        let mut text = format!("{INSTRUCTION}\n\n");
        for (n, p) in passages.iter().enumerate() {
            text += &format!("[{}] {}\n", n + 1, p.text.trim());
        }
        text += &format!("\nQuestion: {}", question.trim());
        self.tokenizer
            .chat_turn(&text)
            .map_err(model_error)?
            .ok_or_else(|| model_error("the model does not chat in ChatML"))
    }
}

fn model_error(e: impl std::fmt::Display) -> Error {
    Error::Model {
        path: "chat model".into(),
        reason: e.to_string(),
    }
}

#[async_trait::async_trait]
impl Generator for ChatLm {
    async fn answer(&self, question: &str, passages: &[Passage]) -> Result<Answer> {
        check_question(question)?;
        crate::error::compute_here()?;
        let context = self.generator.spec().context;
        let budget = self.prompt_tokens.min(context.saturating_sub(self.max_new));
        let mut used: Vec<&Passage> = Vec::new();
        let mut prompt = self.turn(question, &used)?;
        for p in passages {
            used.push(p);
            let longer = self.turn(question, &used)?;
            if longer.0.len() > budget {
                used.pop();
                break;
            }
            prompt = longer;
        }
        let (ids, end) = prompt;
        if ids.len() > budget {
            return Err(Error::InvalidInput(format!(
                "the question alone takes {} tokens, more than the {budget} the prompt may",
                ids.len()
            )));
        }
        let tokens = self
            .generator
            .generate(&ids, self.max_new, Sampling::Greedy, &[end], |_| {
                std::ops::ControlFlow::Continue(())
            })
            .map_err(model_error)?;
        let tokens: Vec<u32> = tokens.into_iter().filter(|t| *t != end).collect();
        let text = self.tokenizer.decode(&tokens).map_err(model_error)?;
        Ok(Answer {
            text: text.trim().to_string(),
            citations: used.iter().map(|p| p.source).collect(),
        })
    }
}
