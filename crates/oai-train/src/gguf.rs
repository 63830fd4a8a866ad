//! Llama-family models from GGUF files (llama.cpp's format, e.g. SmolLM2-135M-Instruct), read
//! into a [`LlamaSpec`] and f32 weights under their GGUF names, and imported into a store as a
//! checkpoint that a LoRA spec pins by CID.
//!
//! The weights are dequantised once, at import, and the checkpoint stores the f32 values: its
//! CID then commits to the exact numbers every step, replay and audit computes with, and a
//! replay needs no dequantiser at all. Dequantisation is a pure function of the file (a
//! block's scales widened exactly from f16, then `d·q + m` per weight in f32) computed by the
//! candle this crate pins (`=0.11.1`), so importing one file gives one checkpoint CID on every
//! machine. The file itself is stored too (its CID is in [`ImportedModel::file`]), so anyone can
//! import it again and compare.
//!
//! The file's tokenizer ([`Tokenizer`]) turns text into the token ids a dataset of such a
//! model holds ([`crate::corpus::token_windows`]): tokenised once, when the dataset is made,
//! the tokens are content-addressed with it, so a run, its replay and its audits read the same
//! ids whatever tokenizer library they have.

use std::collections::BTreeMap;
use std::io::Cursor;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use oai_core::Cid;
use oai_data::unixfs::{self, Profile};
use oai_data::BlockStore;

use crate::model::finite;
use crate::model::{LlamaGenerator, Model, QuantizedWeights};
use crate::params::{check_tensors, ParamDef};
use crate::spec::{LlamaSpec, ModelSpec};
use crate::{Checkpoint, Error, Kernels, Result};

/// What [`import_llama`] stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedModel {
    /// The architecture the file describes.
    pub spec: LlamaSpec,
    /// The dequantised weights as a checkpoint (a LoRA spec's `base_weights`).
    pub checkpoint: Cid,
    /// The GGUF file as it was given (a UnixFS file).
    pub file: Cid,
}

impl ImportedModel {
    /// The model of a LoRA run on this base: rank-`rank` adapters (their output scaled by
    /// `alpha / rank`) on every projection, over windows of `context` tokens.
    pub fn lora(&self, context: usize, rank: usize, alpha: f64) -> ModelSpec {
        ModelSpec::Lora {
            base: LlamaSpec {
                context,
                ..self.spec.clone()
            }
            .into(),
            base_weights: self.checkpoint,
            rank,
            alpha,
        }
    }
}

/// The architecture and the f32 weights (by GGUF tensor name) of a Llama-family GGUF file.
/// A file that is truncated or not GGUF, of another architecture, with sizes the model does
/// not support, tensors that do not match its metadata or weights that are not finite is
/// [`Error::Malformed`].
pub fn read_llama(gguf: &[u8]) -> Result<(LlamaSpec, BTreeMap<String, Tensor>)> {
    let content = parse(gguf, "gguf")?;
    let (spec, defs, file_tensors) = read_weights(&content, gguf)?;
    let mut tensors = BTreeMap::new();
    for (name, q) in file_tensors {
        let t = q
            .dequantize(&Device::Cpu)
            .map_err(|e| bad_tensor(&name, e))?;
        tensors.insert(name.clone(), finite(&name, t)?);
    }
    check_tensors(&defs, &tensors).map_err(|e| Error::malformed("gguf", e.to_string()))?;
    Ok((spec, tensors))
}

/// The GGUF header and metadata of `gguf` (`what` names the file in errors).
fn parse(gguf: &[u8], what: &'static str) -> Result<Content> {
    Content::read(&mut Cursor::new(gguf)).map_err(|e| Error::malformed(what, e.to_string()))
}

/// The spec, its parameter definitions and the tensors as the file holds them, of a file
/// already parsed (refused as [`read_llama`] says).
fn read_weights(
    content: &Content,
    gguf: &[u8],
) -> Result<(LlamaSpec, Vec<ParamDef>, BTreeMap<String, QTensor>)> {
    let bad = |reason: String| Error::malformed("gguf", reason);
    let mut reader = Cursor::new(gguf);
    let spec = llama_spec(content)?;
    // the tensors the metadata implies must be the file's, counted before the model's
    // definitions are built (a file claiming a billion layers is refused here, not in an
    // allocation), and each of the shape the model needs before it is read
    let expected = spec
        .layers
        .checked_mul(9)
        .and_then(|n| n.checked_add(2 + usize::from(!spec.tie_embeddings)));
    if expected != Some(content.tensor_infos.len()) {
        return Err(bad(format!(
            "{} tensors for a model of {} layers",
            content.tensor_infos.len(),
            spec.layers
        )));
    }
    let defs = Model::new(&ModelSpec::Llama(spec.clone())).param_defs();
    let mut tensors = BTreeMap::new();
    for def in &defs {
        let info = content
            .tensor_infos
            .get(&def.name)
            .ok_or_else(|| bad(format!("no tensor {}", def.name)))?;
        if info.shape.dims() != def.shape.as_slice() {
            return Err(bad(format!(
                "{} is {:?}, the metadata makes it {:?}",
                def.name,
                info.shape.dims(),
                def.shape
            )));
        }
    }
    for def in &defs {
        let q = content
            .tensor(&mut reader, &def.name, &Device::Cpu)
            .map_err(|e| bad_tensor(&def.name, e))?;
        tensors.insert(def.name.clone(), q);
    }
    Ok((spec, defs, tensors))
}

/// A tensor of the file that candle could not read.
fn bad_tensor(name: &str, e: candle_core::Error) -> Error {
    Error::malformed("gguf", format!("{name}: {e}"))
}

/// A Llama-family GGUF file ready to answer: a generator over its weights as the file holds
/// them ([`QuantizedWeights::from_file_tensors`]: `Q4_0`, `Q4_1` and `Q8_0` matrices multiplied
/// in their blocks, with the bits the f32 checkpoint [`import_llama`] makes of the same file
/// gives on the verifiable kernels), on `kernels` for everything else (refused as
/// [`read_llama`] refuses), and its tokenizer.
pub fn generator(
    gguf: &[u8],
    kernels: Kernels,
) -> Result<(LlamaGenerator<QuantizedWeights>, Tokenizer)> {
    let content = parse(gguf, "gguf")?;
    let tokenizer = Tokenizer::from_content(&content)?;
    let (spec, _, tensors) = read_weights(&content, gguf)?;
    let weights = QuantizedWeights::from_file_tensors(tensors)?;
    Ok((LlamaGenerator::new(spec, weights, kernels)?, tokenizer))
}

/// Store a Llama-family GGUF file and its dequantised weights as a checkpoint ([`read_llama`];
/// nothing is stored when the file is refused).
pub async fn import_llama<S: BlockStore + ?Sized>(store: &S, gguf: &[u8]) -> Result<ImportedModel> {
    let (spec, params) = read_llama(gguf)?;
    let checkpoint = Checkpoint {
        step: 0,
        params,
        optimizer: BTreeMap::new(),
    }
    .put(store)
    .await?;
    let file = unixfs::import_bytes(store, gguf, Profile::default())
        .await?
        .root;
    Ok(ImportedModel {
        spec,
        checkpoint,
        file,
    })
}

/// The [`LlamaSpec`] of a GGUF file's metadata (architecture `llama`, one expert, rotary
/// positions over whole heads), validated.
fn llama_spec(content: &Content) -> Result<LlamaSpec> {
    let bad = |reason: String| Error::malformed("gguf", reason);
    let get = |key: &str| -> Result<&Value> {
        content
            .metadata
            .get(key)
            .ok_or_else(|| bad(format!("no metadata {key}")))
    };
    let number = |key: &str| -> Result<usize> {
        let v = get(key)?;
        let n = v
            .to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .map_err(|e| bad(format!("{key}: {e}")))?;
        usize::try_from(n).map_err(|_| bad(format!("{key} = {n} is too large")))
    };
    // an f32 as the decimal it was written from (1e-5, not 9.99999974e-6): the shortest
    // decimal that rounds to it, which widens to the f64 a spec written by hand holds
    let real = |key: &str| -> Result<f64> {
        let v = get(key)?.to_f32().map_err(|e| bad(format!("{key}: {e}")))?;
        v.to_string()
            .parse()
            .map_err(|_| bad(format!("{key} = {v} is not a number")))
    };
    let arch = get("general.architecture")?
        .to_string()
        .map_err(|e| bad(format!("general.architecture: {e}")))?;
    if arch != "llama" {
        return Err(bad(format!(
            "architecture {arch}, not llama (the only one oai reads)"
        )));
    }
    if content.metadata.contains_key("llama.expert_count") && number("llama.expert_count")? > 1 {
        return Err(bad("mixture-of-experts models are not supported".into()));
    }
    let embedding = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| bad("no tensor token_embd.weight".into()))?;
    let spec = LlamaSpec {
        vocab: embedding.shape.dims().first().copied().unwrap_or(0),
        context: number("llama.context_length")?,
        d_model: number("llama.embedding_length")?,
        layers: number("llama.block_count")?,
        heads: number("llama.attention.head_count")?,
        kv_heads: number("llama.attention.head_count_kv")?,
        d_ff: number("llama.feed_forward_length")?,
        rope_theta: match content.metadata.contains_key("llama.rope.freq_base") {
            true => real("llama.rope.freq_base")?,
            false => 10_000.0,
        },
        rms_eps: real("llama.attention.layer_norm_rms_epsilon")?,
        tie_embeddings: !content.tensor_infos.contains_key("output.weight"),
    };
    spec.validate().map_err(|e| bad(e.to_string()))?;
    if content.metadata.contains_key("llama.rope.dimension_count")
        && number("llama.rope.dimension_count")? != spec.head_dim()
    {
        return Err(bad(
            "rotary positions over part of each head are not supported".into(),
        ));
    }
    Ok(spec)
}

/// The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`: a byte-level BPE
/// as in GPT-2, Llama 3 and SmolLM2).
#[derive(Clone)]
pub struct Tokenizer(tokenizers::Tokenizer);

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.0.get_vocab_size(true))
    }
}

impl Tokenizer {
    /// The tokenizer of a GGUF file; a file without one (or not GGUF) is [`Error::Malformed`].
    pub fn from_gguf(gguf: &[u8]) -> Result<Self> {
        Self::from_content(&parse(gguf, "gguf tokenizer")?)
    }

    /// The tokenizer of a parsed GGUF file.
    fn from_content(content: &Content) -> Result<Self> {
        let bad = |reason: String| Error::malformed("gguf tokenizer", reason);
        let mut t = tokenizers::Tokenizer::from_gguf(content).map_err(|e| bad(e.to_string()))?;
        let pre = content
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok());
        if let Some(split) = pre.and_then(|p| gpt2_style_split(p)) {
            t.with_pre_tokenizer(Some(split));
        }
        Ok(Self(t))
    }

    /// The token ids of `text`, without special tokens added; text the tokenizer cannot encode
    /// is [`Error::Malformed`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .0
            .encode(text, false)
            .map_err(|e| Error::malformed("text to tokenize", e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens skipped); an id outside the vocabulary is
    /// [`Error::Malformed`].
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let vocab = self.vocab_size() as u32;
        if let Some(id) = ids.iter().find(|id| **id >= vocab) {
            return Err(Error::malformed(
                "token ids",
                format!("{id} is not below the vocabulary's {vocab}"),
            ));
        }
        self.0
            .decode(ids, true)
            .map_err(|e| Error::malformed("token ids", e.to_string()))
    }

    /// `user`'s words as a ChatML user turn opening the assistant's (`<|im_start|>user\n...
    /// <|im_end|>\n<|im_start|>assistant\n`, as SmolLM2 and Qwen are tuned to chat), and the
    /// end-of-turn token to stop at; `None` when the vocabulary lacks ChatML's markers.
    pub fn chat_turn(&self, user: &str) -> Result<Option<(Vec<u32>, u32)>> {
        const START: &str = "<|im_start|>";
        const END: &str = "<|im_end|>";
        let single = |m: &str| -> Result<Option<u32>> {
            let ids = self.encode(m)?;
            Ok((ids.len() == 1).then(|| ids[0]))
        };
        let (Some(_), Some(end)) = (single(START)?, single(END)?) else {
            return Ok(None);
        };
        let turn = format!("{START}user\n{user}{END}\n{START}assistant\n");
        Ok(Some((self.encode(&turn)?, end)))
    }

    /// The ids of a prompt and the tokens that end its answer: `text` as a ChatML user turn
    /// when `chat` and the model chats so ([`Tokenizer::chat_turn`]), else as it is, with no
    /// stop token.
    pub fn prompt(&self, text: &str, chat: bool) -> Result<(Vec<u32>, Vec<u32>)> {
        match (chat, self.chat_turn(text)?) {
            (true, Some((turn, end))) => Ok((turn, vec![end])),
            _ => Ok((self.encode(text)?, Vec::new())),
        }
    }

    /// Tokens in the vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.0.get_vocab_size(true)
    }
}

/// The pre-tokenizer of GPT-2-style vocabularies as llama.cpp splits them (candle's GGUF
/// reader adds a space before the text, which neither GPT-2 nor SmolLM2 does): byte-level
/// without a prefix space, and for `smollm` every digit on its own first.
fn gpt2_style_split(pre: &str) -> Option<tokenizers::PreTokenizerWrapper> {
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence};
    let bytes = ByteLevel::new(false, true, true);
    match pre {
        "gpt2" | "default" => Some(bytes.into()),
        "smollm" => Some(Sequence::new(vec![Digits::new(true).into(), bytes.into()]).into()),
        _ => None,
    }
}

/// Text from tokens as they come: each [`TextStream::push`] returns what the token adds to the
/// text, holding back bytes that do not yet form a whole character (a character may take
/// several byte-level tokens).
#[derive(Debug, Clone, Default)]
pub struct TextStream {
    tokens: Vec<u32>,
    written: usize,
    stop: Vec<u32>,
}

impl TextStream {
    /// A stream that leaves the tokens of `stop` (an answer's end) out of the text.
    pub fn until(stop: &[u32]) -> Self {
        Self {
            stop: stop.to_vec(),
            ..Self::default()
        }
    }

    /// The text `token` adds, decoded with `tokenizer` (empty while a character is incomplete,
    /// and for a stop token).
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> Result<String> {
        if self.stop.contains(&token) {
            return Ok(String::new());
        }
        self.tokens.push(token);
        let text = tokenizer.decode(&self.tokens)?;
        if text.len() <= self.written
            || text.ends_with('\u{fffd}')
            || !text.is_char_boundary(self.written)
        {
            return Ok(String::new());
        }
        let piece = text[self.written..].to_string();
        self.written = text.len();
        Ok(piece)
    }

    /// Every token's text so far.
    pub fn text(&self, tokenizer: &Tokenizer) -> Result<String> {
        tokenizer.decode(&self.tokens)
    }
}
