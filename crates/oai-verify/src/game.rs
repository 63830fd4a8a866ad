//! The optimistic game on real logs: the moves of the node, the challenger and the referee.
//!
//! The market bisects over the commitments c_i of a log (c_0 the digest of the header's CID,
//! c_i the digest of step record i-1's CID) until one step is disputed; a referee re-executes
//! that step. Each move here reads the dispute's state from the chain and acts on it, so a
//! party that crashes and starts again simply moves again: the chain is the only state.
//!
//! - [`node_move`]: on the node's turn, post its c_mid from the log it submitted; once the
//!   step is found, post the record behind its c_(lo+1) with the Merkle proofs of c_lo and
//!   c_(lo+1) against the submitted root.
//! - [`challenger_move`]: on the challenger's turn, post c_mid from its own (honest) log.
//! - [`judge`]: the referee's judgement of a one-step case: the node's record at c_lo+1 must be
//!   step lo, link to the agreed c_lo, belong to a well-formed prefix of a log for the job's
//!   spec, and replay bit for bit (for step 0 that includes the initial weights); of a terms
//!   case: the submitted log must answer the job's terms (spec, compute class, step count,
//!   dataset), judged on its face.
//! - [`referee_move`]: judge the case and vote. **Data availability**: a referee never votes on
//!   data it does not have. What only the node holds is on chain by the time a case is judged:
//!   the log header is posted with the result, the disputed record at the reveal
//!   ([`take_posted`] puts both in the referee's store). Everything else a step needs is the
//!   agreed prefix and its checkpoints, which the honest side holds (a challenger's honest log
//!   shares the node's prefix up to c_lo), the spec and the dataset (the requester's, checked
//!   available by the node before it claimed). A referee that still cannot fetch a block, or
//!   whose own store cannot be reached, abstains and tries again; an undecided case is voided
//!   at its deadline (the bond back, the window restarted), so missing data never slashes
//!   anyone.

use oai_chain::{Address, Chain, Dispute, Job, JobId, Receipt, Turn, B256};
use oai_core::{ids, MerkleTree};
use oai_data::BlockStore;
use oai_train::candle::Device;
use oai_train::log::{self, StepRecord};
use oai_train::{replay_span_on, JobSpec, StepOutcome, Trainer, VerifiedLog};

use crate::submission::{cid_of, commitment, Submission};
use crate::verdict::Fault;
use crate::Result;

/// A commitment that differs from `theirs`: a challenger's claim where it disputes the node's
/// value (the market compares commitments; it does not judge the challenger's).
pub fn disagreeing(theirs: &B256) -> B256 {
    B256::from(
        oai_core::Digest::of_parts(&[b"oai-verify: not this commitment", theirs.as_slice()]).0,
    )
}

/// c_i of a verified log: the header's commitment for 0, record i-1's after.
pub fn commitment_at(vlog: &VerifiedLog, i: u64) -> Result<B256> {
    match i {
        0 => commitment(&vlog.log.header),
        i => Ok(vlog
            .leaves
            .get(i as usize - 1)
            .map(|d| B256::from(d.0))
            .unwrap_or_default()),
    }
}

/// The honest log of the job `sub` answers, given that the node's submitted log replays up to
/// step `good` (exclusive: the first bad step a full audit found): the node's own records before
/// `good`, then every later step recomputed, resumed from the node's last checkpoint at or
/// before `good`, so its header and every commitment up to c_good are the node's. With
/// `good == 0` (a bad first step, a log of another length, a log nobody serves) the job is
/// trained from the start under the node's own header (which the chain holds); a header that
/// does not resume (its initial weights are not the spec's) is a fault of step 0, and the spec
/// is trained from scratch. Its blocks are put in `store`.
///
/// Its c_i is what an honest node's log holds at step i. A challenger that agrees with a
/// posted commitment exactly when it equals this one wins against any node that did not
/// submit the honest log, whatever the node posts during the game: if the node posts honest
/// commitments throughout, the case ends on the last step, where the node's submitted head does
/// not follow from the honest c_(N-1).
///
/// `good` must come from a full audit: a sampled one leaves earlier steps unchecked, and a
/// forged step before `good` would become part of the "honest" prefix.
pub async fn honest_log<S: BlockStore + Clone + 'static>(
    store: &S,
    sub: &Submission,
    good: u64,
    device: Device,
) -> Result<VerifiedLog> {
    let head = if good == 0 {
        sub.header
    } else {
        let node = VerifiedLog::from_head(store, &sub.header, &sub.head).await?;
        if good > node.log.steps {
            return Err(crate::Error::InvalidInput(format!(
                "the node's log has {} steps, not {good} good ones",
                node.log.steps
            )));
        }
        cid_of(&commitment_at(&node, good)?)
    };
    let resumed = match VerifiedLog::from_head(store, &sub.header, &head).await {
        Ok(prefix) => {
            let summary = prefix.log.put(store).await?;
            Trainer::resume(store.clone(), &summary, device.clone()).await
        }
        Err(e) => Err(e),
    };
    let mut trainer = match resumed {
        Ok(t) => t,
        // the node's header itself is bad (not a header, other initial weights): step 0 is
        // the fault, and the honest log is the spec's from scratch
        Err(
            oai_train::Error::ResumeMismatch { step: 0, .. }
            | oai_train::Error::Malformed { .. }
            | oai_train::Error::BrokenLog { .. },
        ) if good == 0 => {
            let spec = JobSpec::get(store, &sub.spec).await?;
            Trainer::new(store.clone(), spec, device).await?
        }
        Err(e) => return Err(e.into()),
    };
    let (_, log) = trainer.train_and_publish().await?;
    Ok(VerifiedLog::from_head(store, &log.header, &log.head).await?)
}

/// Put the block of `job`'s result that the chain holds under `digest` (the header posted with
/// the result, a record revealed in a dispute) in `store`, checked against its CID; `false`
/// when the chain holds none.
pub async fn take_posted<C: Chain + ?Sized, S: BlockStore + ?Sized>(
    chain: &C,
    store: &S,
    job: JobId,
    digest: &B256,
) -> Result<bool> {
    let Some(bytes) = chain.posted_block(job, *digest).await? else {
        return Ok(false);
    };
    let cid = store.put(ids::DAG_CBOR, bytes.into()).await?;
    if cid != cid_of(digest) {
        return Err(crate::Error::InvalidInput(format!(
            "the chain's block for {digest} is stored as {cid}"
        )));
    }
    Ok(true)
}

/// The node's move from the log it submitted (`log`): on its bisection turn, post c_mid; on
/// its reveal turn, post the record behind c_hi (the log's record of step hi-1, in its
/// canonical bytes) with the Merkle proofs of c_lo and c_hi. `None` when it is not the node's
/// turn (or no dispute runs). The record is read from `store`, where the log is.
pub async fn node_move<C: Chain + ?Sized, S: BlockStore + ?Sized>(
    chain: &C,
    store: &S,
    node: Address,
    job: JobId,
    log: &VerifiedLog,
) -> Result<Option<Receipt>> {
    match chain.dispute(job).await? {
        Some(d) if d.turn == Turn::Reveal => {
            let record = log.record_bytes(store, d.lo).await?;
            let tree = MerkleTree::new(&log.leaves);
            // the siblings of c_i (leaf i-1); none for c_0 (the genesis) and c_steps (the head)
            let proof = |i: u64| -> Vec<B256> {
                match i.checked_sub(1).filter(|_| i < log.log.steps) {
                    Some(leaf) => siblings(&tree, leaf),
                    None => Vec::new(),
                }
            };
            let receipt = chain
                .reveal(node, job, &record, &proof(d.lo), &proof(d.hi))
                .await?;
            Ok(Some(receipt))
        }
        _ => post_mid(chain, node, job, log, |d| d.turn == Turn::Node).await,
    }
}

/// Post `mover`'s c_mid from `log` when `its_turn` says the dispute waits for it.
async fn post_mid<C: Chain + ?Sized>(
    chain: &C,
    mover: Address,
    job: JobId,
    log: &VerifiedLog,
    its_turn: impl Fn(&Dispute) -> bool,
) -> Result<Option<Receipt>> {
    match chain.dispute(job).await? {
        Some(d) if its_turn(&d) => {
            let c = commitment_at(log, d.mid())?;
            Ok(Some(chain.bisect(mover, job, c).await?))
        }
        _ => Ok(None),
    }
}

/// The Merkle siblings of `leaf` in `tree`, as the market takes them.
fn siblings(tree: &MerkleTree, leaf: u64) -> Vec<B256> {
    tree.proof(leaf)
        .map(|p| p.siblings.iter().map(|d| B256::from(d.0)).collect())
        .unwrap_or_default()
}

/// The node answers a data request on `job` from the log it submitted (`log`): the record
/// asked for, in its canonical bytes (read from `store`), with its proof against the submitted
/// root. `None` when no request runs.
pub async fn answer_data_request<C: Chain + ?Sized, S: BlockStore + ?Sized>(
    chain: &C,
    store: &S,
    node: Address,
    job: JobId,
    log: &VerifiedLog,
) -> Result<Option<Receipt>> {
    let Some(q) = chain.data_request(job).await? else {
        return Ok(None);
    };
    let proof = siblings(&MerkleTree::new(&log.leaves), q.index);
    let receipt = chain
        .answer_data(node, job, &log.record_bytes(store, q.index).await?, &proof)
        .await?;
    Ok(Some(receipt))
}

/// Challenge the result of `job` with the challenger's own log of the job (`own`), bonding the
/// job's required stake, when its head differs from the node's. `None` when they agree (an
/// honest result is never challenged).
pub async fn challenge<C: Chain + ?Sized>(
    chain: &C,
    challenger: Address,
    job: JobId,
    own: &VerifiedLog,
) -> Result<Option<Receipt>> {
    let j = chain.job(job).await?;
    let Some(result) = j.result else {
        return Ok(None);
    };
    let mine = commitment_at(own, own.log.steps)?;
    if result.head == mine {
        return Ok(None);
    }
    Ok(Some(
        chain
            .challenge(challenger, job, mine, j.terms.required_stake)
            .await?,
    ))
}

/// The challenger's move: on its turn, post c_mid of its own log.
pub async fn challenger_move<C: Chain + ?Sized>(
    chain: &C,
    challenger: Address,
    job: JobId,
    own: &VerifiedLog,
) -> Result<Option<Receipt>> {
    post_mid(chain, challenger, job, own, |d| {
        d.turn == Turn::Challenger && d.challenger == challenger
    })
    .await
}

/// A referee's judgement of a one-step case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The node's c_lo+1 follows from c_lo.
    NodeCorrect,
    /// It does not: the fault found.
    NodeWrong(Fault),
    /// What the case needs cannot be fetched (see the data availability rule).
    Unavailable(String),
}

/// Judge the one-step case of `dispute` on `job` with the blocks of `store`, replaying on
/// `device`.
pub async fn judge<S: BlockStore + Clone + 'static>(
    store: &S,
    job: &Job,
    dispute: &Dispute,
    device: Device,
) -> Result<Judgement> {
    let Some(result) = &job.result else {
        return Err(crate::Error::InvalidInput("the job has no result".into()));
    };
    if dispute.is_terms() {
        return judge_terms(store, &Submission::from_chain(&job.terms, result)).await;
    }
    let step = dispute.lo;
    let wrong = |reason: String| {
        Ok(Judgement::NodeWrong(Fault::Log {
            step: Some(step),
            reason,
        }))
    };
    let (header, after) = (cid_of(&result.genesis), cid_of(&dispute.node_hi));
    // The disputed record: step `lo`, linked to the agreed commitment.
    let record: StepRecord = match store.get(&after).await {
        Ok(bytes) => match log::decode("step record", &bytes) {
            Ok(r) => r,
            Err(e) => return wrong(format!("the record at c_{} is not one: {e}", step + 1)),
        },
        Err(e) => return unavailable(e),
    };
    if record.step != step {
        return wrong(format!(
            "c_{} is a record of step {}",
            step + 1,
            record.step
        ));
    }
    if commitment(&record.prev)? != dispute.agreed {
        return wrong(format!(
            "record {step} does not link to the agreed c_{step} ({})",
            dispute.agreed
        ));
    }
    // The node's log up to that record, checked whole; then the step replayed.
    let vlog = match VerifiedLog::from_head(store, &header, &after).await {
        Ok(v) => v,
        Err(e) => return judged(e),
    };
    if vlog.header.spec != cid_of(&job.terms.spec) {
        return Ok(Judgement::NodeWrong(Fault::Terms {
            reason: format!("the log trains spec {}, not the job's", vlog.header.spec),
        }));
    }
    if let Some(fault) = crate::verifier::class_fault(&vlog.spec, &vlog.header) {
        return Ok(Judgement::NodeWrong(fault));
    }
    match replay_span_on(&vlog, step, step, store, device).await {
        Ok(StepOutcome::Match { .. }) => Ok(Judgement::NodeCorrect),
        Ok(StepOutcome::Mismatch(m)) => Ok(Judgement::NodeWrong(Fault::Step(m))),
        Err(e) => judged(e),
    }
}

/// Judge a terms case: does the submitted log's header answer the job's terms (spec, compute
/// class, step count and dataset of its spec)? Decided on its face from the header the node
/// posted on chain, without replaying a step.
async fn judge_terms<S: BlockStore + Clone + 'static>(
    store: &S,
    sub: &Submission,
) -> Result<Judgement> {
    match crate::verifier::fault_on_its_face(store, sub).await {
        Ok(Some(fault)) => Ok(Judgement::NodeWrong(fault)),
        Ok(None) => Ok(Judgement::NodeCorrect),
        Err(crate::Error::Data(e)) => unavailable(e),
        Err(crate::Error::Train(e)) => judged(*e),
        Err(e) => Err(e),
    }
}

/// A replay error as a judgement: missing blocks are unavailable data, the node's broken log is
/// its fault, anything else is the referee's own trouble.
fn judged(e: oai_train::Error) -> Result<Judgement> {
    match e {
        oai_train::Error::Data(d) => unavailable(d),
        other => match crate::verifier::node_fault(other) {
            Ok(fault) => Ok(Judgement::NodeWrong(fault)),
            Err(e) => Err(e),
        },
    }
}

/// A block nobody serves is unavailable data: the referee abstains; a store the referee cannot
/// reach (its own IPFS node down) is the referee's own trouble: an error. Either way no vote,
/// and the referee tries again.
fn unavailable(e: oai_data::Error) -> Result<Judgement> {
    match e {
        oai_data::Error::NotFound(_) => Ok(Judgement::Unavailable(e.to_string())),
        other => Err(other.into()),
    }
}

/// The referee's move: when `job`'s dispute waits for adjudication, put what the chain holds
/// of the case in `store` ([`take_case_blocks`]), judge it and vote ([`vote`]); on
/// [`Judgement::Unavailable`] it abstains (the receipt is `None`) and may try again later.
/// `None` when there is nothing to judge.
pub async fn referee_move<C: Chain + ?Sized, S: BlockStore + Clone + 'static>(
    chain: &C,
    referee: Address,
    job: JobId,
    store: &S,
    device: Device,
) -> Result<Option<(Judgement, Option<Receipt>)>> {
    let Some(d) = chain.dispute(job).await? else {
        return Ok(None);
    };
    if d.turn != Turn::Adjudication {
        return Ok(None);
    }
    let j = take_case_blocks(chain, store, job, &d).await?;
    let judgement = judge(store, &j, &d, device).await?;
    let case = chain.case_id(job, &d).await?;
    let receipt = vote(chain, referee, case, &judgement).await?;
    Ok(Some((judgement, receipt)))
}

/// Put the blocks of `job`'s case `dispute` that the chain holds (the header posted with the
/// result; the disputed record, revealed, for a step case) in `store`; returns the job, which
/// [`judge`] reads with the case.
pub async fn take_case_blocks<C: Chain + ?Sized, S: BlockStore + ?Sized>(
    chain: &C,
    store: &S,
    job: JobId,
    dispute: &Dispute,
) -> Result<Job> {
    let j = chain.job(job).await?;
    if let Some(result) = &j.result {
        take_posted(chain, store, job, &result.genesis).await?;
    }
    if !dispute.is_terms() {
        take_posted(chain, store, job, &dispute.node_hi).await?;
    }
    Ok(j)
}

/// `referee`'s vote on the case `case` ([`Chain::case_id`]) as `judgement` says; no vote
/// (`None`) on [`Judgement::Unavailable`].
pub async fn vote<C: Chain + ?Sized>(
    chain: &C,
    referee: Address,
    case: B256,
    judgement: &Judgement,
) -> Result<Option<Receipt>> {
    if let Judgement::Unavailable(_) = judgement {
        return Ok(None);
    }
    let correct = *judgement == Judgement::NodeCorrect;
    Ok(Some(chain.referee_vote(referee, case, correct).await?))
}
