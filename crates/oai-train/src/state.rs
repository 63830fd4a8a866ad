//! A run's state ([`TrainingState`]) and the execution of one step, shared by the trainer, resume
//! and replay so that all three compute a step with the very same code.

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use candle_core::{Device, Tensor};
use oai_core::{ids, Cid, Digest, Seed};
use oai_data::dataset::{Record, Sampler, Version};
use oai_data::BlockStore;

use crate::checkpoint::Checkpoint;
use crate::env::ComputeEnv;
use crate::error::CheckpointMismatch;
use crate::log::{CheckpointRef, VerifiedLog, NOT_FINITE};
use crate::model::{dropout_seed, Dropout, Model, Pass};
use crate::optim::{grad_norm, Optimizer};
use crate::params::{check_tensors, Commitment, Params};
use crate::spec::{JobSpec, ModelSpec};
use crate::step_times::{lap, StepTimes};
use crate::Kernels;
use crate::{Error, Result};
use oai_kernels::grad_sink;

/// What executing one step produced.
#[derive(Debug, Clone)]
pub(crate) struct Executed {
    pub epoch: u64,
    pub batch_step: u64,
    pub batch: Vec<Digest>,
    pub dropout_seed: Seed,
    pub lr: f64,
    pub loss: f32,
    pub grad_norm: f32,
    pub times: StepTimes,
    /// The commitment to the weights after the step, when the step was asked to commit.
    pub weights: Option<Commitment>,
}

impl Executed {
    /// The commitment [`TrainingState::execute`] computed (it was asked to commit).
    pub fn take_weights(&mut self) -> Result<Commitment> {
        self.weights.take().ok_or_else(|| {
            Error::malformed("trainer state", "a step executed without its commitment")
        })
    }
}

/// A run's spec, data, model and mutable training state.
#[derive(Debug)]
pub(crate) struct TrainingState<S> {
    pub store: S,
    pub spec: JobSpec,
    pub spec_cid: Cid,
    pub version: Version,
    pub sampler: Sampler,
    pub model: Model,
    pub params: Params,
    pub optim: Optimizer,
    pub device: Device,
    pub env: ComputeEnv,
    /// Steps applied so far.
    pub step: u64,
    /// A step's batch loaded ahead, while the previous step's weights were hashed.
    prefetched: Option<(u64, Result<Batch>)>,
    /// The run seed (the spec's), which each step's dropout seed derives from: derived once.
    run_seed: Seed,
}

/// A step's records, each proven against the dataset root, and where they sit in the epochs.
#[derive(Debug)]
struct Batch {
    epoch: u64,
    batch_step: u64,
    records: Vec<Record>,
    /// The digests of the records' CIDs, in batch order.
    cids: Vec<Digest>,
}

/// Step `step`'s batch of `version` as `sampler` draws it, each record proven against the
/// dataset root.
async fn load_batch<S: BlockStore>(
    store: &S,
    version: &Version,
    sampler: &mut Sampler,
    step: u64,
) -> Result<Batch> {
    let spe = sampler.steps_per_epoch();
    let (epoch, batch_step) = (step / spe, step % spe);
    let batch = sampler.batch(store, version, epoch, batch_step).await?;
    // the proofs come from chunks checked as they were read; checked again against the root
    // and the sampler's indices, so a bug there cannot put another record in a logged batch
    batch
        .verify(&version.root(), sampler)
        .map_err(|e| Error::BatchProof {
            step,
            reason: e.to_string(),
        })?;
    Ok(Batch {
        epoch,
        batch_step,
        cids: batch
            .records
            .iter()
            .map(ids::digest_of)
            .collect::<std::result::Result<_, _>>()?,
        records: batch.data,
    })
}

impl<S: BlockStore + Clone + 'static> TrainingState<S> {
    /// A fresh run: the spec stored, parameters initialised from the run seed.
    pub async fn start(store: S, spec: JobSpec, device: Device) -> Result<Self> {
        let env = compute_env(&spec, &device)?;
        if let Some(class) = &spec.compute_class {
            if class != &env.class {
                return Err(Error::IncompatibleCompute {
                    log: class.clone(),
                    here: env.class,
                });
            }
        }
        let spec_cid = spec.put(&store).await?;
        Self::initial(store, spec, spec_cid, device, env).await
    }

    /// The state before step 0, derived from the spec alone: parameters from its seed, the
    /// optimiser state zero.
    async fn initial(
        store: S,
        spec: JobSpec,
        spec_cid: Cid,
        device: Device,
        env: ComputeEnv,
    ) -> Result<Self> {
        let model = Model::new(&spec.model);
        let params = Params::init(&model.param_defs(), seeds(&spec).init, &device)?
            .with_frozen(base_weights(&store, &spec, &model, &device).await?);
        let optim = Optimizer::new(&spec.optimizer, &params)?;
        Self::assemble(store, spec, spec_cid, model, params, optim, device, env, 0).await
    }

    /// A run of the verified log `vlog` restored from its checkpoint `at`, which must match the
    /// log's commitment for that step. Without one the initial state is derived from the spec
    /// (its weights commitment is for the caller to compare with [`LogHeader::init`]).
    ///
    /// [`LogHeader::init`]: crate::log::LogHeader::init
    pub async fn restore(
        store: S,
        vlog: &VerifiedLog,
        at: Option<CheckpointRef>,
        device: Device,
    ) -> Result<Self> {
        let spec = vlog.spec.clone();
        let env = compute_env(&spec, &device)?;
        vlog.header.env.check_compatible(&env)?;
        let Some(at) = at else {
            return Self::initial(store, spec, vlog.header.spec, device, env).await;
        };
        let model = Model::new(&spec.model);
        let limit = crate::Footprint::of(&spec).checkpoint_bytes();
        let ckpt = Checkpoint::get_within(&store, &at.cid, &device, limit).await?;
        if ckpt.step != at.step {
            return Err(Error::malformed(
                "checkpoint",
                format!(
                    "{} holds step {}, the log says {}",
                    at.cid, ckpt.step, at.step
                ),
            ));
        }
        let params = Params::from_tensors(&model.param_defs(), ckpt.params, &device)?
            .with_frozen(base_weights(&store, &spec, &model, &device).await?);
        let actual = params.commitment()?.root;
        let expected = vlog.weights_before(&store, at.step).await?;
        if actual != expected {
            return Err(Error::CheckpointMismatch(Box::new(CheckpointMismatch {
                cid: at.cid,
                step: at.step,
                expected,
                actual,
            })));
        }
        let optim = Optimizer::from_state(&spec.optimizer, &params, ckpt.optimizer)?;
        let spec_cid = vlog.header.spec;
        Self::assemble(
            store, spec, spec_cid, model, params, optim, device, env, at.step,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn assemble(
        store: S,
        spec: JobSpec,
        spec_cid: Cid,
        model: Model,
        params: Params,
        optim: Optimizer,
        device: Device,
        env: ComputeEnv,
        step: u64,
    ) -> Result<Self> {
        let version = Version::open(&store, &spec.dataset).await?;
        let seeds = seeds(&spec);
        let sampler = Sampler::for_version(&version, seeds.data, spec.batch_size)
            .map_err(|e| Error::InvalidSpec(e.to_string()))?;
        Ok(Self {
            run_seed: seeds.run,
            store,
            spec,
            spec_cid,
            version,
            sampler,
            model,
            params,
            optim,
            device,
            env,
            step,
            prefetched: None,
        })
    }

    /// Execute the next step: load its batch, forward, backward, clip, update. A step whose loss
    /// or gradient norm is not finite is skipped: the weights and the optimiser state are left
    /// as they were, and the value that was not finite is [`NOT_FINITE`] (a loss that is not
    /// finite is not differentiated, so the gradient norm is not finite either). Skipping is
    /// part of the computation a log commits to: replay skips the same steps.
    ///
    /// With `commit`, the updated weights are hashed right away (into [`Executed::weights`]),
    /// on the pool the step ran on, while the calling thread loads the next step's batch.
    pub async fn execute(&mut self, commit: bool) -> Result<Executed> {
        oai_core::fork::compute().map_err(|parent| Error::Forked { parent })?;
        let step = self.step;
        let mut mark = Instant::now();
        let batch = match self.prefetched.take() {
            Some((at, batch)) if at == step => batch?,
            _ => load_batch(&self.store, &self.version, &mut self.sampler, step).await?,
        };
        let mut times = StepTimes {
            batch: lap(&mut mark),
            ..StepTimes::default()
        };
        let lr = self.spec.schedule.lr(step);
        let seed = dropout_seed(self.run_seed, step);
        let (loss, grad_norm) = self.update(&batch.records, step, lr, seed, &mut times)?;
        self.step += 1;
        let weights = match commit {
            true => {
                let mut mark = Instant::now();
                let w = self.commit_loading_next().await?;
                times.hash = lap(&mut mark);
                Some(w)
            }
            false => None,
        };
        Ok(Executed {
            epoch: batch.epoch,
            batch_step: batch.batch_step,
            batch: batch.cids,
            dropout_seed: seed,
            lr,
            loss,
            grad_norm,
            times,
            weights,
        })
    }

    /// The commitment to the current weights. When a step follows, its batch loads on the
    /// calling thread while the pool's other threads hash: loading is serial, and in the next
    /// step they would wait for it. The batch waits in `self.prefetched`; one that fails to
    /// load fails that step, not this one.
    async fn commit_loading_next(&mut self) -> Result<Commitment> {
        let next = self.step;
        if next >= self.spec.steps {
            return self.params.commitment();
        }
        let load = load_batch(&self.store, &self.version, &mut self.sampler, next);
        let mut load = std::pin::pin!(load);
        let (polled, weights) = self.params.commitment_beside(|| {
            // a store that answers at once (memory, local disk) loads the whole batch here;
            // one that waits for I/O goes on below, with the runtime's waker
            load.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        })?;
        let batch = match polled {
            Poll::Ready(batch) => batch,
            Poll::Pending => load.await,
        };
        self.prefetched = Some((next, batch));
        Ok(weights)
    }

    fn update(
        &mut self,
        records: &[Record],
        step: u64,
        lr: f64,
        seed: Seed,
        times: &mut StepTimes,
    ) -> Result<(f32, f32)> {
        let mut mark = Instant::now();
        let (x, y) = self.model.batch(records, &self.device)?;
        let pass = Pass::train(self.spec.kernels, Dropout::new(seed));
        let loss = self.model.loss(&self.params, &x, &y, &pass)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            // skipped: nothing to differentiate, nothing changes
            times.forward = lap(&mut mark);
            return Ok((NOT_FINITE, NOT_FINITE));
        }
        times.forward = lap(&mut mark);
        let vars = self.params.vars();
        let ids = vars.values().map(|v| v.as_tensor().id());
        let (grads, mut sunk) = grad_sink::collecting(ids, || loss.backward());
        let grads = grads?;
        let mut by_name = BTreeMap::new();
        for (name, var) in vars {
            let g = match (
                sunk.remove(&var.as_tensor().id()),
                grads.get(var.as_tensor()),
            ) {
                (Some(_), Some(_)) => {
                    return Err(Error::malformed(
                        "gradient",
                        format!("{name} reaches the loss through a matmul and through other ops"),
                    ))
                }
                (Some(g), None) => g,
                (None, Some(g)) => g.clone(),
                (None, None) => var.as_tensor().zeros_like()?,
            };
            by_name.insert(name.clone(), g);
        }
        times.backward = lap(&mut mark);
        let (norm, grad_scale) = grad_norm(&by_name, self.spec.grad_clip)?;
        times.clip = lap(&mut mark);
        if !norm.is_finite() {
            // skipped: the weights and the optimiser state stay as they were
            return Ok((value, NOT_FINITE));
        }
        self.optim
            .step(&self.params, &by_name, grad_scale, lr, step)?;
        times.optimizer = lap(&mut mark);
        Ok((value, norm))
    }

    /// The current weights and optimiser state, encoded as a checkpoint file (read in place,
    /// not copied first).
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>> {
        let params = self.params.vars().iter();
        Checkpoint {
            step: self.step,
            params: params
                .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
                .collect(),
            optimizer: self.optim.state_shared(),
        }
        .encode()
    }

    /// Where the current state differs from the checkpoint `committed` that the record of the
    /// step just executed names, as `(tensor, logged, replayed)`; `None` when they are the
    /// same. The state is encoded and hashed first (equal bytes, equal CID); only a different
    /// CID reads the committed file to name the first differing tensor.
    pub async fn checkpoint_difference(
        &self,
        committed: &Cid,
    ) -> Result<Option<(String, String, String)>> {
        let bytes = self.checkpoint_bytes()?;
        let cid = Checkpoint::put_encoded(&oai_data::MemStore::new(), &bytes).await?;
        if &cid == committed {
            return Ok(None);
        }
        let mine = Checkpoint::decode(&bytes, &self.device)?;
        // the committed file names the first differing tensor; a checkpoint of this run has
        // exactly as many bytes as this one, so no more is read
        let limit = bytes.len() as u64;
        let tensor = match Checkpoint::get_within(&self.store, committed, &self.device, limit).await
        {
            Ok(theirs) => theirs
                .first_difference(&mine)?
                .unwrap_or_else(|| "(same tensors, other bytes)".into()),
            Err(Error::Malformed { reason, .. }) => {
                format!("(not a checkpoint of this run: {reason})")
            }
            Err(e) => return Err(e),
        };
        Ok(Some((tensor, committed.to_string(), cid.to_string())))
    }
}

/// The seeds a run derives from its spec's seed.
pub(crate) struct Seeds {
    pub run: Seed,
    pub init: Seed,
    pub data: Seed,
}

pub(crate) fn seeds(spec: &JobSpec) -> Seeds {
    let run = Seed::from_u64(spec.seed);
    Seeds {
        run,
        init: run.derive(b"init"),
        data: run.derive(b"data"),
    }
}

/// The frozen base weights of a LoRA spec (empty for other models).
async fn base_weights<S: BlockStore + Clone + 'static>(
    store: &S,
    spec: &JobSpec,
    model: &Model,
    device: &Device,
) -> Result<BTreeMap<String, Tensor>> {
    let ModelSpec::Lora { base_weights, .. } = &spec.model else {
        return Ok(BTreeMap::new());
    };
    // The checkpoint's tensors are fresh (decoded on `device`) and never trained: use them as is.
    let limit = crate::Footprint::of(spec).base_bytes();
    let ckpt = Checkpoint::get_within(store, base_weights, device, limit).await?;
    check_tensors(&model.base_defs(), &ckpt.params)?;
    Ok(ckpt.params)
}

/// The compute environment of `spec`'s kernels on `device`; verifiable kernels run on the CPU.
fn compute_env(spec: &JobSpec, device: &Device) -> Result<ComputeEnv> {
    oai_core::fork::check().map_err(|parent| Error::Forked { parent })?;
    if spec.kernels == Kernels::Verifiable && !device.is_cpu() {
        return Err(Error::InvalidSpec(format!(
            "verifiable kernels run on the CPU, not {device:?}: set kernels to native to train \
             on a GPU (its logs can then only be replayed on the same kind of GPU)"
        )));
    }
    Ok(ComputeEnv::detect(device, spec.kernels))
}
