//! [`HashedWords`]: an embedder that needs no model file.

use oai_core::Digest;

use super::Embedder;
use crate::{Error, Result};

/// Feature hashing of words (the hashing trick, as scikit-learn's `HashingVectorizer`): every
/// lower-cased alphanumeric word, and every pair of neighbouring words, adds ±1 to one of `dim`
/// buckets chosen by its BLAKE3 hash; the sum is L2-normalised. Similar texts share words, so
/// their vectors point the same way; meaning beyond shared words is not captured.
///
/// It is for when no model is at hand (the quickstart, tests, tiny corpora); use [`MiniLm`]
/// for retrieval that understands paraphrase. Deterministic on every machine: a text's vector
/// does not depend on the batch, the platform or the thread count.
///
/// [`MiniLm`]: super::MiniLm
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedWords {
    dim: usize,
}

/// The bucket and sign of one feature.
fn feature(parts: &[&[u8]], dim: usize) -> (usize, f32) {
    let h = Digest::of_parts(parts).0;
    let bucket = u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % dim as u64;
    (bucket as usize, if h[8] & 1 == 0 { 1.0 } else { -1.0 })
}

impl HashedWords {
    /// An embedder into `dim` buckets (at least 16; 256 to 1024 suit passages).
    pub fn new(dim: usize) -> Result<Self> {
        if dim < 16 {
            return Err(Error::InvalidInput(format!(
                "hashed-words dimension {dim} is below 16"
            )));
        }
        Ok(Self { dim })
    }

    /// The vector of one text ([`Error::InvalidInput`] for an empty one).
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let lower = text.to_lowercase();
        let trimmed = lower.trim();
        if trimmed.is_empty() {
            return Err(Error::InvalidInput("text is empty".into()));
        }
        let mut words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            // punctuation only: the text itself is the one feature
            words.push(trimmed);
        }
        let mut v = vec![0f32; self.dim];
        let singles = words
            .iter()
            .map(|w| feature(&[b"w", w.as_bytes()], self.dim));
        let pairs = words
            .windows(2)
            .map(|p| feature(&[b"p", p[0].as_bytes(), b" ", p[1].as_bytes()], self.dim));
        for (bucket, sign) in singles.chain(pairs) {
            v[bucket] += sign;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            // every feature cancelled out: the first word's bucket alone
            v[feature(&[b"w", words[0].as_bytes()], self.dim).0] = 1.0;
            return Ok(v);
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Ok(v)
    }
}

#[async_trait::async_trait]
impl Embedder for HashedWords {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> String {
        format!("hashed-words-{}", self.dim)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.embed_one(t)
                    .map_err(|_| Error::InvalidInput(format!("text {i} is empty")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_deterministic_and_rank_by_shared_words() {
        let e = HashedWords::new(256).unwrap();
        let q = e.embed_one("How is a cheating node slashed?").unwrap();
        let near = e
            .embed_one("A cheating node is slashed by the referee.")
            .unwrap();
        let far = e.embed_one("Datasets fork for free.").unwrap();
        assert!((dot(&q, &q) - 1.0).abs() < 1e-5);
        assert!(
            dot(&q, &near) > dot(&q, &far) + 0.2,
            "{} vs {}",
            dot(&q, &near),
            dot(&q, &far)
        );
        assert_eq!(q, e.embed_one("how IS a cheating node slashed").unwrap());
        // punctuation only still gives a unit vector
        let p = e.embed_one("?!").unwrap();
        assert!((dot(&p, &p) - 1.0).abs() < 1e-5);
    }

    #[tokio::test]
    async fn empty_text_and_tiny_dimension_are_invalid_input() {
        let e = HashedWords::new(64).unwrap();
        let err = e.embed(&["ok".into(), "  ".into()]).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(ref m) if m == "text 1 is empty"),
            "{err}"
        );
        assert!(matches!(HashedWords::new(8), Err(Error::InvalidInput(_))));
    }
}
