//! Dispute scenarios: every ending of the bisection game, and its gas over a long log.

use std::sync::Arc;

use alloy::primitives::{Address, B256};

use super::{eth, forged, honest, terms, Claims, Roles, Scenario, DAY, HOUR};
use crate::bindings::{
    RefereeAdjudicator::RefereeAdjudicatorErrors as Ref, TrainingMarket::TrainingMarketErrors as M,
};
use crate::{Chain, Evm, JobId, JobStatus, JobTerms, Result, Revert, Turn};

/// A node or challenger whose run went wrong at step `at`.
pub(super) fn wrong_from(at: u64) -> impl Fn(u64) -> B256 {
    move |i| if i >= at { forged(i) } else { honest(i) }
}

/// Post a job (1 ETH, plus 1 ETH from a funder), register the node with 3 ETH, claim, and
/// submit the node's log `node`.
pub(super) async fn submitted_job<E: Evm>(s: &mut Scenario<E>, node: &Claims) -> Result<JobId> {
    let r = s.r;
    let steps = node.steps();
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain
            .post_job(
                r.requester,
                &JobTerms {
                    steps,
                    ..terms("dispute")
                },
                eth(1),
            )
            .await,
    );
    let f = s.chain.fund_job(r.funder, job, eth(1)).await;
    s.ok("TrainingMarket.fund", f);
    let reg = s.chain.register(r.node, eth(3)).await;
    s.ok("NodeRegistry.register", reg);
    let claim = s.chain.claim_job(r.node, job).await;
    s.ok("TrainingMarket.claim", claim);
    let sub = node.submit(&s.chain, r.node, job).await;
    s.ok("TrainingMarket.submit", sub);
    Ok(job)
}

/// [`submitted_job`], then challenged with `challenger_final`; returns the job and the gas
/// of the challenge.
pub(super) async fn challenged_job<E: Evm>(
    s: &mut Scenario<E>,
    node: &Claims,
    challenger_final: B256,
) -> Result<(JobId, u64)> {
    let job = submitted_job(s, node).await?;
    let challenger = s.r.challenger;
    let ch = s
        .chain
        .challenge(challenger, job, challenger_final, eth(2))
        .await;
    Ok((job, s.ok("TrainingMarket.challenge", ch).gas_used))
}

/// Play bisection rounds until the dispute reaches one step or `max_moves` moves were made;
/// returns the gas of each move.
pub(super) async fn play<E: Evm>(
    s: &mut Scenario<E>,
    job: JobId,
    node: &Claims,
    challenger: &dyn Fn(u64) -> B256,
    max_moves: usize,
) -> Result<Vec<u64>> {
    let mut gas = Vec::new();
    while gas.len() < max_moves {
        let d = s.chain.dispute(job).await?.expect("a running dispute");
        let label = format!("TrainingMarket.bisect (interval {})", d.hi - d.lo);
        let m = match d.turn {
            Turn::Node => node.bisect(&s.chain, s.r.node, job, d.mid()).await,
            Turn::Challenger => {
                let c = challenger(d.mid());
                s.chain.bisect(s.r.challenger, job, c).await
            }
            Turn::Reveal | Turn::Adjudication => break,
        };
        gas.push(s.ok(&label, m).gas_used);
    }
    Ok(gas)
}

/// The node posts the record behind its disputed c_hi; returns the gas.
pub(super) async fn reveal<E: Evm>(s: &mut Scenario<E>, job: JobId, node: &Claims) -> Result<u64> {
    let d = s.chain.dispute(job).await?.expect("a running dispute");
    assert_eq!(d.turn, Turn::Reveal, "{d:?}");
    let rv = node.reveal(&s.chain, s.r.node, job, d.hi).await;
    Ok(s.ok("TrainingMarket.reveal", rv).gas_used)
}

/// The referees re-execute the disputed step (here: compare with the honest run) and vote
/// until two of three agree; returns the gas of each vote.
pub(super) async fn referees_decide<E: Evm>(s: &mut Scenario<E>, job: JobId) -> Result<Vec<u64>> {
    let d = s.chain.dispute(job).await?.expect("a running dispute");
    assert_eq!(d.turn, Turn::Adjudication);
    let case = s.chain.case_id(job, &d).await?;
    let node_correct = if d.is_terms() {
        // the suite's rule: a result answers its terms when its head is the honest run's
        d.node_hi == honest(s.chain.job(job).await?.terms.steps)
    } else {
        assert_eq!(d.hi - d.lo, 1);
        d.node_hi == honest(d.hi)
    };
    let mut gas = Vec::new();
    for referee in [s.r.referees[0], s.r.referees[1]] {
        let v = s.chain.referee_vote(referee, case, node_correct).await;
        gas.push(s.ok("RefereeAdjudicator.vote", v).gas_used);
    }
    Ok(gas)
}

/// Funders refund (when the node was slashed), everyone withdraws; the market must be empty
/// and the wei conserved.
pub(super) async fn finish<E: Evm>(s: &mut Scenario<E>, job: JobId, refund: bool) -> Result<()> {
    let r = s.r;
    if refund {
        for who in [r.requester, r.funder] {
            let rf = s.chain.refund(who, job).await;
            s.ok("TrainingMarket.refund", rf);
        }
    }
    s.withdraw_all(&[r.node, r.requester, r.funder, r.challenger])
        .await?;
    s.check_market_empty().await?;
    s.check_conservation("when the dispute is settled").await
}

/// The node forged step 617 of 1000; the honest challenger wins through the referees.
pub(crate) async fn node_cheats<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r: Roles = s.r;
    let node = Claims::wrong_from(1000, 617);
    let job = submitted_job(s, &node).await?;
    let c = &s.chain;
    s.reverts(
        "bond below the stake",
        c.challenge(r.challenger, job, honest(1000), eth(1)).await,
        |e| matches!(e, Revert::Market(M::BondTooLow(_))),
    );
    s.reverts(
        "challenge with the node's own claim",
        c.challenge(r.challenger, job, node.at(1000), eth(2)).await,
        |e| matches!(e, Revert::Market(M::SameClaim(_))),
    );
    let ch = c.challenge(r.challenger, job, honest(1000), eth(2)).await;
    s.ok("TrainingMarket.challenge", ch);
    let c = &s.chain;
    s.reverts(
        "second challenge",
        c.challenge(r.funder, job, honest(1000), eth(2)).await,
        |e| matches!(e, Revert::Market(M::WrongStatus(_))),
    );
    s.reverts(
        "bisection move out of turn",
        c.bisect(r.challenger, job, honest(500)).await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(x)) if x.expected == r.node),
    );
    s.reverts(
        "unbond the disputed stake",
        c.request_unbond(r.node, eth(2)).await,
        |e| {
            matches!(
                e,
                Revert::Registry(
                    crate::bindings::NodeRegistry::NodeRegistryErrors::InsufficientFreeStake(_)
                )
            )
        },
    );
    play(s, job, &node, &honest, usize::MAX).await?;
    let d = s.chain.dispute(job).await?.expect("dispute");
    assert_eq!(
        (d.lo, d.hi, d.agreed, d.node_hi, d.turn),
        (616, 617, honest(616), forged(617), Turn::Reveal)
    );
    let c = &s.chain;
    let (p616, p617) = (node.proof(616), node.proof(617));
    s.reverts(
        "a reveal of other bytes",
        c.reveal(r.node, job, &super::claims::honest_block(617), &p616, &p617)
            .await,
        |e| matches!(e, Revert::Market(M::BadReveal(x)) if x.expected == forged(617)),
    );
    s.reverts(
        "a reveal by the challenger",
        c.reveal(r.challenger, job, &node.block(617), &p616, &p617)
            .await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(x)) if x.expected == r.node),
    );
    s.reverts(
        "a reveal whose agreed commitment is proven at another step",
        c.reveal(r.node, job, &node.block(617), &node.proof(615), &p617)
            .await,
        |e| matches!(e, Revert::Market(M::BadProof(x)) if x.step == 616),
    );
    s.reverts(
        "a reveal without the proof of the disputed commitment",
        c.reveal(r.node, job, &node.block(617), &p616, &[]).await,
        |e| matches!(e, Revert::Market(M::BadProof(x)) if x.step == 617),
    );
    let rv = reveal(s, job, &node).await?;
    assert!(rv > 0);
    let c = &s.chain;
    assert_eq!(
        c.posted_block(job, forged(617)).await?,
        Some(node.block(617)),
        "the revealed record is read back from the chain"
    );
    assert_eq!(
        c.posted_block(job, honest(0)).await?,
        Some(node.block(0)),
        "the header"
    );
    assert_eq!(c.posted_block(job, honest(616)).await?, None);
    s.reverts(
        "reveal twice",
        c.reveal(r.node, job, &node.block(617), &p616, &p617).await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(_))),
    );
    s.reverts(
        "resolve before a verdict",
        c.resolve(r.requester, job).await,
        |e| matches!(e, Revert::Market(M::NoVerdict(_))),
    );
    s.reverts(
        "bisect once the step is found",
        c.bisect(r.node, job, honest(1)).await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(_))),
    );
    let case = c.case_id(job, &d).await?;
    s.reverts(
        "vote by a non-referee",
        c.referee_vote(r.funder, case, true).await,
        |e| matches!(e, Revert::Referee(Ref::NotReferee(_))),
    );
    let v = c.referee_vote(r.referees[0], case, false).await;
    s.ok("RefereeAdjudicator.vote", v);
    let c = &s.chain;
    s.reverts(
        "referee votes twice",
        c.referee_vote(r.referees[0], case, false).await,
        |e| matches!(e, Revert::Referee(Ref::AlreadyVoted(_))),
    );
    let v = c.referee_vote(r.referees[1], case, false).await;
    s.ok("RefereeAdjudicator.vote", v);
    let c = &s.chain;
    s.reverts(
        "vote after the verdict",
        c.referee_vote(r.referees[2], case, true).await,
        |e| matches!(e, Revert::Referee(Ref::AlreadyDecided(_))),
    );
    let res = c.resolve(r.requester, job).await;
    s.ok("TrainingMarket.resolve (node slashed)", res);
    let c = &s.chain;
    s.reverts("resolve twice", c.resolve(r.requester, job).await, |e| {
        matches!(e, Revert::Market(M::NoDispute(_)))
    });
    assert_eq!(c.job(job).await?.status, JobStatus::Slashed);
    assert_eq!(
        c.owed(r.challenger).await?,
        eth(3),
        "bond back plus the unburned half of the node's stake"
    );
    assert_eq!(c.burned().await?, eth(1), "half the stake burned");
    assert_eq!(c.stake(r.node).await?.stake, eth(1));
    s.reverts(
        "finalize a slashed job",
        c.finalize(r.node, job).await,
        |e| matches!(e, Revert::Market(M::WrongStatus(_))),
    );
    finish(s, job, true).await
}

/// An honest node against a challenger whose claims go wrong at step 300: the node wins the
/// bond, the window restarts, and the node is paid after it.
pub(crate) async fn challenger_lies<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let liar = wrong_from(300);
    let node = Claims::honest(1000);
    let (job, _) = challenged_job(s, &node, liar(1000)).await?;
    play(s, job, &node, &liar, usize::MAX).await?;
    reveal(s, job, &node).await?;
    referees_decide(s, job).await?;
    let res = s.chain.resolve(r.funder, job).await;
    s.ok("TrainingMarket.resolve (node wins)", res);
    let c = &s.chain;
    let j = c.job(job).await?;
    assert_eq!(
        j.status,
        JobStatus::Submitted,
        "the result stands and may be challenged again"
    );
    assert_eq!(j.deadline, c.now().await? + DAY, "the window restarts");
    assert_eq!(
        c.owed(r.node).await?,
        eth(1),
        "the unburned half of the challenger's bond"
    );
    c.advance_time(DAY).await?;
    let fin = c.finalize(r.funder, job).await;
    s.ok("TrainingMarket.finalize", fin);
    assert_eq!(s.chain.owed(r.node).await?, eth(3));
    finish(s, job, false).await
}

/// The node stops answering after three rounds: the challenger wins by timeout.
pub(crate) async fn node_times_out<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let node = Claims::wrong_from(1000, 500);
    let (job, _) = challenged_job(s, &node, honest(1000)).await?;
    play(s, job, &node, &honest, 6).await?;
    let c = &s.chain;
    s.reverts(
        "timeout before the deadline",
        c.timeout(r.challenger, job).await,
        |e| matches!(e, Revert::Market(M::NotTimedOut(_))),
    );
    c.advance_time(HOUR + 1).await?;
    let d = c.dispute(job).await?.expect("dispute");
    s.reverts(
        "bisection move after the timeout",
        node.bisect(c, r.node, job, d.mid()).await,
        |e| matches!(e, Revert::Market(M::MoveTimedOut(_))),
    );
    let t = c.timeout(r.challenger, job).await;
    let t = s.ok("TrainingMarket.timeout (node silent)", t);
    assert!(t.events.iter().any(|e| matches!(e,
        crate::Event::Market(crate::bindings::TrainingMarket::TrainingMarketEvents::DisputeResolved(x))
            if !x.nodeWon && x.byTimeout && x.winner == r.challenger)));
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    finish(s, job, true).await
}

/// The challenger stops answering: the node wins by timeout and is paid after the window.
pub(crate) async fn challenger_times_out<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let liar = wrong_from(10);
    let node = Claims::honest(1000);
    let (job, _) = challenged_job(s, &node, liar(1000)).await?;
    play(s, job, &node, &liar, 3).await?;
    let c = &s.chain;
    s.reverts(
        "node moves on the challenger's turn",
        c.bisect(r.node, job, honest(1)).await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(x)) if x.expected == r.challenger),
    );
    c.advance_time(HOUR + 1).await?;
    let t = c.timeout(r.node, job).await;
    s.ok("TrainingMarket.timeout (challenger silent)", t);
    let c = &s.chain;
    assert_eq!(c.job(job).await?.status, JobStatus::Submitted);
    assert_eq!(c.owed(r.node).await?, eth(1));
    c.advance_time(DAY).await?;
    let fin = c.finalize(r.node, job).await;
    s.ok("TrainingMarket.finalize", fin);
    finish(s, job, false).await
}

/// The referees never decide: after the adjudication timeout the dispute is void, the bond
/// goes back, and the node is paid after a fresh window.
pub(crate) async fn adjudicator_silent<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let node = Claims::honest(4);
    let (job, _) = challenged_job(s, &node, forged(4)).await?;
    play(s, job, &node, &wrong_from(3), usize::MAX).await?;
    reveal(s, job, &node).await?;
    let c = &s.chain;
    // a minute of slack: a real node's clock also moves on its own between blocks
    c.advance_time(3 * DAY - 60).await?;
    s.reverts(
        "void before the adjudication timeout",
        c.timeout(r.node, job).await,
        |e| matches!(e, Revert::Market(M::NotTimedOut(_))),
    );
    c.advance_time(61).await?;
    let t = c.timeout(r.node, job).await;
    s.ok("TrainingMarket.timeout (no verdict, void)", t);
    let c = &s.chain;
    assert_eq!(c.owed(r.challenger).await?, eth(2), "bond back");
    assert_eq!(c.job(job).await?.status, JobStatus::Submitted);
    c.advance_time(DAY).await?;
    let fin = c.finalize(r.node, job).await;
    s.ok("TrainingMarket.finalize", fin);
    finish(s, job, false).await
}

/// A result wrong on its face (its log does not answer the job's terms): the challenger
/// disputes its terms, there is no bisection, the referees decide the whole result at once and
/// the node is slashed.
pub(crate) async fn terms_fault<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let job = submitted_job(s, &Claims::wrong_from(1000, 1000)).await?;
    let c = &s.chain;
    s.reverts(
        "terms challenge with a low bond",
        c.challenge_terms(r.challenger, job, eth(1)).await,
        |e| matches!(e, Revert::Market(M::BondTooLow(_))),
    );
    let ch = c.challenge_terms(r.challenger, job, eth(2)).await;
    let rc = s.ok("TrainingMarket.challengeTerms", ch);
    assert!(rc.events.iter().any(|e| matches!(e,
        crate::Event::Market(crate::bindings::TrainingMarket::TrainingMarketEvents::TermsDisputed(x))
            if x.genesis == honest(0) && x.head == forged(1000))));
    let c = &s.chain;
    let d = c.dispute(job).await?.expect("dispute");
    assert!(d.is_terms() && d.turn == Turn::Adjudication, "{d:?}");
    assert_eq!((d.agreed, d.node_hi), (honest(0), forged(1000)));
    s.reverts(
        "a bisection move in a terms case",
        c.bisect(r.node, job, honest(1)).await,
        |e| matches!(e, Revert::Market(M::NotYourTurn(_))),
    );
    s.reverts(
        "a second challenge",
        c.challenge(r.funder, job, honest(1000), eth(2)).await,
        |e| matches!(e, Revert::Market(M::WrongStatus(_))),
    );
    referees_decide(s, job).await?;
    let res = s.chain.resolve(r.challenger, job).await;
    s.ok("TrainingMarket.resolve (terms, node slashed)", res);
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    assert_eq!(s.chain.owed(r.challenger).await?, eth(3));
    finish(s, job, true).await
}

/// A terms challenge of a result whose log does answer the terms: the referees find it
/// correct, the challenger loses its bond and the node is paid after a fresh window.
pub(crate) async fn terms_challenge_of_a_good_result<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let job = submitted_job(s, &Claims::honest(1000)).await?;
    let ch = s.chain.challenge_terms(r.challenger, job, eth(2)).await;
    s.ok("TrainingMarket.challengeTerms", ch);
    referees_decide(s, job).await?;
    let res = s.chain.resolve(r.node, job).await;
    s.ok("TrainingMarket.resolve (terms, node wins)", res);
    let c = &s.chain;
    assert_eq!(c.job(job).await?.status, JobStatus::Submitted);
    assert_eq!(c.owed(r.node).await?, eth(1), "half the bond");
    c.advance_time(DAY).await?;
    let fin = c.finalize(r.node, job).await;
    s.ok("TrainingMarket.finalize", fin);
    finish(s, job, false).await
}

/// Gas of one dispute from the challenge to the slashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeGas {
    /// Steps in the disputed log.
    pub steps: u64,
    /// The challenge (bond and dispute set up).
    pub challenge: u64,
    /// Each bisection round: (node's move, challenger's move).
    pub rounds: Vec<(u64, u64)>,
    /// The node's reveal of the disputed record with the proofs of its two commitments (0 in a
    /// terms dispute).
    pub reveal: u64,
    /// The referees' votes on the final step.
    pub votes: Vec<u64>,
    /// The resolution that slashes the node.
    pub resolve: u64,
}

impl DisputeGas {
    /// Everything from the challenge to the slashing, the referees' votes included.
    pub fn total(&self) -> u64 {
        let rounds: u64 = self.rounds.iter().map(|(n, c)| n + c).sum();
        self.challenge + rounds + self.reveal + self.votes.iter().sum::<u64>() + self.resolve
    }
}

/// A node that forged step `cheat_at` of a `steps`-step log is challenged, loses the
/// bisection and is slashed; returns the gas of each part.
pub(crate) async fn full_dispute<E: Evm>(
    s: &mut Scenario<E>,
    steps: u64,
    cheat_at: u64,
) -> Result<DisputeGas> {
    let r = s.r;
    let node = Claims::wrong_from(steps, cheat_at);
    let (job, challenge) = challenged_job(s, &node, honest(steps)).await?;
    let moves = play(s, job, &node, &honest, usize::MAX).await?;
    let rounds = moves
        .chunks(2)
        .map(|m| (m[0], m.get(1).copied().unwrap_or(0)))
        .collect();
    let d = s.chain.dispute(job).await?.expect("dispute");
    assert_eq!(
        (d.lo, d.hi),
        (cheat_at - 1, cheat_at),
        "bisection finds the forged step"
    );
    let reveal = reveal(s, job, &node).await?;
    let votes = referees_decide(s, job).await?;
    let res = s.chain.resolve(r.challenger, job).await;
    let resolve = s.ok("TrainingMarket.resolve (node slashed)", res).gas_used;
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    finish(s, job, true).await?;
    Ok(DisputeGas {
        steps,
        challenge,
        rounds,
        reveal,
        votes,
        resolve,
    })
}

/// Measure a whole dispute on a fresh deployment on `evm` (accounts as for [`super::run`]): a
/// node that forged step `cheat_at` of a `steps`-step log is challenged, loses the bisection
/// and the referees' vote, and is slashed.
pub async fn measure_dispute<E: Evm + 'static>(
    evm: Arc<E>,
    accounts: &[Address],
    steps: u64,
    cheat_at: u64,
) -> Result<DisputeGas> {
    if cheat_at == 0 || cheat_at > steps {
        return Err(crate::Error::InvalidInput(format!(
            "cheat at step {cheat_at} of {steps}"
        )));
    }
    super::fund(evm.as_ref(), accounts).await?;
    let mut ignored = Vec::new();
    let mut s = Scenario::new(evm, Roles::new(accounts), "dispute", &mut ignored).await?;
    full_dispute(&mut s, steps, cheat_at).await
}

/// Measure a terms dispute on a fresh deployment on `evm` (accounts as for [`super::run`]): a
/// `steps`-step result whose log does not answer its terms is challenged on its face, the
/// referees decide at once and the node is slashed. `rounds` is empty: there is no bisection.
pub async fn measure_terms_dispute<E: Evm + 'static>(
    evm: Arc<E>,
    accounts: &[Address],
    steps: u64,
) -> Result<DisputeGas> {
    super::fund(evm.as_ref(), accounts).await?;
    let mut ignored = Vec::new();
    let mut s = Scenario::new(evm, Roles::new(accounts), "terms dispute", &mut ignored).await?;
    let r = s.r;
    let job = submitted_job(&mut s, &Claims::wrong_from(steps, steps)).await?;
    let ch = s.chain.challenge_terms(r.challenger, job, eth(2)).await;
    let challenge = s.ok("TrainingMarket.challengeTerms", ch).gas_used;
    let votes = referees_decide(&mut s, job).await?;
    let res = s.chain.resolve(r.challenger, job).await;
    let resolve = s.ok("TrainingMarket.resolve (terms)", res).gas_used;
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    finish(&mut s, job, true).await?;
    Ok(DisputeGas {
        steps,
        challenge,
        rounds: Vec::new(),
        reveal: 0,
        votes,
        resolve,
    })
}

/// Data requests: an auditor asks the node for one record of its log on chain. The honest node
/// answers with its proof and is paid the bond; while a request runs no dispute opens and the
/// job cannot be finalized; the window then runs at least one more move timeout.
pub(crate) async fn data_requests<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let node = Claims::honest(100);
    let job = submitted_job(s, &node).await?;
    let c = &s.chain;
    let bond = eth(2) / alloy::primitives::U256::from(100);
    s.reverts(
        "a request past the log",
        c.request_data(r.challenger, job, 100, bond).await,
        |e| matches!(e, Revert::Market(M::BadIndex(_))),
    );
    s.reverts(
        "a request with a bond under 1% of the stake",
        c.request_data(
            r.challenger,
            job,
            5,
            bond - alloy::primitives::U256::from(1),
        )
        .await,
        |e| matches!(e, Revert::Market(M::BondTooLow(_))),
    );
    // late in the window: the request outlives it
    c.advance_time(DAY - 600).await?;
    let rq = s.chain.request_data(r.challenger, job, 99, bond).await;
    s.ok("TrainingMarket.requestData", rq);
    let c = &s.chain;
    let q = c.data_request(job).await?.expect("a request");
    assert_eq!((q.by, q.index, q.bond), (r.challenger, 99, bond));
    s.reverts(
        "a second request",
        c.request_data(r.funder, job, 3, bond).await,
        |e| matches!(e, Revert::Market(M::DataRequested(_))),
    );
    s.reverts(
        "a challenge while a request runs",
        c.challenge(r.challenger, job, forged(100), eth(2)).await,
        |e| matches!(e, Revert::Market(M::DataRequested(_))),
    );
    s.reverts(
        "an answer by another account",
        c.answer_data(r.challenger, job, &node.block(100), &node.leaf_proof(99))
            .await,
        |e| matches!(e, Revert::Market(M::NotJobNode(_))),
    );
    s.reverts(
        "an answer of another record",
        c.answer_data(r.node, job, &node.block(99), &node.leaf_proof(99))
            .await,
        |e| matches!(e, Revert::Market(M::BadProof(_))),
    );
    c.advance_time(601).await?;
    s.reverts(
        "finalize while a request runs, the window over",
        c.finalize(r.node, job).await,
        |e| matches!(e, Revert::Market(M::DataRequested(_))),
    );
    let a = c
        .answer_data(r.node, job, &node.block(100), &node.leaf_proof(99))
        .await;
    s.ok("TrainingMarket.answerData", a);
    let c = &s.chain;
    assert_eq!(c.owed(r.node).await?, bond, "the bond pays the node");
    assert_eq!(c.data_request(job).await?, None);
    assert_eq!(
        c.posted_block(job, honest(100)).await?,
        Some(node.block(100))
    );
    let j = c.job(job).await?;
    assert_eq!(
        j.deadline,
        c.now().await? + HOUR,
        "the window runs one more move timeout"
    );
    c.advance_time(HOUR).await?;
    let f = c.finalize(r.node, job).await;
    s.ok("TrainingMarket.finalize", f);
    finish(s, job, false).await
}

/// A node that does not answer a data request is slashed: the requester takes its bond back
/// and the unburned half of the stake, the funders refund.
pub(crate) async fn a_node_withholds_a_record<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let job = submitted_job(s, &Claims::honest(100)).await?;
    let bond = eth(2) / alloy::primitives::U256::from(100);
    let rq = s.chain.request_data(r.challenger, job, 41, bond).await;
    s.ok("TrainingMarket.requestData", rq);
    let c = &s.chain;
    s.reverts(
        "time out the request early",
        c.timeout_data(r.challenger, job).await,
        |e| matches!(e, Revert::Market(M::NotTimedOut(_))),
    );
    c.advance_time(HOUR + 1).await?;
    s.reverts(
        "an answer after the deadline",
        c.answer_data(r.node, job, b"anything", &[]).await,
        |e| matches!(e, Revert::Market(M::MoveTimedOut(_))),
    );
    let t = c.timeout_data(r.funder, job).await;
    s.ok("TrainingMarket.timeoutData (node slashed)", t);
    let c = &s.chain;
    assert_eq!(c.job(job).await?.status, JobStatus::Slashed);
    assert_eq!(c.owed(r.challenger).await?, bond + eth(1));
    assert_eq!(c.burned().await?, eth(1));
    finish(s, job, true).await
}
