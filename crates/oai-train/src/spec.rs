//! The job spec: everything that determines a run. It is stored by CID (canonical DAG-CBOR), so a
//! job on chain points to exactly one spec and anyone can rebuild the run from it.

use oai_core::{ids, Cid};
use oai_data::BlockStore;
use serde::{Deserialize, Serialize};

use crate::Kernels;
use crate::{Error, Result};

/// A training job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The dataset version (manifest CID) the run trains on.
    #[serde(with = "cid_text")]
    pub dataset: Cid,
    /// Architecture and sizes.
    pub model: ModelSpec,
    /// Optimiser and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// Learning rate per step.
    pub schedule: Schedule,
    /// Records per batch.
    pub batch_size: u64,
    /// Steps the job asks for.
    pub steps: u64,
    /// A checkpoint every this many steps (0: only at the start and after the last step; a
    /// run stopped between them also leaves one to resume from).
    pub checkpoint_every: u64,
    /// Clip the global gradient L2 norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// The run seed; parameter init, shuffling and dropout seeds derive from it by label.
    pub seed: u64,
    /// The kernels the run computes with: `verifiable` (default; the same bits on every
    /// machine of one instruction-set class, CPU only) or `native` (plain candle).
    #[serde(default)]
    pub kernels: Kernels,
    /// The compute class the job requires (see [`crate::ComputeEnv::class`]); `None` accepts
    /// any, and the class used is still recorded in the log header.
    #[serde(default)]
    pub compute_class: Option<String>,
}

/// Model architectures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A multi-layer perceptron classifier over `Labeled` tensor records.
    Mlp {
        /// Input features.
        input: usize,
        /// Hidden layer widths (ReLU).
        hidden: Vec<usize>,
        /// Output classes.
        classes: usize,
        /// Dropout probability after each hidden layer.
        #[serde(default)]
        dropout: f64,
    },
    /// A decoder-only transformer language model over byte records of `context + 1` tokens.
    Transformer(TransformerSpec),
    /// A Llama-family language model (RMSNorm, rotary positions, SwiGLU, grouped-query
    /// attention) over records of `context + 1` tokens.
    Llama(LlamaSpec),
    /// Low-rank adapters on a pinned transformer or Llama: only the adapters train.
    Lora {
        /// The base model's architecture.
        base: LoraBase,
        /// The base model's weights: a checkpoint CID.
        #[serde(with = "cid_text")]
        base_weights: Cid,
        /// Adapter rank.
        rank: usize,
        /// Scale numerator: the adapter's output is multiplied by `alpha / rank`.
        alpha: f64,
    },
}

/// The architecture a LoRA run adapts, written as the sizes of its model alone (a
/// transformer's or a Llama's, told apart by their fields: a Llama has `kv_heads`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LoraBase {
    /// A GPT-style transformer.
    Transformer(TransformerSpec),
    /// A Llama-family model.
    Llama(LlamaSpec),
}

impl From<TransformerSpec> for LoraBase {
    fn from(t: TransformerSpec) -> Self {
        LoraBase::Transformer(t)
    }
}

impl From<LlamaSpec> for LoraBase {
    fn from(l: LlamaSpec) -> Self {
        LoraBase::Llama(l)
    }
}

/// Sizes of the transformer language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerSpec {
    /// Vocabulary size (256 for bytes).
    pub vocab: usize,
    /// Tokens of context.
    pub context: usize,
    /// Model width.
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the feed-forward layer.
    pub d_ff: usize,
    /// Dropout probability on attention weights and residual branches.
    #[serde(default)]
    pub dropout: f64,
}

/// Sizes and constants of a Llama-family language model (the architecture of Llama, SmolLM2,
/// Mistral without sliding windows). Parameters carry the tensor names of GGUF files
/// (`token_embd.weight`, `blk.0.attn_q.weight`, ...), so a GGUF's weights load as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaSpec {
    /// Vocabulary size.
    pub vocab: usize,
    /// Tokens of context (the positions the rotary tables cover).
    pub context: usize,
    /// Model width.
    pub d_model: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads (must divide `d_model`, and the head width `d_model / heads` must be even).
    pub heads: usize,
    /// Key and value heads (must divide `heads`: each serves `heads / kv_heads` query heads).
    pub kv_heads: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub d_ff: usize,
    /// Base of the rotary position angles (10,000 in Llama 2, 100,000 in SmolLM2).
    pub rope_theta: f64,
    /// RMSNorm's epsilon.
    pub rms_eps: f64,
    /// Whether the output layer reuses the token embeddings (`token_embd.weight`) instead of
    /// its own `output.weight`.
    #[serde(default)]
    pub tie_embeddings: bool,
}

impl LlamaSpec {
    /// The width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.heads.max(1)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let sizes = [
            self.vocab,
            self.context,
            self.d_model,
            self.layers,
            self.heads,
            self.kv_heads,
            self.d_ff,
        ];
        if sizes.contains(&0)
            || self.vocab < 2
            || !self.d_model.is_multiple_of(self.heads)
            || !self.heads.is_multiple_of(self.kv_heads)
            || !self.head_dim().is_multiple_of(2)
        {
            return Err(Error::InvalidSpec(format!(
                "llama sizes must be > 0, vocab >= 2, heads must divide d_model into even head \
                 widths and kv_heads must divide heads: {self:?}"
            )));
        }
        let theta_ok = self.rope_theta.is_finite() && self.rope_theta > 1.0;
        if !(theta_ok && self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return Err(Error::InvalidSpec(format!(
                "llama needs a finite rope_theta > 1 and rms_eps > 0, got {} and {}",
                self.rope_theta, self.rms_eps
            )));
        }
        Ok(())
    }
}

/// Optimisers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Stochastic gradient descent with heavy-ball momentum (0 for none) and L2 weight decay.
    Sgd {
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// Weight decay added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

/// Learning rate schedules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// One learning rate throughout.
    Constant {
        /// The learning rate.
        lr: f64,
    },
    /// Linear warm-up from 0 to `lr` over `warmup` steps, then cosine decay to `min_lr` at
    /// `decay_steps`, constant after.
    WarmupCosine {
        /// Peak learning rate.
        lr: f64,
        /// Warm-up steps.
        warmup: u64,
        /// Step at which the decay reaches `min_lr`.
        decay_steps: u64,
        /// Final learning rate.
        min_lr: f64,
    },
}

impl OptimizerSpec {
    /// AdamW with the usual betas (0.9, 0.999) and eps 1e-8.
    pub fn adam_w(weight_decay: f64) -> Self {
        OptimizerSpec::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
}

impl Schedule {
    /// The learning rate of step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        match *self {
            Schedule::Constant { lr } => lr,
            Schedule::WarmupCosine {
                lr,
                warmup,
                decay_steps,
                min_lr,
            } => {
                if step < warmup {
                    lr * (step + 1) as f64 / warmup as f64
                } else if step >= decay_steps {
                    min_lr
                } else {
                    let span = (decay_steps - warmup).max(1) as f64;
                    let t = (step - warmup) as f64 / span;
                    // `libm` keeps the schedule's bits independent of the platform's libm.
                    min_lr + 0.5 * (lr - min_lr) * (1.0 + libm::cos(std::f64::consts::PI * t))
                }
            }
        }
    }
}

impl JobSpec {
    /// Parse a spec from JSON; unknown models, optimisers or fields are [`Error::InvalidSpec`].
    pub fn from_json(json: &str) -> Result<Self> {
        let spec: JobSpec =
            serde_json::from_str(json).map_err(|e| Error::InvalidSpec(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Pretty JSON (for humans and the CLI; the CID names the DAG-CBOR form).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("specs always serialise")
    }

    /// Canonical DAG-CBOR: the bytes [`JobSpec::cid`] names.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_ipld_dagcbor::to_vec(self).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    /// Decode and validate a stored spec.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let spec: JobSpec =
            serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::InvalidSpec(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec's CID (dag-cbor, sha2-256).
    pub fn cid(&self) -> Result<Cid> {
        Ok(ids::cid_v1(ids::DAG_CBOR, &self.encode()?))
    }

    /// Validate and store the spec; returns its CID.
    pub async fn put<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Cid> {
        self.validate()?;
        Ok(store.put(ids::DAG_CBOR, self.encode()?.into()).await?)
    }

    /// Load and validate a stored spec.
    pub async fn get<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        Self::decode(&store.get(cid).await?)
    }

    /// Whether the state after `steps_done` steps gets a checkpoint that the log commits: every
    /// `checkpoint_every` steps and after the last step.
    pub fn checkpoint_due(&self, steps_done: u64) -> bool {
        steps_done == self.steps
            || (self.checkpoint_every > 0 && steps_done.is_multiple_of(self.checkpoint_every))
    }

    /// Check sizes and hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if self.batch_size == 0 {
            return bad("batch_size must be > 0".into());
        }
        let prob = |p: f64| (0.0..1.0).contains(&p);
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        match &self.model {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                dropout,
            } => {
                if *input == 0 || *classes < 2 || hidden.contains(&0) {
                    return bad("mlp sizes must be > 0 and classes >= 2".into());
                }
                if !prob(*dropout) {
                    return bad(format!("dropout {dropout} must be in [0, 1)"));
                }
            }
            ModelSpec::Transformer(t) => t.validate()?,
            ModelSpec::Llama(l) => l.validate()?,
            ModelSpec::Lora {
                base, rank, alpha, ..
            } => {
                let d_model = match base {
                    LoraBase::Transformer(t) => t.validate().map(|_| t.d_model)?,
                    LoraBase::Llama(l) => l.validate().map(|_| l.d_model)?,
                };
                if *rank == 0 || *rank > d_model || !alpha.is_finite() {
                    return bad(format!("lora rank {rank} must be in 1..={d_model}"));
                }
            }
        }
        match &self.optimizer {
            OptimizerSpec::Sgd {
                momentum,
                weight_decay,
            } => {
                if !(prob(*momentum) && nonneg(*weight_decay)) {
                    return bad("sgd momentum must be in [0, 1), weight decay >= 0".into());
                }
            }
            OptimizerSpec::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let eps_ok = eps.is_finite() && *eps > 0.0;
                if !(prob(*beta1) && prob(*beta2) && eps_ok && nonneg(*weight_decay)) {
                    return bad("adam_w needs betas in [0, 1), eps > 0, weight decay >= 0".into());
                }
            }
        }
        let lr_ok = |lr: f64| lr.is_finite() && lr >= 0.0;
        match self.schedule {
            Schedule::Constant { lr } if !lr_ok(lr) => return bad(format!("lr {lr}")),
            Schedule::WarmupCosine {
                lr,
                min_lr,
                warmup,
                decay_steps,
            } if !lr_ok(lr) || !lr_ok(min_lr) || decay_steps < warmup => {
                return bad("warmup_cosine needs lr, min_lr >= 0 and decay_steps >= warmup".into())
            }
            _ => {}
        }
        if let Some(c) = self.grad_clip {
            if !(c > 0.0 && c.is_finite()) {
                return bad(format!("grad_clip {c} must be > 0"));
            }
        }
        Ok(())
    }
}

impl TransformerSpec {
    fn validate(&self) -> Result<()> {
        if self.vocab < 2
            || self.context == 0
            || self.d_model == 0
            || self.heads == 0
            || self.layers == 0
            || self.d_ff == 0
            || !self.d_model.is_multiple_of(self.heads)
        {
            return Err(Error::InvalidSpec(format!(
                "transformer sizes must be > 0, vocab >= 2 and heads must divide d_model: {self:?}"
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::InvalidSpec(format!(
                "dropout {} must be in [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// CIDs as strings in human-readable formats (JSON specs), as IPLD links in DAG-CBOR.
mod cid_text {
    use oai_core::Cid;
    use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&cid.to_string())
        } else {
            cid.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            oai_core::ids::parse(&text).map_err(D::Error::custom)
        } else {
            Cid::deserialize(d)
        }
    }
}
