//! The challenger's agent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use oai_chain::{Address, Chain, Job, JobId, JobStatus, Turn};
use oai_core::Seed;
use oai_data::{BlockStore, RefStore};
use oai_train::candle::Device;
use oai_train::VerifiedLog;

use super::{job_ids, settle, withdraw, Failures};
use crate::background::Background;
use crate::game::{self, commitment_at};
use crate::keeper::Keeper;
use crate::sampling::AuditSeed;
use crate::submission::Submission;
use crate::verdict::{Fault, Strategy, Verdict};
use crate::verifier::Verifier;
use crate::{Error, Result};

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

/// What the audit of one result found, and the log the challenger stands by in its dispute.
struct Judged {
    /// `None`: accepted.
    flaw: Option<Flaw>,
    /// The honest log ([`game::honest_log`]) where the bisection needs one.
    honest: Option<VerifiedLog>,
}

/// A challenger: audits results and disputes the bad ones.
pub struct ChallengerAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    strategy: Strategy,
    parallelism: usize,
    seed_delay: u64,
    from_block: u64,
    /// Each result judged (again after a restart).
    judged: BTreeMap<JobId, Judged>,
    /// Audits (and honest logs) being computed.
    judging: Background<Judged>,
    /// Sampled audits waiting for the block that seeds them (said once).
    waiting: BTreeSet<JobId>,
    failures: Failures,
    /// Names each honest log until its job settles (the referees may need its prefix).
    keeper: Keeper,
}

/// Where the audit of one result stands.
enum Judging {
    /// Judged.
    Done,
    /// The audit started in the background just now.
    Started,
    /// The audit runs in the background.
    Running,
    /// A sampled audit waits for the block whose randomness seeds it.
    Waiting(u64),
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
            seed_delay: crate::AUDIT_SEED_DELAY,
            from_block: 0,
            judged: BTreeMap::new(),
            judging: Background::new(),
            waiting: BTreeSet::new(),
            failures: Failures::default(),
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

    /// Audit with `strategy` (sampled audits are seeded by the randomness of a block made
    /// [`crate::AUDIT_SEED_DELAY`] blocks after the submission: [`crate::audit_seed_of`]). A
    /// sampled audit that rejects a result is followed by a full one before any challenge: the
    /// game needs the first bad step, which only a full replay fixes.
    pub fn auditing(mut self, strategy: Strategy, parallelism: usize) -> Self {
        self.strategy = strategy;
        self.parallelism = parallelism.max(1);
        self
    }

    /// Seed sampled audits `blocks` after the submission instead of
    /// [`crate::AUDIT_SEED_DELAY`] (at least 1): for development chains whose blocks come only
    /// with transactions, and whose randomness is a stand-in anyway.
    pub fn audit_seed_delay(mut self, blocks: u64) -> Self {
        self.seed_delay = blocks.max(1);
        self
    }

    /// Read events from `block` on.
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// One round: audit new results (in the background, one task a result, so a costly decoy
    /// does not hold up the moves of other disputes), challenge bad ones, move in its
    /// disputes, resolve, withdraw. One job's error is said once and does not stop the others.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        for id in job_ids(&self.chain, self.from_block).await? {
            let outcome = self.tick_job(id).await;
            self.failures.report(id, outcome, &mut did);
        }
        withdraw(&self.chain, self.me, &mut did).await?;
        Ok(did)
    }

    /// Whether an audit runs in the background.
    pub fn busy(&self) -> bool {
        self.judging.running()
    }

    /// Wait until the audits running in the background have finished (a later tick takes
    /// their outcome).
    pub async fn idle(&mut self) {
        self.judging.finished().await;
    }

    async fn tick_job(&mut self, id: JobId) -> Result<Option<String>> {
        let job = self.chain.job(id).await?;
        let market = self.chain.deployment().market;
        self.keeper
            .release_if_settled(market, id, job.status)
            .await?;
        match job.status {
            JobStatus::Submitted if self.chain.now().await? < job.deadline => {
                match self.judgement(id, &job, false).await? {
                    Judging::Done => {}
                    other => return Ok(self.say(id, other)),
                }
                let judged = &self.judged[&id];
                let Some(flaw) = judged.flaw else {
                    return Ok(None);
                };
                let honest = judged
                    .honest
                    .as_ref()
                    .map(|h| commitment_at(h, h.log.steps));
                if self.chain.data_request(id).await?.is_some() {
                    return Ok(None); // no dispute opens while a record is asked for: next tick
                }
                if flaw == Flaw::Terms {
                    self.chain
                        .challenge_terms(self.me, id, job.terms.required_stake)
                        .await?;
                    return Ok(Some(format!(
                        "job {id}: wrong on its face (terms): challenged"
                    )));
                }
                let claim = honest.ok_or_else(|| no_honest_log(id))??;
                if Some(claim) == job.result.map(|r| r.head) {
                    return Ok(None); // the audit's fault is not in the commitments
                }
                self.chain
                    .challenge(self.me, id, claim, job.terms.required_stake)
                    .await?;
                Ok(Some(match flaw {
                    Flaw::Step(bad) => format!("job {id}: step {bad} is wrong: challenged"),
                    _ => format!("job {id}: not the honest log: challenged"),
                }))
            }
            JobStatus::Disputed => {
                let Some(d) = self.chain.dispute(id).await? else {
                    return Ok(None);
                };
                if d.challenger != self.me {
                    return Ok(None);
                }
                if d.turn != Turn::Challenger {
                    return Ok(
                        settle(&self.chain, self.me, id, &[Turn::Node, Turn::Reveal])
                            .await?
                            .map(|(what, _)| format!("job {id}: {what}")),
                    );
                }
                match self.judgement(id, &job, true).await? {
                    Judging::Done => {}
                    other => return Ok(self.say(id, other)), // judging again after a restart
                }
                let judged = &self.judged[&id];
                let honest = judged.honest.as_ref().ok_or_else(|| no_honest_log(id))?;
                // agree exactly with the honest commitment, whatever the node posts
                let c = commitment_at(honest, d.mid())?;
                self.chain.bisect(self.me, id, c).await?;
                let how = if c == d.node_mid {
                    "agreed on"
                } else {
                    "disputed"
                };
                Ok(Some(format!("job {id}: {how} c_{}", d.mid())))
            }
            _ => {
                self.judging.take(id).await; // settled while it audited
                Ok(None)
            }
        }
    }

    /// What the audit of `job`'s result found, once it has; the audit runs in the background
    /// (started here on first sight, again after a restart). A result wrong on its face is
    /// judged at once. `disputing`: this challenger is in the job's dispute and needs the
    /// honest log whatever the audit finds now.
    async fn judgement(&mut self, id: JobId, job: &Job, disputing: bool) -> Result<Judging> {
        if !self.judged.contains_key(&id) {
            if let Some(outcome) = self.judging.take(id).await {
                let judged = outcome?;
                if let Some(h) = &judged.honest {
                    let market = self.chain.deployment().market;
                    self.keeper.keep(market, id, Some(h.log.head)).await?;
                }
                self.judged.insert(id, judged);
            } else if self.judging.has(id) {
                return Ok(Judging::Running);
            } else {
                let started = self.start_judging(id, job, disputing).await?;
                if !self.judged.contains_key(&id) {
                    return Ok(started);
                }
            }
        }
        Ok(Judging::Done)
    }

    /// The line that says where the audit of job `id` stands, if it is news.
    fn say(&mut self, id: JobId, judging: Judging) -> Option<String> {
        match judging {
            Judging::Started => Some(format!("job {id}: auditing its result")),
            Judging::Waiting(block) if self.waiting.insert(id) => Some(format!(
                "job {id}: its sampled audit waits for block {block}, whose randomness seeds it"
            )),
            _ => None,
        }
    }

    /// Judge a result wrong on its face at once, or start its audit in the background
    /// (a sampled one once the block that seeds it is made).
    async fn start_judging(&mut self, id: JobId, job: &Job, disputing: bool) -> Result<Judging> {
        let result = job
            .result
            .ok_or_else(|| Error::InvalidInput(format!("job {id} has no result")))?;
        let sub = Submission::from_chain(&job.terms, &result);
        // the header as the node posted it: nobody needs the node to serve it
        game::take_posted(&self.chain, &self.store, id, &result.genesis).await?;
        if crate::verifier::fault_on_its_face(&self.store, &sub)
            .await?
            .is_some()
        {
            let judged = Judged {
                flaw: Some(Flaw::Terms),
                honest: None,
            };
            self.judged.insert(id, judged);
            return Ok(Judging::Started);
        }
        let seed = match self.strategy {
            Strategy::Full => Seed::from_u64(0),
            _ => match crate::audit_seed_of(&self.chain, id, &sub, self.seed_delay).await? {
                AuditSeed::Ready(seed) => seed,
                AuditSeed::Pending { block } => return Ok(Judging::Waiting(block)),
            },
        };
        let audit = Audit {
            verifier: Verifier::new(self.store.clone())
                .on(self.device.clone())
                .with_parallelism(self.parallelism),
            store: self.store.clone(),
            device: self.device.clone(),
            strategy: self.strategy,
        };
        self.judging.start(id, audit.judge(sub, seed, disputing));
        Ok(Judging::Started)
    }
}

fn no_honest_log(id: JobId) -> Error {
    Error::InvalidInput(format!(
        "job {id}: no honest log to play the bisection with"
    ))
}

/// One audit, as it runs in the background.
struct Audit<S> {
    verifier: Verifier<S>,
    store: S,
    device: Device,
    strategy: Strategy,
}

impl<S: BlockStore + Clone + Send + Sync + 'static> Audit<S> {
    /// Audit `sub` (a sampled audit that rejects is followed by a full one) and compute the
    /// honest log where a bisection will need it (a flaw, or `disputing`).
    async fn judge(self, sub: Submission, seed: Seed, disputing: bool) -> Result<Judged> {
        let mut verdict = self.verifier.verify(&sub, self.strategy, &seed).await;
        if verdict.as_ref().is_ok_and(|v| !v.is_accepted()) && self.strategy != Strategy::Full {
            verdict = self.verifier.verify(&sub, Strategy::Full, &seed).await;
        }
        let flaw = match verdict {
            Ok(Verdict::Accepted(_)) => None,
            Ok(Verdict::Rejected(Fault::Step(m))) => Some(Flaw::Step(m.step)),
            // a broken log or one of another length: only a replayed step fixes a prefix
            // known good (the header's faults were looked for before)
            Ok(Verdict::Rejected(Fault::Log { .. } | Fault::Terms { .. })) => Some(Flaw::Log),
            // a log nobody serves: the honest log is computed from the header alone, and the
            // node must reveal what the game ends on, or lose
            Err(e) if withheld(&e) => Some(Flaw::Log),
            Err(e) => return Err(e),
        };
        let honest = if flaw.is_some() || disputing {
            let good = flaw.map_or(0, Flaw::good_steps);
            Some(game::honest_log(&self.store, &sub, good, self.device).await?)
        } else {
            None
        };
        Ok(Judged { flaw, honest })
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
