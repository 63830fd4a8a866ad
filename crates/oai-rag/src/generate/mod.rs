//! Answers from retrieved passages, each citing the CIDs of the passages it used: the
//! [`Generator`] trait, [`Extractive`] (no model: the best-matching sentence) and, with the
//! feature `local-lm`, `LocalLm` (a byte-level transformer trained with oai-train, run on the
//! CPU with quantised weights) and `ChatLm` (a Llama-family chat model from a GGUF file, e.g.
//! SmolLM2).

use std::collections::BTreeSet;

use oai_core::Cid;

use crate::{Error, Result};

#[cfg(feature = "local-lm")]
mod chat_lm;
#[cfg(feature = "local-lm")]
mod local_lm;
#[cfg(feature = "local-lm")]
pub use chat_lm::ChatLm;
#[cfg(feature = "local-lm")]
pub use local_lm::LocalLm;

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
