//! The trainer: runs a job spec step by step and writes the training log as it goes.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use oai_core::{ids, Cid, Digest, MerkleTree};
use oai_data::dataset::Record;
use oai_data::{BlockStore, RefStore};

use crate::env::ComputeEnv;
use crate::log::{
    self, CheckpointRef, LogHeader, StepRecord, TrainingLog, VerifiedLog, LOG_FORMAT,
};
use crate::model::Pass;
use crate::params::Commitment;
use crate::replay::{first_difference, Field};
use crate::run_names;
use crate::spec::JobSpec;
use crate::state::{Executed, TrainingState};
use crate::step_times::StepTimes;
use crate::{Error, Result};

/// Trains a [`JobSpec`] deterministically and logs every step to a [`BlockStore`].
///
/// ```no_run
/// # async fn demo(store: oai_data::MemStore, spec: oai_train::JobSpec) -> oai_train::Result<()> {
/// use oai_train::Trainer;
/// let mut trainer = Trainer::new(store.clone(), spec, candle_core::Device::Cpu).await?;
/// let (log_cid, log) = trainer.train_and_publish().await?;
/// println!("{} steps, root {}", log.steps, log.root);
/// let again = oai_train::replay_step(&log_cid, 3, &store).await?;
/// assert!(again.is_match());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Trainer<S> {
    state: TrainingState<S>,
    logging: bool,
    header: Cid,
    head: Cid,
    leaves: Vec<Digest>,
    /// The checkpoints the records commit (due by the spec; the initial state is never listed).
    checkpoints: Vec<CheckpointRef>,
    /// A checkpoint of a state no record commits (a stop between due checkpoints), listed
    /// last in a summary published at its step so that the run can resume from it.
    resume_point: Option<CheckpointRef>,
    /// Weights after the last written record.
    weights: Commitment,
    /// The last step, when its record still waits for its weights commitment.
    pending: Option<Executed>,
}

impl<S: BlockStore + Clone + 'static> Trainer<S> {
    /// Start the job `spec` on `device`: store the spec, initialise the weights from the run
    /// seed and write the log header (the initial state needs no checkpoint: it follows from
    /// the spec).
    pub async fn new(store: S, spec: JobSpec, device: Device) -> Result<Self> {
        let state = TrainingState::start(store, spec, device).await?;
        let weights = state.params.commitment()?;
        let header = LogHeader {
            format: LOG_FORMAT,
            spec: state.spec_cid,
            env: state.env.clone(),
            params: state.params.vars().keys().cloned().collect(),
            init: weights.root,
        };
        let header = log::put(&state.store, &header).await?;
        Ok(Self {
            state,
            logging: true,
            header,
            head: header,
            leaves: Vec::new(),
            checkpoints: Vec::new(),
            resume_point: None,
            weights,
            pending: None,
        })
    }

    /// Continue the logged run `log`: verify the log, restore its last checkpoint (its weights
    /// checked against the log's commitment; at step 0 the weights the spec's seed gives, which
    /// must be the header's), and re-execute any steps logged after it, which must give the
    /// logged bits ([`Error::ResumeMismatch`] otherwise). Nothing stored is changed.
    ///
    /// The last checkpoint may be a resume point that no record commits (a stop between the
    /// spec's checkpoints): its optimiser state is trusted here, as it is the node's own run
    /// to continue. Verifiers never start from one, so a continuation from a forged resume
    /// point is caught by replaying the step after it.
    pub async fn resume(store: S, log: &Cid, device: Device) -> Result<Self> {
        let vlog = VerifiedLog::load(&store, log).await?;
        let at = vlog.log.checkpoints.last().copied();
        let mut state = TrainingState::restore(store, &vlog, at, device).await?;
        if at.is_none() && state.params.commitment()?.root != vlog.header.init {
            return Err(Error::ResumeMismatch {
                step: 0,
                field: Field::Init.to_string(),
            });
        }
        for step in at.map_or(0, |c| c.step)..vlog.log.steps {
            let record = vlog.record(&state.store, step).await?;
            let mut ex = state.execute(true).await?;
            let w = ex.take_weights()?;
            if let Some((field, tensor, ..)) =
                first_difference(&record, &ex, &w, &vlog.header.params)
            {
                return Err(Error::ResumeMismatch {
                    step: record.step,
                    field: match tensor {
                        Some(t) => format!("{field} of {t}"),
                        None => field.to_string(),
                    },
                });
            }
        }
        let mut checkpoints = vlog.log.checkpoints;
        let resume_point = checkpoints
            .pop_if(|c| !vlog.spec.checkpoint_due(c.step))
            .filter(|c| c.step == state.step);
        let weights = state.params.commitment()?;
        Ok(Self {
            state,
            logging: true,
            header: vlog.log.header,
            head: vlog.log.head,
            leaves: vlog.leaves,
            checkpoints,
            resume_point,
            weights,
            pending: None,
        })
    }

    /// Turn logging off for good: steps then skip the weight commitments, the step records
    /// and the checkpoints, and the run can no longer be published or verified. For measuring
    /// what logging costs.
    pub fn disable_logging(&mut self) {
        self.logging = false;
    }

    /// Steps applied so far.
    pub fn step_index(&self) -> u64 {
        self.state.step
    }

    /// The job spec.
    pub fn spec(&self) -> &JobSpec {
        &self.state.spec
    }

    /// The compute environment of this run.
    pub fn env(&self) -> &ComputeEnv {
        &self.state.env
    }

    /// The weights commitment of the last written step record (the record of the last step is
    /// written during the next step or by [`Trainer::publish`]).
    pub fn weights(&self) -> &Commitment {
        &self.weights
    }

    /// The trainable weights by name, as the last step left them, on the run's device.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.state
            .params
            .vars()
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect()
    }

    /// Run one step and log it. A step whose loss or gradient norm is not finite is skipped
    /// (the weights and optimiser state left as they were) and logged as skipped
    /// ([`StepReport::skipped`], [`crate::log::StepRecord::skipped`]): a diverging spec still
    /// makes a complete log, the same on every replay.
    ///
    /// The step's weights are hashed as part of the step; its record is stored during step
    /// `s + 1` or by [`Trainer::publish`], with the checkpoint of its state when one is due.
    ///
    /// Stepping past the spec's step count is [`Error::StepOutOfRange`].
    pub async fn step(&mut self) -> Result<StepReport> {
        if self.state.step >= self.state.spec.steps {
            return Err(Error::StepOutOfRange {
                step: self.state.step,
                steps: self.state.spec.steps,
            });
        }
        let ex = self.state.execute(self.logging).await?;
        let mut report = StepReport {
            step: self.state.step - 1,
            loss: ex.loss,
            grad_norm: ex.grad_norm,
            lr: ex.lr,
            times: ex.times,
        };
        if self.logging {
            let start = std::time::Instant::now();
            self.flush().await?;
            self.pending = Some(ex);
            let every = self.state.spec.checkpoint_every;
            if every > 0 && self.state.step.is_multiple_of(every) {
                self.checkpoint().await?;
            }
            report.times.log = start.elapsed();
        }
        Ok(report)
    }

    /// Write the last step's record if it is still waiting for its weights commitment; it
    /// commits the checkpoint of its state when one was taken.
    async fn flush(&mut self) -> Result<()> {
        let Some(mut ex) = self.pending.take() else {
            return Ok(());
        };
        let step = self.leaves.len() as u64;
        let weights = ex.take_weights()?;
        let record = StepRecord {
            step,
            prev: self.head,
            epoch: ex.epoch,
            batch_step: ex.batch_step,
            batch_root: log::batch_root(&ex.batch),
            batch: ex.batch,
            dropout_seed: ex.dropout_seed,
            lr: ex.lr,
            loss: ex.loss,
            grad_norm: ex.grad_norm,
            weights_before: self.weights.root,
            weights_after: weights.root,
            tensors: weights.leaves.clone(),
            checkpoint: self
                .checkpoints
                .last()
                .filter(|c| c.step == step + 1)
                .map(|c| c.cid),
        };
        let cid = log::put(&self.state.store, &record).await?;
        self.head = cid;
        self.leaves.push(ids::digest_of(&cid)?);
        self.weights = weights;
        Ok(())
    }

    /// Store a checkpoint of the current state (once per step). When the spec makes it due
    /// (every `checkpoint_every` steps and after the last), the record of the step that produced
    /// the state commits it; otherwise it is the run's resume point until the next step. The
    /// initial state (step 0) is stored but never listed: it follows from the spec.
    pub async fn checkpoint(&mut self) -> Result<Cid> {
        let step = self.state.step;
        let mut listed = self
            .checkpoints
            .last()
            .into_iter()
            .chain(&self.resume_point);
        if let Some(c) = listed.rfind(|c| c.step == step) {
            return Ok(c.cid);
        }
        let bytes = self.state.checkpoint_bytes()?;
        let cid = crate::Checkpoint::put_encoded(&self.state.store, &bytes).await?;
        let at = CheckpointRef { step, cid };
        if step == 0 {
            // nothing to list: replay and resume derive the initial state from the spec
        } else if self.state.spec.checkpoint_due(step) {
            self.checkpoints.push(at);
        } else {
            self.resume_point = Some(at);
        }
        Ok(cid)
    }

    /// Checkpoint the current state, write the last record (which commits the checkpoint) and
    /// store the log summary; returns its CID. The trainer can go on stepping and publish again.
    pub async fn publish(&mut self) -> Result<(Cid, TrainingLog)> {
        if !self.logging {
            return Err(Error::InvalidSpec(
                "logging is off: this run cannot be published".into(),
            ));
        }
        if self.state.step > 0 {
            self.checkpoint().await?;
        }
        self.flush().await?;
        let resume = self.resume_point.filter(|c| c.step == self.state.step);
        let log = TrainingLog {
            format: LOG_FORMAT,
            header: self.header,
            head: self.head,
            steps: self.state.step,
            root: MerkleTree::new(&self.leaves).root(),
            checkpoints: self.checkpoints.iter().copied().chain(resume).collect(),
        };
        Ok((log::put(&self.state.store, &log).await?, log))
    }

    /// The step index [`Trainer::train`] with `steps` stops at: `steps` more than now, at most
    /// the spec's step count (all of it for `None`).
    pub fn stop_at(&self, steps: Option<u64>) -> u64 {
        let total = self.state.spec.steps;
        steps.map_or(total, |n| self.state.step.saturating_add(n).min(total))
    }

    /// Step `steps` more times, or to the spec's step count when `steps` is `None` or reaches
    /// past it, calling `on_step` with each step's report; `ControlFlow::Break` from it stops
    /// after that step. What the CLI, Python and C train with.
    pub async fn train(
        &mut self,
        steps: Option<u64>,
        mut on_step: impl FnMut(&StepReport) -> ControlFlow<()>,
    ) -> Result<Trained> {
        let started = self.state.step;
        let until = self.stop_at(steps);
        let clock = Instant::now();
        let mut skipped = 0;
        while self.state.step < until {
            let report = self.step().await?;
            skipped += u64::from(report.skipped());
            if on_step(&report).is_break() {
                break;
            }
        }
        Ok(Trained {
            steps: self.state.step - started,
            skipped,
            elapsed: clock.elapsed(),
        })
    }

    /// Step to the spec's step count and publish.
    pub async fn train_and_publish(&mut self) -> Result<(Cid, TrainingLog)> {
        self.train(None, |_| ControlFlow::Continue(())).await?;
        self.publish().await
    }

    /// [`Trainer::publish`], then point the run name `name` at the log (the head `runs/NAME`
    /// of `refs`, see [`crate::run_names`]).
    pub async fn publish_as<R: RefStore + ?Sized>(
        &mut self,
        refs: &R,
        name: &str,
    ) -> Result<(Cid, TrainingLog)> {
        let (cid, log) = self.publish().await?;
        run_names::set(refs, name, cid).await?;
        Ok((cid, log))
    }

    /// Mean loss and accuracy (argmax over the last dim against the targets) over `records`,
    /// without dropout, in batches of the spec's batch size.
    pub fn evaluate(&self, records: &[Record]) -> Result<Evaluation> {
        let mut loss_sum = 0f64;
        let mut correct = 0u64;
        let mut targets = 0u64;
        let mut batches = 0u64;
        let pass = Pass::eval(self.state.spec.kernels);
        for chunk in records.chunks(self.state.spec.batch_size.max(1) as usize) {
            let (x, y) = self.state.model.batch(chunk, &self.state.device)?;
            let logits = self.state.model.logits(&self.state.params, &x, &pass)?;
            let classes = *logits.dims().last().expect("logits have a last dim");
            let flat = logits.reshape(((), classes))?;
            let y = y.flatten_all()?;
            loss_sum += pass.kernels.cross_entropy(&flat, &y)?.to_scalar::<f32>()? as f64;
            let pred = flat.argmax(candle_core::D::Minus1)?;
            correct += pred
                .eq(&y)?
                .to_dtype(candle_core::DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()? as u64;
            targets += y.elem_count() as u64;
            batches += 1;
        }
        Ok(Evaluation {
            loss: (loss_sum / batches.max(1) as f64) as f32,
            accuracy: correct as f32 / targets.max(1) as f32,
        })
    }
}

/// What a step reports as soon as it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The step index.
    pub step: u64,
    /// Mean loss of the batch before the update.
    pub loss: f32,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f32,
    /// Learning rate applied.
    pub lr: f64,
    /// Where the step's time went.
    pub times: StepTimes,
}

impl StepReport {
    /// Whether the step was skipped: its loss or gradient norm was not finite (NaN here).
    pub fn skipped(&self) -> bool {
        log::skipped(self.loss, self.grad_norm)
    }
}

/// What [`Trainer::train`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trained {
    /// Steps run.
    pub steps: u64,
    /// How many of them were skipped ([`StepReport::skipped`]).
    pub skipped: u64,
    /// Wall-clock time they took.
    pub elapsed: Duration,
}

impl Trained {
    /// Steps per second of wall-clock time.
    pub fn steps_per_second(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Result of [`Trainer::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy (nats per target).
    pub loss: f32,
    /// Fraction of targets predicted exactly.
    pub accuracy: f32,
}
