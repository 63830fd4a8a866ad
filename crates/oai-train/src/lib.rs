//! Deterministic, fully logged training on candle.
//!
//! A [`JobSpec`] (dataset version, model, optimiser, schedule, seeds, steps) is stored by CID.
//! The [`Trainer`] runs it so that every step can be re-executed by anyone with the same bits:
//!
//! - every parameter is initialised from `seed.derive("param/" + name)`; dropout masks and
//!   batch order come from ChaCha20 streams derived from the run seed; parameters are walked in
//!   name order wherever they are combined;
//! - each step appends a hash-chained [`StepRecord`] (batch CIDs and their Merkle root, seeds,
//!   learning rate, loss, gradient norm, weights commitment before and after) to the
//!   [`TrainingLog`], whose Merkle root over all steps is what a node publishes;
//! - [`Checkpoint`]s are `safetensors` files stored by CID every `checkpoint_every` steps;
//! - [`replay_step`] re-executes one step from the nearest checkpoint and names the first field
//!   and tensor that differ from the log.
//!
//! Bits are promised within one compute class and kernel version ([`ComputeEnv`]), recorded in
//! the log header and checked before any replay. The default [`Kernels::Verifiable`] make the
//! class depend only on the instruction set (e.g. `x86_64-v3/cpu`), not on cache sizes or the C
//! library.

pub mod checkpoint;
pub mod corpus;
pub mod env;
mod error;
pub mod footprint;
pub mod gguf;
mod heap;
pub mod log;
pub mod model;
pub mod optim;
pub mod params;
pub mod replay;
pub mod run_names;
pub mod spec;
mod state;
mod step_times;
mod trainer;
mod tree_hash;

pub use candle_core as candle;
pub use checkpoint::Checkpoint;
pub use env::ComputeEnv;
pub use error::{CheckpointMismatch, Error, Result};
pub use footprint::Footprint;
pub use heap::keep_freed_memory;
pub use kernels::Kernels;
pub use log::{StepProof, StepRecord, TrainingLog, VerifiedLog};
pub use model::Model;
/// The verifiable kernels ([`oai_kernels`]), as they were when they lived here.
pub use oai_kernels as kernels;
pub use params::{Commitment, Params};
pub use replay::{
    check_init_on, replay_span_on, replay_step, replay_step_on, Field, Mismatch, StepOutcome,
};
pub use spec::{JobSpec, LlamaSpec, LoraBase, ModelSpec, OptimizerSpec, Schedule, TransformerSpec};
pub use step_times::StepTimes;
pub use trainer::{Evaluation, StepReport, Trained, Trainer};
