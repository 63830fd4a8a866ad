//! What a job asks of the machine that trains it, read from its spec alone (nothing is
//! allocated): a node compares it with its limits before it claims the job, so that a spec
//! sized to exhaust its memory is refused instead of failing after the claim.

use crate::model::Model;
use crate::spec::{JobSpec, LoraBase, ModelSpec, OptimizerSpec};

/// Bytes of one `f32`.
const F32: u64 = 4;

/// What a checkpoint file holds beyond its values (the safetensors header: tensor names, shapes
/// and offsets, the step), at most: a model of thousands of tensors stays under it.
const CHECKPOINT_HEADER: u64 = 1 << 20;

/// The sizes a job spec implies. Counts saturate at `u64::MAX` (a spec can name any sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Parameters that train.
    pub trainable: u64,
    /// Frozen parameters (a LoRA base).
    pub frozen: u64,
    /// Records per batch.
    pub batch: u64,
    /// Steps.
    pub steps: u64,
    /// Values the optimiser keeps per trainable parameter (AdamW 2, SGD with momentum 1).
    pub optimizer_slots: u64,
    /// An estimate of the memory a step needs, in bytes: the weights, the gradients, the
    /// optimiser's state and the activations of one batch (forward and backward). It is an
    /// estimate within a small factor, meant for refusing what cannot fit, not for packing.
    pub memory: u64,
}

impl Footprint {
    /// The footprint of `spec`.
    pub fn of(spec: &JobSpec) -> Self {
        let model = Model::new(&spec.model);
        let (trainable, frozen) = model.param_count();
        let slots = match spec.optimizer {
            OptimizerSpec::AdamW { .. } => 2,
            OptimizerSpec::Sgd { momentum, .. } if momentum > 0.0 => 1,
            OptimizerSpec::Sgd { .. } => 0,
        };
        let batch = spec.batch_size;
        // activations kept for the backward pass, per record, with a factor for temporaries
        let per_record = match &spec.model {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                ..
            } => hidden
                .iter()
                .chain([input, classes])
                .fold(0u64, |a, &w| a.saturating_add(w as u64))
                .saturating_mul(3),
            ModelSpec::Transformer(t)
            | ModelSpec::Lora {
                base: LoraBase::Transformer(t),
                ..
            } => {
                let widths = [t.context, t.d_model, t.heads, t.layers, t.vocab];
                lm_activations(widths, (t.d_ff as u64).saturating_mul(2))
            }
            // SwiGLU keeps the gate, the up projection, their SiLU and product
            ModelSpec::Llama(l)
            | ModelSpec::Lora {
                base: LoraBase::Llama(l),
                ..
            } => {
                let widths = [l.context, l.d_model, l.heads, l.layers, l.vocab];
                lm_activations(widths, (l.d_ff as u64).saturating_mul(4))
            }
        };
        let values = trainable
            .saturating_mul(2 + slots)
            .saturating_add(frozen)
            .saturating_add(per_record.saturating_mul(batch));
        Footprint {
            trainable,
            frozen,
            batch,
            steps: spec.steps,
            optimizer_slots: slots,
            memory: values.saturating_mul(F32),
        }
    }

    /// All parameters, trainable and frozen.
    pub fn params(&self) -> u64 {
        self.trainable.saturating_add(self.frozen)
    }

    /// The most bytes a checkpoint of the run may have: the trainable weights and the
    /// optimiser's state as `f32`, and a header. A replay reads a node's checkpoint within it.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.trainable
            .saturating_mul(1 + self.optimizer_slots)
            .saturating_mul(F32)
            .saturating_add(CHECKPOINT_HEADER)
    }

    /// The most bytes the checkpoint of a LoRA run's frozen base may have.
    pub fn base_bytes(&self) -> u64 {
        self.frozen
            .saturating_mul(F32)
            .saturating_add(CHECKPOINT_HEADER)
    }
}

/// The activations a language model keeps per record: `[context, d_model, heads, layers,
/// vocab]`, and `ff` values per position for its feed-forward layer; saturates.
fn lm_activations([c, d, h, layers, vocab]: [usize; 5], ff: u64) -> u64 {
    let (c, d, h) = (c as u64, d as u64, h as u64);
    let per_layer = d
        .saturating_mul(12)
        .saturating_add(ff)
        .saturating_mul(c)
        .saturating_add(h.saturating_mul(c).saturating_mul(c).saturating_mul(2));
    per_layer
        .saturating_mul(layers as u64)
        .saturating_add(c.saturating_mul(vocab as u64).saturating_mul(2))
}
