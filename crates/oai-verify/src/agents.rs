//! The parties as agents: each [`tick`](NodeAgent::tick) reads the chain, does what its role
//! asks for now and says what it did; [`run`] repeats ticks until told to stop. An agent keeps
//! only caches: everything it acts on is read again from the chain and the block store, so an
//! agent that crashes mid-dispute and is started again picks up where the chain stands.
//!
//! - [`NodeAgent`]: claims open jobs it can do (the spec and every chunk of its dataset
//!   fetched and checked, the job's step count the spec's, enough free stake), trains,
//!   publishes the log (its blocks stay in the store) and submits the result (the header posted
//!   on chain); answers every bisection move from its log and, once the step is found, reveals
//!   the disputed record with its proofs; times out a silent challenger; finalizes after the
//!   window; posts a record an auditor asks for (a data request); withdraws what it is owed.
//! - [`ChallengerAgent`]: audits every submitted result it has not judged yet (by default a
//!   full replay, in parallel where cores allow); for a rejected one it computes the honest
//!   log ([`game::honest_log`]: the node's records up to the first bad step, recomputed
//!   after it), challenges with its head and, in the bisection, agrees with a commitment
//!   exactly when it is the honest one, whatever the node posts; a log nobody serves it
//!   replaces by the honest log trained from the node's header (on chain); a result whose
//!   header does not answer the job's terms it challenges on its face (no bisection); an
//!   accepted result is never challenged. Times out a silent node, resolves and withdraws.
//! - [`RefereeAgent`]: judges every case waiting for adjudication by re-executing its step
//!   ([`game::referee_move`], the header and the disputed record taken from the chain) and
//!   votes once; on data it lacks it abstains and tries again every tick.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use oai_chain::bindings::TrainingMarket::{TrainingMarketErrors, TrainingMarketEvents};
use oai_chain::{Address, Chain, Event, Job, JobId, JobStatus, Receipt, Revert, Turn, B256};
use oai_core::Seed;
use oai_data::dataset::Version;
use oai_data::{BlockStore, RefStore};
use oai_train::candle::Device;
use oai_train::log::{store_chain, StepRecord};
use oai_train::{JobSpec, Trainer, VerifiedLog};

use crate::game::{self, commitment_at};
use crate::keeper::Keeper;
use crate::submission::{cid_of, submit_log, Submission};
use crate::verdict::{Fault, Strategy, Verdict};
use crate::verifier::Verifier;
use crate::{Error, Result};

/// Ids of the market's jobs, from the `JobPosted` events since `from_block`.
pub async fn job_ids<C: Chain + ?Sized>(chain: &C, from_block: u64) -> Result<Vec<JobId>> {
    Ok(chain
        .events(from_block)
        .await?
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Market(TrainingMarketEvents::JobPosted(p)) => p.jobId.try_into().ok(),
            _ => None,
        })
        .collect())
}

/// `Ok(None)` for a revert the market answers when a move is not due yet (no verdict, not timed
/// out): the agent tries again next tick.
fn not_yet(r: oai_chain::Result<Receipt>) -> Result<Option<Receipt>> {
    match r {
        Ok(r) => Ok(Some(r)),
        Err(e) => match e.revert() {
            Some(Revert::Market(
                TrainingMarketErrors::NoVerdict(_) | TrainingMarketErrors::NotTimedOut(_),
            )) => Ok(None),
            _ => Err(e.into()),
        },
    }
}

/// Resolve a dispute waiting for adjudication once the adjudicator has decided, or time out
/// the other side when its move (one of `their_turns`) is overdue; `None` when neither is due.
async fn settle<C: Chain + ?Sized>(
    chain: &C,
    me: Address,
    job: JobId,
    their_turns: &[Turn],
) -> Result<Option<(&'static str, Receipt)>> {
    let Some(d) = chain.dispute(job).await? else {
        return Ok(None);
    };
    if d.turn == Turn::Adjudication {
        return Ok(not_yet(chain.resolve(me, job).await)?.map(|r| ("resolved", r)));
    }
    if their_turns.contains(&d.turn) && chain.now().await? > d.deadline {
        return Ok(not_yet(chain.timeout(me, job).await)?.map(|r| ("timed out the other side", r)));
    }
    Ok(None)
}

/// Withdraw what the market owes `me`, if anything.
async fn withdraw<C: Chain + ?Sized>(chain: &C, me: Address, did: &mut Vec<String>) -> Result<()> {
    let owed = chain.owed(me).await?;
    if !owed.is_zero() {
        chain.withdraw(me).await?;
        did.push(format!("withdrew {owed} wei"));
    }
    Ok(())
}

/// A record editor a dishonest node applies to its records before publishing (for tests and
/// demonstrations of what the others catch).
pub type Forgery = Box<dyn Fn(&mut Vec<StepRecord>) + Send + Sync>;

/// The forgery of the demonstrations: report half the loss computed at `step` (the node
/// re-chains its records, so the log is well formed and only a replay of that step catches it).
pub fn halve_loss_at(step: u64) -> Forgery {
    Box::new(move |records| {
        if let Some(r) = usize::try_from(step).ok().and_then(|i| records.get_mut(i)) {
            r.loss *= 0.5;
        }
    })
}

/// A training node.
pub struct NodeAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    from_block: u64,
    forgery: Option<Forgery>,
    logs: BTreeMap<JobId, VerifiedLog>,
    /// Jobs refused for good: terms that do not match their spec, a claim window past.
    refused: BTreeSet<JobId>,
    /// Names each live job's log, so that garbage collection keeps its blocks.
    keeper: Keeper,
}

impl<C: Chain, S: BlockStore + Clone + Send + Sync + 'static> NodeAgent<C, S> {
    /// A node acting for `me` (registered with stake) over `chain` and `store`, training on
    /// the CPU, reading the chain's events from block 0.
    pub fn new(chain: C, store: S, me: Address) -> Self {
        Self {
            chain,
            store,
            me,
            device: Device::Cpu,
            from_block: 0,
            forgery: None,
            logs: BTreeMap::new(),
            refused: BTreeSet::new(),
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

    /// Read events from `block` on (the deployment's block, on a long chain).
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// A dishonest node: edit the records of every log before publishing it.
    pub fn forging(mut self, edit: Forgery) -> Self {
        self.forgery = Some(edit);
        self
    }

    /// One round: claim and do at most one job, answer disputes, finalize, withdraw. Returns
    /// what it did, one line an action.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        let mut claimed = false;
        for id in job_ids(&self.chain, self.from_block).await? {
            let job = self.chain.job(id).await?;
            let mine = job.node == Some(self.me);
            let market = self.chain.deployment().market;
            self.keeper
                .release_if_settled(market, id, job.status)
                .await?;
            match job.status {
                JobStatus::Open if !claimed => {
                    if let Some(spec) = self.can_do(id, &job).await? {
                        claimed = true;
                        self.chain.claim_job(self.me, id).await?;
                        let head = self.train_and_submit(id, spec).await?;
                        did.push(format!("job {id}: claimed, {head}"));
                    }
                }
                // Claimed but not submitted: this node stopped (or failed) mid-training. The
                // same spec trains to the same bits, so it trains again and submits.
                JobStatus::Claimed
                    if mine && !claimed && self.chain.now().await? < job.deadline =>
                {
                    claimed = true;
                    let spec = JobSpec::get(&self.store, &cid_of(&job.terms.spec)).await?;
                    let head = self.train_and_submit(id, spec).await?;
                    did.push(format!("job {id}: resumed a claimed job, {head}"));
                }
                JobStatus::Submitted if mine && self.chain.data_request(id).await?.is_some() => {
                    let log = self.log(id, &job).await?;
                    if game::answer_data_request(&self.chain, self.me, id, &log)
                        .await?
                        .is_some()
                    {
                        did.push(format!("job {id}: posted a requested record"));
                    }
                }
                JobStatus::Submitted if mine && self.chain.now().await? >= job.deadline => {
                    self.chain.finalize(self.me, id).await?;
                    did.push(format!("job {id}: finalized"));
                }
                JobStatus::Disputed if mine => {
                    let log = self.log(id, &job).await?;
                    if let Some(r) = game::node_move(&self.chain, self.me, id, &log).await? {
                        let revealed = r
                            .events
                            .iter()
                            .any(|e| matches!(e, Event::Market(TrainingMarketEvents::Revealed(_))));
                        did.push(if revealed {
                            format!("job {id}: revealed the disputed record")
                        } else {
                            format!("job {id}: answered a bisection move")
                        });
                    } else if let Some((what, _)) =
                        settle(&self.chain, self.me, id, &[Turn::Challenger]).await?
                    {
                        did.push(format!("job {id}: {what}"));
                    }
                }
                _ => {}
            }
        }
        withdraw(&self.chain, self.me, &mut did).await?;
        Ok(did)
    }

    /// Train `spec` for job `id` and submit the result; what it did, in words.
    async fn train_and_submit(&mut self, id: JobId, spec: JobSpec) -> Result<String> {
        let log = self.train(spec).await?;
        let market = self.chain.deployment().market;
        self.keeper.keep(market, id, Some(log.log.head)).await?;
        let (result, _) = submit_log(&self.chain, &self.store, self.me, id, &log.log).await?;
        let did = format!(
            "trained {} steps, submitted head {}",
            log.log.steps, result.head
        );
        self.logs.insert(id, log);
        Ok(did)
    }

    /// The spec of `job` when this node can do it: the node has the stake, the spec and every
    /// chunk of its dataset can be fetched and check against their CIDs (so a requester cannot
    /// withhold a chunk to make the job fail after the claim and take the node's stake by
    /// `expire`), and the terms match the spec. Data not (yet) there is looked for again next
    /// tick; terms that do not match the spec refuse the job for good.
    async fn can_do(&mut self, id: JobId, job: &Job) -> Result<Option<JobSpec>> {
        if self.refused.contains(&id) {
            return Ok(None);
        }
        if self.chain.now().await? > job.deadline {
            // its claim window is over: a claim would revert (and end the tick); it stays Open
            // until someone cancels it, and is looked at no more
            self.refused.insert(id);
            return Ok(None);
        }
        if !self.chain.may_work(self.me).await? {
            return Ok(None); // registration closed and not admitted: the DAO may admit it later
        }
        let stake = self.chain.stake(self.me).await?;
        let free = stake.stake.saturating_sub(stake.locked);
        if free < job.terms.required_stake {
            return Ok(None); // may change: look again next tick
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
        Ok(version
            .check_complete(&self.store)
            .await
            .is_ok()
            .then_some(spec))
    }

    async fn train(&self, spec: JobSpec) -> Result<VerifiedLog> {
        let mut t = Trainer::new(self.store.clone(), spec, self.device.clone()).await?;
        let (_, log) = t.run().await?;
        let log = match &self.forgery {
            None => log,
            Some(edit) => {
                let v = VerifiedLog::from_head(&self.store, &log.header, &log.head).await?;
                let mut records = v.records;
                edit(&mut records);
                store_chain(&self.store, log.header, v.header.init, records)
                    .await?
                    .1
            }
        };
        Ok(VerifiedLog::from_head(&self.store, &log.header, &log.head).await?)
    }

    /// The log this node submitted for `job`: cached, or loaded again from the result's head.
    async fn log(&mut self, id: JobId, job: &Job) -> Result<VerifiedLog> {
        if let Some(l) = self.logs.get(&id) {
            return Ok(l.clone());
        }
        let result = job
            .result
            .ok_or_else(|| Error::InvalidInput(format!("job {id} has no result")))?;
        let log =
            VerifiedLog::from_head(&self.store, &cid_of(&result.genesis), &cid_of(&result.head))
                .await?;
        self.logs.insert(id, log.clone());
        Ok(log)
    }
}

/// Whether `e` is a block nobody serves (not the verifier's own store being down).
fn withheld(e: &Error) -> bool {
    match e {
        Error::Data(oai_data::Error::NotFound(_)) => true,
        Error::Train(t) => matches!(**t, oai_train::Error::Data(oai_data::Error::NotFound(_))),
        _ => false,
    }
}

/// What a full audit found wrong with a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// The first bad step a replay found.
    Step(u64),
    /// No step to name: a broken log, one of another length, or one nobody serves; the honest
    /// log is computed from the node's header.
    Log,
    /// The log does not answer the job's terms: disputed on its face, without bisection.
    Terms,
}

impl Flaw {
    /// The first step the honest log recomputes ([`game::honest_log`]).
    fn good_steps(self) -> u64 {
        match self {
            Flaw::Step(s) => s,
            Flaw::Log | Flaw::Terms => 0,
        }
    }
}

/// A challenger: audits results and disputes the bad ones.
pub struct ChallengerAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    strategy: Strategy,
    parallelism: usize,
    from_block: u64,
    /// What a full audit found wrong with each result judged (`None`: accepted).
    judged: BTreeMap<JobId, Option<Flaw>>,
    /// The honest log of each job challenged: the commitments the challenger stands by.
    honest: BTreeMap<JobId, VerifiedLog>,
    /// Names each honest log until its job settles (the referees may need its prefix).
    keeper: Keeper,
}

impl<C: Chain, S: BlockStore + Clone + Send + Sync + 'static> ChallengerAgent<C, S> {
    /// A challenger acting for `me`, auditing with a full replay, replaying on the CPU.
    pub fn new(chain: C, store: S, me: Address) -> Self {
        Self {
            chain,
            store,
            me,
            device: Device::Cpu,
            strategy: Strategy::Full,
            parallelism: 1,
            from_block: 0,
            judged: BTreeMap::new(),
            honest: BTreeMap::new(),
            keeper: Keeper::new("challenges"),
        }
    }

    /// Name the head of every honest log this challenger computes under
    /// `challenges/<market>/<job>` in `refs` until the job settles, so that garbage collection
    /// keeps it: where the node does not serve its log, the referees judge the disputed step
    /// from the honest prefix, which only the challenger may hold.
    pub fn keeping(mut self, refs: Arc<dyn RefStore>) -> Self {
        self.keeper = self.keeper.keeping(refs);
        self
    }

    /// Audit with `strategy` (sampled audits are seeded by the randomness of the latest block
    /// when the challenger audits, which is made after the submission). A sampled audit that
    /// rejects a result is followed by a full one before any challenge: the game needs the
    /// first bad step, which only a full replay fixes.
    pub fn auditing(mut self, strategy: Strategy, parallelism: usize) -> Self {
        self.strategy = strategy;
        self.parallelism = parallelism.max(1);
        self
    }

    /// Read events from `block` on.
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// One round: audit new results, challenge bad ones, move in its disputes, resolve,
    /// withdraw.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        for id in job_ids(&self.chain, self.from_block).await? {
            let job = self.chain.job(id).await?;
            let market = self.chain.deployment().market;
            self.keeper
                .release_if_settled(market, id, job.status)
                .await?;
            match job.status {
                JobStatus::Submitted if self.chain.now().await? < job.deadline => {
                    let Some(flaw) = self.flaw(id, &job).await? else {
                        continue;
                    };
                    if self.chain.data_request(id).await?.is_some() {
                        continue; // no dispute opens while a record is asked for: next tick
                    }
                    if flaw == Flaw::Terms {
                        self.chain
                            .challenge_terms(self.me, id, job.terms.required_stake)
                            .await?;
                        did.push(format!("job {id}: wrong on its face (terms): challenged"));
                        continue;
                    }
                    let honest = self.honest(id, &job, flaw.good_steps()).await?;
                    let claim = commitment_at(honest, honest.log.steps)?;
                    if Some(claim) == job.result.map(|r| r.head) {
                        continue; // the audit's fault is not in the commitments: nothing to win
                    }
                    self.chain
                        .challenge(self.me, id, claim, job.terms.required_stake)
                        .await?;
                    did.push(match flaw {
                        Flaw::Step(bad) => format!("job {id}: step {bad} is wrong: challenged"),
                        _ => format!("job {id}: not the honest log: challenged"),
                    });
                }
                JobStatus::Disputed => {
                    let Some(d) = self.chain.dispute(id).await? else {
                        continue;
                    };
                    if d.challenger != self.me {
                        continue;
                    }
                    if d.turn == Turn::Challenger {
                        let bad = self.flaw(id, &job).await?.map_or(0, Flaw::good_steps);
                        // agree exactly with the honest commitment, whatever the node posts
                        let c = commitment_at(self.honest(id, &job, bad).await?, d.mid())?;
                        self.chain.bisect(self.me, id, c).await?;
                        did.push(format!(
                            "job {id}: {} c_{}",
                            if c == d.node_mid {
                                "agreed on"
                            } else {
                                "disputed"
                            },
                            d.mid()
                        ));
                    } else if let Some((what, _)) =
                        settle(&self.chain, self.me, id, &[Turn::Node, Turn::Reveal]).await?
                    {
                        did.push(format!("job {id}: {what}"));
                    }
                }
                _ => {}
            }
        }
        withdraw(&self.chain, self.me, &mut did).await?;
        Ok(did)
    }

    /// What is wrong with `job`'s result (audited once, again after a restart); `None` when
    /// the audit accepts it.
    async fn flaw(&mut self, id: JobId, job: &Job) -> Result<Option<Flaw>> {
        if let Some(b) = self.judged.get(&id) {
            return Ok(*b);
        }
        let Some(result) = &job.result else {
            return Ok(None);
        };
        let sub = Submission::from_chain(&job.terms, result);
        // the header as the node posted it: nobody needs the node to serve it
        game::take_posted(&self.chain, &self.store, id, &result.genesis).await?;
        let bad = if crate::verifier::fault_on_its_face(&self.store, &sub)
            .await?
            .is_some()
        {
            Some(Flaw::Terms)
        } else {
            let mut verdict = self.audit(&sub, self.strategy).await;
            if verdict.as_ref().is_ok_and(|v| !v.is_accepted()) && self.strategy != Strategy::Full {
                verdict = self.audit(&sub, Strategy::Full).await;
            }
            match verdict {
                Ok(Verdict::Accepted(_)) => None,
                Ok(Verdict::Rejected(Fault::Step(m))) => Some(Flaw::Step(m.step)),
                // a broken log or one of another length: only a replayed step fixes a prefix
                // known good (the header's faults were looked for above)
                Ok(Verdict::Rejected(Fault::Log { .. } | Fault::Terms { .. })) => Some(Flaw::Log),
                // a log nobody serves: the honest log is computed from the header alone, and
                // the node must reveal what the game ends on, or lose
                Err(e) if withheld(&e) => Some(Flaw::Log),
                Err(e) => return Err(e),
            }
        };
        self.judged.insert(id, bad);
        Ok(bad)
    }

    async fn audit(&self, sub: &Submission, strategy: Strategy) -> Result<Verdict> {
        let seed = match strategy {
            Strategy::Full => Seed::from_u64(0),
            _ => crate::audit_seed_now(&self.chain, sub).await?,
        };
        Verifier::new(self.store.clone())
            .on(self.device.clone())
            .with_parallelism(self.parallelism)
            .verify(sub, strategy, &seed)
            .await
    }

    /// The honest log of a job whose result is good up to step `bad` ([`game::honest_log`]),
    /// computed once (again after a restart).
    async fn honest(&mut self, id: JobId, job: &Job, bad: u64) -> Result<&VerifiedLog> {
        if !self.honest.contains_key(&id) {
            let result = job
                .result
                .ok_or_else(|| Error::InvalidInput(format!("job {id} has no result")))?;
            let sub = Submission::from_chain(&job.terms, &result);
            let log = game::honest_log(&self.store, &sub, bad, self.device.clone()).await?;
            let market = self.chain.deployment().market;
            self.keeper.keep(market, id, Some(log.log.head)).await?;
            self.honest.insert(id, log);
        }
        Ok(&self.honest[&id])
    }
}

/// A referee of the market's adjudicator.
pub struct RefereeAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    from_block: u64,
    voted: BTreeSet<B256>,
    /// Cases it could not judge yet (data missing): said once, tried again every tick.
    abstained: BTreeSet<B256>,
}

impl<C: Chain, S: BlockStore + Clone + Send + Sync + 'static> RefereeAgent<C, S> {
    /// A referee acting for `me` (one of the adjudicator's referees), replaying on the CPU.
    pub fn new(chain: C, store: S, me: Address) -> Self {
        Self {
            chain,
            store,
            me,
            device: Device::Cpu,
            from_block: 0,
            voted: BTreeSet::new(),
            abstained: BTreeSet::new(),
        }
    }

    /// Read events from `block` on.
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// One round: judge and vote on every case waiting for adjudication.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        for id in job_ids(&self.chain, self.from_block).await? {
            let Some(d) = self.chain.dispute(id).await? else {
                continue;
            };
            if d.turn != Turn::Adjudication {
                continue;
            }
            let case = self.chain.case_id(id, &d).await?;
            if self.voted.contains(&case) {
                continue;
            }
            match game::referee_move(&self.chain, self.me, id, &self.store, self.device.clone())
                .await
            {
                Ok(Some((judgement, None))) => {
                    // no vote on data it does not have: said once, tried again next tick
                    if self.abstained.insert(case) {
                        did.push(format!("job {id}: abstained: {judgement:?}"));
                    }
                    continue;
                }
                Ok(Some((judgement, Some(_)))) if d.is_terms() => {
                    did.push(format!("job {id}: terms judged: {judgement:?}"));
                }
                Ok(Some((judgement, Some(_)))) => {
                    did.push(format!("job {id}: step {} judged: {judgement:?}", d.lo));
                }
                Ok(None) => {}
                // voted before a restart, or the case is decided already
                Err(Error::Chain(e)) if matches!(e.revert(), Some(Revert::Referee(_))) => {}
                Err(e) => return Err(e),
            }
            self.voted.insert(case);
        }
        Ok(did)
    }
}

/// Something [`run`] can tick.
#[async_trait::async_trait]
pub trait Agent: Send {
    /// One round of work; what it did.
    async fn tick(&mut self) -> Result<Vec<String>>;
}

macro_rules! agent {
    ($t:ident) => {
        #[async_trait::async_trait]
        impl<C: Chain + Send, S: BlockStore + Clone + Send + Sync + 'static> Agent for $t<C, S> {
            async fn tick(&mut self) -> Result<Vec<String>> {
                $t::tick(self).await
            }
        }
    };
}
agent!(NodeAgent);

#[async_trait::async_trait]
impl<A: Agent + ?Sized> Agent for Box<A> {
    async fn tick(&mut self) -> Result<Vec<String>> {
        (**self).tick().await
    }
}
agent!(ChallengerAgent);
agent!(RefereeAgent);

/// What [`play_until_settled`] reports as the play goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Played<'a> {
    /// An agent did something (one line of its [`Agent::tick`]).
    Did {
        /// The agent's name.
        agent: &'a str,
        /// What it did.
        line: &'a str,
    },
    /// Nobody had anything to do: the chain's clock was moved on by `secs`.
    Idle {
        /// Seconds that passed.
        secs: u64,
    },
}

/// Play `agents` in turns on a chain whose clock may be moved (the embedded EVM, a development
/// node) until every job posted since `from_block` is settled (paid, slashed or cancelled).
/// Each round every agent ticks once; after a round in which nobody did anything, `idle_secs`
/// pass on the chain, so challenge windows and move timeouts run out as they would in time.
/// Returns the rounds played. A tick's error ends the play; so do `max_rounds` rounds without
/// settling ([`Error::Unsettled`], naming the jobs still open).
pub async fn play_until_settled<C: Chain + ?Sized, N: AsRef<str>>(
    chain: &C,
    agents: &mut [(N, Box<dyn Agent>)],
    from_block: u64,
    idle_secs: u64,
    max_rounds: usize,
    mut report: impl FnMut(Played<'_>),
) -> Result<usize> {
    for round in 1..=max_rounds {
        let mut busy = false;
        for (name, agent) in agents.iter_mut() {
            for line in agent.tick().await? {
                report(Played::Did {
                    agent: name.as_ref(),
                    line: &line,
                });
                busy = true;
            }
        }
        if busy {
            continue;
        }
        if unsettled(chain, from_block).await?.is_empty() {
            return Ok(round);
        }
        chain.advance_time(idle_secs).await?;
        report(Played::Idle { secs: idle_secs });
    }
    let open = unsettled(chain, from_block).await?;
    if open.is_empty() {
        return Ok(max_rounds); // settled by the last round's moves
    }
    Err(Error::Unsettled(format!(
        "after {max_rounds} rounds: {}",
        open.join(", ")
    )))
}

/// The jobs posted since `from_block` that are not paid, slashed or cancelled, in words.
async fn unsettled<C: Chain + ?Sized>(chain: &C, from_block: u64) -> Result<Vec<String>> {
    let mut open = Vec::new();
    for id in job_ids(chain, from_block).await? {
        let status = chain.job(id).await?.status;
        if !matches!(
            status,
            JobStatus::Paid | JobStatus::Slashed | JobStatus::Cancelled
        ) {
            open.push(format!("job {id} {status:?}"));
        }
    }
    Ok(open)
}

/// Tick `agent` every `poll` until `stop` resolves, passing what it did to `report`. An error of
/// one tick is reported and the agent goes on (a chain that is down comes back); the loop ends
/// only when `stop` does.
pub async fn run<A: Agent>(
    mut agent: A,
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut report: impl FnMut(std::result::Result<String, Error>) + Send,
) {
    tokio::pin!(stop);
    loop {
        match agent.tick().await {
            Ok(lines) => lines.into_iter().for_each(|l| report(Ok(l))),
            Err(e) => report(Err(e)),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
