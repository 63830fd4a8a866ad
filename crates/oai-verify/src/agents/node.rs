//! The training node's agent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oai_chain::bindings::TrainingMarket::TrainingMarketEvents;
use oai_chain::{Address, Chain, Event, Job, JobId, JobStatus, Turn, U256};
use oai_data::dataset::Version;
use oai_data::{BlockStore, RefStore};
use oai_train::candle::Device;
use oai_train::log::{store_chain, StepRecord};
use oai_train::{Footprint, JobSpec, Trainer, VerifiedLog};

use super::{job_ids, settle, transient, withdraw, Failures};
use crate::background::Background;
use crate::game;
use crate::keeper::Keeper;
use crate::submission::{cid_of, submit_log};
use crate::{Error, Result};

/// A record editor a dishonest node applies to its records before publishing (for tests and
/// demonstrations of what the others catch).
pub type Forgery = Box<dyn Fn(&mut Vec<StepRecord>) + Send + Sync>;

/// A [`Forgery`] shared with the background training.
type SharedForgery = Arc<dyn Fn(&mut Vec<StepRecord>) + Send + Sync>;

/// The forgery of the demonstrations: report half the loss computed at `step` (the node
/// re-chains its records, so the log is well formed and only a replay of that step catches it).
pub fn halve_loss_at(step: u64) -> Forgery {
    Box::new(move |records| {
        if let Some(r) = usize::try_from(step).ok().and_then(|i| records.get_mut(i)) {
            r.loss *= 0.5;
        }
    })
}

/// What a node takes on. A job outside these limits is refused before it is claimed (said
/// once, not looked at again), so that a job the node cannot finish never locks its stake.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLimits {
    /// The fewest wei a job must pay.
    pub min_reward: U256,
    /// The most parameters, trainable and frozen ([`Footprint::params`]).
    pub max_params: u64,
    /// The largest batch.
    pub max_batch: u64,
    /// The most steps.
    pub max_steps: u64,
    /// The most memory a step may need ([`Footprint::memory`], bytes).
    pub max_memory: u64,
    /// Steps trained before claiming (logged as the run will log them, so none is wasted) to
    /// measure the step time on this machine and to catch a spec that fails at once.
    pub trial_steps: u64,
    /// The measured time per step times the job's steps, times this margin, must fit the
    /// job's maximum duration.
    pub margin: f64,
}

impl Default for NodeLimits {
    /// No minimum reward; 200 M parameters, batches of 65,536, 100 M steps, 8 GiB; three trial
    /// steps; a margin of 2.
    fn default() -> Self {
        Self {
            min_reward: U256::ZERO,
            max_params: 200_000_000,
            max_batch: 65_536,
            max_steps: 100_000_000,
            max_memory: 8 << 30,
            trial_steps: 3,
            margin: 2.0,
        }
    }
}

impl NodeLimits {
    /// Why `spec` is beyond these limits; `None` when it is within them.
    pub fn exceeded_by(&self, spec: &JobSpec) -> Option<String> {
        let f = Footprint::of(spec);
        let over = [
            ("parameters", f.params(), self.max_params),
            ("records per batch", f.batch, self.max_batch),
            ("steps", f.steps, self.max_steps),
            ("bytes of memory (estimated)", f.memory, self.max_memory),
        ];
        over.into_iter()
            .find(|(_, n, max)| n > max)
            .map(|(what, n, max)| format!("{n} {what}, this node takes at most {max}"))
    }
}

/// The wait before a job whose trial lacked data (a chunk not there yet) is tried again.
pub(crate) const RETRY_FIRST: Duration = Duration::from_secs(2);

/// The longest wait between tries of a job whose trial lacks data.
pub(crate) const RETRY_MOST: Duration = Duration::from_secs(600);

/// A training node.
pub struct NodeAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    from_block: u64,
    forgery: Option<SharedForgery>,
    limits: NodeLimits,
    logs: BTreeMap<JobId, Arc<VerifiedLog>>,
    /// Jobs refused for good: terms that do not match their spec, a claim window past, a
    /// job beyond the limits, a spec that failed its trial.
    refused: BTreeSet<JobId>,
    /// Claimed jobs whose training failed for a reason that would fail again (a malformed
    /// record, a model that does not fit its data): not trained again.
    failed: BTreeSet<JobId>,
    /// Trial steps of the job it considers claiming: the time per step they took, and the
    /// spec they trained.
    trials: Background<(Duration, JobSpec)>,
    /// Jobs whose trial was started (said once).
    tried: BTreeSet<JobId>,
    /// Jobs whose trial failed for want of data (a chunk not there yet): when to try again,
    /// and the wait that set it ([`RETRY_FIRST`], doubled each time up to [`RETRY_MOST`]).
    retry: BTreeMap<JobId, (Instant, Duration)>,
    /// The training of the job it claimed.
    training: Background<VerifiedLog>,
    failures: Failures,
    /// Names each live job's log, so that garbage collection keeps its blocks.
    keeper: Keeper,
}

impl<C: Chain, S: BlockStore + Clone + Send + Sync + 'static> NodeAgent<C, S> {
    /// A node acting for `me` (registered with stake) over `chain` and `store`, training on
    /// the CPU within the default [`NodeLimits`], reading the chain's events from block 0.
    pub fn new(chain: C, store: S, me: Address) -> Self {
        Self {
            chain,
            store,
            me,
            device: Device::Cpu,
            from_block: 0,
            forgery: None,
            limits: NodeLimits::default(),
            logs: BTreeMap::new(),
            refused: BTreeSet::new(),
            failed: BTreeSet::new(),
            trials: Background::new(),
            tried: BTreeSet::new(),
            retry: BTreeMap::new(),
            training: Background::new(),
            failures: Failures::default(),
            keeper: Keeper::new("jobs"),
        }
    }

    /// Name the head of every log this node submits under `jobs/<market>/<job>` in `refs` until
    /// the job settles (paid, slashed, cancelled or open again), so that `gc` over `refs`
    /// keeps every block the job's disputes may need: the records, the checkpoints, the header,
    /// the spec and the dataset all hang off the head by content address. Without it a
    /// collection could delete a live log, and its node would lose by the availability rule.
    pub fn keeping(mut self, refs: Arc<dyn RefStore>) -> Self {
        self.keeper = self.keeper.keeping(refs);
        self
    }

    /// Take on only jobs within `limits`.
    pub fn limits(mut self, limits: NodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Read events from `block` on (the deployment's block, on a long chain).
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// A dishonest node: edit the records of every log before publishing it.
    pub fn forging(mut self, edit: Forgery) -> Self {
        self.forgery = Some(Arc::from(edit));
        self
    }

    /// One round: consider open jobs (one at a time: trial steps, then the claim), start and
    /// submit the training of the job it claimed, answer disputes and data requests, finalize,
    /// withdraw. Training and trials run in the background ([`NodeAgent::busy`]): a tick only
    /// reads the chain and answers what is due, so a node training a long job still answers a
    /// dispute on an older one within a tick. One job's error is said once and does not stop
    /// the others. Returns what it did, one line an action.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        for id in job_ids(&self.chain, self.from_block).await? {
            let outcome = self.tick_job(id).await;
            self.failures.report(id, outcome, &mut did);
        }
        withdraw(&self.chain, self.me, &mut did).await?;
        Ok(did)
    }

    /// Whether a trial or a training runs in the background.
    pub fn busy(&self) -> bool {
        self.trials.running() || self.training.running()
    }

    /// Wait until the work running in the background has finished (a later tick takes its
    /// outcome).
    pub async fn idle(&mut self) {
        self.trials.finished().await;
        self.training.finished().await;
    }

    async fn tick_job(&mut self, id: JobId) -> Result<Option<String>> {
        let job = self.chain.job(id).await?;
        let mine = job.node == Some(self.me);
        let market = self.chain.deployment().market;
        self.keeper
            .release_if_settled(market, id, job.status)
            .await?;
        if job.status != JobStatus::Open {
            // someone else claimed it while this node tried it
            self.trials.take(id).await;
        }
        if !(mine && job.status == JobStatus::Claimed) && self.training.take(id).await.is_some() {
            return Ok(Some(format!(
                "job {id}: trained, but it is {:?} now: nothing to submit",
                job.status
            )));
        }
        Ok(match job.status {
            JobStatus::Open => self.consider(id, &job).await?,
            JobStatus::Claimed if mine => self.work_on(id, &job).await?,
            JobStatus::Submitted if mine && self.chain.data_request(id).await?.is_some() => {
                let log = self.log(id, &job).await?;
                game::answer_data_request(&self.chain, &self.store, self.me, id, &log)
                    .await?
                    .map(|_| format!("job {id}: posted a requested record"))
            }
            JobStatus::Submitted if mine && self.chain.now().await? >= job.deadline => {
                self.chain.finalize(self.me, id).await?;
                Some(format!("job {id}: finalized"))
            }
            JobStatus::Disputed if mine => {
                let log = self.log(id, &job).await?;
                if let Some(r) =
                    game::node_move(&self.chain, &self.store, self.me, id, &log).await?
                {
                    let revealed = r
                        .events
                        .iter()
                        .any(|e| matches!(e, Event::Market(TrainingMarketEvents::Revealed(_))));
                    Some(if revealed {
                        format!("job {id}: revealed the disputed record")
                    } else {
                        format!("job {id}: answered a bisection move")
                    })
                } else {
                    settle(&self.chain, self.me, id, &[Turn::Challenger])
                        .await?
                        .map(|(what, _)| format!("job {id}: {what}"))
                }
            }
            _ => None,
        })
    }

    /// An open job: refused, tried in the background, or (once its trial shows it fits the
    /// job's duration) claimed and trained in the background. One job at a time.
    async fn consider(&mut self, id: JobId, job: &Job) -> Result<Option<String>> {
        if self.refused.contains(&id) {
            return Ok(None);
        }
        if job.reward < self.limits.min_reward {
            return Ok(Some(self.refuse(
                id,
                format!(
                    "it pays {} wei, this node takes at least {}",
                    job.reward, self.limits.min_reward
                ),
            )));
        }
        if let Some(trial) = self.trials.take(id).await {
            let (per_step, spec) = match trial {
                Ok(t) => t,
                Err(e) if transient(&e) => {
                    self.back_off(id);
                    return Err(e); // tried again once the wait is over
                }
                Err(e) => return Ok(Some(self.refuse(id, format!("its spec fails: {e}")))),
            };
            let needs = per_step.as_secs_f64() * job.terms.steps as f64 * self.limits.margin;
            if needs > job.terms.max_duration as f64 {
                return Ok(Some(self.refuse(
                    id,
                    format!(
                        "{} steps at {per_step:.1?} a step need about {needs:.0} s with margin, \
                         the job allows {} s",
                        job.terms.steps, job.terms.max_duration
                    ),
                )));
            }
            // the chain moved on while it tried: look again before claiming (the spec and the
            // dataset are content-addressed: what the trial used is what the job names)
            if !self.may_claim(id, job).await? {
                return Ok(None);
            }
            self.chain.claim_job(self.me, id).await?;
            self.retry.remove(&id);
            let steps = spec.steps;
            self.start_training(id, spec);
            return Ok(Some(format!(
                "job {id}: claimed ({per_step:.1?} a step measured), training {steps} steps"
            )));
        }
        if !(self.trials.is_empty() && self.training.is_empty()) {
            return Ok(None); // one job at a time
        }
        if self
            .retry
            .get(&id)
            .is_some_and(|(at, _)| Instant::now() < *at)
        {
            return Ok(None);
        }
        let Some((spec, version)) = self.can_do(id, job).await? else {
            return Ok(None);
        };
        if let Err(e) = spec.validate() {
            return Ok(Some(self.refuse(id, e.to_string())));
        }
        if let Some(why) = self.limits.exceeded_by(&spec) {
            return Ok(Some(self.refuse(id, why)));
        }
        let (store, device, steps) = (
            self.store.clone(),
            self.device.clone(),
            self.limits.trial_steps,
        );
        self.trials
            .start(id, trial(store, spec, version, device, steps));
        // said once: a trial that failed for a while (a chunk not there yet) starts again quietly
        Ok(self
            .tried
            .insert(id)
            .then(|| format!("job {id}: trying {steps} steps before claiming")))
    }

    /// Wait before trying job `id` again: [`RETRY_FIRST`] after its first failed trial, twice
    /// the last wait after each later one, at most [`RETRY_MOST`]. A requester that withholds
    /// a chunk cannot make the node fetch and check its dataset on every tick.
    fn back_off(&mut self, id: JobId) {
        let wait = self
            .retry
            .get(&id)
            .map_or(RETRY_FIRST, |(_, last)| (*last * 2).min(RETRY_MOST));
        self.retry.insert(id, (Instant::now() + wait, wait));
    }

    /// Refuse job `id` for good; the line that says so.
    fn refuse(&mut self, id: JobId, why: String) -> String {
        self.refused.insert(id);
        format!("job {id}: refused: {why}")
    }

    /// The job this node claimed: submit its training once done, or start it (again, after a
    /// restart: the same spec trains to the same bits).
    async fn work_on(&mut self, id: JobId, job: &Job) -> Result<Option<String>> {
        if let Some(trained) = self.training.take(id).await {
            let log = match trained {
                Ok(log) => log,
                Err(e) if transient(&e) => return Err(e), // trained again next tick
                Err(e) => {
                    self.failed.insert(id);
                    return Ok(Some(format!("job {id}: training failed: {e}")));
                }
            };
            let market = self.chain.deployment().market;
            self.keeper.keep(market, id, Some(log.log.head)).await?;
            let (result, _) = submit_log(&self.chain, &self.store, self.me, id, &log.log).await?;
            let steps = log.log.steps;
            self.logs.insert(id, Arc::new(log));
            return Ok(Some(format!(
                "job {id}: trained {steps} steps, submitted head {}",
                result.head
            )));
        }
        if self.training.has(id)
            || self.failed.contains(&id)
            || self.chain.now().await? >= job.deadline
        {
            return Ok(None);
        }
        let spec = JobSpec::get(&self.store, &cid_of(&job.terms.spec)).await?;
        let steps = spec.steps;
        self.start_training(id, spec);
        Ok(Some(format!(
            "job {id}: resumed a claimed job, training {steps} steps"
        )))
    }

    fn start_training(&mut self, id: JobId, spec: JobSpec) {
        let (store, device, forgery) = (
            self.store.clone(),
            self.device.clone(),
            self.forgery.clone(),
        );
        self.training.start(id, train(store, spec, device, forgery));
    }

    /// Whether this node may claim `job` now, as far as the chain says: its claim window is
    /// open (a job past it is refused for good: a claim would revert, and it stays Open until
    /// someone cancels it), the node may work, and its free stake covers the job's. What may
    /// change is looked at again next tick.
    async fn may_claim(&mut self, id: JobId, job: &Job) -> Result<bool> {
        if self.chain.now().await? > job.deadline {
            self.refused.insert(id);
            return Ok(false);
        }
        if !self.chain.may_work(self.me).await? {
            return Ok(false); // registration closed and not admitted: the DAO may admit it later
        }
        let stake = self.chain.stake(self.me).await?;
        let free = stake.stake.saturating_sub(stake.locked);
        Ok(free >= job.terms.required_stake)
    }

    /// The spec and dataset version of `job` when this node can do it: it may claim it
    /// ([`NodeAgent::may_claim`]), the spec and the dataset's manifest can be fetched, and the
    /// terms match the spec. Data not (yet) there is looked for again next tick; terms that do
    /// not match the spec refuse the job for good. (Every chunk of the dataset is fetched and
    /// checked by the trial, in the background.)
    async fn can_do(&mut self, id: JobId, job: &Job) -> Result<Option<(JobSpec, Version)>> {
        if !self.may_claim(id, job).await? {
            return Ok(None);
        }
        let Ok(spec) = JobSpec::get(&self.store, &cid_of(&job.terms.spec)).await else {
            return Ok(None);
        };
        let Ok(version) = Version::open(&self.store, &spec.dataset).await else {
            return Ok(None);
        };
        if version.root().0 != job.terms.dataset_root.0 || spec.steps != job.terms.steps {
            self.refused.insert(id);
            return Ok(None);
        }
        Ok(Some((spec, version)))
    }

    /// The log this node submitted for `job`: cached, or loaded again from the result's head.
    async fn log(&mut self, id: JobId, job: &Job) -> Result<Arc<VerifiedLog>> {
        if let Some(l) = self.logs.get(&id) {
            return Ok(l.clone());
        }
        let result = job
            .result
            .ok_or_else(|| Error::InvalidInput(format!("job {id} has no result")))?;
        let log = Arc::new(
            VerifiedLog::from_head(&self.store, &cid_of(&result.genesis), &cid_of(&result.head))
                .await?,
        );
        self.logs.insert(id, log.clone());
        Ok(log)
    }
}

/// Fetch and check every chunk of `version`, `spec`'s dataset (so a requester cannot withhold
/// one to make the job fail after the claim and take the node's stake by `expire`), then train
/// `steps` steps of `spec` (at least one, at most the spec's) as the run will; the time a step
/// took, its setup included, and the spec.
async fn trial<S: BlockStore + Clone + 'static>(
    store: S,
    spec: JobSpec,
    version: Version,
    device: Device,
    steps: u64,
) -> Result<(Duration, JobSpec)> {
    version.check_complete(&store).await?;
    if spec.steps == 0 {
        return Ok((Duration::ZERO, spec));
    }
    let steps = steps.clamp(1, spec.steps);
    let started = Instant::now();
    let mut t = Trainer::new(store, spec.clone(), device).await?;
    for _ in 0..steps {
        t.step().await?;
    }
    Ok((
        started.elapsed() / u32::try_from(steps).unwrap_or(u32::MAX),
        spec,
    ))
}

/// Train `spec`, edit the records with `forgery` if given, and return the published log.
async fn train<S: BlockStore + Clone + 'static>(
    store: S,
    spec: JobSpec,
    device: Device,
    forgery: Option<SharedForgery>,
) -> Result<VerifiedLog> {
    let mut t = Trainer::new(store.clone(), spec, device).await?;
    let (_, log) = t.train_and_publish().await?;
    let log = match forgery {
        None => log,
        Some(edit) => {
            let v = VerifiedLog::from_head(&store, &log.header, &log.head).await?;
            let mut records = v.records(&store, ..).await?;
            edit(&mut records);
            store_chain(&store, log.header, v.header.init, records)
                .await?
                .1
        }
    };
    Ok(VerifiedLog::from_head(&store, &log.header, &log.head).await?)
}
