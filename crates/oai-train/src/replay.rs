//! Replay: re-execute a logged step from the nearest checkpoint and compare it bit for bit with
//! the log. This is what validators and referees call.

use std::fmt;

use candle_core::Device;
use oai_core::{ids, Cid, Digest};
use oai_data::BlockStore;
use serde::{Deserialize, Serialize};

use crate::log::{StepRecord, VerifiedLog};
use crate::params::Commitment;
use crate::state::{Executed, TrainingState};
use crate::{Error, Result};

/// A field of a step record that replay compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Field {
    /// The batch's record CIDs (or its epoch and position).
    Batch,
    /// The dropout seed.
    DropoutSeed,
    /// The learning rate.
    LearningRate,
    /// The loss.
    Loss,
    /// The gradient norm.
    GradNorm,
    /// The weights after the step.
    Weights,
    /// The weights before step 0: the header's are not those the spec's seed gives.
    Init,
    /// The checkpoint the record commits (weights or optimiser state) is not the state the
    /// step leaves.
    Checkpoint,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Batch => "batch",
            Field::DropoutSeed => "dropout seed",
            Field::LearningRate => "learning rate",
            Field::Loss => "loss",
            Field::GradNorm => "gradient norm",
            Field::Weights => "weights",
            Field::Init => "initial weights",
            Field::Checkpoint => "checkpoint",
        })
    }
}

/// Where a replayed step first differs from its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The step that differs (the asked step or an earlier one on the way from the checkpoint).
    pub step: u64,
    /// The first differing field.
    pub field: Field,
    /// For [`Field::Weights`] and [`Field::Checkpoint`]: the first differing tensor (optimiser
    /// state as `optim/<slot>/<parameter>`).
    pub tensor: Option<String>,
    /// What the log says.
    pub logged: String,
    /// What replay computed.
    pub replayed: String,
}

/// The verdict of [`replay_step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutcome {
    /// Replay gave the logged bits.
    Match {
        /// The step.
        step: u64,
        /// Its weights commitment after the step.
        weights_after: Digest,
    },
    /// Replay differs from the log.
    Mismatch(Mismatch),
}

impl StepOutcome {
    /// Whether replay gave the logged bits.
    pub fn is_match(&self) -> bool {
        matches!(self, StepOutcome::Match { .. })
    }
}

/// Re-execute step `step` of the log `log` on the CPU from the nearest checkpoint at or before
/// it, and compare every field with the log (see [`replay_step_on`]).
pub async fn replay_step<S: BlockStore + Clone + 'static>(
    log: &Cid,
    step: u64,
    store: &S,
) -> Result<StepOutcome> {
    replay_step_on(log, step, store, Device::Cpu).await
}

/// [`replay_step`] on `device`.
///
/// Replay starts from the last checkpoint at or before `step`; before step 0 it re-derives the
/// weights from the spec's seed, and a header that names other initial weights is a
/// [`Field::Init`] mismatch at step 0. Steps between the checkpoint and `step` are compared
/// too, and the first difference is reported; a step whose record commits a checkpoint must
/// leave exactly that state, optimiser moments included ([`Field::Checkpoint`]).
///
/// Errors (never a false verdict): a log that does not verify ([`Error::BrokenLog`]), a log
/// of another compute class ([`Error::IncompatibleCompute`]), a checkpoint whose weights do not
/// match the log ([`Error::CheckpointMismatch`]), missing or corrupt blocks, a batch that does
/// not prove against the dataset root ([`Error::BatchProof`]).
pub async fn replay_step_on<S: BlockStore + Clone + 'static>(
    log: &Cid,
    step: u64,
    store: &S,
    device: Device,
) -> Result<StepOutcome> {
    let vlog = VerifiedLog::load(store, log).await?;
    replay_span_on(&vlog, step, step, store, device).await
}

/// Re-execute steps `first..=last` of the already verified `vlog` on `device`, starting from
/// the last committed checkpoint at or before `first` (the initial state when there is none),
/// and compare every step re-executed on the way, as [`replay_step_on`] does. The outcome is the
/// first mismatch, or a match of `last`. Validators that check many steps of one log load it
/// once and replay a span per checkpoint interval, so that one restored checkpoint serves every
/// step they sample in its interval.
pub async fn replay_span_on<S: BlockStore + Clone + 'static>(
    vlog: &VerifiedLog,
    first: u64,
    last: u64,
    store: &S,
    device: Device,
) -> Result<StepOutcome> {
    if last >= vlog.log.steps || first > last {
        return Err(Error::StepOutOfRange {
            step: last.max(first),
            steps: vlog.log.steps,
        });
    }
    let at = vlog.checkpoint_at_or_before(first);
    let mut state = TrainingState::restore(store.clone(), vlog, at, device).await?;
    if at.is_none() {
        if let Some(m) = init_mismatch(vlog, &mut state)? {
            return Ok(StepOutcome::Mismatch(m));
        }
    }
    let mut weights_after = vlog.header.init;
    for step in at.map_or(0, |c| c.step)..=last {
        let record = vlog.record(store, step).await?;
        weights_after = record.weights_after;
        let mut ex = state.execute(true).await?;
        let w = ex.take_weights()?;
        if let Some((field, tensor, logged, replayed)) =
            first_difference(&record, &ex, &w, &vlog.header.params)
        {
            return Ok(StepOutcome::Mismatch(Mismatch {
                step: record.step,
                field,
                tensor,
                logged,
                replayed,
            }));
        }
        if let Some(committed) = &record.checkpoint {
            if let Some((tensor, logged, replayed)) = state.checkpoint_difference(committed).await?
            {
                return Ok(StepOutcome::Mismatch(Mismatch {
                    step: record.step,
                    field: Field::Checkpoint,
                    tensor: Some(tensor),
                    logged,
                    replayed,
                }));
            }
        }
    }
    Ok(StepOutcome::Match {
        step: last,
        weights_after,
    })
}

/// Whether the header of the verified `vlog` names the initial weights its spec's seed gives:
/// `None` when it does, else the [`Field::Init`] mismatch at step 0. A validator that samples
/// steps far from the start checks this too (it costs one initialisation, no step).
pub async fn check_init_on<S: BlockStore + Clone + 'static>(
    vlog: &VerifiedLog,
    store: &S,
    device: Device,
) -> Result<Option<Mismatch>> {
    let mut state = TrainingState::restore(store.clone(), vlog, None, device).await?;
    init_mismatch(vlog, &mut state)
}

fn init_mismatch<S: BlockStore + Clone + 'static>(
    vlog: &VerifiedLog,
    state: &mut TrainingState<S>,
) -> Result<Option<Mismatch>> {
    let derived = state.params.commitment()?.root;
    Ok((derived != vlog.header.init).then(|| Mismatch {
        step: 0,
        field: Field::Init,
        tensor: None,
        logged: vlog.header.init.to_string(),
        replayed: derived.to_string(),
    }))
}

/// The first field in which an executed step differs from its record, as
/// `(field, tensor name, logged, replayed)`.
pub(crate) fn first_difference(
    record: &StepRecord,
    ex: &Executed,
    w: &Commitment,
    names: &[String],
) -> Option<(Field, Option<String>, String, String)> {
    // `record.batch_root` was checked against `record.batch` when the log was loaded.
    if record.batch != ex.batch {
        let i = record
            .batch
            .iter()
            .zip(&ex.batch)
            .position(|(a, b)| a != b)
            .unwrap_or(record.batch.len().min(ex.batch.len()));
        let show = |v: &[Digest]| {
            v.get(i).map_or("-".into(), |d| {
                ids::cid_v1_of_digest(ids::DAG_CBOR, d).to_string()
            })
        };
        return Some((
            Field::Batch,
            None,
            format!("record {i}: {}", show(&record.batch)),
            format!("record {i}: {}", show(&ex.batch)),
        ));
    }
    if record.epoch != ex.epoch || record.batch_step != ex.batch_step {
        return Some((
            Field::Batch,
            None,
            format!("epoch {} step {}", record.epoch, record.batch_step),
            format!("epoch {} step {}", ex.epoch, ex.batch_step),
        ));
    }
    if record.dropout_seed != ex.dropout_seed {
        return Some((
            Field::DropoutSeed,
            None,
            format!("{:?}", record.dropout_seed),
            format!("{:?}", ex.dropout_seed),
        ));
    }
    if record.lr.to_bits() != ex.lr.to_bits() {
        return Some((
            Field::LearningRate,
            None,
            record.lr.to_string(),
            ex.lr.to_string(),
        ));
    }
    if record.loss.to_bits() != ex.loss.to_bits() {
        return Some((
            Field::Loss,
            None,
            record.loss.to_string(),
            ex.loss.to_string(),
        ));
    }
    if record.grad_norm.to_bits() != ex.grad_norm.to_bits() {
        return Some((
            Field::GradNorm,
            None,
            record.grad_norm.to_string(),
            ex.grad_norm.to_string(),
        ));
    }
    if w.root != record.weights_after {
        let i = record
            .tensors
            .iter()
            .zip(&w.leaves)
            .position(|(a, b)| a != b);
        let tensor = i.and_then(|i| names.get(i).cloned());
        let show = |v: &[Digest], root| i.map_or(root, |i| v[i]).to_string();
        return Some((
            Field::Weights,
            tensor,
            show(&record.tensors, record.weights_after),
            show(&w.leaves, w.root),
        ));
    }
    None
}
